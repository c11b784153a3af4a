//! The store's side of webhook deliveries: the `webhook_deliveries` record (one per delivery not
//! yet made, under its notification's id), queueing one with its notification, claiming and
//! settling them, and dropping a ruleset's. Every read-modify-write is done under the rulesets'
//! locks, the ones notifications, PATCHes and deletes of rulesets take, so a claim never brings
//! back a delivery a delete removed, and a settled outcome never undoes a PATCH.

use super::{QUEUE, ms, now_ms};
use crate::error::{HuntingError, Result};
use crate::notification::Notification;
use crate::ruleset::Ruleset;
use crate::seam::{RecordStore, RecordTable, RecordWrite};
use crate::store_io;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const TABLE: RecordTable = RecordTable::WebhookDeliveries;

/// One delivery not yet made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub(crate) ruleset_id: u64,
    pub(crate) url: String,
    /// What is POSTed: `{"data": <the hunting_notification object>}`.
    pub(crate) body: String,
    /// Attempts made so far.
    pub(crate) attempts: u32,
    /// Unix ms before which no attempt is made (the back-off after a failed one).
    pub(crate) due_ms: i64,
    /// The process attempting it, and until when; `None` between attempts.
    pub(crate) lease: Option<Lease>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub(crate) holder: String,
    pub(crate) until_ms: i64,
}

impl Queued {
    /// The lease of a live process other than `me`, if one holds it.
    pub(crate) fn held_elsewhere(&self, me: &str, now_ms: i64) -> Option<&Lease> {
        self.lease
            .as_ref()
            .filter(|l| l.holder != me && l.until_ms > now_ms)
    }

    fn held_by(&self, me: &str) -> bool {
        self.lease.as_ref().is_some_and(|l| l.holder == me)
    }
}

/// A pending delivery as read: `None` when its record does not decode (a claim deletes it).
pub(crate) type Pending = Vec<(u64, Option<Queued>)>;

/// One attempt on a claimed delivery: its outcome, or `None` when it was not tried.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) id: u64,
    pub(crate) outcome: Option<std::result::Result<(), String>>,
}

/// Every pending delivery (at most [`QUEUE`]), oldest first.
fn pending(store: &dyn RecordStore) -> Result<Pending> {
    Ok(store
        .records(TABLE, 0..=u64::MAX, QUEUE, false)
        .map_err(HuntingError::Store)?
        .into_iter()
        .map(|(id, bytes)| (id, store_io::decode(TABLE, id, &bytes).ok()))
        .collect())
}

/// The writes that queue a delivery of each of `notifications` whose ruleset (in `rulesets`,
/// about to be written with them) has a webhook. Past [`QUEUE`] pending deliveries, one is
/// counted as a failure on its ruleset instead. Called under the rulesets' locks; returns the
/// writes and the ids queued.
pub(crate) fn enqueue(
    store: &dyn RecordStore,
    notifications: &[Notification],
    rulesets: &mut BTreeMap<u64, Ruleset>,
) -> Result<(Vec<RecordWrite>, Vec<u64>)> {
    let hooked: Vec<(&Notification, String)> = notifications
        .iter()
        .filter_map(|n| Some((n, rulesets.get(&n.ruleset_id)?.webhook_url.clone()?)))
        .collect();
    let (mut writes, mut ids) = (Vec::new(), Vec::new());
    if hooked.is_empty() {
        return Ok((writes, ids));
    }
    // Counted, not read: this runs under the locks on every notification with a webhook.
    let mut waiting = store
        .count_records(TABLE, QUEUE)
        .map_err(HuntingError::Store)?;
    let now = now_ms();
    for (n, url) in hooked {
        if waiting >= QUEUE {
            if let Some(ruleset) = rulesets.get_mut(&n.ruleset_id) {
                ruleset.webhook.count(Err(format!(
                    "notification {} not delivered: {QUEUE} webhook deliveries already wait in this store",
                    n.id
                )));
            }
            continue;
        }
        let queued = Queued {
            ruleset_id: n.ruleset_id,
            url,
            body: serde_json::json!({ "data": n.to_object() }).to_string(),
            attempts: 0,
            due_ms: now,
            lease: None,
        };
        writes.push(store_io::put(TABLE, n.id, &queued)?);
        ids.push(n.id);
        waiting += 1;
    }
    Ok((writes, ids))
}

/// The deletes of ruleset `ruleset_id`'s pending deliveries that do not go to `keep` (every
/// one when `None`): the ruleset is being deleted, or its webhook changed. Under the locks.
pub(crate) fn dropped(
    store: &dyn RecordStore,
    ruleset_id: u64,
    keep: Option<&str>,
) -> Result<Vec<RecordWrite>> {
    Ok(pending(store)?
        .into_iter()
        .filter(|(_, q)| {
            q.as_ref()
                .is_some_and(|q| q.ruleset_id == ruleset_id && keep != Some(q.url.as_str()))
        })
        .map(|(id, _)| RecordWrite::Delete(TABLE, id))
        .collect())
}

/// The store the deliveries live in, and this process's lock of ruleset writes
/// (`Livehunt::writes`), taken before the store's.
pub(crate) struct QueueStore {
    pub(crate) store: Arc<dyn RecordStore>,
    pub(crate) writes: Arc<Mutex<()>>,
}

impl QueueStore {
    /// `f` under the rulesets' locks: the process's, then the store's.
    fn locked<T>(&self, f: impl FnOnce(&dyn RecordStore) -> Result<T>) -> Result<T> {
        let _process = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let _shared = self
            .store
            .lock(RecordTable::HuntingRulesets)
            .map_err(HuntingError::Store)?;
        f(self.store.as_ref())
    }

    pub(crate) fn pending(&self) -> Result<Pending> {
        pending(self.store.as_ref())
    }

    /// Claim for `me` until `until_ms` those of `ids` that `claimable` still accepts, re-read
    /// under the locks, in one transaction; a record that does not decode is deleted. Returns
    /// what was claimed.
    pub(crate) fn claim(
        &self,
        ids: &[u64],
        me: &str,
        until_ms: i64,
        claimable: impl Fn(&Queued) -> bool,
    ) -> Result<Vec<(u64, Queued)>> {
        self.locked(|store| {
            let (mut writes, mut claimed) = (Vec::new(), Vec::new());
            for &id in ids {
                let Some(bytes) = store.record(TABLE, id).map_err(HuntingError::Store)? else {
                    continue;
                };
                let mut queued: Queued = match store_io::decode(TABLE, id, &bytes) {
                    Ok(queued) => queued,
                    Err(e) => {
                        eprintln!("sandscope-hunting: dropping a webhook delivery: {e}");
                        writes.push(RecordWrite::Delete(TABLE, id));
                        continue;
                    }
                };
                if !claimable(&queued) {
                    continue;
                }
                queued.lease = Some(Lease {
                    holder: me.to_string(),
                    until_ms,
                });
                writes.push(store_io::put(TABLE, id, &queued)?);
                claimed.push((id, queued));
            }
            if !writes.is_empty() {
                store.write_records(writes).map_err(HuntingError::Store)?;
            }
            Ok(claimed)
        })
    }

    /// Write the outcomes of `attempts` on deliveries `me` claimed, in one transaction: a
    /// delivery made, or failed with no back-off delay left (every failure when `last`), is
    /// removed and counted on its ruleset (if it still has that webhook); a failed one with a
    /// delay left is given back, due after it; one not tried is given back as it was. A
    /// delivery `me` no longer holds (taken over after its lease expired, or dropped with its
    /// ruleset) is left alone: whoever removes it counts it. Returns the ids removed.
    pub(crate) fn settle(
        &self,
        attempts: &[Attempt],
        me: &str,
        back_off: &[Duration],
        last: bool,
    ) -> Result<BTreeSet<u64>> {
        self.locked(|store| {
            let now = now_ms();
            let mut writes = Vec::new();
            let mut removed = BTreeSet::new();
            let mut rulesets: BTreeMap<u64, Option<Ruleset>> = BTreeMap::new();
            let mut changed: BTreeSet<u64> = BTreeSet::new();
            for attempt in attempts {
                let Some(bytes) = store
                    .record(TABLE, attempt.id)
                    .map_err(HuntingError::Store)?
                else {
                    removed.insert(attempt.id);
                    continue;
                };
                let Ok(mut queued) = store_io::decode::<Queued>(TABLE, attempt.id, &bytes) else {
                    continue;
                };
                if !queued.held_by(me) {
                    continue;
                }
                queued.lease = None;
                let Some(outcome) = &attempt.outcome else {
                    writes.push(store_io::put(TABLE, attempt.id, &queued)?);
                    continue;
                };
                queued.attempts = queued.attempts.saturating_add(1);
                let delay = back_off.get(queued.attempts as usize - 1);
                if let (Err(_), Some(delay), false) = (outcome, delay, last) {
                    queued.due_ms = now.saturating_add(ms(*delay));
                    writes.push(store_io::put(TABLE, attempt.id, &queued)?);
                    continue;
                }
                writes.push(RecordWrite::Delete(TABLE, attempt.id));
                removed.insert(attempt.id);
                let ruleset = match rulesets.entry(queued.ruleset_id) {
                    Entry::Occupied(read) => read.into_mut(),
                    Entry::Vacant(unread) => {
                        unread.insert(store_io::ruleset(store, queued.ruleset_id)?)
                    }
                };
                // A ruleset deleted since, or whose webhook goes elsewhere now, counts nothing.
                if let Some(ruleset) = ruleset
                    && ruleset.webhook_url.as_deref() == Some(queued.url.as_str())
                {
                    ruleset.webhook.count(outcome.clone());
                    changed.insert(ruleset.id);
                }
            }
            for ruleset in rulesets.values().flatten() {
                if changed.contains(&ruleset.id) {
                    writes.push(store_io::put_state(ruleset)?);
                }
            }
            if !writes.is_empty() {
                store.write_records(writes).map_err(HuntingError::Store)?;
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::WebhookStatus;
    use serde_json::json;

    fn ruleset(id: u64, url: &str) -> Ruleset {
        let body = json!({"name": "hooked", "rules": "x", "webhook_url": url});
        Ruleset::from_attributes(id, body.as_object().unwrap(), 1).unwrap()
    }

    fn notification(id: u64, ruleset_id: u64) -> Notification {
        Notification {
            id,
            date: 1_000,
            ruleset_id,
            ruleset_name: "hooked".into(),
            rule_name: "rule".into(),
            rule_tags: Vec::new(),
            snippet: String::new(),
            sha256: "0".repeat(64),
        }
    }

    fn status(store: &dyn RecordStore, id: u64) -> WebhookStatus {
        store_io::ruleset(store, id).unwrap().unwrap().webhook
    }

    #[test]
    fn outcomes_count_on_the_ruleset_whose_webhook_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(sandscope_store::Store::open(dir.path()).unwrap());
        let mut rulesets: BTreeMap<u64, Ruleset> =
            [ruleset(1, "http://a/"), ruleset(2, "http://b/")]
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
        let notifications: Vec<Notification> = [(10, 1), (11, 1), (12, 1), (13, 2), (14, 3)]
            .map(|(n, r)| notification(n, r))
            .into();
        let (mut writes, ids) = enqueue(store.as_ref(), &notifications, &mut rulesets).unwrap();
        assert_eq!(ids, [10, 11, 12, 13], "ruleset 3 is not stored: no webhook");
        for r in rulesets.values() {
            writes.extend(store_io::put_ruleset(r).unwrap());
        }
        store.write_records(writes).unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&pending(store.as_ref()).unwrap()[0].1.as_ref().unwrap().body)
                .unwrap();
        assert_eq!(
            body["data"]["id"], "10",
            "a receiver dedupes by the notification id"
        );

        let queue = QueueStore {
            store: store.clone(),
            writes: Arc::default(),
        };
        let claimed = queue.claim(&ids, "me", i64::MAX, |_| true).unwrap();
        assert_eq!(claimed.len(), 4);
        // Another process sees them held.
        let again = queue
            .claim(&ids, "other", i64::MAX, |q| {
                q.held_elsewhere("other", now_ms()).is_none()
            })
            .unwrap();
        assert!(again.is_empty());

        // Ruleset 1 moves to another webhook before its last delivery is settled.
        let attempts = [
            Attempt {
                id: 10,
                outcome: Some(Ok(())),
            },
            Attempt {
                id: 11,
                outcome: Some(Err("first".into())),
            },
            Attempt {
                id: 13,
                outcome: Some(Err("down".into())),
            },
        ];
        let back_off = [Duration::from_secs(60)];
        let removed = queue.settle(&attempts, "me", &back_off, false).unwrap();
        assert_eq!(
            removed,
            BTreeSet::from([10]),
            "11 and 13 wait for their retry"
        );
        assert_eq!(
            status(store.as_ref(), 1),
            WebhookStatus {
                delivered: 1,
                failures: 0,
                last_error: None
            }
        );
        let later = pending(store.as_ref()).unwrap();
        let eleven = later
            .iter()
            .find(|(id, _)| *id == 11)
            .unwrap()
            .1
            .clone()
            .unwrap();
        assert_eq!((eleven.attempts, eleven.lease), (1, None));
        assert!(eleven.due_ms > now_ms() + 50_000, "due after its back-off");

        // The last attempts: failures are final and counted, last error last.
        let claimed = queue
            .claim(&[11, 12, 13], "me", i64::MAX, |_| true)
            .unwrap();
        assert_eq!(claimed.len(), 3);
        let attempts = [
            Attempt {
                id: 11,
                outcome: Some(Err("second".into())),
            },
            Attempt {
                id: 12,
                outcome: None,
            },
            Attempt {
                id: 13,
                outcome: Some(Err("last".into())),
            },
        ];
        queue.settle(&attempts, "me", &back_off, true).unwrap();
        assert_eq!(
            status(store.as_ref(), 1),
            WebhookStatus {
                delivered: 1,
                failures: 1,
                last_error: Some("second".into())
            }
        );
        assert_eq!(status(store.as_ref(), 2).failures, 1);
        let left: Vec<u64> = pending(store.as_ref())
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, [12], "not tried: given back");

        // A ruleset whose webhook changed drops its pending deliveries.
        let drops = dropped(store.as_ref(), 1, Some("http://elsewhere/")).unwrap();
        assert_eq!(drops.len(), 1);
        assert!(
            dropped(store.as_ref(), 1, Some("http://a/"))
                .unwrap()
                .is_empty()
        );
        assert!(dropped(store.as_ref(), 2, None).unwrap().is_empty());
    }

    #[test]
    fn past_the_queue_a_delivery_is_a_failure_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = sandscope_store::Store::open(dir.path()).unwrap();
        let mut rulesets = BTreeMap::from([(1, ruleset(1, "http://a/"))]);
        let notifications: Vec<Notification> =
            (1..=QUEUE as u64 + 2).map(|n| notification(n, 1)).collect();
        let (writes, ids) = enqueue(&store, &notifications, &mut rulesets).unwrap();
        assert_eq!(ids.len(), QUEUE);
        store.write_records(writes).unwrap();
        let status = &rulesets[&1].webhook;
        assert_eq!((status.delivered, status.failures), (0, 2));
        let error = status.last_error.as_deref().unwrap();
        assert!(
            error.contains("1000 webhook deliveries already wait"),
            "{error}"
        );
        // Still full: the next one fails too.
        let (writes, ids) = enqueue(&store, &[notification(5_000, 1)], &mut rulesets).unwrap();
        assert!(writes.is_empty() && ids.is_empty());
        assert_eq!(rulesets[&1].webhook.failures, 3);
    }

    #[test]
    fn the_bound_is_the_stores_count_of_pending_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let store = sandscope_store::Store::open(dir.path()).unwrap();
        // Another ruleset's deliveries, written as the queue writes them, fill all but one place.
        let mut others = BTreeMap::from([(2, ruleset(2, "http://b/"))]);
        let waiting: Vec<Notification> = (1..QUEUE as u64).map(|n| notification(n, 2)).collect();
        let (writes, _) = enqueue(&store, &waiting, &mut others).unwrap();
        store.write_records(writes).unwrap();
        assert_eq!(store.count_records(TABLE, QUEUE).unwrap(), QUEUE - 1);
        assert_eq!(
            store.count_records(TABLE, 10).unwrap(),
            10,
            "counted up to the cap"
        );
        assert_eq!(
            store
                .count_records(RecordTable::HuntingRulesets, QUEUE)
                .unwrap(),
            0,
            "a table never written"
        );

        let mut rulesets = BTreeMap::from([(1, ruleset(1, "http://a/"))]);
        let next = [notification(5_000, 1), notification(5_001, 1)];
        let (writes, ids) = enqueue(&store, &next, &mut rulesets).unwrap();
        assert_eq!(ids, [5_000], "the one place left");
        store.write_records(writes).unwrap();
        assert_eq!(rulesets[&1].webhook.failures, 1);
        assert_eq!(store.count_records(TABLE, QUEUE + 5).unwrap(), QUEUE);

        // A delivery made (removed) frees its place.
        store
            .write_records(vec![RecordWrite::Delete(TABLE, 1)])
            .unwrap();
        let (_, ids) = enqueue(&store, &[notification(5_002, 1)], &mut rulesets).unwrap();
        assert_eq!(ids, [5_002]);
        assert_eq!(rulesets[&1].webhook.failures, 1);
    }
}
