//! The server's [`Backend`] over the embedded store: reports and raw logs from
//! `sandscope-store`, summaries and MITRE trees from `sandscope-model`, uploads through the
//! `sandscope-ingest` pipeline (the same path `sandscope ingest` takes).

use crate::backend::{
    Backend, BackendError, GraphFormat, Health, IngestOutcome, Page, PageRequest, PivotGraph,
    SearchPage, SearchRequest, StoredLog, Upload,
};
use crate::{sample_views, upload_ingest};
use sandscope_hunting::{DEFAULT_MAX_RUNNING, Livehunt, Retrohunts};
use sandscope_ingest::Pipeline;
use sandscope_model::{FileBehaviour, is_sha256};
use sandscope_store::{Exhausted, Store, StoreError};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often a store whose last write failed (a full disk) retries indexing what is pending,
/// so it recovers without waiting for the next upload.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// A [`Backend`] over one data directory.
pub struct StoreBackend {
    store: Arc<Store>,
    pipeline: Pipeline,
    /// `None` on a read-only store, or when its jobs cannot be read.
    retrohunts: Option<Retrohunts>,
}

impl StoreBackend {
    /// Serve `store`; a writable store retries failed writes every [`RETRY_INTERVAL`].
    pub fn new(store: Store, pipeline: Pipeline) -> Self {
        Self::with_retry_interval(store, pipeline, RETRY_INTERVAL)
    }

    pub fn with_retry_interval(store: Store, pipeline: Pipeline, interval: Duration) -> Self {
        let store = Arc::new(store);
        // Every report stored through this backend is hunted by the store's rulesets.
        let pipeline = match pipeline.livehunt() {
            Some(_) => pipeline,
            None => match Livehunt::load(store.clone()) {
                Ok(live) => pipeline.with_livehunt(Arc::new(live)),
                Err(e) => {
                    eprintln!("sandscope-server: Livehunt rulesets cannot be loaded: {e}");
                    pipeline
                }
            },
        };
        let mut retrohunts = None;
        if !store.is_read_only() {
            spawn_retry(Arc::downgrade(&store), interval);
            // Jobs a stopped server left unfinished are resumed here.
            match Retrohunts::start(store.clone(), DEFAULT_MAX_RUNNING) {
                Ok(jobs) => retrohunts = Some(jobs),
                Err(e) => eprintln!("sandscope-server: Retrohunt jobs cannot be loaded: {e}"),
            }
        }
        Self {
            store,
            pipeline,
            retrohunts,
        }
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
                sample_views::GRAPH_DEPTH,
                sample_views::GRAPH_MAX_NODES,
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
            Some(reports) => Ok(Some(sample_views::summary(&reports)?)),
            None => Ok(None),
        }
    }

    fn behaviour_mitre_trees(
        &self,
        sample_id: &str,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        match self.sample_reports(sample_id)? {
            Some(reports) => Ok(Some(sample_views::mitre_trees(&reports)?)),
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
        sample_views::pivot_graph(graph, |sha| Ok(self.sample_reports(sha)?.is_some())).map(Some)
    }

    fn graph_export(
        &self,
        sample_id: &str,
        format: GraphFormat,
    ) -> Result<Option<String>, BackendError> {
        let Some(graph) = self.sample_graph(sample_id)? else {
            return Ok(None);
        };
        Ok(Some(sample_views::export_graph(&graph, format)))
    }

    fn ingest(&self, upload: &Upload) -> Result<IngestOutcome, BackendError> {
        let prepared = upload_ingest::prepare(&self.pipeline, upload)?;
        // The reports and their Livehunt notifications in one transaction, before the upload
        // is acknowledged: a failure here is the server's.
        let (report_ids, _) = self
            .pipeline
            .put_reports(&self.store, prepared.reports, prepared.livehunt)
            .map_err(internal)?;
        Ok(upload_ingest::outcome(
            report_ids,
            &prepared.warnings,
            upload,
        ))
    }

    fn hunting(&self) -> Option<sandscope_hunting::Hunting<'_>> {
        Some(sandscope_hunting::Hunting {
            store: self.store.as_ref(),
            live: self.pipeline.livehunt()?,
        })
    }

    fn retrohunts(&self) -> Option<&Retrohunts> {
        self.retrohunts.as_ref()
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
