//! The HTTP API under `/api/v3`: the routes and the layers around them (`routes`), what a
//! request's path and query string may hold (`extractors`), VirusTotal's envelopes
//! (`envelopes`), one handler module per resource, and upload spooling (`upload`).

mod envelopes;
mod extractors;
mod file_behaviours;
mod files;
mod hunting;
mod retrohunt;
mod routes;
mod sandscope;
mod search;
mod sigma_rules;
mod upload;

pub(crate) use envelopes::{download, encode_component};
pub(crate) use extractors::{file_not_found, sample_id};
pub(crate) use routes::router;

use crate::auth::ApiKeys;
use crate::backend::{Backend, BackendError};
use crate::error::ApiError;
use crate::lanes::SearchLanes;
use crate::{ServerConfig, spool};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub(crate) struct AppState {
    backend: Arc<dyn Backend>,
    keys: Arc<ApiKeys>,
    config: Arc<ServerConfig>,
    ingest_slots: Arc<Semaphore>,
    search_lanes: Arc<SearchLanes>,
}

impl AppState {
    pub(crate) fn new(backend: Arc<dyn Backend>, keys: ApiKeys, config: ServerConfig) -> Self {
        let slots = config.max_concurrent_ingests.max(1);
        // Uploads a killed server left behind.
        let base = upload::spool_base(&config);
        match spool::remove_leftovers(&base) {
            Ok(0) => {}
            Ok(n) => eprintln!(
                "sandscope-server: removed {n} spool folder(s) of stopped servers in {}",
                base.display()
            ),
            Err(e) => eprintln!(
                "sandscope-server: cannot clean spool folders in {}: {e}",
                base.display()
            ),
        }
        let search_lanes = Arc::new(SearchLanes::new(&config));
        Self {
            search_lanes,
            backend,
            keys: Arc::new(keys),
            config: Arc::new(config),
            ingest_slots: Arc::new(Semaphore::new(slots)),
        }
    }

    /// The absolute URL of an API path, built from the configured public URL.
    fn link(&self, path: &str) -> String {
        format!(
            "{}/api/v3{path}",
            self.config.public_url.trim_end_matches('/')
        )
    }
}

/// Run a backend call on the blocking pool.
pub(crate) async fn call<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&dyn Backend) -> Result<T, BackendError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = state.backend.clone();
    match tokio::task::spawn_blocking(move || work(backend.as_ref())).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join_error) => {
            eprintln!("sandscope-server: backend call failed: {join_error}");
            Err(ApiError::internal())
        }
    }
}

/// Ask the backend for what `id` names, on the blocking pool; `None` (unknown) is the 404
/// that `missing` builds.
pub(crate) async fn find<T: Send + 'static>(
    state: &AppState,
    id: &str,
    missing: fn(&str) -> ApiError,
    lookup: impl FnOnce(&dyn Backend, &str) -> Result<Option<T>, BackendError> + Send + 'static,
) -> Result<T, ApiError> {
    let owned = id.to_string();
    call(state, move |backend| lookup(backend, &owned))
        .await?
        .ok_or_else(|| missing(id))
}
