//! The views over all of a sample's sandbox reports: the merged behaviour summary
//! (`GET /files/{id}/behaviour_summary`) and the per-sandbox MITRE ATT&CK trees
//! (`GET /files/{id}/behaviour_mitre_trees`).
//!
//! Merging follows what VirusTotal's summary shows, attribute by attribute as the attribute
//! table says ([`crate::Attribute::merge`]): every list is the union of the reports'
//! lists in report order, de-duplicated on a comparison key (case-insensitive, surrounding
//! whitespace ignored — producers have already normalised paths and keys), tags and verdicts
//! are unions, `verdict_confidence` is the highest. Per-run metadata (`sandbox_name`,
//! `analysis_date`, `behash`, `has_*`, `last_modification_date`) is left out, as VirusTotal
//! does. Process trees are not merged — pids are per run — so `processes_tree` is the
//! concatenation of every report's roots (VirusTotal's observed behaviour), and the
//! Sandscope extension `processes_tree_by_sandbox` keeps each sandbox's roots apart.

use crate::{
    ATTRIBUTES, BehaviourAttributes, DnsLookup, FileBehaviour, Merge, MitreAttackTechnique,
    ProcessNode, SigmaAnalysisResult, SigmaAnalysisStats,
};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The merged behaviour of one sample across its sandbox reports: the `data` of
/// `/files/{id}/behaviour_summary`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BehaviourSummary {
    /// The merged attributes; the per-run metadata fields are unset and not serialised.
    pub attributes: BehaviourAttributes,
    /// Sandscope extension: each sandbox's process tree roots, keyed by sandbox name.
    pub processes_tree_by_sandbox: BTreeMap<String, Vec<ProcessNode>>,
}

impl Serialize for BehaviourSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value =
            serde_json::to_value(&self.attributes).map_err(serde::ser::Error::custom)?;
        if let serde_json::Value::Object(map) = &mut value {
            for attribute in ATTRIBUTES.iter().filter(|a| a.merge == Merge::PerRun) {
                map.remove(attribute.name);
            }
            if !self.processes_tree_by_sandbox.is_empty() {
                let trees = serde_json::to_value(&self.processes_tree_by_sandbox)
                    .map_err(serde::ser::Error::custom)?;
                map.insert("processes_tree_by_sandbox".to_string(), trees);
            }
        }
        value.serialize(serializer)
    }
}

/// Comparison key of a string: case and surrounding whitespace do not make two items differ.
pub(crate) fn text_key(text: &str) -> String {
    text.trim().to_lowercase()
}

/// Append the items of `from` whose key is not yet in `into`.
pub(crate) fn union_by<T: Clone, K: Eq + std::hash::Hash>(
    into: &mut Vec<T>,
    from: &[T],
    key: impl Fn(&T) -> K,
) {
    let mut seen: HashSet<K> = into.iter().map(&key).collect();
    for item in from {
        if seen.insert(key(item)) {
            into.push(item.clone());
        }
    }
}

pub(crate) fn union_strings(into: &mut Vec<String>, from: &[String]) {
    union_by(into, from, |s| text_key(s));
}

impl BehaviourSummary {
    /// Merge the reports of one sample (in the order given: the first report's items come
    /// first).
    pub fn merge(reports: &[FileBehaviour]) -> Self {
        let mut merged = BehaviourAttributes::default();
        let mut by_sandbox: BTreeMap<String, Vec<ProcessNode>> = BTreeMap::new();
        for report in reports {
            let a = &report.attributes;
            for attribute in ATTRIBUTES {
                attribute.merge_into(&mut merged, a);
            }
            if !a.processes_tree.is_empty() {
                by_sandbox
                    .entry(a.sandbox_name.clone())
                    .or_default()
                    .extend(a.processes_tree.iter().cloned());
            }
        }
        merged.sigma_analysis_stats = sigma_stats(&merged.sigma_analysis_results);
        BehaviourSummary {
            attributes: merged,
            processes_tree_by_sandbox: by_sandbox,
        }
    }
}

/// One lookup per host name; the answers of every report are unioned.
pub(crate) fn merge_dns(into: &mut Vec<DnsLookup>, from: &[DnsLookup]) {
    for lookup in from {
        match into
            .iter_mut()
            .find(|d| text_key(&d.hostname) == text_key(&lookup.hostname))
        {
            Some(existing) => {
                union_strings(&mut existing.resolved_ips, &lookup.resolved_ips);
                union_strings(&mut existing.cnames, &lookup.cnames);
            }
            None => into.push(lookup.clone()),
        }
    }
}

/// Counts per level of the merged (de-duplicated) Sigma hits; summing the reports' own
/// counts would count a rule that fired in two sandboxes twice.
fn sigma_stats(results: &[SigmaAnalysisResult]) -> Option<SigmaAnalysisStats> {
    if results.is_empty() {
        return None;
    }
    let mut stats = SigmaAnalysisStats::default();
    for result in results {
        match result.rule_level.to_ascii_lowercase().as_str() {
            "critical" => stats.critical += 1,
            "high" => stats.high += 1,
            "medium" => stats.medium += 1,
            "low" => stats.low += 1,
            _ => {}
        }
    }
    Some(stats)
}

// ---------------------------------------------------------------------------------------
// MITRE ATT&CK trees
// ---------------------------------------------------------------------------------------

/// `data` of `/files/{id}/behaviour_mitre_trees`: one tree per sandbox name.
pub type MitreTrees = BTreeMap<String, SandboxMitreTree>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxMitreTree {
    /// Empty for a sandbox whose report has no ATT&CK technique.
    pub tactics: Vec<MitreTactic>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MitreTactic {
    /// `TA0003`.
    pub id: String,
    pub name: String,
    pub description: String,
    pub link: String,
    pub techniques: Vec<MitreTechnique>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MitreTechnique {
    /// `T1053.005`.
    pub id: String,
    /// The ATT&CK name where Sandscope's table has it, else the id.
    pub name: String,
    pub description: String,
    pub link: String,
    pub signatures: Vec<MitreSignature>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MitreSignature {
    /// `INFO`, `LOW`, `MEDIUM`, `HIGH` or `UNKNOWN` (the tree endpoint drops the
    /// `IMPACT_SEVERITY_` prefix of the behaviour JSON).
    pub severity: String,
    pub description: String,
}

/// The tactic techniques with no known tactic are filed under, so no hit is dropped from
/// the tree; it has no ATT&CK id.
pub const UNMAPPED_TACTIC_NAME: &str = "Unmapped";

/// Enterprise ATT&CK tactics: (Sigma tag, id, name, ATT&CK's one-line description), in
/// kill-chain order.
const TACTICS: &[(&str, &str, &str, &str)] = &[
    (
        "reconnaissance",
        "TA0043",
        "Reconnaissance",
        "The adversary is trying to gather information they can use to plan future operations.",
    ),
    (
        "resource-development",
        "TA0042",
        "Resource Development",
        "The adversary is trying to establish resources they can use to support operations.",
    ),
    (
        "initial-access",
        "TA0001",
        "Initial Access",
        "The adversary is trying to get into your network.",
    ),
    (
        "execution",
        "TA0002",
        "Execution",
        "The adversary is trying to run malicious code.",
    ),
    (
        "persistence",
        "TA0003",
        "Persistence",
        "The adversary is trying to maintain their foothold.",
    ),
    (
        "privilege-escalation",
        "TA0004",
        "Privilege Escalation",
        "The adversary is trying to gain higher-level permissions.",
    ),
    (
        "defense-evasion",
        "TA0005",
        "Defense Evasion",
        "The adversary is trying to avoid being detected.",
    ),
    (
        "credential-access",
        "TA0006",
        "Credential Access",
        "The adversary is trying to steal account names and passwords.",
    ),
    (
        "discovery",
        "TA0007",
        "Discovery",
        "The adversary is trying to figure out your environment.",
    ),
    (
        "lateral-movement",
        "TA0008",
        "Lateral Movement",
        "The adversary is trying to move through your environment.",
    ),
    (
        "collection",
        "TA0009",
        "Collection",
        "The adversary is trying to gather data of interest to their goal.",
    ),
    (
        "command-and-control",
        "TA0011",
        "Command and Control",
        "The adversary is trying to communicate with compromised systems to control them.",
    ),
    (
        "exfiltration",
        "TA0010",
        "Exfiltration",
        "The adversary is trying to steal data.",
    ),
    (
        "impact",
        "TA0040",
        "Impact",
        "The adversary is trying to manipulate, interrupt, or destroy your systems and data.",
    ),
];

/// Technique → tactics, generated from the `tags:` of SigmaHQ's `rules/windows` (the rule for
/// building it is in the file's header), so every technique a Sigma hit can report is placed.
const SIGMA_TECHNIQUE_TACTICS: &str = include_str!("attack_tactics.tsv");

/// Techniques CAPE signatures report that no SigmaHQ Windows rule tags: T1614 (System
/// Location Discovery) and T1060, ATT&CK v6's Registry Run Keys, which CAPE still emits.
const EXTRA_TECHNIQUE_TACTICS: &[(&str, &[&str])] =
    &[("T1614", &["discovery"]), ("T1060", &["persistence"])];

/// ATT&CK names of frequent techniques; others are shown by id.
const TECHNIQUE_NAMES: &[(&str, &str)] = &[
    ("T1003", "OS Credential Dumping"),
    ("T1003.001", "LSASS Memory"),
    ("T1012", "Query Registry"),
    ("T1016", "System Network Configuration Discovery"),
    ("T1018", "Remote System Discovery"),
    ("T1021.001", "Remote Desktop Protocol"),
    ("T1021.002", "SMB/Windows Admin Shares"),
    ("T1027", "Obfuscated Files or Information"),
    ("T1033", "System Owner/User Discovery"),
    ("T1036", "Masquerading"),
    ("T1047", "Windows Management Instrumentation"),
    ("T1053", "Scheduled Task/Job"),
    ("T1053.005", "Scheduled Task"),
    ("T1055", "Process Injection"),
    ("T1057", "Process Discovery"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1059.001", "PowerShell"),
    ("T1059.003", "Windows Command Shell"),
    ("T1059.005", "Visual Basic"),
    ("T1059.007", "JavaScript"),
    ("T1060", "Registry Run Keys / Startup Folder"),
    ("T1070.001", "Clear Windows Event Logs"),
    ("T1070.004", "File Deletion"),
    ("T1071.004", "DNS"),
    ("T1082", "System Information Discovery"),
    ("T1083", "File and Directory Discovery"),
    ("T1087", "Account Discovery"),
    ("T1105", "Ingress Tool Transfer"),
    ("T1112", "Modify Registry"),
    ("T1134", "Access Token Manipulation"),
    ("T1140", "Deobfuscate/Decode Files or Information"),
    ("T1197", "BITS Jobs"),
    ("T1202", "Indirect Command Execution"),
    ("T1218", "System Binary Proxy Execution"),
    ("T1218.005", "Mshta"),
    ("T1218.010", "Regsvr32"),
    ("T1218.011", "Rundll32"),
    ("T1486", "Data Encrypted for Impact"),
    ("T1490", "Inhibit System Recovery"),
    ("T1543.003", "Windows Service"),
    (
        "T1546.003",
        "Windows Management Instrumentation Event Subscription",
    ),
    ("T1547", "Boot or Logon Autostart Execution"),
    ("T1547.001", "Registry Run Keys / Startup Folder"),
    ("T1548.002", "Bypass User Account Control"),
    ("T1562.001", "Disable or Modify Tools"),
    ("T1569.002", "Service Execution"),
    ("T1614", "System Location Discovery"),
];

/// The tactic tags of a technique: its own row, else its parent technique's.
pub fn technique_tactics(technique: &str) -> Vec<&'static str> {
    let wanted = technique.trim().to_ascii_uppercase();
    let lookup = |id: &str| -> Option<Vec<&'static str>> {
        if let Some((_, tactics)) = EXTRA_TECHNIQUE_TACTICS.iter().find(|(t, _)| *t == id) {
            return Some(tactics.to_vec());
        }
        SIGMA_TECHNIQUE_TACTICS
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('\t'))
            .find(|(t, _)| *t == id)
            .map(|(_, tactics)| tactics.split(',').collect())
    };
    lookup(&wanted)
        .or_else(|| {
            wanted
                .split_once('.')
                .and_then(|(parent, _)| lookup(parent))
        })
        .unwrap_or_default()
}

fn technique_link(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        id.replace('.', "/")
    )
}

fn bare_severity(severity: &str) -> String {
    let bare = severity.trim().trim_start_matches("IMPACT_SEVERITY_");
    if bare.is_empty() {
        "UNKNOWN".to_string()
    } else {
        bare.to_ascii_uppercase()
    }
}

/// The ATT&CK tree of every report, keyed by sandbox name (reports of one sandbox are merged).
/// A sandbox without techniques is present with no tactics, as VirusTotal shows it.
pub fn behaviour_mitre_trees(reports: &[FileBehaviour]) -> MitreTrees {
    let mut techniques_by_sandbox: BTreeMap<String, Vec<&MitreAttackTechnique>> = BTreeMap::new();
    for report in reports {
        techniques_by_sandbox
            .entry(report.attributes.sandbox_name.clone())
            .or_default()
            .extend(report.attributes.mitre_attack_techniques.iter());
    }
    techniques_by_sandbox
        .into_iter()
        .map(|(sandbox, techniques)| (sandbox, mitre_tree(&techniques)))
        .collect()
}

fn mitre_tree(hits: &[&MitreAttackTechnique]) -> SandboxMitreTree {
    // tactic index (TACTICS, or TACTICS.len() for unmapped) → technique id → signatures.
    let mut grouped: BTreeMap<usize, Vec<(String, Vec<MitreSignature>)>> = BTreeMap::new();
    let mut index: HashMap<(usize, String), usize> = HashMap::new();
    for hit in hits {
        let id = hit.id.trim().to_ascii_uppercase();
        if id.is_empty() {
            continue;
        }
        let signature = MitreSignature {
            severity: bare_severity(&hit.severity),
            description: hit.signature_description.clone(),
        };
        let mut tactic_indexes: Vec<usize> = technique_tactics(&id)
            .iter()
            .filter_map(|tag| TACTICS.iter().position(|(t, ..)| t == tag))
            .collect();
        if tactic_indexes.is_empty() {
            tactic_indexes.push(TACTICS.len());
        }
        for tactic in tactic_indexes {
            let techniques = grouped.entry(tactic).or_default();
            let slot = *index.entry((tactic, id.clone())).or_insert_with(|| {
                techniques.push((id.clone(), Vec::new()));
                techniques.len() - 1
            });
            let signatures = &mut techniques[slot].1;
            if !signatures.contains(&signature) {
                signatures.push(signature.clone());
            }
        }
    }
    let tactics = grouped
        .into_iter()
        .map(|(tactic, techniques)| {
            let (id, name, description, link) = match TACTICS.get(tactic) {
                Some((_, id, name, description)) => (
                    id.to_string(),
                    name.to_string(),
                    description.to_string(),
                    format!("https://attack.mitre.org/tactics/{id}/"),
                ),
                None => (
                    String::new(),
                    UNMAPPED_TACTIC_NAME.to_string(),
                    "Techniques Sandscope's ATT&CK table has no tactic for.".to_string(),
                    String::new(),
                ),
            };
            MitreTactic {
                id,
                name,
                description,
                link,
                techniques: techniques
                    .into_iter()
                    .map(|(id, signatures)| MitreTechnique {
                        name: TECHNIQUE_NAMES
                            .iter()
                            .find(|(t, _)| *t == id)
                            .map(|(_, n)| n.to_string())
                            .unwrap_or_else(|| id.clone()),
                        description: String::new(),
                        link: technique_link(&id),
                        id,
                        signatures,
                    })
                    .collect(),
            }
        })
        .collect();
    SandboxMitreTree { tactics }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DroppedFile, IpTraffic, MitreAttackTechnique};

    fn report(sandbox: &str, attributes: BehaviourAttributes) -> FileBehaviour {
        FileBehaviour::new(
            "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2",
            BehaviourAttributes {
                sandbox_name: sandbox.to_string(),
                ..attributes
            },
        )
    }

    #[test]
    fn technique_table_has_sigma_and_cape_techniques() {
        assert_eq!(
            technique_tactics("t1053.005"),
            vec!["execution", "persistence", "privilege-escalation"]
        );
        assert_eq!(
            technique_tactics("T1547.001"),
            vec!["persistence", "privilege-escalation"]
        );
        assert_eq!(technique_tactics("T1614"), vec!["discovery"]);
        // A sub-technique absent from the table falls back to its parent.
        assert_eq!(technique_tactics("T1614.001"), vec!["discovery"]);
        assert!(technique_tactics("T1627").is_empty());
    }

    #[test]
    fn merge_unions_case_insensitively_and_keeps_trees_per_sandbox() {
        let sysmon = report(
            "Microsoft Sysinternals",
            BehaviourAttributes {
                analysis_date: Some(1),
                has_evtx: true,
                command_executions: vec![r#""%SAMPLEPATH%\etw-dns-app.exe" "#.into()],
                dns_lookups: vec![DnsLookup {
                    hostname: "WWW.microsoft.com".into(),
                    resolved_ips: vec!["169.254.128.1".into()],
                    cnames: vec![],
                }],
                processes_tree: vec![ProcessNode {
                    process_id: "{a}".into(),
                    name: "x".into(),
                    ..Default::default()
                }],
                verdict_confidence: Some(40),
                ..Default::default()
            },
        );
        let cape = report(
            "CAPE Sandbox",
            BehaviourAttributes {
                command_executions: vec![r#""%samplepath%\ETW-DNS-APP.exe" "#.into()],
                dns_lookups: vec![
                    DnsLookup {
                        hostname: "www.microsoft.com".into(),
                        resolved_ips: vec!["169.254.128.1".into(), "10.0.0.1".into()],
                        cnames: vec![],
                    },
                    DnsLookup {
                        hostname: "crl.microsoft.com".into(),
                        ..Default::default()
                    },
                ],
                ip_traffic: vec![IpTraffic {
                    destination_ip: "169.254.128.1".into(),
                    destination_port: Some(53),
                    transport_layer_protocol: Some("UDP".into()),
                }],
                files_dropped: vec![DroppedFile {
                    path: r"%SAMPLEPATH%\app.log".into(),
                    sha256: Some("d15d".into()),
                    file_type: None,
                }],
                processes_tree: vec![ProcessNode {
                    process_id: "2500".into(),
                    name: "y".into(),
                    ..Default::default()
                }],
                tags: vec!["DETECT_DEBUG_ENVIRONMENT".into()],
                verdict_confidence: Some(70),
                ..Default::default()
            },
        );
        let summary = BehaviourSummary::merge(&[sysmon, cape]);
        let a = &summary.attributes;
        assert_eq!(a.command_executions.len(), 1);
        assert_eq!(a.dns_lookups.len(), 2);
        assert_eq!(
            a.dns_lookups[0].resolved_ips,
            vec!["169.254.128.1", "10.0.0.1"]
        );
        assert_eq!(a.ip_traffic.len(), 1);
        assert_eq!(a.files_dropped.len(), 1);
        assert_eq!(a.verdict_confidence, Some(70));
        assert_eq!(a.processes_tree.len(), 2);
        assert_eq!(summary.processes_tree_by_sandbox.len(), 2);
        assert_eq!(
            summary.processes_tree_by_sandbox["CAPE Sandbox"][0].process_id,
            "2500"
        );

        let json = serde_json::to_value(&summary).unwrap();
        for attribute in ATTRIBUTES.iter().filter(|a| a.merge == Merge::PerRun) {
            let key = attribute.name;
            assert!(json.get(key).is_none(), "{key} must not be in a summary");
        }
        assert_eq!(
            json["tags"],
            serde_json::json!(["DETECT_DEBUG_ENVIRONMENT"])
        );
        assert!(json["processes_tree_by_sandbox"]["Microsoft Sysinternals"].is_array());
    }

    #[test]
    fn mitre_trees_group_techniques_under_tactics() {
        let technique = |id: &str, description: &str, severity: &str| MitreAttackTechnique {
            id: id.into(),
            signature_description: description.into(),
            severity: severity.into(),
            refs: vec![],
        };
        let cape = report(
            "CAPE Sandbox",
            BehaviourAttributes {
                mitre_attack_techniques: vec![
                    technique(
                        "T1547.001",
                        "Installs itself for autorun",
                        "IMPACT_SEVERITY_HIGH",
                    ),
                    technique(
                        "T1614",
                        "Queries the computer locale",
                        "IMPACT_SEVERITY_LOW",
                    ),
                    technique(
                        "T1627",
                        "Queries the computer locale",
                        "IMPACT_SEVERITY_LOW",
                    ),
                ],
                ..Default::default()
            },
        );
        let sysmon = report("Microsoft Sysinternals", BehaviourAttributes::default());
        let trees = behaviour_mitre_trees(&[cape, sysmon]);
        assert_eq!(trees["Microsoft Sysinternals"].tactics, vec![]);
        let tactics: Vec<(&str, Vec<&str>)> = trees["CAPE Sandbox"]
            .tactics
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.techniques.iter().map(|x| x.id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            tactics,
            vec![
                ("Persistence", vec!["T1547.001"]),
                ("Privilege Escalation", vec!["T1547.001"]),
                ("Discovery", vec!["T1614"]),
                ("Unmapped", vec!["T1627"]),
            ]
        );
        let persistence = &trees["CAPE Sandbox"].tactics[0];
        assert_eq!(persistence.id, "TA0003");
        assert_eq!(
            persistence.techniques[0].name,
            "Registry Run Keys / Startup Folder"
        );
        assert_eq!(
            persistence.techniques[0].link,
            "https://attack.mitre.org/techniques/T1547/001/"
        );
        assert_eq!(persistence.techniques[0].signatures[0].severity, "HIGH");
        let json = serde_json::to_value(&trees).unwrap();
        assert_eq!(
            json["Microsoft Sysinternals"],
            serde_json::json!({"tactics": []})
        );
    }
}
