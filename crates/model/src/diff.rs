//! What two behaviour reports saw differently: per attribute, the items only one of them has
//! and the items both have. Two sandboxes on one sample show each sandbox's blind spots; two
//! samples in one sandbox show what a variant changed.
//!
//! What is compared, and on what, is each attribute's entry in the attribute table
//! ([`crate::Attribute::compared_on`]): strings case-insensitively (surrounding whitespace
//! ignored), object items on their identity: a DNS lookup on its host name, traffic on
//! address/port/protocol, a dropped file on its SHA-256 (its path when it has none), a
//! registry write on its key, an ATT&CK hit on its technique id, a Sigma hit on its rule.
//! Process trees are compared as the set of their node names, since pids differ per run.

use crate::{ATTRIBUTES, BehaviourAttributes, DiffItem, FileBehaviour};
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

/// Every compared attribute as comparable items, in `file_behaviour` field order.
fn comparable(report: &BehaviourAttributes) -> Vec<(&'static str, Vec<DiffItem>)> {
    ATTRIBUTES
        .iter()
        .filter_map(|attribute| Some((attribute.name, attribute.diff_items(report)?)))
        .collect()
}

/// De-duplicate on key, keeping the first spelling.
fn unique(items: Vec<DiffItem>) -> Vec<DiffItem> {
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
