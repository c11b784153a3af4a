//! Webhooks: each notification of a ruleset with a `webhook_url` is POSTed there as JSON (its
//! `hunting_notification` object) by one background thread, so an ingest never waits on a
//! receiver. A failed delivery (no connection, no answer within [`TIMEOUT`], a status other
//! than 2xx) is retried after each of the back-off delays (1, 4 and 16 s); the outcome is
//! counted on the ruleset (`webhook_deliveries`, `webhook_failures`, `webhook_last_error`).
//!
//! The counts are kept in the ruleset's record in the store, so every process sharing the
//! store (API servers, workers doing Livehunt) shows the same ones and a restart keeps them.
//! The delivery thread adds its outcomes to the records itself, read-modify-write under the
//! rulesets' locks (the process's and the store's, as a notification's rate window is), a
//! batch at a time: when no delivery waits, and at least every [`FLUSH_INTERVAL`] otherwise.
//! An outcome for a ruleset deleted since, or whose `webhook_url` changed since, is dropped;
//! changing the URL starts the counts again. A store that cannot be written keeps the outcomes
//! in memory until the next batch.
//!
//! At most [`QUEUE`] deliveries wait; past that a delivery is a failure at once. `http://` and
//! `https://` URLs are delivered (`ureq`, rustls with the Mozilla roots); redirects are not
//! followed. When the process ends normally (the Livehunt set is dropped), waiting deliveries
//! get one attempt each, without back-off, and their outcomes are written. The queue itself is
//! in memory: deliveries still waiting when a process is killed are lost (their notifications
//! are stored, and listed by `hunting_notifications`), and counted nowhere.

use crate::error::{HuntingError, Result};
use crate::ruleset::Ruleset;
use crate::seam::{RecordStore, RecordTable};
use crate::store_io;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Deliveries waiting at most.
pub const QUEUE: usize = 1_000;
/// Connect, write and read timeout of one attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a delivery's outcome waits to be written while other deliveries keep coming.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
const BACK_OFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(16),
];

/// How a ruleset's webhook has fared since its `webhook_url` was set (kept in its record).
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

    /// Add `later`'s counts; its error, if any, is the last one.
    fn add(&mut self, later: &WebhookStatus) {
        self.delivered += later.delivered;
        self.failures += later.failures;
        if later.last_error.is_some() {
            self.last_error.clone_from(&later.last_error);
        }
    }
}

/// How webhooks are delivered: the back-off between attempts (tests use short ones).
pub struct Webhooks {
    back_off: Vec<Duration>,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self::with_back_off(BACK_OFF.to_vec())
    }
}

impl Webhooks {
    /// Webhooks retried after each of `back_off`.
    pub fn with_back_off(back_off: Vec<Duration>) -> Self {
        Webhooks { back_off }
    }
}

/// Where outcomes are written: the rulesets' records, under the rulesets' locks.
pub(crate) struct StatusStore {
    pub(crate) store: Arc<dyn RecordStore>,
    /// The Livehunt's in-process lock of ruleset writes.
    pub(crate) writes: Arc<Mutex<()>>,
}

impl StatusStore {
    /// Add `outcomes` to their rulesets' stored statuses, in one transaction.
    fn write(&self, outcomes: &HashMap<(u64, String), WebhookStatus>) -> Result<()> {
        let _process = lock(&self.writes);
        let _shared = self
            .store
            .lock(RecordTable::HuntingRulesets)
            .map_err(HuntingError::Store)?;
        let mut read: BTreeMap<u64, Ruleset> = BTreeMap::new();
        let mut changed: BTreeSet<u64> = BTreeSet::new();
        for ((id, url), status) in outcomes {
            if !read.contains_key(id) {
                match store_io::ruleset(self.store.as_ref(), *id)? {
                    Some(ruleset) => read.insert(*id, ruleset),
                    // Deleted since: its outcomes go with it.
                    None => continue,
                };
            }
            // A ruleset whose webhook goes elsewhere now does not count the old one's.
            if let Some(ruleset) = read.get_mut(id)
                && ruleset.webhook_url.as_deref() == Some(url.as_str())
            {
                ruleset.webhook.add(status);
                changed.insert(*id);
            }
        }
        let writes = read
            .values()
            .filter(|r| changed.contains(&r.id))
            .map(|r| store_io::put(RecordTable::HuntingRulesets, r.id, r))
            .collect::<Result<Vec<_>>>()?;
        if writes.is_empty() {
            return Ok(());
        }
        self.store
            .write_records(writes)
            .map_err(HuntingError::Store)
    }
}

struct Delivery {
    ruleset_id: u64,
    url: String,
    body: Vec<u8>,
}

/// Outcomes not yet written, per ruleset and URL.
type Pending = Arc<Mutex<HashMap<(u64, String), WebhookStatus>>>;

/// The delivery thread (started on the first delivery) and the outcomes it has to write.
pub(crate) struct Deliveries {
    back_off: Vec<Duration>,
    sender: Mutex<Option<SyncSender<Delivery>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    closing: Arc<AtomicBool>,
    pending: Pending,
    status: Arc<StatusStore>,
}

impl Deliveries {
    pub(crate) fn new(webhooks: Webhooks, status: StatusStore) -> Self {
        Deliveries {
            back_off: webhooks.back_off,
            sender: Mutex::new(None),
            worker: Mutex::new(None),
            closing: Arc::new(AtomicBool::new(false)),
            pending: Pending::default(),
            status: Arc::new(status),
        }
    }

    /// Queue one delivery; never blocks.
    pub(crate) fn send(&self, ruleset_id: u64, url: &str, body: Vec<u8>) {
        let mut sender = lock(&self.sender);
        let sender = sender.get_or_insert_with(|| {
            let (tx, rx) = sync_channel(QUEUE);
            let worker = spawn_worker(Worker {
                rx,
                back_off: self.back_off.clone(),
                closing: self.closing.clone(),
                pending: self.pending.clone(),
                status: self.status.clone(),
            });
            *lock(&self.worker) = worker;
            tx
        });
        let delivery = Delivery {
            ruleset_id,
            url: url.to_string(),
            body,
        };
        let refused = match sender.try_send(delivery) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => Some(format!("{QUEUE} deliveries already waiting")),
            Err(TrySendError::Disconnected(_)) => Some("the delivery thread stopped".into()),
        };
        if let Some(reason) = refused {
            // Written by the thread's next batch, or when the set is dropped.
            note(&self.pending, ruleset_id, url, Err(reason));
        }
    }
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        lock(&self.sender).take();
        if let Some(worker) = lock(&self.worker).take() {
            let _ = worker.join();
        }
        // What the thread could not write (or refusals it never saw).
        flush(&self.pending, &self.status);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn note(pending: &Pending, ruleset_id: u64, url: &str, outcome: std::result::Result<(), String>) {
    lock(pending)
        .entry((ruleset_id, url.to_string()))
        .or_default()
        .count(outcome);
}

/// Write the pending outcomes; on failure they stay pending for the next batch.
fn flush(pending: &Pending, status: &StatusStore) {
    let outcomes = std::mem::take(&mut *lock(pending));
    if outcomes.is_empty() {
        return;
    }
    if let Err(e) = status.write(&outcomes) {
        eprintln!("sandscope-hunting: webhook outcomes cannot be written yet: {e}");
        let mut pending = lock(pending);
        for (key, earlier) in outcomes {
            // Outcomes noted meanwhile came later.
            let entry = pending.entry(key).or_default();
            let mut merged = earlier;
            merged.add(entry);
            *entry = merged;
        }
    }
}

/// What the delivery thread works with.
struct Worker {
    rx: Receiver<Delivery>,
    back_off: Vec<Duration>,
    closing: Arc<AtomicBool>,
    pending: Pending,
    status: Arc<StatusStore>,
}

impl Worker {
    fn run(self) {
        let mut flushed = Instant::now();
        let mut next = self.rx.recv().ok();
        while let Some(delivery) = next.take() {
            let outcome = self.deliver(&delivery);
            note(&self.pending, delivery.ruleset_id, &delivery.url, outcome);
            next = match self.rx.try_recv() {
                Ok(waiting) => Some(waiting),
                Err(TryRecvError::Empty) => {
                    // Nothing waits: write now, then sleep until the next delivery.
                    flush(&self.pending, &self.status);
                    flushed = Instant::now();
                    self.rx.recv().ok()
                }
                Err(TryRecvError::Disconnected) => None,
            };
            if flushed.elapsed() >= FLUSH_INTERVAL {
                flush(&self.pending, &self.status);
                flushed = Instant::now();
            }
        }
        flush(&self.pending, &self.status);
    }

    /// A first attempt and one after each back-off delay (none once the set is closing).
    fn deliver(&self, delivery: &Delivery) -> std::result::Result<(), String> {
        let mut outcome = post(&delivery.url, &delivery.body);
        for delay in &self.back_off {
            if outcome.is_ok() || self.closing.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(*delay);
            outcome = post(&delivery.url, &delivery.body);
        }
        outcome
    }
}

fn spawn_worker(worker: Worker) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("sandscope-webhooks".into())
        .spawn(move || worker.run());
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("sandscope-hunting: cannot start the webhook thread: {e}");
            None
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seam::RecordWrite;
    use serde_json::json;

    fn ruleset(id: u64, url: &str) -> Ruleset {
        let body = json!({"name": "hooked", "rules": "x", "webhook_url": url});
        Ruleset::from_attributes(id, body.as_object().unwrap(), 1).unwrap()
    }

    #[test]
    fn outcomes_count_on_the_ruleset_whose_webhook_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(sandscope_store::Store::open(dir.path()).unwrap());
        let puts: Vec<RecordWrite> = [ruleset(1, "http://a/"), ruleset(2, "http://b/")]
            .iter()
            .map(|r| store_io::put(RecordTable::HuntingRulesets, r.id, r).unwrap())
            .collect();
        store.write_records(puts).unwrap();
        let status = StatusStore {
            store: store.clone(),
            writes: Arc::default(),
        };
        let pending = Pending::default();
        note(&pending, 1, "http://a/", Ok(()));
        note(&pending, 1, "http://a/", Err("first".into()));
        note(&pending, 1, "http://a/", Err("last".into()));
        // Ruleset 1 delivered to another URL before it was changed to this one.
        note(&pending, 1, "http://old/", Err("old".into()));
        note(&pending, 2, "http://b/", Ok(()));
        // Ruleset 3 was deleted meanwhile.
        note(&pending, 3, "http://c/", Ok(()));
        flush(&pending, &status);
        assert!(lock(&pending).is_empty(), "everything written");

        let one = store_io::ruleset(store.as_ref(), 1).unwrap().unwrap();
        let expected = WebhookStatus {
            delivered: 1,
            failures: 2,
            last_error: Some("last".into()),
        };
        assert_eq!(one.webhook, expected);
        let two = store_io::ruleset(store.as_ref(), 2).unwrap().unwrap();
        assert_eq!((two.webhook.delivered, two.webhook.failures), (1, 0));
        assert!(store_io::ruleset(store.as_ref(), 3).unwrap().is_none());

        // A second batch adds to what is stored.
        note(&pending, 1, "http://a/", Ok(()));
        flush(&pending, &status);
        let one = store_io::ruleset(store.as_ref(), 1).unwrap().unwrap();
        assert_eq!((one.webhook.delivered, one.webhook.failures), (2, 2));
        assert_eq!(one.webhook.last_error.as_deref(), Some("last"));
    }
}
