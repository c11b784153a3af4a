//! Sandscope's HTTP face: a VirusTotal-API-v3-compatible JSON API (so `vt-py`, `vt-cli` and SOAR
//! connectors work unchanged against a self-hosted instance) and the analysts' web UI, both
//! served by one axum router.
//!
//! The crate owns the wire: routes, VirusTotal's envelopes and error codes, API keys, request
//! limits and timeouts, the HTML report, the embedded UI assets and a load benchmark. It owns no
//! data: everything is asked of a [`Backend`] (implemented over the store by the binary), so the
//! HTTP layer can be tested against any implementation.
//!
//! Security stance: every value in a report is attacker-controlled text. JSON carries it as
//! data; the HTML report escapes it and runs no script; the UI builds its DOM with `textContent`
//! only, and every response carries a strict Content-Security-Policy and `nosniff`. No request
//! ever names a file on disk: uploads go to server-created temporary files.
//!
//! Wiring (what `sandscope serve` does): implement [`Backend`] over the store, then
//!
//! ```no_run
//! # async fn wire(backend: std::sync::Arc<dyn sandscope_server::Backend>) -> std::io::Result<()> {
//! use sandscope_server::{ApiKeys, Role, ServerConfig};
//! let mut keys = ApiKeys::new();
//! keys.add("a-long-random-key", Role::Ingest).expect("valid key");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let app = sandscope_server::router(backend, keys, ServerConfig::default());
//! sandscope_server::serve(listener, app, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod auth;
pub mod backend;
pub mod error;
pub mod html_report;
pub mod job_queue;
pub mod load;
pub mod pg_backend;
pub mod store_backend;
pub mod tls;

mod api;
mod export_api;
mod lanes;
mod sample_views;
mod schema_api;
mod spool;
mod ui;
mod upload_ingest;

pub use auth::{ApiKeys, Role};
/// A loaded certificate and key (`load_tls`), for `serve_tls`.
pub use axum_server::tls_rustls::RustlsConfig as TlsConfig;
pub use backend::{
    Backend, BackendError, GraphEdge, GraphNode, Health, IngestOutcome, Order, Page, PageRequest,
    PivotGraph, SearchHit, SearchLimits, SearchPage, SearchRequest, StoredLog, Upload,
};
pub use error::ApiError;
pub use job_queue::JobQueue;
pub use pg_backend::PgBackend;
pub use store_backend::StoreBackend;
pub use tls::{TlsError, load_tls, serve_tls};

use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// 256 MiB: the default upload limit (issue 7).
pub const DEFAULT_UPLOAD_LIMIT: u64 = 256 * 1024 * 1024;

/// Default [`ServerConfig::search_timeout`].
pub const DEFAULT_SEARCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerConfig::search_work`] (the store's own default budget).
pub const DEFAULT_SEARCH_WORK: u64 = sandscope_store::DEFAULT_MAX_WORK;
/// Default [`ServerConfig::quick_search_work`]: a selective query (`behaviour_files:@tutanota.com`)
/// spends a few thousand units; a hostile one costs the quick lane at most this once.
pub const DEFAULT_QUICK_SEARCH_WORK: u64 = 200_000;

/// Half the cores (at least one), so heavy searches always leave cores to the quick lane.
fn default_heavy_searches() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// How the server behaves; everything has a sensible default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL clients reach the server at, without a trailing slash, used to build `links`
    /// (never taken from the request's `Host`, which a client controls).
    pub public_url: String,
    /// The largest accepted upload, enforced while the body streams in.
    pub upload_limit: u64,
    /// Deadline for every request except ingest (answered with 504 `DeadlineExceededError`).
    pub request_timeout: Duration,
    /// Deadline for an ingest request, upload and processing included.
    pub ingest_timeout: Duration,
    /// Ingests run at once; later uploads wait (within their deadline) for a slot.
    pub max_concurrent_ingests: usize,
    /// Where uploads are spooled (in a `sandscope-spool-<pid>` folder of their own, which a
    /// later server removes if this one is killed); the system temporary directory when `None`.
    pub upload_dir: Option<PathBuf>,
    /// Time a search may run (its 504 says so), counted from the request's arrival.
    pub search_timeout: Duration,
    /// Work units one search may spend (the store's candidates, postings and positions
    /// examined) before it is refused with 400.
    pub search_work: u64,
    /// Work units a search may spend in the quick lane; past them it moves to the heavy lane.
    pub quick_search_work: u64,
    /// Searches in the heavy lane at once (each on one thread); later ones wait their turn.
    pub heavy_searches: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_string(),
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            request_timeout: Duration::from_secs(30),
            ingest_timeout: Duration::from_secs(30 * 60),
            max_concurrent_ingests: 2,
            upload_dir: None,
            search_timeout: DEFAULT_SEARCH_TIMEOUT,
            search_work: DEFAULT_SEARCH_WORK,
            quick_search_work: DEFAULT_QUICK_SEARCH_WORK,
            heavy_searches: default_heavy_searches(),
        }
    }
}

/// Build the whole application: API under `/api/v3`, UI at `/`.
pub fn router(backend: Arc<dyn Backend>, keys: ApiKeys, config: ServerConfig) -> Router {
    api::router(api::AppState::new(backend, keys, config))
}

/// Serve `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
