//! What the API shows of a sample, whatever stores it: its behaviour summary and MITRE trees
//! from its reports, and its pivot graph in the UI's node ids or as `sandscope graph` exports it.

use crate::backend::{BackendError, GraphEdge, GraphFormat, GraphNode, PivotGraph};
use sandscope_model::{BehaviourSummary, FileBehaviour, behaviour_mitre_trees};
use std::collections::HashMap;

/// Depth and size of the pivot graph the UI draws around one sample.
pub(crate) const GRAPH_DEPTH: usize = 2;
pub(crate) const GRAPH_MAX_NODES: usize = 200;

/// `GET /files/{id}/behaviour_summary`'s `data`: the merged attributes of the reports.
pub(crate) fn summary(reports: &[FileBehaviour]) -> Result<serde_json::Value, BackendError> {
    json(&BehaviourSummary::merge(reports))
}

/// The MITRE ATT&CK trees of a sample's reports, one per sandbox.
pub(crate) fn mitre_trees(reports: &[FileBehaviour]) -> Result<serde_json::Value, BackendError> {
    json(&behaviour_mitre_trees(reports))
}

fn json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, BackendError> {
    serde_json::to_value(value).map_err(|e| BackendError::Internal(e.to_string()))
}

/// The store's graph in the UI's terms: ids are `kind:value`, and a file is a `sample` (which
/// the UI can expand) when `is_sample` says the store holds reports for its SHA-256.
pub(crate) fn pivot_graph(
    graph: sandscope_store::Graph,
    mut is_sample: impl FnMut(&str) -> Result<bool, BackendError>,
) -> Result<PivotGraph, BackendError> {
    // The store names every file node by its bare SHA-256.
    let mut ids = HashMap::new();
    let mut nodes = Vec::with_capacity(graph.nodes.len());
    for node in graph.nodes {
        let is_file = node.kind == sandscope_store::NodeKind::File;
        let is_sample = is_file && is_sample(&node.id)?;
        let kind = if is_sample {
            "sample"
        } else {
            node.kind.name()
        };
        let id = if is_file {
            format!("{kind}:{}", node.id)
        } else {
            node.id.clone()
        };
        ids.insert(node.id.clone(), id.clone());
        nodes.push(GraphNode {
            sha256: is_sample.then(|| node.id.clone()),
            id,
            kind: kind.to_string(),
            label: node.label,
        });
    }
    let renamed = |id: String| ids.get(&id).cloned().unwrap_or(id);
    let edges = graph
        .edges
        .into_iter()
        .map(|e| GraphEdge {
            source: renamed(e.source),
            target: renamed(e.target),
            relation: e.relation,
        })
        .collect();
    Ok(PivotGraph { nodes, edges })
}

/// The graph download: the bytes `sandscope graph` prints.
pub(crate) fn export_graph(graph: &sandscope_store::Graph, format: GraphFormat) -> String {
    let mut text = graph.export(format);
    // `sandscope graph` ends its JSON with a newline; the download is the same bytes.
    if format == GraphFormat::Json {
        text.push('\n');
    }
    text
}
