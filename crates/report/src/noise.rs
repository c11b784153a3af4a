//! The built-in list of sandbox and background noise. Everything a detonation log holds that is
//! not the sample's doing, recognisable without a baseline run.
//!
//! Processes (by image file name or path, compared case-insensitively):
//!
//! | class | matched by | why |
//! |---|---|---|
//! | sandbox agent | `python.exe`/`pythonw.exe` (CAPE/Cuckoo analyser and agent), or a command line naming `analyzer.py`, `agent.py`, `agent.pyw` | it launches the sample: its *children* stay candidates, its own events are dropped |
//! | sandbox tools | images under `X:\<random>\bin\` (CAPE loaders/injectors), `PPLinject*.exe`, `inject-x86.exe`, `inject-x64.exe`, `is32bit.exe`, `SMaster32/64.exe` (CAPE's renamed Sysmon), `wevtutil` clearing or exporting logs (`cl`, `clear-log`, `qe`, `query-events`, `epl`) | the sandbox's own machinery; their children are noise too |
//! | console hosts | `conhost.exe` | started by Windows for every console program; it carries none of the sample's behaviour |
//! | Defender | `MsMpEng.exe`, `MpCmdRun.exe`, `NisSrv.exe`, `MsSense.exe`, `SecurityHealthService.exe`, `SecurityHealthHost.exe`, `smartscreen.exe`, `MpDefenderCoreService.exe`, anything under `\Windows Defender\` or `\Microsoft\Windows Defender\` | background scanning |
//! | Windows Update | `wuauclt.exe`, `WaaSMedicAgent.exe`, `MoUsoCoreWorker.exe`, `usoclient.exe`, `TiWorker.exe`, `TrustedInstaller.exe`, `SIHClient.exe`, `MusNotification.exe`, `MusNotificationUx.exe`, `UsoCoreWorker.exe` | background updating |
//! | telemetry and licensing | `CompatTelRunner.exe`, `DeviceCensus.exe`, `sppsvc.exe`, `SppExtComObj.exe`, `wsqmcons.exe`, `DiagTrackRunner.exe`, `ngen.exe`, `ngentask.exe`, `mscorsvw.exe` | background maintenance |
//!
//! Events inside the attributed tree that are still the sandbox's:
//! * named pipes that any noise process created or connected to (the monitor talks to the
//!   analyser over them), and `<Anonymous Pipe>`;
//! * files, modules and registry paths under a sandbox directory: the top directory of any
//!   sandbox tool's image (`C:\65n4hwlw\` for `C:\65n4hwlw\bin\x.exe`), any `X:\<dir>\CAPE\`,
//!   any `X:\<6–12 letters or digits>\{bin,dll,data}\`, and the monitor's files `capemon.yac`
//!   and `CapeOutput.bin`;
//! * Windows' bookkeeping written on behalf of every process: Background Activity Moderator
//!   values (`…\Services\bam\…\UserSettings\…`) and Prefetch files (`\Windows\Prefetch\`);
//! * Sysmon's own state and configuration events (4, 16) and error reports (255).

use crate::table::{Proc, ProcessTable, basename_lower};
use sandscope_event::SysmonEvent;
use std::collections::HashSet;

/// What the noise list says about one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcessClass {
    Normal,
    /// Launches samples; not itself reported.
    Agent,
    /// The sandbox's machinery or OS background; never reported, nor its children.
    Noise,
}

const DEFENDER: &[&str] = &[
    "msmpeng.exe",
    "mpcmdrun.exe",
    "nissrv.exe",
    "mssense.exe",
    "securityhealthservice.exe",
    "securityhealthhost.exe",
    "smartscreen.exe",
    "mpdefendercoreservice.exe",
];
const WINDOWS_UPDATE: &[&str] = &[
    "wuauclt.exe",
    "waasmedicagent.exe",
    "mousocoreworker.exe",
    "usoclient.exe",
    "tiworker.exe",
    "trustedinstaller.exe",
    "sihclient.exe",
    "musnotification.exe",
    "musnotificationux.exe",
    "usocoreworker.exe",
];
const TELEMETRY: &[&str] = &[
    "compattelrunner.exe",
    "devicecensus.exe",
    "sppsvc.exe",
    "sppextcomobj.exe",
    "wsqmcons.exe",
    "diagtrackrunner.exe",
    "ngen.exe",
    "ngentask.exe",
    "mscorsvw.exe",
];
const SANDBOX_TOOLS: &[&str] = &[
    "inject-x86.exe",
    "inject-x64.exe",
    "is32bit.exe",
    "smaster32.exe",
    "smaster64.exe",
];

/// Classify one process by its own image and command line.
fn classify_own(proc: &Proc) -> ProcessClass {
    let image = proc.image.as_deref().unwrap_or_default();
    let image_lower = image.to_ascii_lowercase();
    let name = basename_lower(image);
    let command = proc
        .command_line
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if matches!(name.as_str(), "python.exe" | "pythonw.exe")
        || ["analyzer.py", "agent.py", "agent.pyw"]
            .iter()
            .any(|a| command.contains(a))
    {
        return ProcessClass::Agent;
    }
    if name == "conhost.exe"
        || name.starts_with("pplinject")
        || SANDBOX_TOOLS.contains(&name.as_str())
        || is_sandbox_tool_path(&image_lower)
        || DEFENDER.contains(&name.as_str())
        || image_lower.contains(r"\windows defender\")
        || WINDOWS_UPDATE.contains(&name.as_str())
        || TELEMETRY.contains(&name.as_str())
        || (name == "wevtutil.exe" && is_log_maintenance(&command))
    {
        return ProcessClass::Noise;
    }
    ProcessClass::Normal
}

fn is_log_maintenance(command: &str) -> bool {
    crate::commands::split_args(command)
        .iter()
        .skip(1)
        .any(|a| {
            matches!(
                a.as_str(),
                "cl" | "clear-log" | "qe" | "query-events" | "epl" | "export-log"
            )
        })
}

/// `c:\<random>\bin\x.exe`: CAPE's loader and injector live in a randomly named root folder.
fn is_sandbox_tool_path(image_lower: &str) -> bool {
    let parts: Vec<&str> = image_lower.split('\\').collect();
    parts.len() == 4
        && parts[0].len() == 2
        && parts[0].ends_with(':')
        && parts[2] == "bin"
        && is_random_folder_name(parts[1])
}

fn is_random_folder_name(name: &str) -> bool {
    (6..=12).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
        && !matches!(
            name,
            "windows" | "programdata" | "users" | "python" | "recovery" | "drivers"
        )
}

/// Per-process classes, with noise inherited by children of noise (not of agents).
pub(crate) fn classify(table: &ProcessTable) -> Vec<ProcessClass> {
    let mut classes: Vec<ProcessClass> = table.procs.iter().map(classify_own).collect();
    // Parents precede children in creation order, but a log can list them otherwise: iterate
    // to a fixed point, bounded by the depth of the tree.
    for _ in 0..table.procs.len().min(64) {
        let mut changed = false;
        for (i, proc) in table.procs.iter().enumerate() {
            if classes[i] == ProcessClass::Normal
                && let Some(parent) = proc.parent
                && classes[parent] == ProcessClass::Noise
            {
                classes[i] = ProcessClass::Noise;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    classes
}

/// Event-level noise found in this log: the monitor's pipes and the sandbox's folders.
#[derive(Debug, Default)]
pub(crate) struct SandboxArtefacts {
    pipes: HashSet<String>,
    /// Lower-case folder prefixes ending in `\`.
    folders: Vec<String>,
}

impl SandboxArtefacts {
    pub(crate) fn collect(
        events: &[SysmonEvent],
        table: &ProcessTable,
        classes: &[ProcessClass],
    ) -> Self {
        let mut artefacts = SandboxArtefacts::default();
        for (i, proc) in table.procs.iter().enumerate() {
            if classes[i] == ProcessClass::Normal {
                continue;
            }
            if let Some(image) = proc.image.as_deref() {
                let lower = image.to_ascii_lowercase();
                if is_sandbox_tool_path(&lower)
                    && let Some(end) = lower.find("\\bin\\")
                {
                    let folder = lower[..=end].to_string();
                    if !artefacts.folders.contains(&folder) {
                        artefacts.folders.push(folder);
                    }
                }
            }
        }
        for (i, event) in events.iter().enumerate() {
            if let Some(pipe) = event.pipe_name()
                && let Some(actor) = table.actor(i)
                && classes[actor] != ProcessClass::Normal
            {
                artefacts.pipes.insert(pipe.to_ascii_lowercase());
            }
        }
        artefacts
    }

    pub(crate) fn is_monitor_pipe(&self, pipe: &str) -> bool {
        pipe.eq_ignore_ascii_case("<Anonymous Pipe>")
            || self.pipes.contains(&pipe.to_ascii_lowercase())
    }

    pub(crate) fn is_sandbox_path(&self, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        if lower.contains(r"\services\bam\") || lower.contains(r"\windows\prefetch\") {
            return true;
        }
        let lower = lower.strip_prefix(r"\??\").unwrap_or(&lower);
        if self.folders.iter().any(|f| lower.starts_with(f.as_str())) {
            return true;
        }
        let name = lower.rsplit('\\').next().unwrap_or(lower);
        if name == "capemon.yac" || name == "capeoutput.bin" {
            return true;
        }
        let parts: Vec<&str> = lower.split('\\').collect();
        parts.len() >= 3
            && parts[0].len() == 2
            && parts[0].ends_with(':')
            && (parts[2] == "cape"
                || (is_random_folder_name(parts[1])
                    && matches!(parts[2], "bin" | "dll" | "data")
                    && parts.len() >= 4))
    }
}

/// Images of processes that are part of Windows itself and never the sample (used only to skip
/// them when detecting the sample automatically).
pub(crate) fn is_os_host(image: &str) -> bool {
    matches!(
        basename_lower(image).as_str(),
        "explorer.exe"
            | "svchost.exe"
            | "services.exe"
            | "wininit.exe"
            | "winlogon.exe"
            | "lsass.exe"
            | "csrss.exe"
            | "smss.exe"
            | "system"
            | "taskhostw.exe"
            | "taskeng.exe"
            | "sihost.exe"
            | "runtimebroker.exe"
            | "dllhost.exe"
            | "wmiprvse.exe"
            | "searchindexer.exe"
            | "searchprotocolhost.exe"
            | "searchfilterhost.exe"
            | "spoolsv.exe"
            | "dwm.exe"
            | "userinit.exe"
            | "ctfmon.exe"
            | "audiodg.exe"
            | "backgroundtaskhost.exe"
            | "startmenuexperiencehost.exe"
            | "shellexperiencehost.exe"
            | "searchapp.exe"
            | "wermgr.exe"
            | "werfault.exe"
            | "consent.exe"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths() {
        let a = SandboxArtefacts {
            pipes: HashSet::new(),
            folders: vec![r"c:\65n4hwlw\".into()],
        };
        assert!(a.is_sandbox_path(r"C:\65n4hwlw\data\yara\capemon.yac"));
        assert!(a.is_sandbox_path(r"C:\uLtpDoL\CAPE\CapeOutput.bin"));
        assert!(a.is_sandbox_path(r"C:\uLtpDoL\CAPE"));
        assert!(a.is_sandbox_path(r"C:\rb6x4kut\data\yara\capemon.yac"));
        assert!(!a.is_sandbox_path(r"C:\Users\buddy\BIT3E53.tmp"));
        assert!(!a.is_sandbox_path(r"C:\Windows\System32\Tasks\x"));
        assert!(is_sandbox_tool_path(r"c:\65n4hwlw\bin\blxtmngr.exe"));
        assert!(!is_sandbox_tool_path(r"c:\windows\system32\cmd.exe"));
    }
}
