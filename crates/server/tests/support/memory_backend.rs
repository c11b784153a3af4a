//! An in-memory [`Backend`] for the router tests, the local example server and the load
//! benchmark. It is NOT the product: the real backend is the store (redb + tantivy) wired in by
//! the binary. It builds real reports from real logs (`sandscope_read` + `sandscope_report`),
//! fills the report sections the minimal builder does not yet produce (process tree, DNS, IP
//! traffic, files written) from the same events, and answers searches with a deliberately small
//! query matcher (AND of `modifier:value` terms, case-insensitive substring), enough to exercise
//! every HTTP path including query errors with columns.

#![allow(dead_code)]

use sandscope_event::{DnsAnswer, EventSource, Fields, SysmonEvent, event_id};
use sandscope_model::{
    BehaviourAttributes, DnsLookup, FileBehaviour, IpTraffic, ProcessNode, SYSINTERNALS_SANDBOX,
};
use sandscope_report::{ReportOptions, build_report};
use sandscope_server::{
    Backend, BackendError, GraphEdge, GraphNode, Health, IngestOutcome, Page, PageRequest,
    PivotGraph, RawLog, SearchHit, SearchPage, SearchRequest, Snippet, Upload,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

#[derive(Default)]
struct Data {
    /// sha256 → reports (one per sandbox).
    samples: BTreeMap<String, Vec<FileBehaviour>>,
    logs: HashMap<String, RawLog>,
}

#[derive(Default, Clone)]
pub struct MemoryBackend {
    data: Arc<RwLock<Data>>,
}

fn internal<E: std::fmt::Display>(e: E) -> BackendError {
    BackendError::Internal(e.to_string())
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an already-built report (and optionally the log it came from).
    pub fn insert(&self, report: FileBehaviour, log: Option<RawLog>) {
        let mut data = self.data.write().expect("lock");
        if let Some(log) = log {
            data.logs.insert(report.id.clone(), log);
        }
        let reports = data.samples.entry(report.sha256().to_string()).or_default();
        reports.retain(|r| r.id != report.id);
        reports.push(report);
    }

    /// Read a log file (EVTX, or Windows Event XML), build its report and return it.
    pub fn report_from_log(
        path: &Path,
        sha256: Option<String>,
    ) -> Result<(FileBehaviour, Vec<String>), BackendError> {
        let head = std::fs::read(path).map_err(internal)?;
        let (events, warnings) = if head.starts_with(b"ElfFile") {
            let out = sandscope_read::read_all(path)
                .map_err(|e| BackendError::InvalidArgument(e.to_string()))?;
            let warnings = out.warnings.iter().map(|w| w.to_string()).collect();
            (out.events, warnings)
        } else {
            let text = String::from_utf8(head)
                .map_err(|_| BackendError::InvalidArgument("not an event log".into()))?;
            (
                parse_event_xml(&text, &path.display().to_string())?,
                Vec::new(),
            )
        };
        let sha256 = sha256.or_else(|| {
            events
                .iter()
                .filter(|e| e.event_id == event_id::PROCESS_CREATE)
                .find_map(|e| e.hashes().sha256)
        });
        let options = ReportOptions {
            sha256,
            ..Default::default()
        };
        let built = build_report(&events, &options)
            .map_err(|e| BackendError::InvalidArgument(e.to_string()))?;
        let mut report = built.behaviour;
        fill_gaps(&mut report.attributes, &events);
        let mut notes = built.notes;
        notes.extend(warnings);
        Ok((report, notes))
    }

    fn all_reports(&self) -> Vec<FileBehaviour> {
        let data = self.data.read().expect("lock");
        data.samples.values().flatten().cloned().collect()
    }
}

/// Sections the minimal report builder leaves empty, derived from the same events.
fn fill_gaps(a: &mut BehaviourAttributes, events: &[SysmonEvent]) {
    if a.processes_tree.is_empty() {
        a.processes_tree = process_tree(events);
    }
    if a.dns_lookups.is_empty() {
        for e in events.iter().filter(|e| e.event_id == event_id::DNS_QUERY) {
            let Some(host) = e.query_name() else { continue };
            let ips = e
                .query_results()
                .into_iter()
                .filter_map(|answer| match answer {
                    DnsAnswer::Address(ip) => Some(ip),
                    _ => None,
                })
                .collect();
            if !a.dns_lookups.iter().any(|d| d.hostname == host) {
                a.dns_lookups.push(DnsLookup {
                    hostname: host.to_string(),
                    resolved_ips: ips,
                    cnames: Vec::new(),
                });
            }
        }
    }
    if a.ip_traffic.is_empty() {
        for e in events
            .iter()
            .filter(|e| e.event_id == event_id::NETWORK_CONNECT)
        {
            let Some(ip) = e.destination_ip() else {
                continue;
            };
            let traffic = IpTraffic {
                destination_ip: ip.to_string(),
                destination_port: e.destination_port(),
                transport_layer_protocol: e.protocol().map(|p| p.to_ascii_uppercase()),
            };
            if !a.ip_traffic.contains(&traffic) {
                a.ip_traffic.push(traffic);
            }
        }
    }
    if a.files_written.is_empty() {
        for e in events
            .iter()
            .filter(|e| e.event_id == event_id::FILE_CREATE)
        {
            if let Some(file) = e.target_filename()
                && !a.files_written.iter().any(|f| f == file)
            {
                a.files_written.push(file.to_string());
            }
        }
    }
    if a.registry_keys_set.is_empty() {
        for e in events
            .iter()
            .filter(|e| e.event_id == event_id::REGISTRY_SET_VALUE)
        {
            if let Some(key) = e.target_object() {
                a.registry_keys_set.push(sandscope_model::RegistrySet {
                    key: key.to_string(),
                    value: e.details().map(str::to_string),
                });
            }
        }
    }
}

fn process_tree(events: &[SysmonEvent]) -> Vec<ProcessNode> {
    // guid → (parent guid, node)
    let mut nodes: Vec<(String, Option<String>, ProcessNode)> = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.event_id == event_id::PROCESS_CREATE)
    {
        let Some(guid) = e.process_guid() else {
            continue;
        };
        let name = e
            .command_line()
            .or_else(|| e.image())
            .unwrap_or_default()
            .to_string();
        nodes.push((
            guid.as_str().to_string(),
            e.parent_process_guid().map(|g| g.as_str().to_string()),
            ProcessNode {
                process_id: e.process_id().map(|p| p.to_string()).unwrap_or_default(),
                name,
                time_offset: None,
                children: Vec::new(),
            },
        ));
    }
    let known: BTreeSet<String> = nodes.iter().map(|(g, _, _)| g.clone()).collect();
    fn attach(
        guid: &str,
        nodes: &[(String, Option<String>, ProcessNode)],
        depth: usize,
    ) -> Vec<ProcessNode> {
        if depth > 64 {
            return Vec::new();
        }
        nodes
            .iter()
            .filter(|(_, parent, _)| parent.as_deref() == Some(guid))
            .map(|(g, _, node)| {
                let mut node = node.clone();
                node.children = attach(g, nodes, depth + 1);
                node
            })
            .collect()
    }
    nodes
        .iter()
        .filter(|(_, parent, _)| parent.as_ref().is_none_or(|p| !known.contains(p)))
        .map(|(g, _, node)| {
            let mut node = node.clone();
            node.children = attach(g, &nodes, 0);
            node
        })
        .collect()
}

/// An event while its XML is being read.
#[derive(Default)]
struct PartialEvent {
    event_id: u16,
    time_created: Option<jiff::Timestamp>,
    channel: String,
    computer: String,
    record_id: Option<u64>,
    data: Fields,
}

/// Windows Event XML (`wevtutil qe /f:xml`, Event Viewer "Save as XML") → Sysmon events.
pub fn parse_event_xml(text: &str, file: &str) -> Result<Vec<SysmonEvent>, BackendError> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(text);
    let source_file: Arc<str> = Arc::from(file);
    let mut events = Vec::new();
    let mut current: Option<PartialEvent> = None;
    let mut data_name: Option<String> = None;
    let mut text_buf = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| BackendError::InvalidArgument(format!("XML: {e}")))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = String::from_utf8_lossy(start.local_name().as_ref()).to_string();
                text_buf.clear();
                match name.as_str() {
                    "Event" => current = Some(PartialEvent::default()),
                    "TimeCreated" => {
                        for attr in start.attributes().flatten() {
                            if attr.key.local_name().as_ref() == b"SystemTime"
                                && let (Some(cur), Ok(v)) =
                                    (current.as_mut(), attr.unescape_value())
                            {
                                cur.time_created = sandscope_event::parse_time(&v);
                            }
                        }
                    }
                    "Data" => {
                        data_name = start
                            .attributes()
                            .flatten()
                            .find(|a| a.key.local_name().as_ref() == b"Name")
                            .and_then(|a| a.unescape_value().ok().map(|v| v.to_string()));
                        // `<Data Name="x"/>` has no end tag: record the empty value now.
                        if is_empty
                            && let (Some(cur), Some(n)) = (current.as_mut(), data_name.take())
                        {
                            cur.data.push(&n, "");
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let value = t
                    .decode()
                    .map_err(|e| BackendError::InvalidArgument(format!("XML: {e}")))?;
                text_buf.push_str(&value);
            }
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text_buf.push(c);
                } else {
                    let name = r
                        .decode()
                        .map_err(|e| BackendError::InvalidArgument(format!("XML: {e}")))?;
                    let resolved =
                        quick_xml::escape::resolve_xml_entity(&name).ok_or_else(|| {
                            BackendError::InvalidArgument(format!("XML: unknown entity &{name};"))
                        })?;
                    text_buf.push_str(resolved);
                }
            }
            Event::End(end) => {
                let name = String::from_utf8_lossy(end.local_name().as_ref()).to_string();
                if let Some(cur) = current.as_mut() {
                    match name.as_str() {
                        "EventID" => cur.event_id = text_buf.trim().parse().unwrap_or(0),
                        "Channel" => cur.channel = text_buf.trim().to_string(),
                        "Computer" => cur.computer = text_buf.trim().to_string(),
                        "EventRecordID" => cur.record_id = text_buf.trim().parse().ok(),
                        "Data" => {
                            if let Some(n) = data_name.take() {
                                cur.data.push(&n, text_buf.clone());
                            }
                        }
                        "Event" => {
                            if let Some(PartialEvent {
                                event_id: id,
                                time_created: created,
                                channel,
                                computer,
                                record_id: record,
                                data,
                            }) = current.take()
                            {
                                let utc = data.get("UtcTime").and_then(sandscope_event::parse_time);
                                if let Some(time) = utc.or(created)
                                    && sandscope_event::is_sysmon_channel(&channel)
                                {
                                    events.push(SysmonEvent {
                                        source: EventSource {
                                            file: source_file.clone(),
                                            record_id: record,
                                        },
                                        event_id: id,
                                        time,
                                        time_created: created,
                                        computer,
                                        channel,
                                        data,
                                    });
                                }
                            }
                        }
                        _ => {}
                    }
                }
                text_buf.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if events.is_empty() {
        return Err(BackendError::InvalidArgument(
            "no Sysmon events in the upload".into(),
        ));
    }
    Ok(events)
}

/// The searchable strings of a report, by field, for the small matcher.
fn fields_of(report: &FileBehaviour) -> Vec<(&'static str, String)> {
    let a = &report.attributes;
    let mut out = Vec::new();
    let mut push = |field: &'static str, values: &mut dyn Iterator<Item = String>| {
        for v in values {
            out.push((field, v));
        }
    };
    push(
        "processes_created",
        &mut a.processes_created.iter().cloned(),
    );
    push(
        "command_executions",
        &mut a.command_executions.iter().cloned(),
    );
    push(
        "processes_terminated",
        &mut a.processes_terminated.iter().cloned(),
    );
    push(
        "processes_injected",
        &mut a.processes_injected.iter().cloned(),
    );
    push("files_written", &mut a.files_written.iter().cloned());
    push("files_deleted", &mut a.files_deleted.iter().cloned());
    push("files_opened", &mut a.files_opened.iter().cloned());
    push(
        "files_dropped",
        &mut a.files_dropped.iter().map(|f| f.path.clone()),
    );
    push(
        "dns_lookups.hostname",
        &mut a.dns_lookups.iter().map(|d| d.hostname.clone()),
    );
    push(
        "dns_lookups.resolved_ips",
        &mut a.dns_lookups.iter().flat_map(|d| d.resolved_ips.clone()),
    );
    push(
        "ip_traffic.destination_ip",
        &mut a.ip_traffic.iter().map(|t| t.destination_ip.clone()),
    );
    push(
        "registry_keys_set",
        &mut a.registry_keys_set.iter().map(|r| r.key.clone()),
    );
    push(
        "registry_keys_opened",
        &mut a.registry_keys_opened.iter().cloned(),
    );
    push("services_created", &mut a.services_created.iter().cloned());
    push("mutexes_created", &mut a.mutexes_created.iter().cloned());
    push("sandbox_name", &mut std::iter::once(a.sandbox_name.clone()));
    out
}

fn modifier_fields(modifier: &str) -> Option<&'static [&'static str]> {
    Some(match modifier {
        "behaviour" | "behavior" => &[],
        "behaviour_files" | "behavior_files" => &[
            "files_written",
            "files_deleted",
            "files_opened",
            "files_dropped",
        ],
        "behaviour_processes" | "behavior_processes" => &[
            "processes_created",
            "command_executions",
            "processes_terminated",
            "processes_injected",
        ],
        "behaviour_command_executions" | "behavior_command_executions" => &["command_executions"],
        "behaviour_network" | "behavior_network" => &[
            "dns_lookups.hostname",
            "dns_lookups.resolved_ips",
            "ip_traffic.destination_ip",
        ],
        "behaviour_registry" | "behavior_registry" => {
            &["registry_keys_set", "registry_keys_opened"]
        }
        "sandbox_name" => &["sandbox_name"],
        _ => return None,
    })
}

/// One parsed term: the fields it searches (empty = all) and the lower-cased literal.
struct Term {
    fields: &'static [&'static str],
    literal: String,
}

fn query_error(message: &str, column: usize) -> BackendError {
    BackendError::Query {
        message: message.to_string(),
        column,
    }
}

fn parse_query(query: &str) -> Result<Vec<Term>, BackendError> {
    let chars: Vec<char> = query.chars().collect();
    let mut terms = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut modifier = String::new();
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            modifier.push(chars[i]);
            i += 1;
        }
        let fields = if i < chars.len() && chars[i] == ':' && !modifier.is_empty() {
            i += 1;
            modifier_fields(&modifier.to_ascii_lowercase())
                .ok_or_else(|| query_error(&format!("unknown modifier {modifier:?}"), start + 1))?
        } else {
            i = start;
            &[][..]
        };
        let mut literal = String::new();
        if i < chars.len() && chars[i] == '"' {
            let open = i;
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        literal.push(chars[i + 1]);
                        i += 2;
                    }
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        literal.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(query_error("unterminated quoted value", open + 1));
            }
            // `"\"phrase\""`: the inner quotes mark an exact phrase (query-language §5A).
            if literal.len() >= 2 && literal.starts_with('"') && literal.ends_with('"') {
                literal = literal[1..literal.len() - 1].to_string();
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                literal.push(chars[i]);
                i += 1;
            }
        }
        if literal.is_empty() {
            return Err(query_error("empty value", i + 1));
        }
        terms.push(Term {
            fields,
            literal: literal.to_lowercase(),
        });
    }
    if terms.is_empty() {
        return Err(query_error("empty query", 1));
    }
    Ok(terms)
}

fn parse_cursor(cursor: Option<&str>) -> Result<usize, BackendError> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .parse()
            .map_err(|_| BackendError::InvalidArgument(format!("invalid cursor {c:?}"))),
    }
}

fn page_of<T>(
    items: Vec<T>,
    page: &PageRequest,
) -> Result<(Vec<T>, Option<String>, u64), BackendError> {
    let start = parse_cursor(page.cursor.as_deref())?;
    let total = items.len();
    let end = (start + page.limit).min(total);
    let next = (end < total).then(|| end.to_string());
    let items = items.into_iter().skip(start).take(page.limit).collect();
    Ok((items, next, total as u64))
}

impl Backend for MemoryBackend {
    fn behaviours(
        &self,
        sample_id: &str,
        page: &PageRequest,
    ) -> Result<Option<Page<FileBehaviour>>, BackendError> {
        let data = self.data.read().map_err(internal)?;
        let Some(reports) = data.samples.get(sample_id) else {
            return Ok(None);
        };
        let (items, next_cursor, total) = page_of(reports.clone(), page)?;
        Ok(Some(Page {
            items,
            next_cursor,
            total: Some(total),
        }))
    }

    fn behaviour(&self, behaviour_id: &str) -> Result<Option<FileBehaviour>, BackendError> {
        let Some((sha256, _)) = sandscope_model::split_behaviour_id(behaviour_id) else {
            return Ok(None);
        };
        let data = self.data.read().map_err(internal)?;
        Ok(data
            .samples
            .get(sha256)
            .and_then(|rs| rs.iter().find(|r| r.id == behaviour_id).cloned()))
    }

    fn raw_log(&self, behaviour_id: &str) -> Result<Option<RawLog>, BackendError> {
        let data = self.data.read().map_err(internal)?;
        Ok(data.logs.get(behaviour_id).cloned())
    }

    fn behaviour_summary(&self, sample_id: &str) -> Result<Option<Value>, BackendError> {
        let data = self.data.read().map_err(internal)?;
        let Some(reports) = data.samples.get(sample_id) else {
            return Ok(None);
        };
        let mut merged = serde_json::Map::new();
        for report in reports {
            let Ok(Value::Object(attributes)) = serde_json::to_value(&report.attributes) else {
                continue;
            };
            for (key, value) in attributes {
                if matches!(
                    key.as_str(),
                    "analysis_date"
                        | "behash"
                        | "has_html_report"
                        | "has_pcap"
                        | "has_evtx"
                        | "has_memdump"
                        | "last_modification_date"
                        | "sandbox_name"
                ) {
                    continue;
                }
                match (merged.get_mut(&key), value) {
                    (Some(Value::Array(existing)), Value::Array(more)) => {
                        for v in more {
                            if !existing.contains(&v) {
                                existing.push(v);
                            }
                        }
                    }
                    (None, v) => {
                        merged.insert(key, v);
                    }
                    _ => {}
                }
            }
        }
        Ok(Some(Value::Object(merged)))
    }

    fn behaviour_mitre_trees(&self, sample_id: &str) -> Result<Option<Value>, BackendError> {
        let data = self.data.read().map_err(internal)?;
        let Some(reports) = data.samples.get(sample_id) else {
            return Ok(None);
        };
        let mut trees = serde_json::Map::new();
        for report in reports {
            // The in-memory backend has no technique → tactic table; techniques are listed
            // under one catch-all tactic so the shape is exercised.
            let techniques: Vec<Value> = report
                .attributes
                .mitre_attack_techniques
                .iter()
                .map(|t| {
                    json!({"id": t.id, "name": t.signature_description, "description": "",
                           "link": format!("https://attack.mitre.org/techniques/{}/", t.id.replace('.', "/")),
                           "signatures": [{"severity": t.severity, "description": t.signature_description}]})
                })
                .collect();
            let tactics = if techniques.is_empty() {
                json!([])
            } else {
                json!([{"id": "TA0000", "name": "Unmapped", "description": "", "link": "", "techniques": techniques}])
            };
            trees.insert(
                report.attributes.sandbox_name.clone(),
                json!({ "tactics": tactics }),
            );
        }
        Ok(Some(Value::Object(trees)))
    }

    fn search(&self, request: &SearchRequest) -> Result<SearchPage, BackendError> {
        let terms = parse_query(&request.query)?;
        let descending = match &request.order {
            None => true,
            Some(o) if o.field == "analysis_date" => o.descending,
            Some(o) => {
                return Err(BackendError::InvalidArgument(format!(
                    "unsupported order field {:?}",
                    o.field
                )));
            }
        };
        let data = self.data.read().map_err(internal)?;
        let mut hits = Vec::new();
        for (sha256, reports) in &data.samples {
            let fields: Vec<(&'static str, String)> = reports.iter().flat_map(fields_of).collect();
            let mut snippets = Vec::new();
            let all_match = terms.iter().all(|term| {
                let found = fields.iter().find(|(field, value)| {
                    (term.fields.is_empty() || term.fields.contains(field))
                        && value.to_lowercase().contains(&term.literal)
                });
                if let Some((field, value)) = found {
                    snippets.push(Snippet {
                        field: (*field).to_string(),
                        value: value.clone(),
                    });
                }
                found.is_some()
            });
            if all_match {
                let date = reports
                    .iter()
                    .filter_map(|r| r.attributes.analysis_date)
                    .max();
                let sandboxes: Vec<&str> = reports
                    .iter()
                    .map(|r| r.attributes.sandbox_name.as_str())
                    .collect();
                hits.push((date, sha256.clone(), sandboxes.join(", "), snippets));
            }
        }
        hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        if descending {
            hits.reverse();
        }
        let (page, next_cursor, total_hits) = page_of(hits, &request.page)?;
        Ok(SearchPage {
            hits: page
                .into_iter()
                .map(|(date, sha256, sandboxes, snippets)| SearchHit {
                    attributes: json!({"sha256": sha256, "sandbox_names": sandboxes.split(", ").collect::<Vec<_>>(), "last_analysis_date": date}),
                    sha256,
                    snippets,
                })
                .collect(),
            next_cursor,
            total_hits,
            total_hits_exact: true,
        })
    }

    fn search_orders(&self) -> Vec<String> {
        vec!["analysis_date".to_string()]
    }

    fn pivot_graph(&self, sample_id: &str) -> Result<Option<PivotGraph>, BackendError> {
        let data = self.data.read().map_err(internal)?;
        let Some(reports) = data.samples.get(sample_id) else {
            return Ok(None);
        };
        let indicators = |rs: &[FileBehaviour]| -> BTreeSet<(String, String)> {
            let mut set = BTreeSet::new();
            for r in rs {
                for d in &r.attributes.dns_lookups {
                    set.insert(("domain".to_string(), d.hostname.to_lowercase()));
                }
                for t in &r.attributes.ip_traffic {
                    set.insert(("ip".to_string(), t.destination_ip.clone()));
                }
                for p in r.attributes.processes_created.iter().take(10) {
                    let name = p.rsplit('\\').next().unwrap_or(p);
                    set.insert(("process".to_string(), name.to_lowercase()));
                }
                for f in r.attributes.files_written.iter().take(10) {
                    let name = f.rsplit('\\').next().unwrap_or(f);
                    set.insert(("file".to_string(), name.to_lowercase()));
                }
            }
            set
        };
        let mut graph = PivotGraph::default();
        let centre = format!("sample:{sample_id}");
        graph.nodes.push(GraphNode {
            id: centre.clone(),
            kind: "sample".into(),
            label: sample_id.to_string(),
            sha256: Some(sample_id.to_string()),
        });
        let mut seen_samples = BTreeSet::from([sample_id.to_string()]);
        for (kind, value) in indicators(reports).into_iter().take(40) {
            let node_id = format!("{kind}:{value}");
            graph.nodes.push(GraphNode {
                id: node_id.clone(),
                kind: kind.clone(),
                label: value.clone(),
                sha256: None,
            });
            graph.edges.push(GraphEdge {
                source: centre.clone(),
                target: node_id.clone(),
                relation: kind.clone(),
            });
            for (other, other_reports) in &data.samples {
                if other == sample_id
                    || !indicators(other_reports).contains(&(kind.clone(), value.clone()))
                {
                    continue;
                }
                let other_id = format!("sample:{other}");
                if seen_samples.insert(other.clone()) {
                    graph.nodes.push(GraphNode {
                        id: other_id.clone(),
                        kind: "sample".into(),
                        label: other.clone(),
                        sha256: Some(other.clone()),
                    });
                }
                graph.edges.push(GraphEdge {
                    source: node_id.clone(),
                    target: other_id,
                    relation: kind.clone(),
                });
            }
        }
        Ok(Some(graph))
    }

    fn ingest(&self, upload: &Upload) -> Result<IngestOutcome, BackendError> {
        let (mut report, warnings) = Self::report_from_log(&upload.path, upload.sha256.clone())?;
        if let Some(sandbox) = &upload.sandbox {
            let sha256 = report.sha256().to_string();
            report.attributes.sandbox_name = sandbox.clone();
            report = FileBehaviour::new(&sha256, report.attributes);
        }
        let bytes = std::fs::read(&upload.path).map_err(internal)?;
        let id = report.id.clone();
        self.insert(
            report,
            Some(RawLog {
                file_name: upload.original_name.clone(),
                bytes,
            }),
        );
        Ok(IngestOutcome {
            report_ids: vec![id],
            warnings,
        })
    }

    fn health(&self) -> Result<Health, BackendError> {
        let data = self.data.read().map_err(internal)?;
        Ok(Health {
            samples: data.samples.len() as u64,
            reports: data.samples.values().map(|r| r.len() as u64).sum(),
            ..Health::default()
        })
    }
}

/// The sandbox name the minimal builder gives Sysmon reports.
pub const SYSMON_SANDBOX: &str = SYSINTERNALS_SANDBOX;
