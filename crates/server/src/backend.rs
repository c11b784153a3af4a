//! The seam between the HTTP layer and whatever stores the reports.
//!
//! The server never touches storage itself: every handler calls one [`Backend`] method on a
//! blocking thread (`tokio::task::spawn_blocking`), so implementations may do synchronous I/O
//! (redb transactions, tantivy searches, reading and parsing uploaded logs) without starving
//! the async runtime. Implementations must be cheap to call concurrently: the server calls them
//! from many threads at once through an `Arc<dyn Backend>`.
//!
//! Everything a method receives has already been validated by the server: ids are well-formed
//! (see [`is_sample_id`] and [`is_behaviour_id`]), limits are within `1..=MAX_LIMIT`, and an
//! uploaded file is a server-created temporary file whose name never came from the request.
//! Everything a method returns is treated as untrusted by the server and the UI (escaped on
//! output), so implementations need not sanitise report contents.

use sandscope_model::FileBehaviour;
use serde::Serialize;
use std::path::PathBuf;

// One set of search types: a search is asked and answered in the store's own terms, whatever
// implements the trait; the server turns the answer into VirusTotal's shapes.
pub use sandscope_store::{
    GraphFormat, Order, SearchHit, SearchLimits, SearchPage, SearchRequest, StoredLog,
};

/// The largest page any collection endpoint returns (VirusTotal's intelligence-search maximum).
pub const MAX_LIMIT: usize = 300;
/// The page size when a request gives no `limit` (VirusTotal's default).
pub const DEFAULT_LIMIT: usize = 10;

/// The storage and search engine behind the API. See the module documentation for the calling
/// contract. "Sample id" below means a lower-case hex SHA-256 (64 digits); an implementation
/// may also resolve MD5 (32) or SHA-1 (40) ids, which the server passes through lower-cased.
pub trait Backend: Send + Sync + 'static {
    /// The behaviour reports of one sample, one per sandbox, paged. `Ok(None)` when the sample
    /// is unknown (→ 404 `NotFoundError`); an unknown sample must not be an empty page.
    /// The cursor is opaque to the server: whatever [`Page::next_cursor`] returned before is
    /// handed back verbatim; an unparsable cursor is [`BackendError::InvalidArgument`].
    fn behaviours(
        &self,
        sample_id: &str,
        page: &PageRequest,
    ) -> Result<Option<Page<FileBehaviour>>, BackendError>;

    /// One report by its id `<sha256>_<sandbox name>` (the sandbox name with its spaces).
    fn behaviour(&self, behaviour_id: &str) -> Result<Option<FileBehaviour>, BackendError>;

    /// The original log a report was built from (served by `/file_behaviours/{id}/evtx`).
    /// `Ok(None)` when the report is unknown or no log was kept.
    fn raw_log(&self, behaviour_id: &str) -> Result<Option<StoredLog>, BackendError>;

    /// The merged attributes of all reports of a sample, as `GET /files/{id}/behaviour_summary`
    /// returns them inside `data` (no `id`/`type`; see schema §8).
    fn behaviour_summary(&self, sample_id: &str)
    -> Result<Option<serde_json::Value>, BackendError>;

    /// The MITRE ATT&CK trees of a sample: `{<sandbox name>: {"tactics": [...]}}`, one key per
    /// sandbox that ran it, `"tactics": []` for sandboxes without hits (schema §8).
    fn behaviour_mitre_trees(
        &self,
        sample_id: &str,
    ) -> Result<Option<serde_json::Value>, BackendError>;

    /// Run an intelligence query. A query the parser rejects is [`BackendError::Query`] with
    /// the parser's message and 1-based column (→ 400 `BadRequestError`); an order it cannot
    /// sort by or a bad cursor is [`BackendError::InvalidArgument`]. The search must
    /// honour [`SearchRequest::limits`]: stop with [`BackendError::BudgetExceeded`] past
    /// `max_work`, with [`BackendError::DeadlineExceeded`] past the deadline or once the
    /// cancellation flag is set.
    fn search(&self, request: &SearchRequest) -> Result<SearchPage, BackendError>;

    /// The `order` fields [`Backend::search`] accepts, echoed as `meta.allowed_orders`.
    fn search_orders(&self) -> Vec<String>;

    /// The pivot graph around one sample: the sample, its indicators (domains, IPs, files,
    /// processes…) and the other samples sharing each indicator, one hop out. `Ok(None)` when
    /// the sample is unknown. Keep it small (tens of nodes): the UI expands node by node.
    fn pivot_graph(&self, sample_id: &str) -> Result<Option<PivotGraph>, BackendError>;

    /// The sample's graph as `sandscope graph` exports it (its default depth and size), in
    /// `format`, byte for byte; `Ok(None)` when the sample is unknown. A backend without the
    /// CLI's graph answers [`BackendError::InvalidArgument`] (the default).
    fn graph_export(
        &self,
        sample_id: &str,
        format: GraphFormat,
    ) -> Result<Option<String>, BackendError> {
        let _ = (sample_id, format);
        Err(BackendError::InvalidArgument(
            "this store does not export graphs".to_string(),
        ))
    }

    /// Ingest one uploaded log or sandbox report and return the ids of the reports it created
    /// or replaced. A file that is not a log or report, or an archive that expands too far, is
    /// [`BackendError::InvalidArgument`] (→ 400). Called for `POST /sandscope/ingest` and by
    /// `sandscope serve --ingest`; it may take minutes, and the server limits how many run at once.
    fn ingest(&self, upload: &Upload) -> Result<IngestOutcome, BackendError>;

    /// The status of a job published by [`Backend::ingest`] to a work queue, as JSON; `Ok(None)`
    /// for an unknown job. A backend without a queue answers [`BackendError::NotFound`].
    fn job(&self, job_id: &str) -> Result<Option<serde_json::Value>, BackendError> {
        let _ = job_id;
        Err(BackendError::NotFound(
            "this server has no work queue (start it with --store URL --nats URL)".to_string(),
        ))
    }

    /// Liveness and size, for the unauthenticated health check. An `Err` answers 503; a
    /// [`Health::degraded`] reason answers 200 with `status: "degraded"` (reads still work).
    fn health(&self) -> Result<Health, BackendError>;

    /// Whether [`Backend::ingest`] can store anything; `false` for a read-only store, whose
    /// uploads the server refuses (403) before reading them.
    fn accepts_ingest(&self) -> bool {
        true
    }

    /// Livehunt rulesets and notifications over this backend's records (`None`: the server
    /// answers the hunting endpoints 503).
    fn hunting(&self) -> Option<sandscope_hunting::Hunting<'_>> {
        None
    }

    /// Retrohunt jobs over this backend's stored detonations (`None`: the server answers the
    /// `retrohunt_jobs` endpoints 503). Jobs run on their own threads, not the caller's.
    fn retrohunts(&self) -> Option<&sandscope_hunting::Retrohunts> {
        None
    }
}

impl From<sandscope_hunting::HuntingError> for BackendError {
    fn from(error: sandscope_hunting::HuntingError) -> Self {
        use sandscope_hunting::HuntingError;
        match error {
            HuntingError::NotFound { .. } => BackendError::NotFound(error.to_string()),
            e if e.is_caller_fault() => BackendError::InvalidArgument(e.to_string()),
            e => BackendError::Internal(e.to_string()),
        }
    }
}

/// Paging of a collection request, validated by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// `1..=MAX_LIMIT`.
    pub limit: usize,
    /// The `cursor` query parameter, verbatim (at most 1,024 characters).
    pub cursor: Option<String>,
}

/// One page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page (VirusTotal's rule: no
    /// `meta.cursor` means no more pages). Must be at most 1,024 characters.
    pub next_cursor: Option<String>,
    /// The collection's size when cheaply known (`meta.count`).
    pub total: Option<u64>,
}

/// The pivot graph of one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PivotGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// A graph node. Ids must be unique across every graph the backend returns (the UI merges
/// graphs when a node is expanded); suggested form `<kind>:<value>`, e.g. `sample:<sha256>`,
/// `domain:example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    pub id: String,
    /// `sample`, `domain`, `ip`, `file`, `process`, `registry`, `mutex`, …
    pub kind: String,
    pub label: String,
    /// For `sample` nodes: the SHA-256 the UI expands with another `pivot_graph` call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// An undirected edge between two node ids, labelled with the report field that links them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    pub source: String,
    pub target: String,
    pub relation: String,
}

/// An uploaded file, already on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// A file the server created (uploads) or the operator named (`serve --ingest`), or a
    /// folder the server created holding the files of one multi-file upload (a sandbox run:
    /// the files taken together as one detonation, laid out under the relative names the client
    /// gave them). The backend reads it but must not keep the path: the server deletes upload
    /// files after the call.
    pub path: PathBuf,
    /// The client's file name reduced to `[A-Za-z0-9._ -]`, at most 128 characters, for display
    /// and for the stored log's name; never a path. `run` for a multi-file upload.
    pub original_name: String,
    /// The `sha256` form field: the sample's SHA-256 (lower-case hex) when the caller knows it.
    pub sha256: Option<String>,
    /// The `sandbox` form field: which sandbox produced an uploaded report, when the caller
    /// says (printable, at most 64 characters).
    pub sandbox: Option<String>,
}

/// What one ingest created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Ids of the reports created or replaced.
    pub report_ids: Vec<String>,
    /// Damage skipped and decisions taken (which sample was chosen…), for the uploader.
    pub warnings: Vec<String>,
    /// The job a server with a work queue published the upload as, instead of building it
    /// (`report_ids` is then empty: the job's status names them once a worker stored them).
    pub job_id: Option<String>,
}

/// The health check's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    pub samples: u64,
    pub reports: u64,
    /// Why the backend is not fully working (writes failing, samples not yet searchable), or
    /// `None` when it is.
    pub degraded: Option<String>,
    /// The backend serves reads only.
    pub read_only: bool,
}

/// Why a backend call failed; each variant maps to one VirusTotal error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The query parser rejected the query (→ 400 `BadRequestError`, message and column kept).
    #[error("{message} (column {column})")]
    Query { message: String, column: usize },
    /// A bad cursor, an unsupported order, an upload that is no log (→ 400 `InvalidArgumentError`).
    #[error("{0}")]
    InvalidArgument(String),
    /// An upload that expands past the server's decompression or memory budget (→ 413
    /// `PayloadTooLargeError`, message naming the upload).
    #[error("{0}")]
    TooLarge(String),
    /// Something referenced by the request does not exist (→ 404 `NotFoundError`).
    #[error("{0}")]
    NotFound(String),
    /// A search needed more work than its [`SearchLimits::max_work`] (→ 400
    /// `BadRequestError`: the query is too broad for this store; retrying will not help).
    #[error("{0}")]
    BudgetExceeded(String),
    /// A search ran past its deadline or was cancelled (→ 504 `DeadlineExceededError`).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The store is busy or not ready (→ 503 `TransientError`).
    #[error("{0}")]
    Unavailable(String),
    /// The disk holding the store is full (→ 507 `InsufficientStorageError`; the message is
    /// sent to the client, so it must not name files).
    #[error("{0}")]
    InsufficientStorage(String),
    /// The store is read-only: nothing can be ingested (→ 403 `ForbiddenError`).
    #[error("{0}")]
    ReadOnly(String),
    /// Anything else (→ 500; the message is logged, not sent to the client).
    #[error("{0}")]
    Internal(String),
}

/// True for a sample id the server accepts: 32, 40 or 64 hex digits (MD5, SHA-1, SHA-256).
pub fn is_sample_id(id: &str) -> bool {
    matches!(id.len(), 32 | 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for a report id the server accepts: a 64-hex SHA-256, `_`, then a sandbox name of
/// 1–64 printable characters.
pub fn is_behaviour_id(id: &str) -> bool {
    match sandscope_model::split_behaviour_id(id) {
        Some((sha256, sandbox)) => sandscope_model::is_sha256(sha256) && is_sandbox_name(sandbox),
        None => false,
    }
}

/// True for a sandbox display name the server passes on: 1–64 characters, none a control.
pub fn is_sandbox_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control)
}
