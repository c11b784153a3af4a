//! Webhooks: each notification of a ruleset with a `webhook_url` is POSTed there as JSON (its
//! `hunting_notification` object) by one background thread, so an ingest never waits on a
//! receiver. A failed delivery (no connection, no answer within [`TIMEOUT`], a status other
//! than 2xx) is retried after each of the back-off delays (1, 4 and 16 s); the last failure is
//! counted on the ruleset (`webhook_failures`, `webhook_last_error`, shown with it; kept in
//! memory, so a restart clears it). At most [`QUEUE`] deliveries wait; past that a delivery is
//! a failure at once. `http://` and `https://` URLs are delivered (`ureq`, rustls with the
//! Mozilla roots); redirects are not followed. When the process ends (the Livehunt set is
//! dropped), waiting deliveries get one attempt each, without back-off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Deliveries waiting at most.
pub const QUEUE: usize = 1_000;
/// Connect, write and read timeout of one attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);
const BACK_OFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(16),
];

/// How a ruleset's webhook has fared since the process started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookStatus {
    pub delivered: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

struct Delivery {
    ruleset_id: u64,
    url: String,
    body: Vec<u8>,
}

type Statuses = Arc<Mutex<HashMap<u64, WebhookStatus>>>;

/// The delivery thread (started on the first delivery) and what it reports.
pub struct Webhooks {
    back_off: Vec<Duration>,
    sender: Mutex<Option<SyncSender<Delivery>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    statuses: Statuses,
    closing: Arc<AtomicBool>,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self::with_back_off(BACK_OFF.to_vec())
    }
}

impl Webhooks {
    /// Webhooks retried after each of `back_off` (tests use short ones).
    pub fn with_back_off(back_off: Vec<Duration>) -> Self {
        Webhooks {
            back_off,
            sender: Mutex::new(None),
            worker: Mutex::new(None),
            statuses: Statuses::default(),
            closing: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn status(&self, ruleset_id: u64) -> Option<WebhookStatus> {
        lock(&self.statuses).get(&ruleset_id).cloned()
    }

    /// Queue one delivery; never blocks.
    pub(crate) fn send(&self, ruleset_id: u64, url: &str, body: Vec<u8>) {
        let mut sender = lock(&self.sender);
        let sender = sender.get_or_insert_with(|| {
            let (tx, rx) = sync_channel(QUEUE);
            let worker = spawn_worker(
                rx,
                self.back_off.clone(),
                self.statuses.clone(),
                self.closing.clone(),
            );
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
            record(&self.statuses, ruleset_id, Err(reason));
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        lock(&self.sender).take();
        if let Some(worker) = lock(&self.worker).take() {
            let _ = worker.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(statuses: &Statuses, ruleset_id: u64, outcome: Result<(), String>) {
    let mut statuses = lock(statuses);
    let status = statuses.entry(ruleset_id).or_default();
    match outcome {
        Ok(()) => status.delivered += 1,
        Err(reason) => {
            status.failures += 1;
            status.last_error = Some(reason);
        }
    }
}

fn spawn_worker(
    rx: Receiver<Delivery>,
    back_off: Vec<Duration>,
    statuses: Statuses,
    closing: Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("sandscope-webhooks".into())
        .spawn(move || {
            for delivery in rx {
                let mut outcome = post(&delivery.url, &delivery.body);
                for delay in &back_off {
                    if outcome.is_ok() || closing.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(*delay);
                    outcome = post(&delivery.url, &delivery.body);
                }
                record(&statuses, delivery.ruleset_id, outcome);
            }
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("sandscope-hunting: cannot start the webhook thread: {e}");
            None
        }
    }
}

/// One POST of a JSON body (http or https, through `ureq`); `Ok` on a 2xx status.
fn post(url: &str, body: &[u8]) -> Result<(), String> {
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
