//! The server's [`Backend`] over the embedded store: reports and raw logs from
//! `sandscope-store`, summaries and MITRE trees from `sandscope-model`, uploads through the
//! `sandscope-ingest` pipeline (the same path `sandscope ingest` takes).

use crate::backend::{
    Backend, BackendError, GraphEdge, GraphNode, Health, IngestOutcome, Page, PageRequest,
    PivotGraph, RawLog, SearchHit, SearchPage, SearchRequest, Snippet, Upload,
};
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_model::{BehaviourSummary, FileBehaviour, behaviour_mitre_trees};
use sandscope_store::{Exhausted, Order, Store, StoreError};
use std::path::Path;

/// Depth and size of the pivot graph the UI draws around one sample.
const GRAPH_DEPTH: usize = 2;
const GRAPH_MAX_NODES: usize = 200;

/// A [`Backend`] over one data directory.
pub struct StoreBackend {
    store: Store,
    pipeline: Pipeline,
}

impl StoreBackend {
    pub fn new(store: Store, pipeline: Pipeline) -> Self {
        Self { store, pipeline }
    }

    /// Open (or create) the data directory.
    pub fn open(dir: &Path, pipeline: Pipeline) -> Result<Self, StoreError> {
        Ok(Self::new(Store::open(dir)?, pipeline))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    fn sample_reports(&self, sample_id: &str) -> Result<Option<Vec<FileBehaviour>>, BackendError> {
        let sha256 = sample_id.to_ascii_lowercase();
        let reports = self.store.sample_reports(&sha256).map_err(internal)?;
        Ok((!reports.is_empty()).then_some(reports))
    }
}

fn internal(err: StoreError) -> BackendError {
    match err {
        StoreError::Query(e) => BackendError::Query {
            message: e.message,
            column: e.column,
        },
        StoreError::InvalidCursor => BackendError::InvalidArgument("invalid cursor".into()),
        StoreError::InvalidOrder(o) => {
            BackendError::InvalidArgument(format!("invalid order `{o}`"))
        }
        StoreError::InvalidSha256(s) => {
            BackendError::InvalidArgument(format!("not a SHA-256: `{s}`"))
        }
        StoreError::TooBroad(m) => BackendError::InvalidArgument(format!("query too broad: {m}")),
        StoreError::Exhausted(why @ Exhausted::Work { .. }) => {
            BackendError::BudgetExceeded(why.to_string())
        }
        StoreError::Exhausted(why) => BackendError::DeadlineExceeded(why.to_string()),
        other => BackendError::Internal(other.to_string()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, BackendError> {
    serde_json::to_value(value).map_err(|e| BackendError::Internal(e.to_string()))
}

impl Backend for StoreBackend {
    fn behaviours(
        &self,
        sample_id: &str,
        page: &PageRequest,
    ) -> Result<Option<Page<FileBehaviour>>, BackendError> {
        // The store keys samples by SHA-256; MD5/SHA-1 ids are not indexed.
        if sample_id.len() != 64 {
            return Ok(None);
        }
        let sha256 = sample_id.to_ascii_lowercase();
        let listed = self
            .store
            .list_sample_reports(&sha256, page.limit, page.cursor.as_deref())
            .map_err(internal)?;
        if listed.reports.is_empty() && page.cursor.is_none() {
            return Ok(None);
        }
        Ok(Some(Page {
            items: listed.reports,
            next_cursor: listed.next_cursor,
            total: None,
        }))
    }

    fn behaviour(&self, behaviour_id: &str) -> Result<Option<FileBehaviour>, BackendError> {
        self.store.report(behaviour_id).map_err(internal)
    }

    fn raw_log(&self, behaviour_id: &str) -> Result<Option<RawLog>, BackendError> {
        Ok(self
            .store
            .raw_log(behaviour_id)
            .map_err(internal)?
            .map(|log| RawLog {
                file_name: log.file_name,
                bytes: log.bytes,
            }))
    }

    fn behaviour_summary(
        &self,
        sample_id: &str,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        match self.sample_reports(sample_id)? {
            Some(reports) => Ok(Some(json(&BehaviourSummary::merge(&reports))?)),
            None => Ok(None),
        }
    }

    fn behaviour_mitre_trees(
        &self,
        sample_id: &str,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        match self.sample_reports(sample_id)? {
            Some(reports) => Ok(Some(json(&behaviour_mitre_trees(&reports))?)),
            None => Ok(None),
        }
    }

    fn search(&self, request: &SearchRequest) -> Result<SearchPage, BackendError> {
        let mut store_request = sandscope_store::SearchRequest::new(request.query.clone());
        store_request.limit = request.page.limit;
        store_request.cursor = request.page.cursor.clone();
        store_request.limits = sandscope_store::SearchLimits {
            max_work: request.limits.max_work,
            deadline: request.limits.deadline,
            cancel: Some(request.limits.cancel.shared()),
            parallel: request.limits.parallel,
        };
        if let Some(order) = &request.order {
            let text = format!(
                "{}{}",
                order.field,
                if order.descending { "-" } else { "+" }
            );
            store_request.order = Order::parse(&text).map_err(internal)?;
        }
        let page = self.store.search(&store_request).map_err(internal)?;
        let hits = page
            .hits
            .into_iter()
            .map(|hit| {
                let attributes = serde_json::json!({
                    "sha256": hit.sha256,
                    "first_submission_date": hit.first_seen,
                    "last_submission_date": hit.last_seen,
                    "sandboxes": hit.sandboxes,
                    "behaviours": hit.report_ids,
                    "tags": hit.tags,
                    "sigma_analysis_stats": {
                        "critical": hit.sigma[0], "high": hit.sigma[1],
                        "medium": hit.sigma[2], "low": hit.sigma[3],
                    },
                });
                SearchHit {
                    sha256: hit.sha256,
                    attributes,
                    snippets: hit
                        .snippets
                        .into_iter()
                        .map(|value| Snippet {
                            field: "behaviour".to_string(),
                            value,
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(SearchPage {
            hits,
            next_cursor: page.next_cursor,
            total_hits: page.total_hits,
            total_hits_exact: page.total_hits_exact,
        })
    }

    fn search_orders(&self) -> Vec<String> {
        ["first_submission_date", "last_submission_date"]
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn pivot_graph(&self, sample_id: &str) -> Result<Option<PivotGraph>, BackendError> {
        if self.sample_reports(sample_id)?.is_none() {
            return Ok(None);
        }
        let graph = self
            .store
            .graph(
                &sample_id.to_ascii_lowercase(),
                GRAPH_DEPTH,
                GRAPH_MAX_NODES,
            )
            .map_err(internal)?;
        // The UI's ids are `kind:value`, and only files that are stored samples can be
        // expanded; the store names every file node by its bare SHA-256.
        let mut ids = std::collections::HashMap::new();
        let mut nodes = Vec::with_capacity(graph.nodes.len());
        for node in graph.nodes {
            let is_file = node.kind == sandscope_store::NodeKind::File;
            let is_sample = is_file && self.sample_reports(&node.id)?.is_some();
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
        Ok(Some(PivotGraph { nodes, edges }))
    }

    fn ingest(&self, upload: &Upload) -> Result<IngestOutcome, BackendError> {
        let options = IngestOptions {
            sha256: upload.sha256.clone(),
            sample: None,
            sandbox: upload.sandbox.clone(),
        };
        let mut prepared = self
            .pipeline
            .prepare(std::slice::from_ref(&upload.path), &options)
            .map_err(|e| BackendError::InvalidArgument(e.to_string()))?;
        // The upload sits in a temporary file: keep the name the client gave, not the temp path.
        for report in &mut prepared.reports {
            if let Some(raw) = &mut report.raw_log {
                raw.file_name = upload.original_name.clone();
            }
        }
        let report_ids = self.store.put_reports(prepared.reports).map_err(internal)?;
        Ok(IngestOutcome {
            report_ids,
            warnings: prepared.warnings.iter().map(ToString::to_string).collect(),
        })
    }

    fn health(&self) -> Result<Health, BackendError> {
        let stats = self.store.stats().map_err(internal)?;
        Ok(Health {
            samples: stats.samples,
            reports: stats.reports,
        })
    }
}
