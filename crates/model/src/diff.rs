//! What two behaviour reports saw differently: per attribute, the items only one of them has
//! and the items both have. Two sandboxes on one sample show each sandbox's blind spots; two
//! samples in one sandbox show what a variant changed.
//!
//! Items are compared on the same keys as the summary merge (case and surrounding whitespace
//! ignored); object items on their identity: a DNS lookup on its host name, traffic on
//! address/port/protocol, a dropped file on its SHA-256 (its path when it has none), a
//! registry write on its key, an ATT&CK hit on its technique id, a Sigma hit on its rule.
//! Process trees are compared as the set of their node names, since pids differ per run.

use crate::summary::text_key;
use crate::{BehaviourAttributes, FileBehaviour, ProcessNode};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDiff {
    pub left: DiffSide,
    pub right: DiffSide,
    /// Attributes either report has, in `file_behaviour` field order.
    pub attributes: Vec<AttributeDiff>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSide {
    /// `<sha256>_<sandbox name>`.
    pub id: String,
    pub sandbox_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDiff {
    /// The `file_behaviour` attribute name (`dns_lookups`, …).
    pub attribute: String,
    pub only_left: Vec<String>,
    pub only_right: Vec<String>,
    /// Seen by both (shown as the left report spells it).
    pub both: Vec<String>,
}

impl ReportDiff {
    /// Whether the reports saw exactly the same things.
    pub fn is_identical(&self) -> bool {
        self.attributes
            .iter()
            .all(|a| a.only_left.is_empty() && a.only_right.is_empty())
    }
}

/// One comparable item: its comparison key and how it is shown.
type Item = (String, String);

fn strings(list: &[String]) -> Vec<Item> {
    list.iter().map(|s| (text_key(s), s.clone())).collect()
}

fn tree_names(nodes: &[ProcessNode], out: &mut Vec<Item>) {
    for node in nodes {
        out.push((text_key(&node.name), node.name.clone()));
        tree_names(&node.children, out);
    }
}

/// Every attribute as comparable items, in `file_behaviour` field order.
fn comparable(a: &BehaviourAttributes) -> Vec<(&'static str, Vec<Item>)> {
    let mut tree = Vec::new();
    tree_names(&a.processes_tree, &mut tree);
    vec![
        ("tags", strings(&a.tags)),
        ("verdicts", strings(&a.verdicts)),
        ("processes_tree", tree),
        ("processes_created", strings(&a.processes_created)),
        ("processes_terminated", strings(&a.processes_terminated)),
        ("processes_killed", strings(&a.processes_killed)),
        ("processes_injected", strings(&a.processes_injected)),
        ("command_executions", strings(&a.command_executions)),
        ("files_opened", strings(&a.files_opened)),
        ("files_written", strings(&a.files_written)),
        ("files_deleted", strings(&a.files_deleted)),
        (
            "files_attribute_changed",
            strings(&a.files_attribute_changed),
        ),
        (
            "files_dropped",
            a.files_dropped
                .iter()
                .map(|d| {
                    let key = d
                        .sha256
                        .as_deref()
                        .map(text_key)
                        .unwrap_or_else(|| text_key(&d.path));
                    let shown = match &d.sha256 {
                        Some(sha256) => format!("{} ({sha256})", d.path),
                        None => d.path.clone(),
                    };
                    (key, shown)
                })
                .collect(),
        ),
        (
            "files_copied",
            a.files_copied
                .iter()
                .map(|c| {
                    (
                        format!("{}\u{0}{}", text_key(&c.source), text_key(&c.destination)),
                        format!("{} -> {}", c.source, c.destination),
                    )
                })
                .collect(),
        ),
        ("registry_keys_opened", strings(&a.registry_keys_opened)),
        (
            "registry_keys_set",
            a.registry_keys_set
                .iter()
                .map(|s| {
                    let shown = match &s.value {
                        Some(value) => format!("{} = {value}", s.key),
                        None => s.key.clone(),
                    };
                    (text_key(&s.key), shown)
                })
                .collect(),
        ),
        ("registry_keys_deleted", strings(&a.registry_keys_deleted)),
        ("services_opened", strings(&a.services_opened)),
        ("services_created", strings(&a.services_created)),
        ("services_started", strings(&a.services_started)),
        ("services_stopped", strings(&a.services_stopped)),
        ("services_deleted", strings(&a.services_deleted)),
        ("mutexes_created", strings(&a.mutexes_created)),
        ("mutexes_opened", strings(&a.mutexes_opened)),
        ("modules_loaded", strings(&a.modules_loaded)),
        ("calls_highlighted", strings(&a.calls_highlighted)),
        (
            "dns_lookups",
            a.dns_lookups
                .iter()
                .map(|d| {
                    let answers: Vec<&str> = d
                        .resolved_ips
                        .iter()
                        .chain(&d.cnames)
                        .map(String::as_str)
                        .collect();
                    let shown = if answers.is_empty() {
                        d.hostname.clone()
                    } else {
                        format!("{} -> {}", d.hostname, answers.join(", "))
                    };
                    (text_key(&d.hostname), shown)
                })
                .collect(),
        ),
        (
            "ip_traffic",
            a.ip_traffic
                .iter()
                .map(|t| {
                    let shown = format!(
                        "{}{}{}",
                        t.destination_ip,
                        t.destination_port
                            .map(|p| format!(":{p}"))
                            .unwrap_or_default(),
                        t.transport_layer_protocol
                            .as_deref()
                            .map(|p| format!("/{p}"))
                            .unwrap_or_default()
                    );
                    (text_key(&shown), shown)
                })
                .collect(),
        ),
        (
            "http_conversations",
            a.http_conversations
                .iter()
                .map(|h| {
                    let shown = match &h.request_method {
                        Some(method) => format!("{method} {}", h.url),
                        None => h.url.clone(),
                    };
                    (text_key(&shown), shown)
                })
                .collect(),
        ),
        (
            "mitre_attack_techniques",
            a.mitre_attack_techniques
                .iter()
                .map(|t| {
                    (
                        text_key(&t.id),
                        format!("{} ({})", t.id, t.signature_description),
                    )
                })
                .collect(),
        ),
        (
            "signature_matches",
            a.signature_matches
                .iter()
                .map(|s| {
                    let shown = match &s.name {
                        Some(name) if !name.is_empty() => format!("{name}: {}", s.description),
                        _ => s.description.clone(),
                    };
                    (text_key(s.name.as_deref().unwrap_or(&s.description)), shown)
                })
                .collect(),
        ),
        (
            "sigma_analysis_results",
            a.sigma_analysis_results
                .iter()
                .map(|r| {
                    let key = if r.rule_id.is_empty() {
                        text_key(&r.rule_title)
                    } else {
                        text_key(&r.rule_id)
                    };
                    (key, format!("{} [{}]", r.rule_title, r.rule_level))
                })
                .collect(),
        ),
        (
            "scheduled_tasks_created",
            a.scheduled_tasks_created
                .iter()
                .map(|t| (text_key(&t.name), t.name.clone()))
                .collect(),
        ),
        ("named_pipes", strings(&a.named_pipes)),
        (
            "wmi_subscriptions",
            a.wmi_subscriptions
                .iter()
                .map(|w| {
                    let shown = format!("{} {}", w.kind, w.name);
                    (text_key(&shown), shown)
                })
                .collect(),
        ),
    ]
}

/// De-duplicate on key, keeping the first spelling.
fn unique(items: Vec<Item>) -> Vec<Item> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|(key, _)| seen.insert(key.clone()))
        .collect()
}

/// Compare two reports.
pub fn diff_reports(left: &FileBehaviour, right: &FileBehaviour) -> ReportDiff {
    let left_items = comparable(&left.attributes);
    let right_items = comparable(&right.attributes);
    let mut attributes = Vec::new();
    for ((name, left_list), (_, right_list)) in left_items.into_iter().zip(right_items) {
        let left_list = unique(left_list);
        let right_list = unique(right_list);
        if left_list.is_empty() && right_list.is_empty() {
            continue;
        }
        let right_keys: HashSet<&str> = right_list.iter().map(|(k, _)| k.as_str()).collect();
        let left_keys: HashSet<&str> = left_list.iter().map(|(k, _)| k.as_str()).collect();
        let mut diff = AttributeDiff {
            attribute: name.to_string(),
            ..Default::default()
        };
        for (key, shown) in &left_list {
            if right_keys.contains(key.as_str()) {
                diff.both.push(shown.clone());
            } else {
                diff.only_left.push(shown.clone());
            }
        }
        for (key, shown) in &right_list {
            if !left_keys.contains(key.as_str()) {
                diff.only_right.push(shown.clone());
            }
        }
        attributes.push(diff);
    }
    let side = |report: &FileBehaviour| DiffSide {
        id: report.id.clone(),
        sandbox_name: report.attributes.sandbox_name.clone(),
    };
    ReportDiff {
        left: side(left),
        right: side(right),
        attributes,
    }
}

/// The terminal form: `<` only in the left report, `>` only in the right, `=` in both.
impl fmt::Display for ReportDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "< {}", self.left.id)?;
        writeln!(f, "> {}", self.right.id)?;
        for attribute in &self.attributes {
            writeln!(
                f,
                "\n{} (only left {}, only right {}, both {})",
                attribute.attribute,
                attribute.only_left.len(),
                attribute.only_right.len(),
                attribute.both.len()
            )?;
            for item in &attribute.only_left {
                writeln!(f, "  < {item}")?;
            }
            for item in &attribute.only_right {
                writeln!(f, "  > {item}")?;
            }
            for item in &attribute.both {
                writeln!(f, "  = {item}")?;
            }
        }
        if self.is_identical() {
            writeln!(f, "\nthe reports saw the same behaviour")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DnsLookup, RegistrySet};

    #[test]
    fn diff_splits_each_attribute_three_ways() {
        let left = FileBehaviour::new(
            "aa",
            BehaviourAttributes {
                sandbox_name: "CAPE Sandbox".into(),
                dns_lookups: vec![
                    DnsLookup {
                        hostname: "crl.microsoft.com".into(),
                        ..Default::default()
                    },
                    DnsLookup {
                        hostname: "only-cape.example".into(),
                        ..Default::default()
                    },
                ],
                registry_keys_set: vec![RegistrySet {
                    key: r"HKCU\Run\x".into(),
                    value: Some("Hoi".into()),
                }],
                ..Default::default()
            },
        );
        let right = FileBehaviour::new(
            "aa",
            BehaviourAttributes {
                sandbox_name: "Microsoft Sysinternals".into(),
                dns_lookups: vec![DnsLookup {
                    hostname: "CRL.microsoft.com".into(),
                    resolved_ips: vec!["1.2.3.4".into()],
                    cnames: vec![],
                }],
                named_pipes: vec![r"\pipe\x".into()],
                ..Default::default()
            },
        );
        let diff = diff_reports(&left, &right);
        let names: Vec<&str> = diff
            .attributes
            .iter()
            .map(|a| a.attribute.as_str())
            .collect();
        assert_eq!(
            names,
            vec!["registry_keys_set", "dns_lookups", "named_pipes"]
        );
        let dns = &diff.attributes[1];
        assert_eq!(dns.both, vec!["crl.microsoft.com"]);
        assert_eq!(dns.only_left, vec!["only-cape.example"]);
        assert!(dns.only_right.is_empty());
        assert_eq!(diff.attributes[0].only_left, vec![r"HKCU\Run\x = Hoi"]);
        assert_eq!(diff.attributes[2].only_right, vec![r"\pipe\x"]);
        assert!(!diff.is_identical());
        let text = diff.to_string();
        assert!(text.contains("  < only-cape.example\n"), "{text}");
        assert!(text.contains("  = crl.microsoft.com\n"), "{text}");
        assert!(diff_reports(&left, &left).is_identical());
    }
}
