//! Shared helpers for the report tests: vendored data, reading.
#![allow(dead_code)]

use sandscope_event::SysmonEvent;
use sandscope_model::{FileBehaviour, ProcessNode};
use sandscope_report::{BuiltReport, ReportOptions, SampleSelector, build_report};
use std::path::{Path, PathBuf};

pub const MSHTA: &str = "sbousseaden_EVTX-ATTACK-SAMPLES/Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx";
pub const RUNDLL_SCHTASK: &str =
    "sbousseaden_EVTX-ATTACK-SAMPLES/AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx";
pub const PSEXEC: &str = "mdecrevoisier_EVTX-to-MITRE-Attack/EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx";
pub const FLASH: &str = "sbousseaden_EVTX-ATTACK-SAMPLES/AutomatedTestingTools/Malware/DE_timestomp_and_dll_sideloading_and_RunPersist.evtx";
pub const APT10: &str = "sbousseaden_EVTX-ATTACK-SAMPLES/Defense Evasion/apt10_jjs_sideloading_prochollowing_persist_as_service_sysmon_1_7_8_13.evtx";
pub const CAPE_BITS: &str = "cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples/9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788/Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx";

/// Impacket wmiexec: three `cmd.exe` trees WmiPrvSE started within 0.2 s, the last runs whoami.
pub const WMIEXEC: &str =
    "sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx";
/// Metasploit psexec over SMB: a service registered remotely, run by services.exe.
pub const PSEXEC_SMB: &str =
    "sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx";

pub const ALL_VENDORED: &[&str] = &[
    MSHTA,
    RUNDLL_SCHTASK,
    PSEXEC,
    FLASH,
    APT10,
    CAPE_BITS,
    WMIEXEC,
    PSEXEC_SMB,
];

pub fn vendored(relative: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data")).join(relative)
}

pub fn read(path: &Path) -> Vec<SysmonEvent> {
    let output = sandscope_read::read_all(path).expect("vendored log reads");
    assert!(output.warnings.is_empty(), "{:?}", output.warnings);
    output.events
}

pub fn report(relative: &str, sample: SampleSelector) -> BuiltReport {
    let events = read(&vendored(relative));
    build_report(
        &events,
        &ReportOptions {
            sample,
            ..Default::default()
        },
    )
    .expect("report builds")
}

pub fn json(behaviour: &FileBehaviour) -> String {
    serde_json::to_string_pretty(behaviour).expect("serialises")
}

/// `pid name` chains from each root to each leaf, for readable assertions.
pub fn chains(tree: &[ProcessNode]) -> Vec<Vec<String>> {
    fn walk(node: &ProcessNode, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        prefix.push(node.process_id.clone());
        if node.children.is_empty() {
            out.push(prefix.clone());
        }
        for child in &node.children {
            walk(child, prefix, out);
        }
        prefix.pop();
    }
    let mut out = Vec::new();
    for root in tree {
        walk(root, &mut Vec::new(), &mut out);
    }
    out
}

/// Every node of the forest, depth first.
pub fn nodes(tree: &[ProcessNode]) -> Vec<&ProcessNode> {
    let mut out = Vec::new();
    let mut stack: Vec<&ProcessNode> = tree.iter().rev().collect();
    while let Some(node) = stack.pop() {
        out.push(node);
        stack.extend(node.children.iter().rev());
    }
    out
}

pub fn find<'a>(tree: &'a [ProcessNode], pid: &str) -> &'a ProcessNode {
    nodes(tree)
        .into_iter()
        .find(|n| n.process_id == pid)
        .unwrap_or_else(|| panic!("no process {pid} in the tree"))
}
