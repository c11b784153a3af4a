//! The delivery thread of one `Livehunt`: it takes the store's due deliveries a batch at a
//! time (claimed, attempted once each, settled: see `queue.rs`), and sleeps until this process
//! queues one, until the next due time or lease expiry it saw, or for [`POLL`] at most (for
//! deliveries other processes queue). When the set is dropped it makes the last attempts (see
//! `webhook.rs`).

use super::queue::{Attempt, QueueStore, Queued};
use super::{POLL, TIMEOUT, Webhooks, ms, now_ms};
use crate::error::Result;
use crate::retro::lease::runner_id;
use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Deliveries claimed at once.
const BATCH: usize = 16;

/// The delivery thread, started with the set and stopped when it is dropped.
pub(crate) struct Deliveries {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

struct Shared {
    queue: QueueStore,
    webhooks: Webhooks,
    /// This process's name as a lease holder.
    me: String,
    signal: Mutex<Signal>,
    wake: Condvar,
}

#[derive(Default)]
struct Signal {
    woken: bool,
    closing: bool,
    /// Pending deliveries this process queued: its last attempts when it ends (not those of
    /// other processes it tried, whose back-off a short-lived process would cut short).
    ours: BTreeSet<u64>,
}

impl Deliveries {
    pub(crate) fn new(webhooks: Webhooks, queue: QueueStore) -> Self {
        let shared = Arc::new(Shared {
            queue,
            webhooks,
            me: runner_id(),
            signal: Mutex::default(),
            wake: Condvar::new(),
        });
        let thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sandscope-webhooks".into())
            .spawn(move || thread.run());
        let worker = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                eprintln!(
                    "sandscope-hunting: cannot start the webhook thread ({e}): this process's deliveries wait for another"
                );
                None
            }
        };
        Deliveries { shared, worker }
    }

    /// This process queued the deliveries `ids`: deliver them now.
    pub(crate) fn queued(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut signal = lock(&self.shared.signal);
        signal.ours.extend(ids);
        signal.woken = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        lock(&self.shared.signal).closing = true;
        self.shared.wake.notify_one();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn run(&self) {
        // Attempts whose outcome could not be written yet (the store failed).
        let mut unsettled: Vec<Attempt> = Vec::new();
        let mut reported: Option<String> = None;
        loop {
            if lock(&self.signal).closing {
                break;
            }
            let next = match self.round(&mut unsettled) {
                Ok(next) => {
                    reported = None;
                    next
                }
                Err(e) => {
                    // Once per distinct error, not at every poll (a read-only store).
                    let text = e.to_string();
                    if reported.as_ref() != Some(&text) {
                        eprintln!("sandscope-hunting: webhook deliveries: {text}");
                        reported = Some(text);
                    }
                    now_ms().saturating_add(ms(POLL))
                }
            };
            let mut signal = lock(&self.signal);
            while !signal.woken && !signal.closing {
                let Ok(wait) = u64::try_from(next.saturating_sub(now_ms())) else {
                    break;
                };
                if wait == 0 {
                    break;
                }
                let (again, timeout) = self
                    .wake
                    .wait_timeout(signal, Duration::from_millis(wait))
                    .unwrap_or_else(PoisonError::into_inner);
                signal = again;
                if timeout.timed_out() {
                    break;
                }
            }
            signal.woken = false;
        }
        if let Err(e) = self.last_attempts(&mut unsettled) {
            eprintln!("sandscope-hunting: webhook deliveries left for another process: {e}");
        }
    }

    /// Settle what a failed write left, claim a batch of due deliveries and attempt each once;
    /// returns when to look again (Unix ms).
    fn round(&self, unsettled: &mut Vec<Attempt>) -> Result<i64> {
        self.settle(unsettled, false)?;
        let known = lock(&self.signal).ours.clone();
        let now = now_ms();
        let pending = self.queue.pending()?;
        {
            // Ours that are gone were settled elsewhere (or dropped with their ruleset).
            let present: BTreeSet<u64> = pending.iter().map(|(id, _)| *id).collect();
            let mut signal = lock(&self.signal);
            signal
                .ours
                .retain(|id| !known.contains(id) || present.contains(id));
        }
        let me = self.me.as_str();
        let mut next = now.saturating_add(ms(POLL));
        let mut due = Vec::new();
        for (id, queued) in &pending {
            match queued {
                Some(q) => match q.held_elsewhere(me, now) {
                    Some(lease) => next = next.min(lease.until_ms),
                    None if q.due_ms > now => next = next.min(q.due_ms),
                    None => due.push(*id),
                },
                // Deleted by the claim.
                None => due.push(*id),
            }
        }
        if due.is_empty() {
            return Ok(next);
        }
        due.truncate(BATCH);
        let until = now.saturating_add(ms(self.webhooks.lease));
        let claimable = |q: &Queued| q.due_ms <= now && q.held_elsewhere(me, now).is_none();
        let claimed = self.queue.claim(&due, me, until, claimable)?;
        if claimed.is_empty() {
            // Another process took them.
            return Ok(next);
        }
        self.attempt(claimed, until, unsettled);
        self.settle(unsettled, false)?;
        // More may be due.
        Ok(now)
    }

    /// One attempt on each claimed delivery while its lease lasts (the first in any case).
    fn attempt(&self, claimed: Vec<(u64, Queued)>, until: i64, into: &mut Vec<Attempt>) {
        for (n, (id, queued)) in claimed.into_iter().enumerate() {
            let in_time = n == 0 || until.saturating_sub(now_ms()) > ms(TIMEOUT);
            let outcome = in_time.then(|| post(&queued.url, queued.body.as_bytes()));
            into.push(Attempt { id, outcome });
        }
    }

    /// Write the outcomes of `attempts`; on failure they are kept for the next round.
    fn settle(&self, attempts: &mut Vec<Attempt>, last: bool) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let removed = self
            .queue
            .settle(attempts, &self.me, &self.webhooks.back_off, last)?;
        attempts.clear();
        lock(&self.signal).ours.retain(|id| !removed.contains(id));
        Ok(())
    }

    /// The set is dropped: one last attempt on each pending delivery this process queued, its
    /// outcome final. One another live process is attempting is waited for (it may settle it,
    /// or give it back), for as long as this process's own lease at most.
    fn last_attempts(&self, unsettled: &mut Vec<Attempt>) -> Result<()> {
        self.settle(unsettled, false)?;
        let me = self.me.as_str();
        let give_up = now_ms().saturating_add(ms(self.webhooks.lease));
        loop {
            let ours = lock(&self.signal).ours.clone();
            let now = now_ms();
            let (mut free, mut left) = (Vec::new(), BTreeSet::new());
            for (id, queued) in self.queue.pending()? {
                if !ours.contains(&id) {
                    continue;
                }
                left.insert(id);
                if queued
                    .as_ref()
                    .and_then(|q| q.held_elsewhere(me, now))
                    .is_none()
                {
                    free.push(id);
                }
            }
            // Ours that are gone were settled (here or elsewhere).
            lock(&self.signal).ours.retain(|id| left.contains(id));
            if left.is_empty() || now >= give_up {
                return Ok(());
            }
            for batch in free.chunks(BATCH) {
                let until = now_ms().saturating_add(ms(self.webhooks.lease));
                let claimable = |q: &Queued| q.held_elsewhere(me, now_ms()).is_none();
                let claimed = self.queue.claim(batch, me, until, claimable)?;
                let mut attempts = Vec::new();
                self.attempt(claimed, until, &mut attempts);
                self.settle(&mut attempts, true)?;
            }
            if free.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// One POST of a JSON body (http or https, through `ureq`); `Ok` on a 2xx status.
fn post(url: &str, body: &[u8]) -> std::result::Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent("sandscope-livehunt")
        .build()
        .into();
    let answer = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| format!("cannot deliver to {url}: {e}"))?;
    let status = answer.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("{url} answered HTTP {status}"))
    }
}
