//! What one search may spend, checked inside the search loops so an expensive or abandoned
//! search stops instead of running to its end.
//!
//! A search is charged one *work unit* per candidate document it examines, per indexed word a
//! query word expands to, per posting and position it loads and per stored value it verifies.
//! The phrase, vocabulary and collector loops charge as they go; once the budget is spent, the
//! deadline has passed or the caller's cancellation flag is set, every charge fails, every
//! matcher reports "no more documents" and the search unwinds within a few thousand units
//! (well under 100 ms). The search then answers [`Exhausted`] (never a partial page), saying
//! which limit ran out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Default [`SearchLimits::max_work`]: a selective query on a store of hundreds of thousands
/// of samples spends well under a million units; a broad one's first page a few million.
pub const DEFAULT_MAX_WORK: u64 = 50_000_000;

/// Default time a search may take when the caller gives no deadline (the CLI's `--timeout`).
pub const DEFAULT_SEARCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The deadline and cancellation flag are looked at once per this many units.
const CHECK_EVERY: u64 = 4096;

/// The limits of one search, given with the request.
#[derive(Debug, Clone)]
pub struct SearchLimits {
    /// Work units the search may spend (see the module documentation).
    pub max_work: u64,
    /// When the search must have finished; `None`: no time limit.
    pub deadline: Option<Instant>,
    /// Set by the caller to stop the search (its client went away or timed out).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Whether the segments may be searched in parallel on the shared search pool. A search
    /// known to be expensive runs on its caller's thread instead, so it cannot hold the pool
    /// that cheap searches need.
    pub parallel: bool,
}

impl Default for SearchLimits {
    fn default() -> Self {
        Self {
            max_work: DEFAULT_MAX_WORK,
            deadline: None,
            cancel: None,
            parallel: true,
        }
    }
}

/// Which limit stopped a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exhausted {
    /// More work than [`SearchLimits::max_work`]: the query is too broad for this store.
    #[error(
        "the search examined more than {limit} candidates and positions (its work budget); \
         make the query more specific"
    )]
    Work { limit: u64 },
    /// The deadline passed.
    #[error("the search ran out of time")]
    Deadline,
    /// The caller cancelled it.
    #[error("the search was cancelled")]
    Cancelled,
}

const RUNNING: u8 = 0;
const WORK: u8 = 1;
const DEADLINE: u8 = 2;
const CANCELLED: u8 = 3;

/// The running account of one search, shared by the threads searching its segments.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: SearchLimits,
    used: AtomicU64,
    stopped: AtomicU8,
}

impl Budget {
    pub(crate) fn new(limits: &SearchLimits) -> Arc<Budget> {
        Arc::new(Budget {
            limits: limits.clone(),
            used: AtomicU64::new(0),
            stopped: AtomicU8::new(RUNNING),
        })
    }

    /// Spend `units`; false once the search must stop (then always false).
    #[inline]
    pub(crate) fn charge(&self, units: u64) -> bool {
        if self.stopped.load(Ordering::Relaxed) != RUNNING {
            return false;
        }
        let before = self.used.fetch_add(units, Ordering::Relaxed);
        let after = before.saturating_add(units);
        if after > self.limits.max_work {
            self.stop(WORK);
            return false;
        }
        if before / CHECK_EVERY != after / CHECK_EVERY {
            return self.check();
        }
        true
    }

    /// Look at the deadline and the cancellation flag now; false once the search must stop.
    pub(crate) fn check(&self) -> bool {
        if self
            .limits
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            self.stop(CANCELLED);
        } else if self.limits.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stop(DEADLINE);
        }
        self.stopped.load(Ordering::Relaxed) == RUNNING
    }

    fn stop(&self, why: u8) {
        // The first reason wins.
        let _ = self
            .stopped
            .compare_exchange(RUNNING, why, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Why the search stopped, if it did.
    pub(crate) fn exhausted(&self) -> Option<Exhausted> {
        match self.stopped.load(Ordering::Relaxed) {
            WORK => Some(Exhausted::Work {
                limit: self.limits.max_work,
            }),
            DEADLINE => Some(Exhausted::Deadline),
            CANCELLED => Some(Exhausted::Cancelled),
            _ => None,
        }
    }

    /// Units spent so far.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed).min(self.limits.max_work)
    }

    pub(crate) fn parallel(&self) -> bool {
        self.limits.parallel
    }
}

/// What a matcher says when its budget stops it: an error that unwinds tantivy's search (the
/// search then reports [`Budget::exhausted`], not this).
pub(crate) fn stopped() -> tantivy::TantivyError {
    tantivy::TantivyError::InvalidArgument("search stopped by its budget".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_deadline_and_cancellation_stop_a_budget() {
        let budget = Budget::new(&SearchLimits {
            max_work: 10,
            ..SearchLimits::default()
        });
        assert!(budget.charge(10));
        assert!(!budget.charge(1));
        assert!(!budget.charge(0), "stays stopped");
        assert_eq!(budget.exhausted(), Some(Exhausted::Work { limit: 10 }));

        let past = Budget::new(&SearchLimits {
            deadline: Some(Instant::now()),
            ..SearchLimits::default()
        });
        assert!(
            past.charge(1),
            "the deadline is looked at every CHECK_EVERY units"
        );
        assert!(!past.charge(CHECK_EVERY));
        assert_eq!(past.exhausted(), Some(Exhausted::Deadline));

        let flag = Arc::new(AtomicBool::new(false));
        let cancelled = Budget::new(&SearchLimits {
            cancel: Some(flag.clone()),
            ..SearchLimits::default()
        });
        assert!(cancelled.check());
        flag.store(true, Ordering::Relaxed);
        assert!(!cancelled.check());
        assert_eq!(cancelled.exhausted(), Some(Exhausted::Cancelled));
    }
}
