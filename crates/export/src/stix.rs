//! One STIX 2.1 bundle per sample: a `malware-analysis` per sandbox report (`product`,
//! `analysis_started`, `sample_ref`, `analysis_sco_refs`), the observables it saw (`file`,
//! `process`, `domain-name`, `ipv4-addr`/`ipv6-addr`, `network-traffic`,
//! `windows-registry-key`, `mutex`), an `attack-pattern` per ATT&CK technique and an
//! `indicator` (pattern type `sigma`) per Sigma rule that fired, linked by `relationship`s:
//! indicator `indicates` attack-pattern (the technique the rule's hit named), analysis
//! `related-to` the techniques and indicators of its report.
//!
//! Observable ids are STIX's deterministic UUIDv5s over the id-contributing properties (only
//! such properties are set, except `domain-name`'s `resolves_to_refs`, which is merged across
//! reports). Processes, SDOs, SROs and the bundle take name-derived UUIDs of version 4 (what
//! the specification and the validator's `--strict` ask for, without randomness). Times come
//! from the reports' `analysis_date`.
//!
//! Behaviour reports keep a Sigma hit's metadata, not the rule's YAML: an indicator's `pattern`
//! is a Sigma document holding the rule's title, id, level, author and description, which
//! names the rule in its source (`external_references`) for the detection logic.

use crate::dates;
use crate::ids::{name_v4, sco_id};
use crate::misp::{base_name, product_name};
use sandscope_model::{FileBehaviour, SigmaAnalysisResult, behaviour_mitre_trees};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Observables of the bundle, each once, in first-seen order.
#[derive(Default)]
struct Observables {
    order: Vec<String>,
    by_id: HashMap<String, Value>,
}

impl Observables {
    /// Add `object` (which has its `id`) and return the id; a second copy is merged into the
    /// first (only `resolves_to_refs` can differ).
    fn add(&mut self, object: Value) -> String {
        let id = object["id"].as_str().unwrap_or_default().to_string();
        match self.by_id.get_mut(&id) {
            Some(existing) => {
                if let Some(new_refs) = object.get("resolves_to_refs").and_then(Value::as_array) {
                    let refs = existing
                        .as_object_mut()
                        .map(|o| o.entry("resolves_to_refs").or_insert_with(|| json!([])));
                    if let Some(Value::Array(refs)) = refs {
                        for r in new_refs {
                            if !refs.contains(r) {
                                refs.push(r.clone());
                            }
                        }
                    }
                }
            }
            None => {
                self.order.push(id.clone());
                self.by_id.insert(id.clone(), object);
            }
        }
        id
    }

    fn into_values(mut self) -> Vec<Value> {
        self.order
            .iter()
            .filter_map(|id| self.by_id.remove(id))
            .collect()
    }
}

/// An observable: `type`, `spec_version`, the deterministic `id`, then its properties.
fn sco(kind: &str, contributing: Value, extra: Option<(&str, Value)>) -> Value {
    let id = sco_id(kind, &contributing);
    let mut object = Map::new();
    object.insert("type".into(), json!(kind));
    object.insert("spec_version".into(), json!("2.1"));
    object.insert("id".into(), json!(id));
    if let Value::Object(properties) = contributing {
        object.extend(properties);
    }
    if let Some((key, value)) = extra {
        object.insert(key.into(), value);
    }
    Value::Object(object)
}

fn ip_sco(address: &str) -> Option<Value> {
    let kind = match address.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => "ipv4-addr",
        IpAddr::V6(_) => "ipv6-addr",
    };
    Some(sco(kind, json!({"value": address.trim()}), None))
}

/// `HKLM\…` → `HKEY_LOCAL_MACHINE\…`: STIX spells hives out.
fn full_hive(key: &str) -> String {
    const HIVES: &[(&str, &str)] = &[
        ("HKLM", "HKEY_LOCAL_MACHINE"),
        ("HKCU", "HKEY_CURRENT_USER"),
        ("HKU", "HKEY_USERS"),
        ("HKCR", "HKEY_CLASSES_ROOT"),
        ("HKCC", "HKEY_CURRENT_CONFIG"),
    ];
    let (head, rest) = key.split_once('\\').unwrap_or((key, ""));
    for (short, long) in HIVES {
        if head.eq_ignore_ascii_case(short) {
            return if rest.is_empty() {
                long.to_string()
            } else {
                format!("{long}\\{rest}")
            };
        }
    }
    key.to_string()
}

fn sdo_header(kind: &str, id_name: &str, time: &str) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("type".into(), json!(kind));
    object.insert("spec_version".into(), json!("2.1"));
    object.insert("id".into(), json!(format!("{kind}--{}", name_v4(id_name))));
    object.insert("created".into(), json!(time));
    object.insert("modified".into(), json!(time));
    object
}

fn relationship(source: &str, kind: &str, target: &str, time: &str) -> Value {
    let mut object = sdo_header(
        "relationship",
        &format!("stix-relationship:{source}:{kind}:{target}"),
        time,
    );
    object.insert("relationship_type".into(), json!(kind));
    object.insert("source_ref".into(), json!(source));
    object.insert("target_ref".into(), json!(target));
    Value::Object(object)
}

/// The STIX 2.1 bundle of one sample's reports. Reports are taken in id order.
pub fn stix_bundle(sha256: &str, reports: &[FileBehaviour]) -> Value {
    let mut reports: Vec<&FileBehaviour> = reports.iter().collect();
    reports.sort_by(|a, b| a.id.cmp(&b.id));
    let owned: Vec<FileBehaviour> = reports.iter().map(|r| (*r).clone()).collect();
    let first_analysis = reports
        .iter()
        .filter_map(|r| r.attributes.analysis_date)
        .min()
        .unwrap_or(0);
    let bundle_time = dates::stix(first_analysis);

    let mut observables = Observables::default();
    let sample_ref = observables.add(sco("file", json!({"hashes": {"SHA-256": sha256}}), None));

    let technique_names = technique_names(&owned);
    let mut analyses: Vec<Value> = Vec::new();
    let mut attack_patterns: BTreeMap<String, Value> = BTreeMap::new();
    let mut indicators: BTreeMap<String, Value> = BTreeMap::new();
    let mut relationships: Vec<Value> = Vec::new();

    for report in &reports {
        let attributes = &report.attributes;
        let time = dates::stix(attributes.analysis_date.unwrap_or(first_analysis));
        let mut seen: Vec<String> = Vec::new();
        let mut note = |id: String| {
            if !seen.contains(&id) {
                seen.push(id);
            }
        };

        // The process tree, parents before children.
        let process_id = |path: &str| {
            format!(
                "process--{}",
                name_v4(&format!("stix-process:{}:{path}", report.id))
            )
        };
        for step in crate::process_tree::walk(&attributes.processes_tree) {
            let node = step.node;
            let id = process_id(&step.path);
            let mut object = Map::new();
            object.insert("type".into(), json!("process"));
            object.insert("spec_version".into(), json!("2.1"));
            object.insert("id".into(), json!(id));
            if let Ok(pid) = node.process_id.parse::<u64>() {
                object.insert("pid".into(), json!(pid));
            }
            if let (Some(start), Some(offset)) = (attributes.analysis_date, node.time_offset) {
                object.insert(
                    "created_time".into(),
                    json!(dates::stix(start.saturating_add(offset))),
                );
            }
            object.insert("command_line".into(), json!(node.name));
            if let Some(parent) = &step.parent {
                object.insert("parent_ref".into(), json!(process_id(parent)));
            }
            if !step.children.is_empty() {
                let children: Vec<Value> =
                    step.children.iter().map(|c| json!(process_id(c))).collect();
                object.insert("child_refs".into(), Value::Array(children));
            }
            note(observables.add(Value::Object(object)));
        }

        for dropped in &attributes.files_dropped {
            let name = base_name(&dropped.path);
            let mut contributing = Map::new();
            if let Some(hash) = dropped.sha256.as_deref().filter(|h| !h.is_empty()) {
                contributing.insert("hashes".into(), json!({"SHA-256": hash}));
            }
            if !name.is_empty() {
                contributing.insert("name".into(), json!(name));
            }
            if !contributing.is_empty() {
                note(observables.add(sco("file", Value::Object(contributing), None)));
            }
        }
        for lookup in &attributes.dns_lookups {
            let mut addresses = Vec::new();
            for ip in &lookup.resolved_ips {
                if let Some(object) = ip_sco(ip) {
                    let id = observables.add(object);
                    note(id.clone());
                    addresses.push(json!(id));
                }
            }
            // STIX's `domain-name` value is an (IDN) host name: a lookup of a name such as
            // `online_nat.online_nat` keeps its addresses but gets no `domain-name`.
            if !is_host_name(&lookup.hostname) {
                continue;
            }
            let extra = (!addresses.is_empty()).then(|| ("resolves_to_refs", json!(addresses)));
            note(observables.add(sco("domain-name", json!({"value": lookup.hostname}), extra)));
        }
        for traffic in &attributes.ip_traffic {
            let Some(address) = ip_sco(&traffic.destination_ip) else {
                continue;
            };
            let network = if address["type"] == "ipv6-addr" {
                "ipv6"
            } else {
                "ipv4"
            };
            let address_id = observables.add(address);
            note(address_id.clone());
            let mut protocols = vec![json!(network)];
            if let Some(protocol) = &traffic.transport_layer_protocol {
                protocols.push(json!(protocol.to_ascii_lowercase()));
            }
            let mut contributing = Map::new();
            contributing.insert("dst_ref".into(), json!(address_id));
            if let Some(port) = traffic.destination_port {
                contributing.insert("dst_port".into(), json!(port));
            }
            contributing.insert("protocols".into(), Value::Array(protocols));
            note(observables.add(sco("network-traffic", Value::Object(contributing), None)));
        }
        for set in &attributes.registry_keys_set {
            if set.key.is_empty() {
                continue;
            }
            // VirusTotal's `key` ends with the value's name.
            let full = full_hive(&set.key);
            let contributing = match full.rsplit_once('\\') {
                Some((key, name)) => {
                    let mut value = Map::new();
                    value.insert("name".into(), json!(name));
                    if let Some(data) = &set.value {
                        value.insert("data".into(), json!(data));
                    }
                    json!({"key": key, "values": [Value::Object(value)]})
                }
                None => json!({"key": full}),
            };
            note(observables.add(sco("windows-registry-key", contributing, None)));
        }
        for name in &attributes.mutexes_created {
            if !name.is_empty() {
                note(observables.add(sco("mutex", json!({"name": name}), None)));
            }
        }

        let mut analysis = sdo_header(
            "malware-analysis",
            &format!("stix-malware-analysis:{}", report.id),
            &time,
        );
        analysis.insert(
            "product".into(),
            json!(product_name(&attributes.sandbox_name)),
        );
        if let Some(start) = attributes.analysis_date {
            analysis.insert("analysis_started".into(), json!(dates::stix(start)));
        }
        analysis.insert("sample_ref".into(), json!(sample_ref));
        if seen.is_empty() {
            analysis.insert("result".into(), json!("unknown"));
        } else {
            analysis.insert("analysis_sco_refs".into(), json!(seen));
        }
        let analysis_id = analysis["id"].as_str().unwrap_or_default().to_string();
        analyses.push(Value::Object(analysis));

        let mut report_patterns: BTreeMap<String, String> = BTreeMap::new();
        for technique in &attributes.mitre_attack_techniques {
            if technique.id.is_empty() {
                continue;
            }
            let pattern = attack_patterns
                .entry(technique.id.clone())
                .or_insert_with(|| attack_pattern(&technique.id, &technique_names, &bundle_time));
            let id = pattern["id"].as_str().unwrap_or_default().to_string();
            if !report_patterns.values().any(|v| *v == id) {
                relationships.push(relationship(&analysis_id, "related-to", &id, &time));
            }
            report_patterns.insert(technique.signature_description.clone(), id);
        }
        let mut report_rules = Vec::new();
        for hit in &attributes.sigma_analysis_results {
            if report_rules.contains(&hit.rule_id) {
                continue;
            }
            report_rules.push(hit.rule_id.clone());
            let indicator = indicators
                .entry(hit.rule_id.clone())
                .or_insert_with(|| sigma_indicator(hit, &time));
            let id = indicator["id"].as_str().unwrap_or_default().to_string();
            relationships.push(relationship(&analysis_id, "related-to", &id, &time));
            if let Some(pattern) = report_patterns.get(&hit.rule_title) {
                relationships.push(relationship(&id, "indicates", pattern, &time));
            }
        }
    }

    let mut objects = analyses;
    objects.extend(attack_patterns.into_values());
    objects.extend(indicators.into_values());
    objects.extend(observables.into_values());
    // A rule may fire in two reports: one `indicates` per pair.
    let mut seen_relationships = std::collections::HashSet::new();
    objects.extend(
        relationships.into_iter().filter(|r| {
            seen_relationships.insert(r["id"].as_str().unwrap_or_default().to_string())
        }),
    );
    json!({
        "type": "bundle",
        "id": format!("bundle--{}", name_v4(&format!("stix-bundle:{sha256}"))),
        "objects": objects,
    })
}

/// A host name as the STIX schema's `idn-hostname` format accepts it: dot-separated labels of
/// letters, digits and inner hyphens, at most 63 characters each and 253 in all.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

fn technique_names(reports: &[FileBehaviour]) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for tree in behaviour_mitre_trees(reports).values() {
        for tactic in &tree.tactics {
            for technique in &tactic.techniques {
                names
                    .entry(technique.id.clone())
                    .or_insert_with(|| technique.name.clone());
            }
        }
    }
    names
}

fn attack_pattern(id: &str, names: &BTreeMap<String, String>, time: &str) -> Value {
    let mut object = sdo_header("attack-pattern", &format!("stix-attack-pattern:{id}"), time);
    object.insert(
        "name".into(),
        json!(names.get(id).cloned().unwrap_or_else(|| id.to_string())),
    );
    // No `url`: the validator asks for a hash of whatever a URL reference points at.
    object.insert(
        "external_references".into(),
        json!([{"source_name": "mitre-attack", "external_id": id}]),
    );
    Value::Object(object)
}

fn sigma_indicator(hit: &SigmaAnalysisResult, time: &str) -> Value {
    let mut object = sdo_header(
        "indicator",
        &format!("stix-indicator:sigma:{}", hit.rule_id),
        time,
    );
    object.insert("name".into(), json!(hit.rule_title));
    let description = if hit.rule_description.is_empty() {
        format!("Sigma rule {} ({})", hit.rule_id, hit.rule_level)
    } else {
        hit.rule_description.clone()
    };
    object.insert("description".into(), json!(description));
    object.insert("pattern".into(), json!(sigma_reference(hit)));
    object.insert("pattern_type".into(), json!("sigma"));
    object.insert("valid_from".into(), json!(time));
    let mut reference = Map::new();
    reference.insert(
        "source_name".into(),
        json!(if hit.rule_source.is_empty() {
            "sigma"
        } else {
            hit.rule_source.as_str()
        }),
    );
    reference.insert("external_id".into(), json!(hit.rule_id));
    object.insert(
        "external_references".into(),
        json!([Value::Object(reference)]),
    );
    Value::Object(object)
}

/// The Sigma document naming the rule (YAML, every value a JSON string, which YAML reads as
/// the same string whatever it holds).
fn sigma_reference(hit: &SigmaAnalysisResult) -> String {
    let line = |key: &str, value: &str| format!("{key}: {}\n", Value::String(value.to_string()));
    let mut text = String::new();
    text.push_str(&line("title", &hit.rule_title));
    text.push_str(&line("id", &hit.rule_id));
    if !hit.rule_level.is_empty() {
        text.push_str(&line("level", &hit.rule_level));
    }
    if !hit.rule_author.is_empty() {
        text.push_str(&line("author", &hit.rule_author));
    }
    if !hit.rule_description.is_empty() {
        text.push_str(&line("description", &hit.rule_description));
    }
    text
}
