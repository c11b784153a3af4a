//! A ruleset's `limit`: at most that many notifications per 24 hours. The window starts at the
//! first notification after the previous window ended; matches past the limit are counted,
//! not kept, and make the ruleset `rate_limited` with `rate_limited_ratio` = dropped / matched
//! in the window, until the window ends.
//!
//! A window is read, admitted and written back (with the notifications) under the store's lock
//! of the rulesets (`RecordStore::lock`), so processes sharing a PostgreSQL store never admit
//! past a limit between them (an advisory lock every process takes). The embedded store needs
//! none: one process owns its directory, and its Livehunt serialises its writes in-process.

use serde::{Deserialize, Serialize};

const WINDOW_SECONDS: i64 = 24 * 3600;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateWindow {
    /// When the window started (Unix seconds); 0 before the first match.
    pub start: i64,
    pub kept: u64,
    pub dropped: u64,
}

impl RateWindow {
    fn current(&self, now: i64) -> RateWindow {
        if self.start == 0 || now >= self.start.saturating_add(WINDOW_SECONDS) {
            RateWindow {
                start: now,
                kept: 0,
                dropped: 0,
            }
        } else {
            *self
        }
    }

    /// Count one match at `now`; true when it may be kept as a notification.
    pub fn admit(&mut self, limit: u64, now: i64) -> bool {
        *self = self.current(now);
        if self.kept < limit {
            self.kept += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    pub fn rate_limited(&self, now: i64) -> bool {
        self.current(now).dropped > 0
    }

    pub fn rate_limited_ratio(&self, now: i64) -> f64 {
        let w = self.current(now);
        let matched = w.kept + w.dropped;
        if matched == 0 {
            0.0
        } else {
            w.dropped as f64 / matched as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_window_then_reset() {
        let mut w = RateWindow::default();
        let t = 1_000_000;
        assert!(w.admit(2, t));
        assert!(w.admit(2, t + 1));
        assert!(!w.admit(2, t + 2));
        assert!(!w.admit(2, t + 3));
        assert!(w.rate_limited(t + 4));
        assert_eq!(w.rate_limited_ratio(t + 4), 0.5);
        // A day after the window began, it starts again.
        assert!(!w.rate_limited(t + WINDOW_SECONDS));
        assert!(w.admit(2, t + WINDOW_SECONDS));
        assert_eq!(w.kept, 1);
    }
}
