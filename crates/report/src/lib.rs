//! Behaviour reports from Sysmon logs: which events belong to the sample (attribution), the
//! VirusTotal-shaped `file_behaviour` built from them, behash, and the terminal rendering.
//!
//! Input is the event stream of `sandscope-read`; output is `sandscope-model` types. This crate
//! never reads files, never runs Sigma and never touches storage.
//!
//! * [`attribution`](crate::attribution) — how the sample's processes are found and followed;
//! * [`noise`](crate::noise) — the built-in list of sandbox and background noise;
//! * [`behash`](crate::behash) — what goes into the similarity hash;
//! * path and key normalisation rules live in `sandscope-normalise`. Reports carry the
//!   normalised forms (`%APPDATA%\x.exe`, `HKCU\…`) in VirusTotal's fields; every raw spelling
//!   they replace is kept in the `raw_forms` extension (normalised → raw). Command lines
//!   (`command_executions`, tree `name`s) get only their image normalised
//!   (`"%SAMPLEPATH%\x.exe" -a`, as VirusTotal and the CAPE importer show them); their
//!   arguments are what ran and stay as logged, and the whole raw line is in `raw_forms` too.
//!
//! Output is deterministic: the same events and options give the same report, byte for byte.

mod attributes;
pub mod attribution;
pub mod behash;
mod commands;
pub mod noise;
mod table;
mod text;
mod tree;

pub use text::{QUOTED_EVENTS_PER_RULE, escape_control, render_behaviour, render_text};

use attribution::{Context, baseline_process_key};
use noise::{SandboxArtefacts, classify};
use sandscope_event::{SysmonEvent, event_id};
use sandscope_model::{FileBehaviour, SYSINTERNALS_SANDBOX};
use sandscope_normalise::{Environment, Normaliser};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use table::ProcessTable;

/// How the sample is chosen among the log's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SampleSelector {
    /// Detect the sample (and say which was chosen in [`BuiltReport::notes`]).
    #[default]
    Auto,
    /// A process whose image contains this name or path fragment (case-insensitive); when no
    /// image matches, a process whose command line does (a script run by an interpreter).
    Image(String),
    /// A process whose process-create `Hashes` carry this SHA-256.
    Sha256(String),
    /// The process with this ProcessGuid (any spelling).
    RootGuid(String),
    /// Report everything in the log (for trimmed single-technique logs).
    Everything,
}

/// What the builder needs besides the events.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub sample: SampleSelector,
    /// The sample's SHA-256 when known (`--sha256`); else taken from the root's `Hashes`.
    pub sha256: Option<String>,
    /// Events of a clean run of the same sandbox image; what they show is background.
    pub baseline: Vec<SysmonEvent>,
}

/// Where the SHA-256 in the report id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha256Origin {
    /// Given by the caller.
    Given,
    /// The root process's process-create `Hashes`.
    RootHashes,
    /// Neither exists: a SHA-256 of the log's identity (computer and root ProcessGuids).
    Derived,
}

/// A built report and what the builder decided on the way.
#[derive(Debug, Clone)]
pub struct BuiltReport {
    pub behaviour: FileBehaviour,
    /// Human-readable decisions: which sample was chosen and why, which id was used.
    pub notes: Vec<String>,
    /// Where the id's SHA-256 came from.
    pub sha256_origin: Sha256Origin,
    /// Indices (into the events given) of the events attributed to the sample, in log order;
    /// Sigma runs over these so that sandbox noise raises no hits.
    pub attributed_events: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no Sysmon events to build a report from")]
    NoEvents,
    #[error("no process matches the sample selector {0:?}")]
    SampleNotFound(SampleSelector),
}

/// Build the behaviour report of one detonation from its Sysmon events (in log order).
pub fn build_report(
    events: &[SysmonEvent],
    options: &ReportOptions,
) -> Result<BuiltReport, ReportError> {
    if events.is_empty() {
        return Err(ReportError::NoEvents);
    }
    let table = ProcessTable::build(events);
    let classes = classify(&table);
    // A clean run's processes, and the parents they name, are background.
    let baseline_processes: HashSet<String> = options
        .baseline
        .iter()
        .filter(|e| e.event_id == event_id::PROCESS_CREATE)
        .flat_map(|e| {
            [
                baseline_process_key(e.image(), e.command_line()),
                baseline_process_key(e.parent_image(), e.parent_command_line()),
            ]
        })
        .collect();
    let baseline_events: HashSet<(u16, String, String)> = options
        .baseline
        .iter()
        .filter(|e| e.event_id != event_id::PROCESS_CREATE)
        .map(attributes::baseline_key)
        .collect();
    let ctx = Context {
        events,
        table: &table,
        classes: &classes,
        baseline_processes: &baseline_processes,
    };
    let attribution = attribution::attribute(&ctx, &options.sample)?;
    let artefacts = SandboxArtefacts::collect(events, &table, &classes);
    let environment = Environment {
        sample_dir: sample_dir(&table, &attribution.roots),
        user_sid: user_sid(events, &table, &attribution),
    };
    let normaliser = Normaliser::new(environment);
    let inputs = attributes::Inputs {
        events,
        table: &table,
        attribution: &attribution,
        artefacts: &artefacts,
        normaliser: &normaliser,
        baseline: &baseline_events,
    };
    let mut attrs = attributes::build(&inputs);
    attrs.sandbox_name = SYSINTERNALS_SANDBOX.to_string();
    attrs.has_evtx = true;
    attrs.analysis_date = events.iter().map(logged_second).min();
    let sample_image = attribution
        .roots
        .first()
        .and_then(|&r| table.procs[r].image.as_deref())
        .map(|i| normaliser.path(i));
    attrs.behash = behash::behash(&attrs, sample_image.as_deref());

    let mut notes = attribution.notes.clone();
    if !options.baseline.is_empty() {
        notes.push(format!(
            "baseline: {} events of a clean run subtracted by (event id, image, target)",
            options.baseline.len()
        ));
    }
    // Roots a system launcher started are usually Windows' own programs (cmd.exe run over
    // WMI): their hash names no sample, and would file every such log under cmd.exe.
    let root_sha256 = attribution
        .roots
        .iter()
        .filter(|&&r| {
            attribution.launcher.is_none()
                || table.procs[r]
                    .image
                    .as_deref()
                    .is_some_and(|i| !is_windows_path(i))
        })
        .find_map(|&r| table.procs[r].sha256.clone());
    let (sha256, origin) = match (options.sha256.as_deref(), root_sha256) {
        (Some(given), _) => (given.trim().to_ascii_lowercase(), Sha256Origin::Given),
        (None, Some(root)) => {
            notes.push(format!(
                "report id uses the root process's SHA-256 from its Hashes: {root}"
            ));
            (root, Sha256Origin::RootHashes)
        }
        (None, None) if attribution.launcher.is_some() => {
            let derived = derived_sha256(events, &table, &attribution);
            notes.push(format!(
                "no SHA-256 known for the sample (none given; the roots a system launcher started are Windows programs, not a sample file): the report id uses {derived}, a SHA-256 of the log's identity (computer and root ProcessGuids), not of a file"
            ));
            (derived, Sha256Origin::Derived)
        }
        (None, None) => {
            let derived = derived_sha256(events, &table, &attribution);
            notes.push(format!(
                "no SHA-256 known for the sample (none given, none in the root's Hashes): the report id uses {derived}, a SHA-256 of the log's identity (computer and root ProcessGuids), not of a file"
            ));
            (derived, Sha256Origin::Derived)
        }
    };
    let attributed_events: Vec<usize> = (0..events.len())
        .filter(|&i| attribution.event_attributed(i, &table))
        .collect();
    Ok(BuiltReport {
        behaviour: FileBehaviour::new(&sha256, attrs),
        notes,
        sha256_origin: origin,
        attributed_events,
    })
}

/// The folder the sample ran from, when it is not a Windows folder (a script's interpreter
/// lives in System32; then the first sample-location path of its command line counts).
/// A path in Windows' own folders (`%windir%`, `%programfiles%`).
fn is_windows_path(path: &str) -> bool {
    let key = attribution::compare_key(path);
    key.starts_with("%windir%") || key.starts_with("%programfiles")
}

fn sample_dir(table: &ProcessTable, roots: &[usize]) -> Option<String> {
    let root = &table.procs[*roots.first()?];
    let outside_windows = |path: &str| !is_windows_path(path);
    if let Some(image) = root.image.as_deref()
        && outside_windows(image)
        && let Some((dir, _)) = image.rsplit_once('\\')
    {
        return Some(dir.to_string());
    }
    let command = root.command_line.as_deref()?;
    commands::split_args(command)
        .into_iter()
        .filter(|a| a.contains('\\') && outside_windows(a))
        .find_map(|a| {
            let lower = a.to_ascii_lowercase();
            let is_file = lower.rsplit('\\').next().is_some_and(|n| n.contains('.'));
            if is_file {
                a.rsplit_once('\\').map(|(d, _)| d.to_string())
            } else {
                None
            }
        })
}

/// The interactive user's SID: the first `HKU\S-1-5-21-…` the attributed events touch.
fn user_sid(
    events: &[SysmonEvent],
    table: &ProcessTable,
    attribution: &attribution::Attribution,
) -> Option<String> {
    events.iter().enumerate().find_map(|(i, e)| {
        let target = e.target_object()?;
        let rest = target.strip_prefix(r"HKU\")?;
        let sid = rest.split('\\').next()?;
        (sid.starts_with("S-1-5-21-")
            && !sid.ends_with("_Classes")
            && attribution.event_attributed(i, table))
        .then(|| sid.to_string())
    })
}

fn derived_sha256(
    events: &[SysmonEvent],
    table: &ProcessTable,
    attribution: &attribution::Attribution,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"sandscope-sysmon-log\n");
    if let Some(first) = events.first() {
        hasher.update(first.computer.as_bytes());
        hasher.update(b"\n");
    }
    let roots: Vec<usize> = if attribution.everything {
        (0..table.procs.len())
            .filter(|&i| table.procs[i].created.is_some())
            .collect()
    } else {
        attribution.roots.clone()
    };
    for r in roots {
        if let Some(g) = &table.procs[r].guid {
            hasher.update(g.as_str().as_bytes());
            hasher.update(b"\n");
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// When an event was logged, in Unix seconds: `TimeCreated`, or the event's own time when the
/// record carries none (or a zero FILETIME, which reads as 1601).
pub(crate) fn logged_second(event: &SysmonEvent) -> i64 {
    const YEAR_1990: i64 = 631_152_000;
    match event.time_created {
        Some(t) if t.as_second() >= YEAR_1990 => t.as_second(),
        _ => event.time.as_second(),
    }
}
