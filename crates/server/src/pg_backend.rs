//! The server's [`Backend`] over a PostgreSQL store (`sandscope-pgstore`): the same API and UI
//! as the embedded store, from a database any number of servers share. It keeps no state of its
//! own (a connection pool only), so servers behind a load balancer answer alike.
//!
//! Livehunt rulesets and notifications are kept in the same database (`PgStore` implements
//! `RecordStore`). Each server compiles the enabled rulesets it loaded; before each upload it
//! reloads them (only changed ones are recompiled), so a ruleset created through one server
//! hunts the uploads every server takes from then on.
//!
//! Retrohunt jobs are records in the same database too, run by `sandscope-hunting`'s
//! `Retrohunts` over the store's `DetonationLogs` (the scan the embedded store's jobs run);
//! a job is run by one server at a time, and one a stopped server left is adopted by another
//! within a minute (`sandscope_hunting`'s lease). With a
//! work queue, a Sigma job is split into ranges the `sandscope worker`s scan instead.

use crate::backend::{
    Backend, BackendError, GraphFormat, Health, IngestOutcome, Page, PageRequest, PivotGraph,
    SearchPage, SearchRequest, StoredLog, Upload,
};
use crate::job_queue::JobQueue;
use crate::{sample_views, upload_ingest};
use sandscope_hunting::{DEFAULT_MAX_RUNNING, Livehunt, Retrohunts};
use sandscope_ingest::Pipeline;
use sandscope_model::{FileBehaviour, is_sha256};
use sandscope_pgstore::{PgStore, PgStoreError};
use sandscope_store::Exhausted;
use std::sync::Arc;

/// A [`Backend`] over one PostgreSQL store.
pub struct PgBackend {
    store: Arc<PgStore>,
    pipeline: Pipeline,
    /// With a work queue, uploads are published as jobs for `sandscope worker`s, and Sigma
    /// Retrohunt jobs as ranges for them.
    queue: Option<Arc<JobQueue>>,
    /// `None` when the store's jobs cannot be read.
    retrohunts: Option<Retrohunts>,
}

impl PgBackend {
    /// Serve `store`, building uploads with `pipeline`; every report stored through this
    /// backend is hunted by the store's rulesets (loaded here unless `pipeline` has them).
    pub fn new(store: PgStore, pipeline: Pipeline) -> Self {
        Self::build(store, pipeline, None)
    }

    /// Serve `store`, publishing uploads to `queue` instead of building them here, and
    /// splitting Sigma Retrohunt jobs across the workers (`serve --nats`).
    pub fn with_queue(store: PgStore, pipeline: Pipeline, queue: JobQueue) -> Self {
        Self::build(store, pipeline, Some(Arc::new(queue)))
    }

    fn build(store: PgStore, pipeline: Pipeline, queue: Option<Arc<JobQueue>>) -> Self {
        let store = Arc::new(store);
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
        // Jobs a stopped server left unfinished are resumed here.
        // Other servers may share the store: each job is run by one of them (a lease).
        let dispatch = queue
            .clone()
            .map(|q| q as Arc<dyn sandscope_hunting::RangeDispatch>);
        let started = Retrohunts::start_shared(store.clone(), DEFAULT_MAX_RUNNING, dispatch);
        let retrohunts = match started {
            Ok(jobs) => Some(jobs),
            Err(e) => {
                eprintln!("sandscope-server: Retrohunt jobs cannot be loaded: {e}");
                None
            }
        };
        Self {
            store,
            pipeline,
            queue,
            retrohunts,
        }
    }

    /// The reports of a stored sample, `None` when it has none.
    fn sample_reports(&self, sample_id: &str) -> Result<Option<Vec<FileBehaviour>>, BackendError> {
        if !is_sha256(sample_id) {
            return Ok(None);
        }
        let reports = self
            .store
            .sample_reports(&sample_id.to_ascii_lowercase())
            .map_err(backend_error)?;
        Ok((!reports.is_empty()).then_some(reports))
    }

    fn sample_graph(
        &self,
        sample_id: &str,
    ) -> Result<Option<sandscope_store::Graph>, BackendError> {
        if self.sample_reports(sample_id)?.is_none() {
            return Ok(None);
        }
        self.store
            .graph(
                sample_id,
                sample_views::GRAPH_DEPTH,
                sample_views::GRAPH_MAX_NODES,
            )
            .map(Some)
            .map_err(backend_error)
    }
}

/// A store error as the client should see it: PostgreSQL's own messages (which name the
/// server) are logged; the client learns whose fault it is.
fn backend_error(error: PgStoreError) -> BackendError {
    match error {
        PgStoreError::Query(e) => BackendError::Query {
            message: e.message,
            column: e.column,
        },
        PgStoreError::InvalidCursor => BackendError::InvalidArgument("invalid cursor".into()),
        PgStoreError::InvalidSha256(s) => {
            BackendError::InvalidArgument(format!("not a SHA-256: `{s}`"))
        }
        PgStoreError::InvalidReport(m) => BackendError::InvalidArgument(m),
        PgStoreError::Exhausted(why @ Exhausted::Work { .. }) => {
            BackendError::BudgetExceeded(why.to_string())
        }
        PgStoreError::Exhausted(why) => BackendError::DeadlineExceeded(why.to_string()),
        e @ (PgStoreError::Pool(_)
        | PgStoreError::Unreachable { .. }
        | PgStoreError::ConnectionLost(_)) => {
            eprintln!("sandscope-server: {e}");
            BackendError::Unavailable(
                "the PostgreSQL store cannot be reached; retry shortly".into(),
            )
        }
        e => {
            eprintln!("sandscope-server: {e}");
            BackendError::Internal(e.to_string())
        }
    }
}

impl Backend for PgBackend {
    fn behaviours(
        &self,
        sample_id: &str,
        page: &PageRequest,
    ) -> Result<Option<Page<FileBehaviour>>, BackendError> {
        let Some(reports) = self.sample_reports(sample_id)? else {
            return Ok(None);
        };
        // A sample has one report per sandbox: a handful, so the cursor is an offset.
        let start = match &page.cursor {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= reports.len())
                .ok_or_else(|| BackendError::InvalidArgument("invalid cursor".into()))?,
        };
        let end = start.saturating_add(page.limit).min(reports.len());
        Ok(Some(Page {
            next_cursor: (end < reports.len()).then(|| end.to_string()),
            items: reports.into_iter().skip(start).take(end - start).collect(),
            // As the embedded store answers, so every server behind a balancer answers alike.
            total: None,
        }))
    }

    fn behaviour(&self, behaviour_id: &str) -> Result<Option<FileBehaviour>, BackendError> {
        self.store.report(behaviour_id).map_err(backend_error)
    }

    fn raw_log(&self, behaviour_id: &str) -> Result<Option<StoredLog>, BackendError> {
        self.store.raw_log(behaviour_id).map_err(backend_error)
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
        self.store.search(request).map_err(backend_error)
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
        Ok(self
            .sample_graph(sample_id)?
            .map(|graph| sample_views::export_graph(&graph, format)))
    }

    fn ingest(&self, upload: &Upload) -> Result<IngestOutcome, BackendError> {
        if let Some(queue) = &self.queue {
            return Ok(IngestOutcome {
                job_id: Some(queue.publish(upload)?),
                ..IngestOutcome::default()
            });
        }
        // Other servers may have changed the rulesets since this one last looked.
        if let Some(live) = self.pipeline.livehunt() {
            live.reload(self.store.as_ref())?;
        }
        let prepared = upload_ingest::prepare(&self.pipeline, upload)?;
        let report_ids = self
            .store
            .put_reports(prepared.reports)
            .map_err(backend_error)?;
        // Livehunt before the upload is acknowledged: a failure here is the server's.
        self.pipeline
            .notify(self.store.as_ref(), prepared.livehunt, &report_ids)?;
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

    fn job(&self, job_id: &str) -> Result<Option<serde_json::Value>, BackendError> {
        match &self.queue {
            Some(queue) => queue.status(job_id),
            None => Err(BackendError::NotFound(
                "this server has no work queue (start it with --nats URL)".to_string(),
            )),
        }
    }

    fn health(&self) -> Result<Health, BackendError> {
        // Unreachable PostgreSQL is "degraded", not an error: the process itself is alive.
        Ok(match self.store.stats() {
            Ok(stats) => Health {
                samples: stats.samples,
                reports: stats.reports,
                degraded: None,
                read_only: false,
            },
            Err(e) => {
                eprintln!("sandscope-server: health check: {e}");
                Health {
                    degraded: Some("the PostgreSQL store cannot be reached".to_string()),
                    ..Health::default()
                }
            }
        })
    }
}
