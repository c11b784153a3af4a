//! Pivots (which of a sample's indicators other samples share, and the query that finds them)
//! and sample–indicator–sample relationship graphs.
//!
//! An indicator is shared when its query finds the other sample: the query is the anchored
//! phrase `modifier:"\"value\""`, so sharing follows the search semantics (case- and
//! separator-insensitive, whole separator-delimited words). Graph edges are stricter: an edge
//! joins a sample to an indicator only when the sample's own reports carry that exact value
//! (case-insensitive), so a graph never invents a relation a search merely suggests.

use crate::{Result, Store, StoreError};
use sandscope_model::is_sha256;
use sandscope_model::{BehaviourAttributes, FileBehaviour};
use sandscope_normalise::Normaliser;
use sandscope_query::{Modifier, Query, Term, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Kinds of pivotable indicators, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndicatorKind {
    Hostname,
    IpAddress,
    Url,
    DroppedFileHash,
    FilePath,
    CommandLine,
    RegistryRunKey,
    Service,
    ScheduledTask,
    Mutex,
}

impl IndicatorKind {
    pub fn name(self) -> &'static str {
        match self {
            IndicatorKind::Hostname => "hostname",
            IndicatorKind::IpAddress => "ip_address",
            IndicatorKind::Url => "url",
            IndicatorKind::DroppedFileHash => "dropped_file_sha256",
            IndicatorKind::FilePath => "file_path",
            IndicatorKind::CommandLine => "command_line",
            IndicatorKind::RegistryRunKey => "registry_run_key",
            IndicatorKind::Service => "service",
            IndicatorKind::ScheduledTask => "scheduled_task",
            IndicatorKind::Mutex => "mutex",
        }
    }

    fn modifier(self) -> &'static str {
        match self {
            IndicatorKind::Hostname | IndicatorKind::IpAddress | IndicatorKind::Url => {
                "behaviour_network"
            }
            IndicatorKind::DroppedFileHash | IndicatorKind::FilePath => "behaviour_files",
            IndicatorKind::CommandLine => "behaviour_command_executions",
            IndicatorKind::RegistryRunKey => "behaviour_registry",
            IndicatorKind::Service => "behaviour_services",
            IndicatorKind::ScheduledTask | IndicatorKind::Mutex => "behaviour",
        }
    }
}

/// One indicator of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub kind: IndicatorKind,
    pub value: String,
    /// The search that finds every sample showing this indicator.
    pub query: String,
    /// Samples other than this one that the query finds.
    pub other_samples: u64,
}

/// Longest indicator value pivoted on (longer command lines are listed without a count).
const MAX_PIVOT_VALUE_CHARS: usize = 2000;
/// Most indicators listed per sample.
const MAX_INDICATORS: usize = 500;

/// Quote a value as an anchored phrase: `"\"…\""` with `\` and `"` escaped.
pub fn phrase_query(modifier: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{modifier}:\"\\\"{escaped}\\\"\"")
}

fn indicators_of(reports: &[FileBehaviour]) -> Vec<(IndicatorKind, String)> {
    let normaliser = Normaliser::default();
    let mut out: Vec<(IndicatorKind, String)> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |kind: IndicatorKind, value: &str| {
        let value = value.trim();
        if value.is_empty() || out.len() >= MAX_INDICATORS {
            return;
        }
        if seen.insert((kind, value.to_lowercase())) {
            out.push((kind, value.to_string()));
        }
    };
    for r in reports {
        let a = &r.attributes;
        for d in &a.dns_lookups {
            push(IndicatorKind::Hostname, &d.hostname);
        }
        for ip in a
            .dns_lookups
            .iter()
            .flat_map(|d| d.resolved_ips.iter())
            .chain(a.ip_traffic.iter().map(|t| &t.destination_ip))
        {
            push(IndicatorKind::IpAddress, ip);
        }
        for h in &a.http_conversations {
            push(IndicatorKind::Url, &h.url);
        }
        for d in &a.files_dropped {
            if let Some(h) = &d.sha256 {
                push(IndicatorKind::DroppedFileHash, h);
            }
        }
        for p in a
            .files_dropped
            .iter()
            .map(|d| &d.path)
            .chain(&a.files_written)
        {
            push(IndicatorKind::FilePath, &normaliser.path(p));
        }
        for c in &a.command_executions {
            push(IndicatorKind::CommandLine, c);
        }
        for s in &a.registry_keys_set {
            if s.key.to_ascii_lowercase().contains(r"\currentversion\run") {
                push(IndicatorKind::RegistryRunKey, &s.key);
            }
        }
        for s in a.services_created.iter().chain(&a.services_started) {
            push(IndicatorKind::Service, s);
        }
        for t in &a.scheduled_tasks_created {
            push(IndicatorKind::ScheduledTask, &t.name);
        }
        for m in &a.mutexes_created {
            push(IndicatorKind::Mutex, m);
        }
    }
    out.sort_by_key(|(k, _)| *k);
    out
}

fn not_self(query: Query, sha256: &str) -> Query {
    Query::And(vec![
        query,
        Query::Not(Box::new(Query::Term(Term {
            modifier: Modifier::Sha256,
            value: Value::Token(sha256.to_string()),
            column: 1,
        }))),
    ])
}

/// The indicators of sample `sha256` (lower case) from its `reports`, each with how many
/// other samples `count` finds for its query: the pivot of any store that can count.
pub fn pivot_indicators<E: From<sandscope_query::ParseError>>(
    sha256: &str,
    reports: &[FileBehaviour],
    mut count: impl FnMut(&Query) -> std::result::Result<u64, E>,
) -> std::result::Result<Vec<Indicator>, E> {
    let mut out = Vec::new();
    for (kind, value) in indicators_of(reports) {
        let query = phrase_query(kind.modifier(), &value);
        let other_samples = if value.chars().count() > MAX_PIVOT_VALUE_CHARS {
            0
        } else {
            let parsed = sandscope_query::parse(&query)?;
            count(&not_self(parsed, sha256))?
        };
        out.push(Indicator {
            kind,
            value,
            query,
            other_samples,
        });
    }
    Ok(out)
}

/// Node types of a graph (VirusTotal's object types, plus `path` for files known only by path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    File,
    Domain,
    IpAddress,
    Url,
    Path,
}

impl NodeKind {
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Domain => "domain",
            NodeKind::IpAddress => "ip_address",
            NodeKind::Url => "url",
            NodeKind::Path => "path",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Unique in the graph: the SHA-256 for files, `<type>:<value>` otherwise.
    pub id: String,
    pub kind: NodeKind,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub source: String,
    pub target: String,
    /// A VirusTotal relationship name: `contacted_domains`, `contacted_ips`, `contacted_urls`,
    /// `dropped_files`, `resolutions` (domain → IP).
    pub relation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// True when `max_nodes` stopped the expansion.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Json,
    Dot,
    GraphMl,
}

/// Relations of a file to indicator nodes: `(relation, node kind, label, query)`.
fn graph_links(reports: &[FileBehaviour]) -> Vec<(&'static str, NodeKind, String, String)> {
    let normaliser = Normaliser::default();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |rel: &'static str, kind: NodeKind, label: String, query: String| {
        if !label.is_empty() && seen.insert((kind, label.to_lowercase())) {
            out.push((rel, kind, label, query));
        }
    };
    for r in reports {
        let a: &BehaviourAttributes = &r.attributes;
        for d in &a.dns_lookups {
            let h = d.hostname.trim().to_lowercase();
            push(
                "contacted_domains",
                NodeKind::Domain,
                h.clone(),
                phrase_query("behaviour_network", &h),
            );
        }
        for t in &a.ip_traffic {
            let ip = t.destination_ip.trim().to_string();
            push(
                "contacted_ips",
                NodeKind::IpAddress,
                ip.clone(),
                phrase_query("behaviour_network", &ip),
            );
        }
        for h in &a.http_conversations {
            push(
                "contacted_urls",
                NodeKind::Url,
                h.url.clone(),
                phrase_query("behaviour_network", &h.url),
            );
        }
        for d in &a.files_dropped {
            match &d.sha256 {
                Some(h) if is_sha256(h) => {
                    let h = h.to_ascii_lowercase();
                    push(
                        "dropped_files",
                        NodeKind::File,
                        h.clone(),
                        phrase_query("behaviour_files", &h),
                    );
                }
                _ => {
                    let p = normaliser.path(&d.path);
                    push(
                        "dropped_files",
                        NodeKind::Path,
                        p.clone(),
                        phrase_query("behaviour_files", &p),
                    );
                }
            }
        }
        for p in &a.files_written {
            let p = normaliser.path(p);
            push(
                "dropped_files",
                NodeKind::Path,
                p.clone(),
                phrase_query("behaviour_files", &p),
            );
        }
    }
    out
}

fn resolutions(reports: &[FileBehaviour]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in reports {
        for d in &r.attributes.dns_lookups {
            for ip in &d.resolved_ips {
                out.push((d.hostname.trim().to_lowercase(), ip.trim().to_string()));
            }
        }
    }
    out
}

fn node_id(kind: NodeKind, label: &str) -> String {
    match kind {
        NodeKind::File => label.to_string(),
        _ => format!("{}:{}", kind.name(), label.to_lowercase()),
    }
}

struct GraphBuilder {
    graph: Graph,
    ids: HashMap<String, usize>,
    edges: HashSet<(String, String, String)>,
    max_nodes: usize,
}

impl GraphBuilder {
    /// Adds the node if there is room; returns whether it is (now) in the graph.
    fn node(&mut self, kind: NodeKind, label: &str) -> bool {
        let id = node_id(kind, label);
        if self.ids.contains_key(&id) {
            return true;
        }
        if self.graph.nodes.len() >= self.max_nodes {
            self.graph.truncated = true;
            return false;
        }
        self.ids.insert(id.clone(), self.graph.nodes.len());
        self.graph.nodes.push(Node {
            id,
            kind,
            label: label.to_string(),
        });
        true
    }

    fn edge(&mut self, source: String, target: String, relation: &str) {
        if self
            .edges
            .insert((source.clone(), target.clone(), relation.to_string()))
        {
            self.graph.edges.push(Edge {
                source,
                target,
                relation: relation.to_string(),
            });
        }
    }
}

impl Store {
    /// The sample's indicators, each with how many other samples share it and the query that
    /// finds them. Errors with [`StoreError::InvalidSha256`] for a malformed hash; an unknown
    /// sample has no indicators.
    pub fn pivot(&self, sha256: &str) -> Result<Vec<Indicator>> {
        let sha = sha256.trim().to_ascii_lowercase();
        if !is_sha256(&sha) {
            return Err(StoreError::InvalidSha256(sha256.to_string()));
        }
        let reports = self.sample_reports(&sha)?;
        let now = crate::SearchRequest::new("").now;
        pivot_indicators(&sha, &reports, |query| self.count(query, now))
    }

    /// The relationship graph around a sample: depth 1 = the sample and its network/dropped-file
    /// indicators, depth 2 adds the other samples sharing them, depth 3 their indicators, …
    /// At most `max_nodes` nodes.
    pub fn graph(&self, sha256: &str, depth: usize, max_nodes: usize) -> Result<Graph> {
        let sha = sha256.trim().to_ascii_lowercase();
        if !is_sha256(&sha) {
            return Err(StoreError::InvalidSha256(sha256.to_string()));
        }
        sample_graph(
            &sha,
            depth,
            max_nodes,
            |sha| self.sample_reports(sha),
            |query, request| self.search_parsed(query, request),
        )
    }
}

/// The relationship graph around sample `sha` (lower-case hex, checked by the caller) of any
/// store that can list a sample's reports and run a parsed search: the graph of every store.
/// See [`Store::graph`] for `depth` and `max_nodes`.
pub fn sample_graph<E>(
    sha: &str,
    depth: usize,
    max_nodes: usize,
    mut sample_reports: impl FnMut(&str) -> std::result::Result<Vec<FileBehaviour>, E>,
    mut search: impl FnMut(&Query, &crate::SearchRequest) -> std::result::Result<crate::SearchPage, E>,
) -> std::result::Result<Graph, E> {
    let mut b = GraphBuilder {
        graph: Graph::default(),
        ids: HashMap::new(),
        edges: HashSet::new(),
        max_nodes: max_nodes.max(1),
    };
    if sample_reports(sha)?.is_empty() {
        return Ok(b.graph);
    }
    b.node(NodeKind::File, sha);
    let now = crate::SearchRequest::new("").now;
    // Queue of (node kind, label, query for indicator nodes, distance).
    let mut queue: VecDeque<(NodeKind, String, Option<String>, usize)> = VecDeque::new();
    let mut expanded_files: HashSet<String> = HashSet::new();
    let mut expanded_indicators: HashSet<String> = HashSet::new();
    queue.push_back((NodeKind::File, sha.to_string(), None, 0));
    while let Some((kind, label, query, dist)) = queue.pop_front() {
        if dist >= depth {
            continue;
        }
        match query {
            None => {
                // A sample: link its indicators.
                if !expanded_files.insert(label.clone()) {
                    continue;
                }
                let reports = sample_reports(&label)?;
                for (rel, k, l, q) in graph_links(&reports) {
                    if b.node(k, &l) {
                        b.edge(label.clone(), node_id(k, &l), rel);
                        queue.push_back((k, l, Some(q), dist + 1));
                    }
                }
                for (host, ip) in resolutions(&reports) {
                    if b.ids.contains_key(&node_id(NodeKind::Domain, &host))
                        && b.node(NodeKind::IpAddress, &ip)
                    {
                        b.edge(
                            node_id(NodeKind::Domain, &host),
                            node_id(NodeKind::IpAddress, &ip),
                            "resolutions",
                        );
                    }
                }
            }
            Some(q) => {
                // An indicator: link the other samples that carry exactly it.
                let id = node_id(kind, &label);
                if !expanded_indicators.insert(id.clone()) {
                    continue;
                }
                let Ok(parsed) = sandscope_query::parse(&q) else {
                    continue;
                };
                let mut request = crate::SearchRequest::new(q.clone());
                request.limit = 300;
                request.now = now;
                let mut cursor = None;
                'pages: loop {
                    request.cursor = cursor;
                    let page = search(&parsed, &request)?;
                    for hit in page.hits {
                        if b.ids.contains_key(&hit.sha256) && expanded_files.contains(&hit.sha256) {
                            // Already linked when that sample was expanded.
                            continue;
                        }
                        let reports = sample_reports(&hit.sha256)?;
                        let Some((rel, _, _, _)) = graph_links(&reports)
                            .into_iter()
                            .find(|(_, k, l, _)| node_id(*k, l) == id)
                        else {
                            continue;
                        };
                        if !b.node(NodeKind::File, &hit.sha256) {
                            break 'pages;
                        }
                        b.edge(hit.sha256.clone(), id.clone(), rel);
                        queue.push_back((NodeKind::File, hit.sha256, None, dist + 1));
                    }
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
            }
        }
    }
    Ok(b.graph)
}

impl Graph {
    /// Render the graph as JSON (`{"nodes": [...], "links": [...]}`), Graphviz DOT or GraphML.
    pub fn export(&self, format: GraphFormat) -> String {
        match format {
            GraphFormat::Json => {
                let nodes: Vec<_> = self
                    .nodes
                    .iter()
                    .map(|n| serde_json::json!({"id": n.id, "type": n.kind.name(), "label": n.label}))
                    .collect();
                let links: Vec<_> = self
                    .edges
                    .iter()
                    .map(|e| serde_json::json!({"source": e.source, "target": e.target, "type": e.relation}))
                    .collect();
                let v = serde_json::json!({"nodes": nodes, "links": links, "truncated": self.truncated});
                serde_json::to_string_pretty(&v).unwrap_or_default()
            }
            GraphFormat::Dot => {
                let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
                let mut out = String::from("digraph sandscope {\n  rankdir=LR;\n");
                let shapes: BTreeMap<NodeKind, &str> = [
                    (NodeKind::File, "box"),
                    (NodeKind::Domain, "ellipse"),
                    (NodeKind::IpAddress, "diamond"),
                    (NodeKind::Url, "note"),
                    (NodeKind::Path, "folder"),
                ]
                .into_iter()
                .collect();
                for n in &self.nodes {
                    out.push_str(&format!(
                        "  {} [label={}, type={}, shape={}];\n",
                        q(&n.id),
                        q(&n.label),
                        q(n.kind.name()),
                        shapes.get(&n.kind).copied().unwrap_or("box")
                    ));
                }
                for e in &self.edges {
                    out.push_str(&format!(
                        "  {} -> {} [label={}];\n",
                        q(&e.source),
                        q(&e.target),
                        q(&e.relation)
                    ));
                }
                out.push_str("}\n");
                out
            }
            GraphFormat::GraphMl => {
                let x = |s: &str| {
                    s.chars()
                        .filter(|c| !c.is_control() || *c == '\t')
                        .collect::<String>()
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                        .replace('"', "&quot;")
                };
                let mut out = String::from(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n  <key id=\"type\" for=\"node\" attr.name=\"type\" attr.type=\"string\"/>\n  <key id=\"label\" for=\"node\" attr.name=\"label\" attr.type=\"string\"/>\n  <key id=\"relation\" for=\"edge\" attr.name=\"relation\" attr.type=\"string\"/>\n  <graph id=\"sandscope\" edgedefault=\"directed\">\n",
                );
                for n in &self.nodes {
                    out.push_str(&format!(
                        "    <node id=\"{}\"><data key=\"type\">{}</data><data key=\"label\">{}</data></node>\n",
                        x(&n.id),
                        n.kind.name(),
                        x(&n.label)
                    ));
                }
                for (i, e) in self.edges.iter().enumerate() {
                    out.push_str(&format!(
                        "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\"><data key=\"relation\">{}</data></edge>\n",
                        x(&e.source),
                        x(&e.target),
                        x(&e.relation)
                    ));
                }
                out.push_str("  </graph>\n</graphml>\n");
                out
            }
        }
    }
}
