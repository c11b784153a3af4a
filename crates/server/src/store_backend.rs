//! The server's [`Backend`] over the embedded store: reports and raw logs from
//! `sandscope-store`, summaries and MITRE trees from `sandscope-model`, uploads through the
//! `sandscope-ingest` pipeline (the same path `sandscope ingest` takes).

use crate::backend::{
    Backend, BackendError, GraphEdge, GraphFormat, GraphNode, Health, IngestOutcome, Page,
    PageRequest, PivotGraph, SearchPage, SearchRequest, StoredLog, Upload,
};
use sandscope_hunting::Livehunt;
use sandscope_ingest::{Detonation, IngestOptions, Pipeline};
use sandscope_model::{BehaviourSummary, FileBehaviour, behaviour_mitre_trees, is_sha256};
use sandscope_store::{Exhausted, Store, StoreError};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Depth and size of the pivot graph the UI draws around one sample.
const GRAPH_DEPTH: usize = 2;
const GRAPH_MAX_NODES: usize = 200;

/// How often a store whose last write failed (a full disk) retries indexing what is pending,
/// so it recovers without waiting for the next upload.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// A [`Backend`] over one data directory.
pub struct StoreBackend {
    store: Arc<Store>,
    pipeline: Pipeline,
}

impl StoreBackend {
    /// Serve `store`; a writable store retries failed writes every [`RETRY_INTERVAL`].
    pub fn new(store: Store, pipeline: Pipeline) -> Self {
        Self::with_retry_interval(store, pipeline, RETRY_INTERVAL)
    }

    pub fn with_retry_interval(store: Store, pipeline: Pipeline, interval: Duration) -> Self {
        // Every report stored through this backend is hunted by the store's rulesets.
        let pipeline = match pipeline.livehunt() {
            Some(_) => pipeline,
            None => match Livehunt::load(&store) {
                Ok(live) => pipeline.with_livehunt(Arc::new(live)),
                Err(e) => {
                    eprintln!("sandscope-server: Livehunt rulesets cannot be loaded: {e}");
                    pipeline
                }
            },
        };
        let store = Arc::new(store);
        if !store.is_read_only() {
            spawn_retry(Arc::downgrade(&store), interval);
        }
        Self { store, pipeline }
    }

    /// Open (or create) the data directory.
    pub fn open(dir: &Path, pipeline: Pipeline) -> Result<Self, StoreError> {
        Ok(Self::new(Store::open(dir)?, pipeline))
    }

    /// Open an existing data directory read-only: searches and reports are served, uploads
    /// are refused (403), and nothing in the directory is written.
    pub fn open_read_only(dir: &Path, pipeline: Pipeline) -> Result<Self, StoreError> {
        Ok(Self::new(Store::open_read_only(dir)?, pipeline))
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

    /// The pivot graph around a stored sample, as `sandscope graph` builds it; `None` when
    /// the sample is unknown.
    fn sample_graph(
        &self,
        sample_id: &str,
    ) -> Result<Option<sandscope_store::Graph>, BackendError> {
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
        Ok(Some(graph))
    }
}

/// Retry the store's failed writes every `interval` until the store is dropped.
fn spawn_retry(store: Weak<Store>, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("sandscope-store-retry".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(store) = store.upgrade() else {
                    return;
                };
                if store.needs_retry()
                    && let Err(e) = store.retry_pending()
                {
                    eprintln!("sandscope-server: retrying the failed write: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        // Writes still retry by themselves; only the timer is missing.
        eprintln!("sandscope-server: cannot start the store retry thread: {e}");
    }
}

fn internal(err: StoreError) -> BackendError {
    // The store's messages name the data directory: log them, tell the client what matters.
    let stored = match &err {
        StoreError::StorageFull { stored, .. } | StoreError::Unwritable { stored, .. } => *stored,
        _ => Some(false),
    };
    if err.is_storage_full() {
        eprintln!("sandscope-server: {err}");
        return BackendError::InsufficientStorage(
            match stored {
                Some(true) => "the server's disk is full: the reports were stored and become searchable by themselves once space is freed",
                Some(false) => "the server's disk is full: nothing was stored; retry once space is freed",
                None => "the server's disk is full: the upload may have been stored; upload it again once space is freed (that replaces it)",
            }
            .to_string(),
        );
    }
    if err.is_unwritable() {
        eprintln!("sandscope-server: {err}");
        return BackendError::Unavailable(
            match stored {
                Some(true) => "the server cannot write to its data directory: the reports were stored and become searchable by themselves once it can",
                Some(false) => "the server cannot write to its data directory: nothing was stored",
                None => "the server cannot write to its data directory: the upload may have been stored; upload it again once it can (that replaces it)",
            }
            .to_string(),
        );
    }
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
        StoreError::ReadOnly(_) => {
            BackendError::ReadOnly("this server is read-only: uploads are not accepted".into())
        }
        err if err.is_recovering() => {
            eprintln!("sandscope-server: {err}");
            BackendError::Unavailable(
                "the store is recovering from a failed write; retry shortly".into(),
            )
        }
        StoreError::Exhausted(why @ Exhausted::Work { .. }) => {
            BackendError::BudgetExceeded(why.to_string())
        }
        StoreError::Exhausted(why) => BackendError::DeadlineExceeded(why.to_string()),
        other => BackendError::Internal(other.to_string()),
    }
}

/// `text` with the spool file's path replaced by the name the client uploaded: the client
/// knows its file by that name, and the server's paths are none of its business.
fn as_uploaded(text: &str, upload: &Upload) -> String {
    text.replace(
        upload.path.to_string_lossy().as_ref(),
        &upload.original_name,
    )
}

/// An ingest failure as the client should see it: the input's fault is a 4xx naming the
/// upload (413 past a size budget), this machine's fault (disk full, permissions, the
/// decompression budget shared by concurrent uploads) a 5xx, its detail logged only.
fn ingest_error(error: &sandscope_ingest::IngestError, upload: &Upload) -> BackendError {
    let message = as_uploaded(&error.to_string(), upload);
    if !error.is_input_fault() {
        if error.is_decompression_budget() {
            return BackendError::Unavailable(message);
        }
        return BackendError::Internal(format!("ingest of {}: {error}", upload.original_name));
    }
    match error {
        sandscope_ingest::IngestError::MemoryBudget { .. } => BackendError::TooLarge(message),
        _ if error.is_decompression_budget() => BackendError::TooLarge(message),
        _ => BackendError::InvalidArgument(message),
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
        if !is_sha256(sample_id) {
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

    fn raw_log(&self, behaviour_id: &str) -> Result<Option<StoredLog>, BackendError> {
        self.store.raw_log(behaviour_id).map_err(internal)
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
        self.store.search(request).map_err(internal)
    }

    fn search_orders(&self) -> Vec<String> {
        ["first_submission_date", "last_submission_date"]
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn pivot_graph(&self, sample_id: &str) -> Result<Option<PivotGraph>, BackendError> {
        let Some(graph) = self.sample_graph(sample_id)? else {
            return Ok(None);
        };
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

    fn graph_export(
        &self,
        sample_id: &str,
        format: GraphFormat,
    ) -> Result<Option<String>, BackendError> {
        let Some(graph) = self.sample_graph(sample_id)? else {
            return Ok(None);
        };
        let mut text = graph.export(format);
        // `sandscope graph` ends its JSON with a newline; the download is the same bytes.
        if format == GraphFormat::Json {
            text.push('\n');
        }
        Ok(Some(text))
    }

    fn ingest(&self, upload: &Upload) -> Result<IngestOutcome, BackendError> {
        let options = IngestOptions {
            sha256: upload.sha256.clone(),
            sample: None,
            sandbox: upload.sandbox.clone(),
        };
        let is_run = upload.path.is_dir();
        let detonation = if is_run {
            // The files of one upload are one detonation; `plan` finds the run folder's layout
            // in them (`reports/`, `files.json`), as `sandscope ingest DIR` would.
            sandscope_ingest::plan(std::slice::from_ref(&upload.path), true)
                .map_err(|e| ingest_error(&e, upload))?
                .pop()
                .ok_or_else(|| BackendError::InvalidArgument("the upload holds no file".into()))?
        } else {
            Detonation::of_files(std::slice::from_ref(&upload.path))
        };
        let mut prepared = self
            .pipeline
            .prepare_detonation(&detonation, &options)
            .map_err(|e| ingest_error(&e, upload))?;
        // A single upload sits in a temporary file: keep the name the client gave, not the
        // temp name (the files of a run keep their own names, which the client chose).
        if !is_run {
            for report in &mut prepared.reports {
                if let Some(raw) = &mut report.raw_log {
                    raw.file_name = upload.original_name.clone();
                }
            }
        }
        let report_ids = self.store.put_reports(prepared.reports).map_err(internal)?;
        // Livehunt before the upload is acknowledged: a failure here is the server's.
        self.pipeline
            .notify(self.store.as_ref(), prepared.livehunt, &report_ids)?;
        Ok(IngestOutcome {
            report_ids,
            warnings: prepared
                .warnings
                .iter()
                .map(|w| as_uploaded(&w.to_string(), upload))
                .collect(),
        })
    }

    fn hunting(&self) -> Option<sandscope_hunting::Hunting<'_>> {
        Some(sandscope_hunting::Hunting {
            store: self.store.as_ref(),
            live: self.pipeline.livehunt()?,
        })
    }

    fn health(&self) -> Result<Health, BackendError> {
        let stats = self.store.stats().map_err(internal)?;
        let writes = self.store.write_health().map_err(internal)?;
        // Unauthenticated: say what is wrong, not where (the error itself is in the log).
        let mut reasons = Vec::new();
        if writes.pending_samples > 0 && (writes.last_error.is_some() || writes.read_only) {
            reasons.push(format!(
                "{} sample(s) stored but not yet searchable",
                writes.pending_samples
            ));
        }
        if writes.storage_full {
            reasons.push("the last write failed: the disk is full".to_string());
        } else if writes.unwritable {
            reasons.push("the last write failed: the data directory is not writable".to_string());
        } else if writes.last_error.is_some() {
            reasons.push("the last write failed (see the server log)".to_string());
        }
        Ok(Health {
            samples: stats.samples,
            reports: stats.reports,
            degraded: (!reasons.is_empty()).then(|| reasons.join("; ")),
            read_only: writes.read_only,
        })
    }

    fn accepts_ingest(&self) -> bool {
        !self.store.is_read_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandscope_ingest::IngestError;

    fn upload() -> Upload {
        Upload {
            path: "/var/tmp/sandscope-spool-77/upload-Ab12.gz".into(),
            original_name: "case 7.evtx.gz".into(),
            sha256: None,
            sandbox: None,
        }
    }

    #[test]
    fn machine_faults_are_5xx_and_input_faults_name_the_upload() {
        let upload = upload();
        for (os_error, what) in [(28, "disk full"), (13, "permission"), (30, "read-only")] {
            let error = IngestError::Io {
                path: upload.path.clone(),
                source: std::io::Error::from_raw_os_error(os_error),
            };
            assert!(
                matches!(ingest_error(&error, &upload), BackendError::Internal(_)),
                "{what}"
            );
        }
        let error = IngestError::MemoryBudget {
            file: upload.path.display().to_string(),
            budget: 1,
            held: 1,
        };
        let BackendError::TooLarge(message) = ingest_error(&error, &upload) else {
            panic!("413 expected");
        };
        assert!(message.starts_with("case 7.evtx.gz: "), "{message}");
        assert!(!message.contains("spool"), "{message}");
        let error = IngestError::Io {
            path: upload.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt deflate stream"),
        };
        assert_eq!(
            ingest_error(&error, &upload),
            BackendError::InvalidArgument("case 7.evtx.gz: corrupt deflate stream".into())
        );
    }
}
