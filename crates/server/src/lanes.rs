//! Search admission: a quick lane that cheap searches never wait in, and a heavy lane that
//! expensive ones queue for.
//!
//! Nobody can tell a query's cost from its text, so every search first runs in the quick
//! lane with a small work allowance ([`ServerConfig::quick_search_work`]). Nearly every search
//! finishes there (a selective query spends a few thousand units). One that runs out is run
//! again in the heavy lane: it waits for one of [`ServerConfig::heavy_searches`] slots and
//! then runs with the full budget ([`ServerConfig::search_work`]). However many expensive
//! searches arrive, they hold at most that many threads, and each costs the quick lane at most
//! its allowance once. Both lanes search on the request's own blocking thread, never on the
//! backend's shared parallel pool: on that pool a cheap search's segments queued behind the
//! quick attempts of hostile ones (`sandscope bench serve --hostile` measured the seed query's
//! p99 at 108 ms that way).
//!
//! Every search carries its deadline ([`ServerConfig::search_timeout`] from arrival) and a
//! cancellation flag that is set when the request is dropped (client gone, or the request
//! deadline answered 504 first), so abandoned work stops within milliseconds. A heavy slot is
//! held by the blocking work itself, so it is freed only when the backend has actually
//! stopped.

use crate::ServerConfig;
use crate::backend::{Backend, BackendError, SearchLimits, SearchPage, SearchRequest};
use crate::error::ApiError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;

/// The two search lanes of one server.
pub(crate) struct SearchLanes {
    heavy: Arc<Semaphore>,
    quick_work: u64,
    work: u64,
    timeout: std::time::Duration,
}

/// Sets the flag when dropped: the request's future is gone, whatever the reason.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl SearchLanes {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self {
            heavy: Arc::new(Semaphore::new(config.heavy_searches.max(1))),
            quick_work: config.quick_search_work.min(config.search_work),
            work: config.search_work,
            timeout: config.search_timeout,
        }
    }

    /// Run `request` (its `limits` are replaced) and the backend's allowed orders.
    pub(crate) async fn search(
        &self,
        backend: Arc<dyn Backend>,
        mut request: SearchRequest,
    ) -> Result<(SearchPage, Vec<String>), ApiError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let deadline = Instant::now() + self.timeout;
        request.limits = SearchLimits {
            max_work: self.quick_work,
            deadline: Some(deadline),
            cancel: Some(cancel),
            parallel: false,
        };
        let quick = run(backend.clone(), request.clone(), None).await;
        match quick {
            Err(BackendError::BudgetExceeded(_)) if self.quick_work < self.work => {}
            other => return other.map_err(ApiError::from),
        }
        let waited = tokio::time::timeout_at(deadline.into(), self.heavy.clone().acquire_owned());
        let permit = match waited.await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(ApiError::internal()),
            Err(_) => {
                return Err(BackendError::DeadlineExceeded(
                    "the search ran out of time waiting for a heavy-search slot".to_string(),
                )
                .into());
            }
        };
        request.limits.max_work = self.work;
        run(backend, request, Some(permit))
            .await
            .map_err(ApiError::from)
    }
}

/// One search on the blocking pool; `slot` is released when the search has returned.
async fn run(
    backend: Arc<dyn Backend>,
    request: SearchRequest,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(SearchPage, Vec<String>), BackendError> {
    let work = move || {
        let _slot = slot;
        let orders = backend.search_orders();
        backend.search(&request).map(|page| (page, orders))
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => Err(BackendError::Internal(format!(
            "search call failed: {join_error}"
        ))),
    }
}
