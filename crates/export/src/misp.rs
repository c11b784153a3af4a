//! One MISP event per sample, in PyMISP's feed layout (`MISPEvent.to_feed()`: `{"Event": …}`),
//! which `MISPEvent.load` and MISP's feed import read.
//!
//! Built from the sample's behaviour summary (what every sandbox saw, de-duplicated) and each
//! sandbox's report (its `sandbox-report`, its process tree and its Sigma hits):
//!
//! | object | from | reference (MISP's vocabulary) |
//! |---|---|---|
//! | `file` (the sample) | the SHA-256 | — |
//! | `sandbox-report` | each report | sample `analysed-with` report |
//! | `process` | each report's `processes_tree` | child `child-of` parent; sample `calls` root |
//! | `file` | `files_dropped` with a hash | sample `drops` file |
//! | `domain-ip` | `dns_lookups` | sample `contacts` it |
//! | `network-connection` | `ip_traffic` | sample `contacts` it |
//! | `registry-key` | `registry_keys_set` | sample `writes` it |
//! | `mutex` | `mutexes_created` | sample `creates` it |
//!
//! ATT&CK techniques are `misp-galaxy:mitre-attack-pattern` tags of the event; each Sigma rule
//! that fired is a `text` attribute (the rule title) whose comment names the rule id, level and
//! sandbox. Attribute types, categories and `to_ids` are those PyMISP picks from each object
//! template; ids are UUIDv5s of the sample and the item's place in the report.

use crate::dates;
use crate::ids::name_v5;
use sandscope_model::{BehaviourSummary, FileBehaviour, behaviour_mitre_trees};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

/// `(name, template uuid, template version, meta-category, description)` of the misp-objects
/// templates used (MISP/misp-objects as PyMISP 2.5.34 ships them).
const TEMPLATES: &[(&str, &str, u32, &str, &str)] = &[
    (
        "file",
        "688c46fb-5edb-40a3-8273-1af7923e2215",
        25,
        "file",
        "File object describing a file with meta-information",
    ),
    (
        "process",
        "02aeef94-ac23-455c-addb-731757ceafb5",
        10,
        "misc",
        "Object describing a system process.",
    ),
    (
        "domain-ip",
        "43b3b146-77eb-4931-b4cc-b66c60f28734",
        11,
        "network",
        "A domain/hostname and IP address seen as a tuple in a specific time frame.",
    ),
    (
        "network-connection",
        "af16764b-f8e5-4603-9de1-de34d272f80b",
        7,
        "network",
        "A local or remote network connection.",
    ),
    (
        "registry-key",
        "8b3228ad-6d82-4fe6-b2ae-05426308f1d5",
        5,
        "file",
        "Registry key object describing a Windows registry key with value and last-modified timestamp",
    ),
    (
        "mutex",
        "9f5c1a68-2021-4faa-b409-61c899c86466",
        1,
        "misc",
        "Object to describe mutual exclusion locks (mutex) as seen in memory or computer program",
    ),
    (
        "sandbox-report",
        "4d3fffd2-cd07-4357-96e0-a51c988faaef",
        2,
        "misc",
        "Sandbox report",
    ),
];

/// `(object, relation) → (attribute type, category, to_ids, disable_correlation)`, as PyMISP
/// fills them from the templates and MISP's type defaults.
const RELATIONS: &[(&str, &str, &str, &str, bool, bool)] = &[
    (
        "file",
        "filename",
        "filename",
        "Payload delivery",
        true,
        true,
    ),
    ("file", "fullpath", "text", "Other", false, false),
    ("file", "sha256", "sha256", "Payload delivery", true, false),
    ("process", "pid", "text", "Other", false, true),
    ("process", "command-line", "text", "Other", false, false),
    ("process", "start-time", "datetime", "Other", false, true),
    (
        "domain-ip",
        "domain",
        "domain",
        "Network activity",
        true,
        false,
    ),
    (
        "domain-ip",
        "hostname",
        "hostname",
        "Network activity",
        true,
        false,
    ),
    ("domain-ip", "ip", "ip-dst", "Network activity", true, false),
    (
        "network-connection",
        "ip-dst",
        "ip-dst",
        "Network activity",
        true,
        false,
    ),
    (
        "network-connection",
        "dst-port",
        "port",
        "Network activity",
        false,
        false,
    ),
    (
        "network-connection",
        "layer4-protocol",
        "text",
        "Other",
        false,
        true,
    ),
    (
        "registry-key",
        "key",
        "regkey",
        "Persistence mechanism",
        true,
        false,
    ),
    (
        "registry-key",
        "data",
        "text",
        "Persistence mechanism",
        false,
        false,
    ),
    ("mutex", "name", "text", "Other", false, false),
    (
        "sandbox-report",
        "sandbox-type",
        "text",
        "Other",
        false,
        true,
    ),
    (
        "sandbox-report",
        "on-premise-sandbox",
        "text",
        "Other",
        false,
        true,
    ),
    (
        "sandbox-report",
        "score",
        "text",
        "External analysis",
        false,
        true,
    ),
    (
        "sandbox-report",
        "results",
        "text",
        "External analysis",
        false,
        true,
    ),
];

struct MispObject {
    name: &'static str,
    uuid: Uuid,
    comment: String,
    attributes: Vec<(&'static str, String)>,
    references: Vec<(Uuid, &'static str)>,
}

impl MispObject {
    fn new(name: &'static str, key: &str) -> Self {
        Self {
            name,
            uuid: name_v5(&format!("misp-object:{name}:{key}")),
            comment: String::new(),
            attributes: Vec::new(),
            references: Vec::new(),
        }
    }

    fn add(&mut self, relation: &'static str, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.attributes.push((relation, value));
        }
    }

    fn to_json(&self, timestamp: &str) -> Value {
        let (_, template_uuid, version, meta_category, description) = TEMPLATES
            .iter()
            .find(|t| t.0 == self.name)
            .copied()
            .unwrap_or((self.name, "", 1, "misc", ""));
        let mut object = Map::new();
        object.insert("comment".into(), json!(self.comment));
        object.insert("description".into(), json!(description));
        object.insert("meta-category".into(), json!(meta_category));
        object.insert("name".into(), json!(self.name));
        object.insert("template_uuid".into(), json!(template_uuid));
        object.insert("template_version".into(), json!(version.to_string()));
        object.insert("timestamp".into(), json!(timestamp));
        object.insert("uuid".into(), json!(self.uuid.to_string()));
        if !self.references.is_empty() {
            let references: Vec<Value> = self
                .references
                .iter()
                .map(|(target, relationship)| {
                    let uuid = name_v5(&format!(
                        "misp-reference:{}:{relationship}:{target}",
                        self.uuid
                    ));
                    json!({
                        "comment": "",
                        "object_uuid": self.uuid.to_string(),
                        "referenced_uuid": target.to_string(),
                        "relationship_type": relationship,
                        "timestamp": timestamp,
                        "uuid": uuid.to_string(),
                    })
                })
                .collect();
            object.insert("ObjectReference".into(), Value::Array(references));
        }
        let attributes: Vec<Value> = self
            .attributes
            .iter()
            .enumerate()
            .map(|(i, (relation, value))| {
                let (kind, category, to_ids, no_correlation) = RELATIONS
                    .iter()
                    .find(|r| r.0 == self.name && r.1 == *relation)
                    .map(|r| (r.2, r.3, r.4, r.5))
                    .unwrap_or(("text", "Other", false, false));
                json!({
                    "category": category,
                    "comment": "",
                    "disable_correlation": no_correlation,
                    "object_relation": relation,
                    "timestamp": timestamp,
                    "to_ids": to_ids,
                    "type": kind,
                    "uuid": name_v5(&format!("misp-attribute:{}:{i}", self.uuid)).to_string(),
                    "value": value,
                })
            })
            .collect();
        object.insert("Attribute".into(), Value::Array(attributes));
        Value::Object(object)
    }
}

/// The MISP event of one sample's reports (`{"Event": …}`). Reports are taken in id order,
/// whatever order they are given in.
pub fn misp_event(sha256: &str, reports: &[FileBehaviour]) -> Value {
    let mut reports: Vec<&FileBehaviour> = reports.iter().collect();
    reports.sort_by(|a, b| a.id.cmp(&b.id));
    let owned: Vec<FileBehaviour> = reports.iter().map(|r| (*r).clone()).collect();
    let summary = BehaviourSummary::merge(&owned).attributes;

    let first_analysis = reports
        .iter()
        .filter_map(|r| r.attributes.analysis_date)
        .min()
        .unwrap_or(0);
    let last_change = reports
        .iter()
        .filter_map(|r| {
            r.attributes
                .last_modification_date
                .or(r.attributes.analysis_date)
        })
        .max()
        .unwrap_or(0);
    let timestamp = last_change.to_string();
    let key = |kind: &str, item: &str| format!("{sha256}:{kind}:{item}");

    let mut objects: Vec<MispObject> = Vec::new();
    let mut sample = MispObject::new("file", &key("sample", ""));
    sample.comment = "The sample".into();
    sample.add("sha256", sha256);
    let mut sample_references: Vec<(Uuid, &'static str)> = Vec::new();

    let mut sigma_attributes: Vec<Value> = Vec::new();
    for report in &reports {
        let attributes = &report.attributes;
        let sandbox = &attributes.sandbox_name;
        let mut sandbox_report = MispObject::new("sandbox-report", &key("sandbox", sandbox));
        sandbox_report.comment = match attributes.analysis_date {
            Some(seconds) => format!("{sandbox}, analysed {}", dates::iso_offset(seconds)),
            None => sandbox.clone(),
        };
        sandbox_report.add("sandbox-type", "on-premise");
        sandbox_report.add("on-premise-sandbox", product_name(sandbox));
        if let Some(confidence) = attributes.verdict_confidence {
            sandbox_report.add("score", confidence.to_string());
        }
        for verdict in &attributes.verdicts {
            sandbox_report.add("results", verdict.clone());
        }
        sample_references.push((sandbox_report.uuid, "analysed-with"));
        objects.push(sandbox_report);

        let start = attributes.analysis_date;
        // Parents come first, so a child finds its parent's uuid here.
        let mut process_uuids: std::collections::HashMap<String, Uuid> =
            std::collections::HashMap::new();
        for step in crate::process_tree::walk(&attributes.processes_tree) {
            let node = step.node;
            let mut process =
                MispObject::new("process", &key(&format!("process:{sandbox}"), &step.path));
            process.comment = sandbox.clone();
            if node.process_id.parse::<u64>().is_ok() {
                process.add("pid", node.process_id.clone());
            }
            process.add("command-line", node.name.clone());
            if let (Some(start), Some(offset)) = (start, node.time_offset) {
                process.add(
                    "start-time",
                    dates::iso_offset(start.saturating_add(offset)),
                );
            }
            if process.attributes.is_empty() {
                process.add("command-line", "(unnamed)");
            }
            match step.parent.as_ref().and_then(|p| process_uuids.get(p)) {
                Some(parent) => process.references.push((*parent, "child-of")),
                None => sample_references.push((process.uuid, "calls")),
            }
            process_uuids.insert(step.path, process.uuid);
            objects.push(process);
        }

        let mut rules_seen = std::collections::BTreeSet::new();
        for hit in &attributes.sigma_analysis_results {
            if !rules_seen.insert(hit.rule_id.clone()) {
                continue;
            }
            let uuid = name_v5(&key(&format!("sigma:{sandbox}"), &hit.rule_id));
            sigma_attributes.push(json!({
                "category": "External analysis",
                "comment": format!(
                    "Sigma rule {} (level {}) fired in {sandbox}; source: {}",
                    hit.rule_id, hit.rule_level, hit.rule_source
                ),
                "disable_correlation": false,
                "timestamp": timestamp,
                "to_ids": false,
                "type": "text",
                "uuid": uuid.to_string(),
                "value": hit.rule_title,
            }));
        }
    }

    for dropped in &summary.files_dropped {
        let Some(hash) = dropped.sha256.as_deref().filter(|h| !h.is_empty()) else {
            continue;
        };
        let mut file =
            MispObject::new("file", &key("dropped", &format!("{}:{hash}", dropped.path)));
        file.add("filename", base_name(&dropped.path));
        file.add("fullpath", dropped.path.clone());
        file.add("sha256", hash);
        sample_references.push((file.uuid, "drops"));
        objects.push(file);
    }
    for lookup in &summary.dns_lookups {
        if lookup.hostname.is_empty() && lookup.resolved_ips.is_empty() {
            continue;
        }
        let mut domain = MispObject::new("domain-ip", &key("dns", &lookup.hostname));
        if lookup.hostname.contains('.') {
            domain.add("domain", lookup.hostname.clone());
        } else {
            domain.add("hostname", lookup.hostname.clone());
        }
        for ip in &lookup.resolved_ips {
            domain.add("ip", ip.clone());
        }
        sample_references.push((domain.uuid, "contacts"));
        objects.push(domain);
    }
    for traffic in &summary.ip_traffic {
        if traffic.destination_ip.is_empty() {
            continue;
        }
        let protocol = traffic.transport_layer_protocol.clone().unwrap_or_default();
        let port = traffic
            .destination_port
            .map(|p| p.to_string())
            .unwrap_or_default();
        let mut connection = MispObject::new(
            "network-connection",
            &key(
                "traffic",
                &format!("{protocol}:{}:{port}", traffic.destination_ip),
            ),
        );
        connection.add("ip-dst", traffic.destination_ip.clone());
        connection.add("dst-port", port);
        // The template's vocabulary is TCP and UDP; other protocols go in the comment.
        if matches!(protocol.as_str(), "TCP" | "UDP") {
            connection.add("layer4-protocol", protocol);
        } else if !protocol.is_empty() {
            connection.comment = protocol;
        }
        sample_references.push((connection.uuid, "contacts"));
        objects.push(connection);
    }
    for set in &summary.registry_keys_set {
        if set.key.is_empty() {
            continue;
        }
        let data = set.value.clone().unwrap_or_default();
        let mut registry = MispObject::new(
            "registry-key",
            &key("registry", &format!("{}={data}", set.key)),
        );
        registry.add("key", set.key.clone());
        registry.add("data", data);
        sample_references.push((registry.uuid, "writes"));
        objects.push(registry);
    }
    for name in &summary.mutexes_created {
        if name.is_empty() {
            continue;
        }
        let mut mutex = MispObject::new("mutex", &key("mutex", name));
        mutex.add("name", name.clone());
        sample_references.push((mutex.uuid, "creates"));
        objects.push(mutex);
    }
    sample.references = sample_references;
    objects.insert(0, sample);

    let mut event = Map::new();
    event.insert("analysis".into(), json!("2"));
    event.insert("date".into(), json!(dates::date(first_analysis)));
    event.insert(
        "info".into(),
        json!(format!("Sandscope behaviour of {sha256}")),
    );
    event.insert("published".into(), json!(false));
    event.insert("threat_level_id".into(), json!("4"));
    event.insert("timestamp".into(), json!(timestamp));
    event.insert(
        "uuid".into(),
        json!(name_v5(&format!("misp-event:{sha256}")).to_string()),
    );
    event.insert(
        "Orgc".into(),
        json!({"name": "Sandscope", "uuid": name_v5("misp-organisation:Sandscope").to_string()}),
    );
    event.insert("Tag".into(), Value::Array(technique_tags(&owned)));
    if !sigma_attributes.is_empty() {
        event.insert("Attribute".into(), Value::Array(sigma_attributes));
    }
    event.insert(
        "Object".into(),
        Value::Array(objects.iter().map(|o| o.to_json(&timestamp)).collect()),
    );
    json!({ "Event": Value::Object(event) })
}

/// `misp-galaxy:mitre-attack-pattern="<name> - <id>"`, the MITRE ATT&CK galaxy's cluster
/// values; a technique Sandscope has no name for is tagged by its id alone.
fn technique_tags(reports: &[FileBehaviour]) -> Vec<Value> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for tree in behaviour_mitre_trees(reports).values() {
        for tactic in &tree.tactics {
            for technique in &tactic.techniques {
                names
                    .entry(technique.id.clone())
                    .or_insert_with(|| technique.name.clone());
            }
        }
    }
    for report in reports {
        for technique in &report.attributes.mitre_attack_techniques {
            names
                .entry(technique.id.clone())
                .or_insert_with(|| technique.id.clone());
        }
    }
    names
        .into_iter()
        .filter(|(id, _)| !id.is_empty())
        .map(|(id, name)| {
            let value = if name == id {
                id
            } else {
                format!("{name} - {id}")
            };
            json!({
                "colour": "#ffffff",
                "local": false,
                "name": format!("misp-galaxy:mitre-attack-pattern=\"{value}\""),
                "relationship_type": "",
            })
        })
        .collect()
}

/// A sandbox name as MISP's sandbox vocabulary spells products: lower case, words joined by
/// `-` (`CAPE Sandbox` → `cape-sandbox`).
pub(crate) fn product_name(sandbox: &str) -> String {
    sandbox
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// The last component of a Windows or POSIX path.
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}
