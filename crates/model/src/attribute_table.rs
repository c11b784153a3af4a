//! The one table of `file_behaviour` attributes ([`ATTRIBUTES`]): for each attribute its name,
//! label, kind, display section and columns, how two reports' values merge, how it is compared
//! in a diff, which search modifiers cover it and which of its values are searchable text.
//!
//! The summary merge, the diff, the query crate's searchable view, the HTML and terminal
//! reports and the web UI (which gets the table as JSON) all walk this table, so adding an
//! attribute is one entry here; a test fails when a field of [`BehaviourAttributes`] has no
//! entry. Modifiers are named as data: the query crate owns what they do and checks that the
//! names here are its own.

use crate::summary::{merge_dns, text_key, union_by, union_strings};
use crate::{BehaviourAttributes, ProcessNode};
use serde::Serialize;

/// The shape of an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    /// One optional string.
    Text,
    /// One optional Unix time (seconds).
    Date,
    /// One optional number.
    Number,
    /// A boolean, absent when false.
    Flag,
    /// A list of strings.
    Strings,
    /// A list of objects, shown by [`Attribute::columns`].
    Records,
    /// Process nodes with children.
    Tree,
    /// One object of named counts, shown by [`Attribute::columns`].
    Counts,
    /// A string-keyed map (bookkeeping).
    Map,
}

/// Where an attribute is shown, in the reports' section order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The report's own facts (sandbox, date, behash, tags, verdicts).
    Report,
    Processes,
    Network,
    Files,
    Registry,
    ServicesAndTasks,
    Other,
    Sigma,
    Signatures,
    Attack,
    /// Kept for tools, not shown to analysts (flags, `raw_forms`, `truncated`).
    Bookkeeping,
}

impl Section {
    /// The shown sections, in order.
    pub const SHOWN: [Section; 10] = [
        Section::Report,
        Section::Processes,
        Section::Network,
        Section::Files,
        Section::Registry,
        Section::ServicesAndTasks,
        Section::Other,
        Section::Sigma,
        Section::Signatures,
        Section::Attack,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Report => "Report",
            Section::Processes => "Processes",
            Section::Network => "Network",
            Section::Files => "Files",
            Section::Registry => "Registry",
            Section::ServicesAndTasks => "Services and tasks",
            Section::Other => "Other",
            Section::Sigma => "Sigma rules",
            Section::Signatures => "Signatures",
            Section::Attack => "ATT&CK techniques",
            Section::Bookkeeping => "Bookkeeping",
        }
    }

    /// The attributes shown in this section, in table order.
    pub fn attributes(self) -> impl Iterator<Item = &'static Attribute> {
        ATTRIBUTES.iter().filter(move |a| a.section == self)
    }
}

/// A served attribute value (or one field of a record) as plain text, as both renderings show
/// it: strings as they are, lists joined with `, `, absent as nothing. The caller escapes.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        serde_json::Value::Array(items) => {
            items.iter().map(value_text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// How the summary merges two reports' values of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Merge {
    /// Describes one run: left out of the summary.
    PerRun,
    /// Union in report order, de-duplicated on the item's key (case and surrounding
    /// whitespace ignored).
    Union,
    /// DNS lookups: one per host name, the answers of every report unioned.
    UnionByHost,
    /// Process trees: every report's roots, one after the other (pids are per run).
    Concatenate,
    /// The highest value.
    Highest,
    /// The first report's value.
    First,
    /// Counted again over the merged items (Sigma statistics).
    Recount,
}

/// One column of a record (or count) attribute: its JSON key and header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
}

/// One comparable item of a diff: its comparison key and how it is shown.
pub type DiffItem = (String, String);

/// Visits the searchable text values of one attribute of a report.
pub type TextVisitor = fn(&BehaviourAttributes, &mut dyn FnMut(&str));

/// One `file_behaviour` attribute.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Attribute {
    /// The JSON field name.
    pub name: &'static str,
    /// How people read it (`Files written`).
    pub label: &'static str,
    pub kind: AttributeKind,
    pub section: Section,
    /// For [`AttributeKind::Records`] and [`AttributeKind::Counts`]: the shown fields.
    pub columns: &'static [Column],
    pub merge: Merge,
    /// What makes two items the same in a diff (empty: not compared).
    pub compared_on: &'static str,
    /// The query modifiers whose values come from this attribute (names as the query crate
    /// spells them).
    pub modifiers: &'static [&'static str],
    #[serde(skip)]
    merge_into: fn(&mut BehaviourAttributes, &BehaviourAttributes),
    #[serde(skip)]
    diff_items: Option<fn(&BehaviourAttributes) -> Vec<DiffItem>>,
    #[serde(skip)]
    text_values: Option<TextVisitor>,
}

impl Attribute {
    /// Merge `from`'s value into `into`'s (the summary; a no-op for [`Merge::PerRun`]).
    pub fn merge_into(&self, into: &mut BehaviourAttributes, from: &BehaviourAttributes) {
        (self.merge_into)(into, from);
    }

    /// The report's items as a diff compares them; `None` for attributes a diff leaves out.
    pub fn diff_items(&self, report: &BehaviourAttributes) -> Option<Vec<DiffItem>> {
        self.diff_items.map(|items| items(report))
    }

    /// Visit the searchable text values (text modifiers match them); false when the
    /// attribute has none.
    pub fn visit_text(&self, report: &BehaviourAttributes, visit: &mut dyn FnMut(&str)) -> bool {
        match self.text_values {
            Some(values) => {
                values(report, visit);
                true
            }
            None => false,
        }
    }
}

/// The attribute named `name`.
pub fn attribute(name: &str) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|a| a.name == name)
}

fn no_merge(_: &mut BehaviourAttributes, _: &BehaviourAttributes) {}

fn strings(list: &[String]) -> Vec<DiffItem> {
    list.iter().map(|s| (text_key(s), s.clone())).collect()
}

fn tree_names(nodes: &[ProcessNode], out: &mut Vec<DiffItem>, depth: usize) {
    if depth > MAX_TREE_WALK {
        return;
    }
    for node in nodes {
        out.push((text_key(&node.name), node.name.clone()));
        tree_names(&node.children, out, depth + 1);
    }
}

fn each_tree_name(nodes: &[ProcessNode], visit: &mut dyn FnMut(&str), depth: usize) {
    if depth > MAX_TREE_WALK {
        return;
    }
    for node in nodes {
        visit(&node.name);
        each_tree_name(&node.children, visit, depth + 1);
    }
}

/// Hostile reports could nest trees without end; 256 levels is far beyond any real tree.
const MAX_TREE_WALK: usize = 256;

fn optional(value: &Option<String>) -> Option<String> {
    value.as_deref().map(text_key)
}

/// A per-run attribute: no merge, no diff, no text.
const fn per_run(
    name: &'static str,
    label: &'static str,
    kind: AttributeKind,
    section: Section,
    modifiers: &'static [&'static str],
) -> Attribute {
    Attribute {
        name,
        label,
        kind,
        section,
        columns: &[],
        merge: Merge::PerRun,
        compared_on: "",
        modifiers,
        merge_into: no_merge,
        diff_items: None,
        text_values: None,
    }
}

/// A list of strings: unioned, compared and searched case-insensitively as a whole.
macro_rules! strings {
    ($field:ident, $label:expr, $section:expr, [$($modifier:expr),*]) => {
        Attribute {
            name: stringify!($field),
            label: $label,
            kind: AttributeKind::Strings,
            section: $section,
            columns: &[],
            merge: Merge::Union,
            compared_on: "the value",
            modifiers: &[$($modifier),*],
            merge_into: |m, a| union_strings(&mut m.$field, &a.$field),
            diff_items: Some(|a| strings(&a.$field)),
            text_values: Some(|a, visit| a.$field.iter().for_each(|v| visit(v))),
        }
    };
}

const fn column(key: &'static str, label: &'static str) -> Column {
    Column { key, label }
}

const BEHAVIOUR: &str = "behaviour";
const FILES: &[&str] = &[BEHAVIOUR, "behaviour_files"];
const PROCESSES: &[&str] = &[BEHAVIOUR, "behaviour_processes"];
const REGISTRY: &[&str] = &[BEHAVIOUR, "behaviour_registry"];
const SERVICES: &[&str] = &[BEHAVIOUR, "behaviour_services"];
const NETWORK: &[&str] = &[BEHAVIOUR, "behaviour_network"];
const OTHER: &[&str] = &[BEHAVIOUR];
const SIGMA_COUNTS: &[&str] = &["sigma_critical", "sigma_high", "sigma_medium", "sigma_low"];

/// Every attribute of [`BehaviourAttributes`], in its field order.
pub const ATTRIBUTES: &[Attribute] = &[
    // --- report metadata ---
    per_run(
        "sandbox_name",
        "Sandbox",
        AttributeKind::Text,
        Section::Report,
        &["sandbox_name"],
    ),
    per_run(
        "analysis_date",
        "Analysis date",
        AttributeKind::Date,
        Section::Report,
        &["fs", "ls"],
    ),
    per_run(
        "last_modification_date",
        "Last modified",
        AttributeKind::Date,
        Section::Bookkeeping,
        &[],
    ),
    per_run(
        "behash",
        "Behash",
        AttributeKind::Text,
        Section::Report,
        &["behash"],
    ),
    per_run(
        "has_html_report",
        "Has an HTML report",
        AttributeKind::Flag,
        Section::Bookkeeping,
        &[],
    ),
    per_run(
        "has_pcap",
        "Has a PCAP",
        AttributeKind::Flag,
        Section::Bookkeeping,
        &[],
    ),
    per_run(
        "has_evtx",
        "Has an EVTX log",
        AttributeKind::Flag,
        Section::Bookkeeping,
        &[],
    ),
    per_run(
        "has_memdump",
        "Has a memory dump",
        AttributeKind::Flag,
        Section::Bookkeeping,
        &[],
    ),
    strings!(
        tags,
        "Tags",
        Section::Report,
        [BEHAVIOUR, "behaviour_tags", "tag"]
    ),
    strings!(verdicts, "Verdicts", Section::Report, [BEHAVIOUR]),
    Attribute {
        name: "verdict_confidence",
        label: "Verdict confidence",
        kind: AttributeKind::Number,
        section: Section::Report,
        columns: &[],
        merge: Merge::Highest,
        compared_on: "",
        modifiers: &[],
        merge_into: |m, a| m.verdict_confidence = m.verdict_confidence.max(a.verdict_confidence),
        diff_items: None,
        text_values: None,
    },
    // --- processes ---
    Attribute {
        name: "processes_tree",
        label: "Process tree",
        kind: AttributeKind::Tree,
        section: Section::Processes,
        columns: &[],
        merge: Merge::Concatenate,
        compared_on: "the node names (pids differ per run)",
        modifiers: PROCESSES,
        merge_into: |m, a| m.processes_tree.extend(a.processes_tree.iter().cloned()),
        diff_items: Some(|a| {
            let mut out = Vec::new();
            tree_names(&a.processes_tree, &mut out, 0);
            out
        }),
        text_values: Some(|a, visit| each_tree_name(&a.processes_tree, visit, 0)),
    },
    strings!(
        processes_created,
        "Processes created",
        Section::Processes,
        [
            BEHAVIOUR,
            "behaviour_processes",
            "behaviour_created_processes"
        ]
    ),
    strings!(
        processes_terminated,
        "Processes terminated",
        Section::Processes,
        [BEHAVIOUR, "behaviour_processes"]
    ),
    strings!(
        processes_killed,
        "Processes killed",
        Section::Processes,
        [BEHAVIOUR, "behaviour_processes"]
    ),
    strings!(
        processes_injected,
        "Processes injected",
        Section::Processes,
        [
            BEHAVIOUR,
            "behaviour_processes",
            "behaviour_injected_processes"
        ]
    ),
    strings!(
        command_executions,
        "Command executions",
        Section::Processes,
        [
            BEHAVIOUR,
            "behaviour_processes",
            "behaviour_command_executions"
        ]
    ),
    // --- file system ---
    strings!(
        files_opened,
        "Files opened",
        Section::Files,
        [BEHAVIOUR, "behaviour_files"]
    ),
    strings!(
        files_written,
        "Files written",
        Section::Files,
        [BEHAVIOUR, "behaviour_files"]
    ),
    strings!(
        files_deleted,
        "Files deleted",
        Section::Files,
        [BEHAVIOUR, "behaviour_files"]
    ),
    strings!(
        files_attribute_changed,
        "Files with changed attributes",
        Section::Files,
        [BEHAVIOUR, "behaviour_files"]
    ),
    Attribute {
        name: "files_dropped",
        label: "Files dropped",
        kind: AttributeKind::Records,
        section: Section::Files,
        columns: &[
            column("path", "path"),
            column("sha256", "SHA-256"),
            column("type", "type"),
        ],
        merge: Merge::Union,
        compared_on: "the SHA-256 (the path when there is none)",
        modifiers: FILES,
        merge_into: |m, a| {
            union_by(&mut m.files_dropped, &a.files_dropped, |d| {
                (text_key(&d.path), optional(&d.sha256))
            })
        },
        diff_items: Some(|a| {
            a.files_dropped
                .iter()
                .map(|d| {
                    let key = optional(&d.sha256).unwrap_or_else(|| text_key(&d.path));
                    let shown = match &d.sha256 {
                        Some(sha256) => format!("{} ({sha256})", d.path),
                        None => d.path.clone(),
                    };
                    (key, shown)
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for d in &a.files_dropped {
                visit(&d.path);
                if let Some(sha256) = &d.sha256 {
                    visit(sha256);
                }
            }
        }),
    },
    Attribute {
        name: "files_copied",
        label: "Files copied",
        kind: AttributeKind::Records,
        section: Section::Files,
        columns: &[
            column("source", "source"),
            column("destination", "destination"),
        ],
        merge: Merge::Union,
        compared_on: "source and destination",
        modifiers: FILES,
        merge_into: |m, a| {
            union_by(&mut m.files_copied, &a.files_copied, |c| {
                (text_key(&c.source), text_key(&c.destination))
            })
        },
        diff_items: Some(|a| {
            a.files_copied
                .iter()
                .map(|c| {
                    (
                        format!("{}\u{0}{}", text_key(&c.source), text_key(&c.destination)),
                        format!("{} -> {}", c.source, c.destination),
                    )
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for c in &a.files_copied {
                visit(&c.source);
                visit(&c.destination);
            }
        }),
    },
    Attribute {
        name: "hosts_file",
        label: "Hosts file",
        kind: AttributeKind::Text,
        section: Section::Files,
        columns: &[],
        merge: Merge::First,
        compared_on: "",
        modifiers: OTHER,
        merge_into: |m, a| {
            if m.hosts_file.is_none() {
                m.hosts_file.clone_from(&a.hosts_file);
            }
        },
        diff_items: None,
        text_values: Some(|a, visit| a.hosts_file.iter().for_each(|h| visit(h))),
    },
    // --- registry ---
    strings!(
        registry_keys_opened,
        "Registry keys opened",
        Section::Registry,
        [BEHAVIOUR, "behaviour_registry"]
    ),
    Attribute {
        name: "registry_keys_set",
        label: "Registry keys set",
        kind: AttributeKind::Records,
        section: Section::Registry,
        columns: &[column("key", "key"), column("value", "value")],
        merge: Merge::Union,
        compared_on: "the key",
        modifiers: REGISTRY,
        merge_into: |m, a| {
            union_by(&mut m.registry_keys_set, &a.registry_keys_set, |s| {
                (text_key(&s.key), s.value.clone())
            })
        },
        diff_items: Some(|a| {
            a.registry_keys_set
                .iter()
                .map(|s| {
                    let shown = match &s.value {
                        Some(value) => format!("{} = {value}", s.key),
                        None => s.key.clone(),
                    };
                    (text_key(&s.key), shown)
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for s in &a.registry_keys_set {
                visit(&s.key);
                if let Some(value) = &s.value {
                    visit(value);
                }
            }
        }),
    },
    strings!(
        registry_keys_deleted,
        "Registry keys deleted",
        Section::Registry,
        [BEHAVIOUR, "behaviour_registry"]
    ),
    // --- services, mutexes, modules ---
    strings!(
        services_opened,
        "Services opened",
        Section::ServicesAndTasks,
        [BEHAVIOUR, "behaviour_services"]
    ),
    strings!(
        services_created,
        "Services created",
        Section::ServicesAndTasks,
        [BEHAVIOUR, "behaviour_services"]
    ),
    strings!(
        services_started,
        "Services started",
        Section::ServicesAndTasks,
        [BEHAVIOUR, "behaviour_services"]
    ),
    strings!(
        services_stopped,
        "Services stopped",
        Section::ServicesAndTasks,
        [BEHAVIOUR, "behaviour_services"]
    ),
    strings!(
        services_deleted,
        "Services deleted",
        Section::ServicesAndTasks,
        [BEHAVIOUR, "behaviour_services"]
    ),
    strings!(
        mutexes_created,
        "Mutexes created",
        Section::Other,
        [BEHAVIOUR]
    ),
    strings!(
        mutexes_opened,
        "Mutexes opened",
        Section::Other,
        [BEHAVIOUR]
    ),
    strings!(
        modules_loaded,
        "Modules loaded",
        Section::Other,
        [BEHAVIOUR]
    ),
    strings!(
        calls_highlighted,
        "Calls highlighted",
        Section::Other,
        [BEHAVIOUR]
    ),
    // --- network ---
    Attribute {
        name: "dns_lookups",
        label: "DNS lookups",
        kind: AttributeKind::Records,
        section: Section::Network,
        columns: &[
            column("hostname", "hostname"),
            column("resolved_ips", "resolved IPs"),
            column("cnames", "CNAMEs"),
        ],
        merge: Merge::UnionByHost,
        compared_on: "the host name",
        modifiers: NETWORK,
        merge_into: |m, a| merge_dns(&mut m.dns_lookups, &a.dns_lookups),
        diff_items: Some(|a| {
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
                .collect()
        }),
        text_values: Some(|a, visit| {
            for d in &a.dns_lookups {
                visit(&d.hostname);
                d.resolved_ips
                    .iter()
                    .chain(&d.cnames)
                    .for_each(|v| visit(v));
            }
        }),
    },
    Attribute {
        name: "ip_traffic",
        label: "IP traffic",
        kind: AttributeKind::Records,
        section: Section::Network,
        columns: &[
            column("destination_ip", "destination"),
            column("destination_port", "port"),
            column("transport_layer_protocol", "protocol"),
        ],
        merge: Merge::Union,
        compared_on: "address, port and protocol",
        modifiers: NETWORK,
        merge_into: |m, a| {
            union_by(&mut m.ip_traffic, &a.ip_traffic, |t| {
                (
                    text_key(&t.destination_ip),
                    t.destination_port,
                    optional(&t.transport_layer_protocol),
                )
            })
        },
        diff_items: Some(|a| {
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
                .collect()
        }),
        text_values: Some(|a, visit| {
            for t in &a.ip_traffic {
                visit(&t.destination_ip);
                if let Some(port) = t.destination_port {
                    visit(&format!("{}:{port}", t.destination_ip));
                }
            }
        }),
    },
    Attribute {
        name: "http_conversations",
        label: "HTTP conversations",
        kind: AttributeKind::Records,
        section: Section::Network,
        columns: &[
            column("request_method", "method"),
            column("url", "URL"),
            column("response_status_code", "status"),
        ],
        merge: Merge::Union,
        compared_on: "method and URL",
        modifiers: NETWORK,
        merge_into: |m, a| {
            union_by(&mut m.http_conversations, &a.http_conversations, |h| {
                (h.url.trim().to_string(), optional(&h.request_method))
            })
        },
        diff_items: Some(|a| {
            a.http_conversations
                .iter()
                .map(|h| {
                    let shown = match &h.request_method {
                        Some(method) => format!("{method} {}", h.url),
                        None => h.url.clone(),
                    };
                    (text_key(&shown), shown)
                })
                .collect()
        }),
        text_values: Some(|a, visit| a.http_conversations.iter().for_each(|h| visit(&h.url))),
    },
    // --- detection content ---
    Attribute {
        name: "mitre_attack_techniques",
        label: "MITRE ATT&CK techniques",
        kind: AttributeKind::Records,
        section: Section::Attack,
        columns: &[
            column("id", "technique"),
            column("severity", "severity"),
            column("signature_description", "description"),
        ],
        merge: Merge::Union,
        compared_on: "the technique id",
        modifiers: &[BEHAVIOUR, "attack_technique", "attack_tactic"],
        merge_into: |m, a| {
            union_by(
                &mut m.mitre_attack_techniques,
                &a.mitre_attack_techniques,
                |t| {
                    (
                        t.id.to_ascii_uppercase(),
                        text_key(&t.signature_description),
                    )
                },
            )
        },
        diff_items: Some(|a| {
            a.mitre_attack_techniques
                .iter()
                .map(|t| {
                    (
                        text_key(&t.id),
                        format!("{} ({})", t.id, t.signature_description),
                    )
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for t in &a.mitre_attack_techniques {
                visit(&t.id);
                visit(&t.signature_description);
            }
        }),
    },
    Attribute {
        name: "signature_matches",
        label: "Signatures",
        kind: AttributeKind::Records,
        section: Section::Signatures,
        columns: &[
            column("name", "name"),
            column("severity", "severity"),
            column("description", "description"),
        ],
        merge: Merge::Union,
        compared_on: "the name (the description when there is none)",
        modifiers: &[BEHAVIOUR, "behaviour_signature"],
        merge_into: |m, a| {
            union_by(&mut m.signature_matches, &a.signature_matches, |s| {
                (
                    optional(&s.name),
                    text_key(&s.description),
                    s.format.clone(),
                )
            })
        },
        diff_items: Some(|a| {
            a.signature_matches
                .iter()
                .map(|s| {
                    let shown = match &s.name {
                        Some(name) if !name.is_empty() => format!("{name}: {}", s.description),
                        _ => s.description.clone(),
                    };
                    (text_key(s.name.as_deref().unwrap_or(&s.description)), shown)
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for s in &a.signature_matches {
                if let Some(name) = &s.name {
                    visit(name);
                }
                visit(&s.description);
            }
        }),
    },
    Attribute {
        name: "sigma_analysis_results",
        label: "Sigma rule hits",
        kind: AttributeKind::Records,
        section: Section::Sigma,
        columns: &[
            column("rule_level", "level"),
            column("rule_title", "rule"),
            column("rule_author", "author"),
            column("rule_source", "source"),
        ],
        merge: Merge::Union,
        compared_on: "the rule id (the title when there is none)",
        modifiers: &[
            BEHAVIOUR,
            "sigma_rule",
            "sigma_critical",
            "sigma_high",
            "sigma_medium",
            "sigma_low",
        ],
        merge_into: |m, a| {
            union_by(
                &mut m.sigma_analysis_results,
                &a.sigma_analysis_results,
                |r| {
                    if r.rule_id.is_empty() {
                        text_key(&r.rule_title)
                    } else {
                        r.rule_id.clone()
                    }
                },
            )
        },
        diff_items: Some(|a| {
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
                .collect()
        }),
        text_values: Some(|a, visit| {
            a.sigma_analysis_results
                .iter()
                .for_each(|r| visit(&r.rule_title))
        }),
    },
    Attribute {
        name: "sigma_analysis_stats",
        label: "Sigma rules matched",
        kind: AttributeKind::Counts,
        section: Section::Sigma,
        columns: &[
            column("critical", "critical"),
            column("high", "high"),
            column("medium", "medium"),
            column("low", "low"),
        ],
        merge: Merge::Recount,
        compared_on: "",
        modifiers: SIGMA_COUNTS,
        // Counted from the merged results once all are in (`BehaviourSummary::merge`).
        merge_into: no_merge,
        diff_items: None,
        text_values: None,
    },
    // --- Sandscope extensions ---
    Attribute {
        name: "scheduled_tasks_created",
        label: "Scheduled tasks created",
        kind: AttributeKind::Records,
        section: Section::ServicesAndTasks,
        columns: &[
            column("name", "name"),
            column("command", "command"),
            column("trigger", "trigger"),
            column("xml_file", "definition file"),
        ],
        merge: Merge::Union,
        compared_on: "the task name",
        modifiers: OTHER,
        merge_into: |m, a| {
            union_by(
                &mut m.scheduled_tasks_created,
                &a.scheduled_tasks_created,
                |t| (text_key(&t.name), optional(&t.command)),
            )
        },
        diff_items: Some(|a| {
            a.scheduled_tasks_created
                .iter()
                .map(|t| (text_key(&t.name), t.name.clone()))
                .collect()
        }),
        text_values: Some(|a, visit| {
            for t in &a.scheduled_tasks_created {
                visit(&t.name);
                t.command.iter().chain(&t.trigger).for_each(|v| visit(v));
            }
        }),
    },
    strings!(
        named_pipes,
        "Named pipes",
        Section::ServicesAndTasks,
        [BEHAVIOUR]
    ),
    Attribute {
        name: "wmi_subscriptions",
        label: "WMI subscriptions",
        kind: AttributeKind::Records,
        section: Section::ServicesAndTasks,
        columns: &[
            column("kind", "kind"),
            column("name", "name"),
            column("operation", "operation"),
            column("detail", "detail"),
        ],
        merge: Merge::Union,
        compared_on: "kind and name",
        modifiers: OTHER,
        merge_into: |m, a| {
            union_by(&mut m.wmi_subscriptions, &a.wmi_subscriptions, |w| {
                (text_key(&w.kind), text_key(&w.name))
            })
        },
        diff_items: Some(|a| {
            a.wmi_subscriptions
                .iter()
                .map(|w| {
                    let shown = format!("{} {}", w.kind, w.name);
                    (text_key(&shown), shown)
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for w in &a.wmi_subscriptions {
                visit(&w.name);
                if let Some(detail) = &w.detail {
                    visit(detail);
                }
            }
        }),
    },
    Attribute {
        name: "service_details",
        label: "Service details",
        kind: AttributeKind::Records,
        section: Section::ServicesAndTasks,
        columns: &[
            column("name", "service"),
            column("image_path", "image path"),
            column("start_type", "start type"),
        ],
        merge: Merge::Union,
        compared_on: "name, image path and start type",
        modifiers: SERVICES,
        merge_into: |m, a| {
            union_by(&mut m.service_details, &a.service_details, |s| {
                (
                    text_key(&s.name),
                    optional(&s.image_path),
                    optional(&s.start_type),
                )
            })
        },
        diff_items: Some(|a| {
            a.service_details
                .iter()
                .map(|s| {
                    let mut shown = s.name.clone();
                    if let Some(image) = &s.image_path {
                        shown = format!("{shown} -> {image}");
                    }
                    if let Some(start) = &s.start_type {
                        shown = format!("{shown} ({start} start)");
                    }
                    (text_key(&shown), shown)
                })
                .collect()
        }),
        text_values: Some(|a, visit| {
            for s in &a.service_details {
                visit(&s.name);
                if let Some(image) = &s.image_path {
                    visit(image);
                }
            }
        }),
    },
    per_run(
        "raw_forms",
        "Raw spellings",
        AttributeKind::Map,
        Section::Bookkeeping,
        &[],
    ),
    per_run(
        "truncated",
        "Entries cut",
        AttributeKind::Map,
        Section::Bookkeeping,
        &[],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{self, Deserialize, Deserializer, Visitor};
    use std::fmt;

    /// Serde's derive hands a struct's field names to `deserialize_struct`; this deserializer
    /// records them and stops, so the test reads the real field list of the struct.
    struct FieldNames<'a>(&'a mut Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field names recorded")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend(fields);
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    #[test]
    fn every_field_of_behaviour_attributes_is_in_the_table_in_field_order() {
        let mut fields = Vec::new();
        assert!(BehaviourAttributes::deserialize(FieldNames(&mut fields)).is_err());
        assert!(fields.len() > 40, "{fields:?}");
        let table: Vec<&str> = ATTRIBUTES.iter().map(|a| a.name).collect();
        assert_eq!(table, fields);
    }

    #[test]
    fn records_and_counts_have_columns_and_shown_attributes_are_labelled() {
        for attribute in ATTRIBUTES {
            let needs_columns = matches!(
                attribute.kind,
                AttributeKind::Records | AttributeKind::Counts
            );
            assert_eq!(
                !attribute.columns.is_empty(),
                needs_columns,
                "{}",
                attribute.name
            );
            assert!(!attribute.label.is_empty(), "{}", attribute.name);
            // What a diff compares is said; what it leaves out is not.
            assert_eq!(
                attribute.diff_items.is_some(),
                !attribute.compared_on.is_empty(),
                "{}",
                attribute.name
            );
        }
    }

    #[test]
    fn table_serialises_without_its_functions() {
        let json = serde_json::to_value(attribute("service_details").unwrap()).unwrap();
        assert_eq!(json["section"], "services_and_tasks");
        assert_eq!(json["kind"], "records");
        assert_eq!(json["merge"], "union");
        assert_eq!(json["columns"][1]["key"], "image_path");
        assert_eq!(json["modifiers"][1], "behaviour_services");
        assert!(json.get("merge_into").is_none());
    }
}
