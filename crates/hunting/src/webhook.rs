//! Webhooks: each notification of a ruleset with a `webhook_url` is POSTed there as JSON,
//! `{"data": <its hunting_notification object>}`, whose `id` is the notification's (a receiver
//! dedupes by it). An ingest never waits on a receiver.
//!
//! A delivery is durable: it is a record of the store (`webhook_deliveries`, under its
//! notification's id, `queue.rs`) written in the transaction that stores the notification,
//! before the ingest is acknowledged. Every `Livehunt` runs one delivery thread (`deliver.rs`)
//! that delivers the store's pending deliveries, whichever process wrote them: on the embedded
//! store the one process and whichever opens the directory next; on PostgreSQL every API server
//! and worker. A process claims a delivery for one attempt with a lease, an expiry time written
//! in the record under the rulesets' locks (the process's and the store's); after the attempt
//! it removes the delivery (delivered, or failed for the last time) or gives it back with the
//! time of its next attempt. A delivery whose lease has expired, its process having died
//! mid-attempt, is taken by any live process or by the next to start. So in normal operation a
//! notification is delivered once; after a crash, at least once.
//!
//! A failed attempt (no connection, no answer within [`TIMEOUT`], a status other than 2xx) is
//! retried after each of the back-off delays (1, 4 and 16 s), the schedule kept in the record,
//! so a restart goes on with it. The outcome is counted on the ruleset (`webhook_deliveries`,
//! `webhook_failures`, `webhook_last_error`) in the transaction that removes the delivery, by
//! the process that removes it, so once. Deleting a ruleset, or changing its `webhook_url`,
//! deletes its pending deliveries in the same transaction (changing the URL starts the counts
//! again); an attempt already under way then has its outcome dropped.
//!
//! At most [`QUEUE`] deliveries wait in a store (the store's count of them, not a read of
//! them, on every notification queued); past that a delivery is counted as a failure at once.
//! `http://` and `https://` URLs are delivered (`ureq`, rustls with the Mozilla roots);
//! redirects are not followed. When a process ends normally (the Livehunt set is dropped), the
//! pending deliveries it queued get one last attempt each, without back-off, and their outcomes
//! are final (so a one-shot `sandscope ingest` delivers before it exits); one another live
//! process is attempting is waited for, up to a lease. Deliveries of other processes it was
//! retrying are left pending, on their schedule. Leases and due times are the processes' wall
//! clocks in milliseconds: processes sharing a PostgreSQL store need synchronised clocks, as
//! Retrohunt's leases do.

mod deliver;
mod queue;

pub(crate) use deliver::Deliveries;
pub(crate) use queue::{QueueStore, dropped, enqueue};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Deliveries waiting in a store at most.
pub const QUEUE: usize = 1_000;
/// Connect, write and read timeout of one attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claim holds a delivery: longer than an attempt ([`TIMEOUT`]) by far.
pub const LEASE: Duration = Duration::from_secs(30);
/// Longest a delivery thread sleeps before it looks for deliveries other processes wrote.
pub const POLL: Duration = Duration::from_secs(5);
const BACK_OFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(16),
];

/// How a ruleset's webhook has fared since its `webhook_url` was set (kept in its state record,
/// `RulesetState`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStatus {
    pub delivered: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

impl WebhookStatus {
    fn count(&mut self, outcome: std::result::Result<(), String>) {
        match outcome {
            Ok(()) => self.delivered += 1,
            Err(reason) => {
                self.failures += 1;
                self.last_error = Some(reason);
            }
        }
    }
}

/// How webhooks are delivered: the back-off between attempts and the lease of a claim (tests
/// use short ones).
#[derive(Debug, Clone)]
pub struct Webhooks {
    back_off: Vec<Duration>,
    lease: Duration,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self::with_back_off(BACK_OFF.to_vec())
    }
}

impl Webhooks {
    /// Webhooks retried after each of `back_off`, claimed for [`LEASE`].
    pub fn with_back_off(back_off: Vec<Duration>) -> Self {
        Webhooks {
            back_off,
            lease: LEASE,
        }
    }

    /// The same, each claim held for `lease` (at least a millisecond).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }
}

/// Now, in Unix milliseconds (due times and leases).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration in milliseconds, saturating.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
