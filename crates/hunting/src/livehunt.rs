//! Livehunt: every enabled ruleset evaluated on each report as it is stored, before the ingest
//! is acknowledged. Sigma rulesets run in the ingest pipeline over the sample's attributed
//! events (the report's own analysis, [`Livehunt::sigma_findings`]); once the reports are
//! stored, query rulesets run over the sample's searchable view and every finding becomes a
//! notification, within its ruleset's `limit` ([`Livehunt::notify`]).
//!
//! The compiled rulesets are held behind one lock and swapped whole when a ruleset changes
//! ([`Livehunt::reload`]); an ingest running meanwhile finishes with the set it started with.
//! The Sigma rulesets without correlations are evaluated through one merged engine (see
//! `merged.rs`), rebuilt by the reload that changes them.
//!
//! On the embedded store the notifications are written in the reports' own transaction
//! ([`Livehunt::put_reports`]): they land together or not at all, and a notifying ingest costs
//! no second durable commit. A store that cannot do that (PostgreSQL: its workers build the
//! reports) writes them in a transaction of their own, after the reports' ([`Livehunt::notify`]):
//! a crash between the two leaves the reports stored without their notifications, and the
//! ingest was not acknowledged, so the client's retry (which replaces the reports) raises them.
//! Either way their webhook deliveries are queued in the store in the notifications'
//! transaction (see `webhook.rs`).

use crate::error::{HuntingError, Result};
use crate::merged::MergedSigma;
use crate::notification::Notification;
use crate::rules::CompiledRules;
use crate::ruleset::Ruleset;
use crate::seam::{RecordStore, RecordStoreError, RecordTable, RecordWrite};
use crate::store_io;
use crate::webhook::{self, Deliveries, QueueStore, Webhooks};
use sandscope_event::SysmonEvent;
use sandscope_query::SampleDoc;
use sandscope_store::{NewReport, Store, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// One rule of one ruleset that matched one sample, not yet a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ruleset_id: u64,
    pub sha256: String,
    pub hit: crate::rules::RuleHit,
}

/// An enabled ruleset, compiled.
struct Active {
    id: u64,
    /// The ruleset's `modification_date` when compiled: unchanged means no recompiling.
    version: i64,
    rules: Arc<CompiledRules>,
    /// Its Sigma rules are evaluated in [`ActiveSet::merged`], not on their own.
    merged: bool,
}

/// The enabled rulesets, compiled, and their Sigma rules merged (see `merged.rs`).
#[derive(Default)]
struct ActiveSet {
    rulesets: Vec<Active>,
    merged: Option<Arc<MergedSigma>>,
}

/// The enabled rulesets, compiled; shared by the pipeline and the API (clone the `Arc`).
pub struct Livehunt {
    active: RwLock<Arc<ActiveSet>>,
    /// Serialises this process's read-modify-writes of ruleset records (a ruleset's rate
    /// window, a PATCH of the same ruleset and its webhook's outcomes must not undo each
    /// other); other processes are kept out by the store's lock, taken after this one.
    pub(crate) writes: Arc<Mutex<()>>,
    /// The thread delivering the store's webhook deliveries.
    deliveries: Deliveries,
}

impl Livehunt {
    /// The enabled rulesets of `store`, and a thread delivering its pending webhook deliveries
    /// (so the store is held for as long as the set is).
    pub fn load(store: Arc<dyn RecordStore>) -> Result<Livehunt> {
        Livehunt::load_with(store, Webhooks::default())
    }

    /// [`Livehunt::load`] delivering webhooks through `webhooks`.
    pub fn load_with(store: Arc<dyn RecordStore>, webhooks: Webhooks) -> Result<Livehunt> {
        let writes = Arc::new(Mutex::new(()));
        let queue = QueueStore {
            store: store.clone(),
            writes: writes.clone(),
        };
        let live = Livehunt {
            active: RwLock::default(),
            writes,
            deliveries: Deliveries::new(webhooks, queue),
        };
        live.reload(store.as_ref())?;
        Ok(live)
    }

    /// Pick up ruleset changes: compile what changed, drop what was disabled or deleted, and
    /// rebuild the merged Sigma engine when its rulesets changed.
    pub fn reload(&self, store: &dyn RecordStore) -> Result<()> {
        let current = self.snapshot();
        let mut next = Vec::new();
        let enabled: Vec<Ruleset> = store_io::rulesets(store)?
            .into_iter()
            .filter(|r| r.enabled)
            .collect();
        for ruleset in &enabled {
            if let Some(same) = current
                .rulesets
                .iter()
                .find(|a| a.id == ruleset.id && a.version == ruleset.modification_date)
            {
                next.push(Active {
                    id: same.id,
                    version: same.version,
                    rules: same.rules.clone(),
                    merged: false,
                });
                continue;
            }
            // Stored rulesets compiled when saved; one that no longer does (a newer engine)
            // is left out rather than stopping every other one.
            match CompiledRules::compile(ruleset.rule_language, &ruleset.rules) {
                Ok(rules) => next.push(Active {
                    id: ruleset.id,
                    version: ruleset.modification_date,
                    merged: false,
                    rules: Arc::new(rules),
                }),
                Err(e) => eprintln!(
                    "sandscope-hunting: ruleset {} ({}) no longer compiles and is skipped: {e}",
                    ruleset.id, ruleset.name
                ),
            }
        }
        choose_merged(&mut next);
        let members: Vec<(u64, i64, &str)> = next
            .iter()
            .filter(|a| a.merged)
            .filter_map(|a| {
                let r = enabled.iter().find(|r| r.id == a.id)?;
                Some((a.id, a.version, r.rules.as_str()))
            })
            .collect();
        let merged = match &current.merged {
            _ if members.is_empty() => None,
            Some(m)
                if m.members
                    .iter()
                    .copied()
                    .eq(members.iter().map(|(i, v, _)| (*i, *v))) =>
            {
                Some(m.clone())
            }
            _ => Some(Arc::new(MergedSigma::build(&members))),
        };
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ActiveSet {
            rulesets: next,
            merged,
        });
        Ok(())
    }

    fn snapshot(&self) -> Arc<ActiveSet> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Number of enabled rulesets.
    pub fn enabled(&self) -> usize {
        self.snapshot().rulesets.len()
    }

    /// Whether any enabled ruleset is written in Sigma (else the pipeline need not pass events).
    pub fn has_sigma(&self) -> bool {
        self.snapshot()
            .rulesets
            .iter()
            .any(|a| matches!(*a.rules, CompiledRules::Sigma(_)))
    }

    /// The Sigma rulesets' findings over one sample's attributed events, ruleset by ruleset
    /// (in id order), each ruleset's in its report-analysis order.
    pub fn sigma_findings(&self, sha256: &str, events: &[SysmonEvent]) -> Vec<Finding> {
        let set = self.snapshot();
        let position = |id: u64| set.rulesets.iter().position(|a| a.id == id);
        let mut found: Vec<(usize, u64, crate::rules::RuleHit)> = Vec::new();
        if let Some(merged) = &set.merged {
            for (id, hit) in merged.hits(events) {
                if let Some(p) = position(id) {
                    found.push((p, id, hit));
                }
            }
        }
        for (p, a) in set.rulesets.iter().enumerate().filter(|(_, a)| !a.merged) {
            found.extend(
                a.rules
                    .sigma_hits(events)
                    .into_iter()
                    .map(|hit| (p, a.id, hit)),
            );
        }
        // Stable: each ruleset's hits keep their analysis order.
        found.sort_by_key(|(p, _, _)| *p);
        found
            .into_iter()
            .map(|(_, ruleset_id, hit)| Finding {
                ruleset_id,
                sha256: sha256.to_string(),
                hit,
            })
            .collect()
    }

    /// After the reports of `samples` are stored: run the query rulesets over each sample and
    /// record every finding (these and `sigma`) as a notification, within each ruleset's
    /// limit, in a transaction of its own. Returns the notifications recorded. A store that
    /// can write records with reports does both at once instead ([`Livehunt::put_reports`]).
    pub fn notify(
        &self,
        store: &dyn RecordStore,
        sigma: Vec<Finding>,
        samples: &[String],
        now: i64,
    ) -> Result<Vec<Notification>> {
        let set = self.snapshot();
        let mut docs = Vec::new();
        if set.has_queries() {
            for sha in unique(samples) {
                if let Some(doc) = store.sample_doc(sha).map_err(HuntingError::Store)? {
                    docs.push((sha, doc));
                }
            }
        }
        let findings = set.findings(sigma, docs.iter().map(|(sha, doc)| (*sha, doc)), now);
        if findings.is_empty() {
            return Ok(Vec::new());
        }
        let staged = {
            let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
            // Other processes sharing the store (workers, servers) read-modify-write the same
            // rate windows: without the store's lock two could admit past a limit.
            let _shared = store
                .lock(RecordTable::HuntingRulesets)
                .map_err(HuntingError::Store)?;
            let (writes, staged) = record(store, findings, now)?;
            store.write_records(writes).map_err(HuntingError::Store)?;
            staged
        };
        Ok(self.recorded(staged))
    }

    /// Store `batch` in the embedded `store` with the notifications it raises — `sigma`, found
    /// while its reports were built, and the query rulesets' findings over its samples as
    /// stored — in one transaction: the notifications land with the reports or not at all, at
    /// the cost of one durable commit. Returns the report ids and the notifications recorded.
    /// A failure to make the notifications stores nothing ([`StoreError::Records`]).
    pub fn put_reports(
        &self,
        store: &Store,
        batch: Vec<NewReport>,
        sigma: Vec<Finding>,
        now: i64,
    ) -> std::result::Result<(Vec<String>, Vec<Notification>), StoreError> {
        let set = self.snapshot();
        // In batch order, so the same batch gets its notifications in the same order.
        let samples: Vec<String> = batch
            .iter()
            .map(|r| r.behaviour.sha256().to_string())
            .collect();
        // This process's ruleset writes first, then the store's writer: the order every
        // writer of ruleset records keeps (the webhook thread takes this lock, then writes).
        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let _shared =
            RecordStore::lock(store, RecordTable::HuntingRulesets).map_err(StoreError::Records)?;
        let mut sigma = Some(sigma);
        let mut staged = None;
        let ids = store.put_reports_with(batch, &mut |docs| {
            let docs = unique(&samples).filter_map(|sha| Some((sha, docs.get(sha)?)));
            let findings = set.findings(sigma.take().unwrap_or_default(), docs, now);
            if findings.is_empty() {
                return Ok(Vec::new());
            }
            let (writes, recorded) = record(store, findings, now).map_err(RecordStoreError::new)?;
            staged = Some(recorded);
            Ok(writes)
        })?;
        Ok((ids, staged.map(|s| self.recorded(s)).unwrap_or_default()))
    }

    /// Once notifications are committed: their webhook deliveries are due.
    fn recorded(&self, staged: Staged) -> Vec<Notification> {
        self.deliveries.queued(&staged.queued);
        staged.notifications
    }
}

/// Each SHA-256 of `samples` once, in order.
fn unique(samples: &[String]) -> impl Iterator<Item = &str> {
    samples
        .iter()
        .enumerate()
        .filter(|(i, sha)| !samples[..*i].contains(sha))
        .map(|(_, sha)| sha.as_str())
}

impl ActiveSet {
    fn has_queries(&self) -> bool {
        self.rulesets
            .iter()
            .any(|a| matches!(*a.rules, CompiledRules::Queries(_)))
    }

    /// `sigma` and then every query ruleset's findings over each of `docs` (sample by sample,
    /// ruleset by ruleset).
    fn findings<'d>(
        &self,
        sigma: Vec<Finding>,
        docs: impl Iterator<Item = (&'d str, &'d SampleDoc)>,
        now: i64,
    ) -> Vec<Finding> {
        let mut findings = sigma;
        if !self.has_queries() {
            return findings;
        }
        for (sha, doc) in docs {
            for a in &self.rulesets {
                findings.extend(a.rules.query_hits(doc, now).into_iter().map(|hit| Finding {
                    ruleset_id: a.id,
                    sha256: sha.to_string(),
                    hit,
                }));
            }
        }
        findings
    }
}

/// Notifications made by [`record`], written but maybe not yet committed.
struct Staged {
    notifications: Vec<Notification>,
    /// Their webhook deliveries' ids.
    queued: Vec<u64>,
}

/// Which Sigma rulesets join the merged engine: those without correlation rules whose rules'
/// ids (titles, for rules without one) no merged ruleset before them uses — the engine keeps
/// one rule per id, and a ruleset must find alone exactly what it finds merged. The rest keep
/// their own engine.
fn choose_merged(rulesets: &mut [Active]) {
    let mut taken: HashSet<String> = HashSet::new();
    for active in rulesets {
        let CompiledRules::Sigma(engine) = &*active.rules else {
            continue;
        };
        if engine.has_correlations() {
            continue;
        }
        let keys: Vec<String> = engine
            .rules()
            .map(|r| r.id.clone().unwrap_or_else(|| r.title.clone()))
            .collect();
        if keys.iter().any(|k| taken.contains(k)) {
            continue;
        }
        taken.extend(keys);
        active.merged = true;
    }
}

/// Findings to notifications: each ruleset's rate window admits or drops each one. Returns
/// what to write in one transaction — the notifications, their webhook deliveries and the
/// rulesets' windows — and the notifications. Called under the rulesets' locks, held until
/// the writes are committed.
fn record(
    store: &dyn RecordStore,
    findings: Vec<Finding>,
    now: i64,
) -> Result<(Vec<RecordWrite>, Staged)> {
    let mut rulesets: BTreeMap<u64, Ruleset> = BTreeMap::new();
    let mut admitted: Vec<Finding> = Vec::new();
    for finding in findings {
        if !rulesets.contains_key(&finding.ruleset_id) {
            match store_io::ruleset(store, finding.ruleset_id)? {
                // Disabled or deleted since the ingest began: no notification.
                Some(r) if r.enabled => {
                    rulesets.insert(r.id, r);
                }
                _ => continue,
            }
        }
        let Some(ruleset) = rulesets.get_mut(&finding.ruleset_id) else {
            continue;
        };
        let limit = ruleset.limit;
        if ruleset.window.admit(limit, now) {
            admitted.push(finding);
        }
    }
    let ids = if admitted.is_empty() {
        Vec::new()
    } else {
        store
            .allocate_ids(RecordTable::HuntingNotifications, admitted.len() as u64)
            .map_err(HuntingError::Store)?
    };
    let names: HashMap<u64, String> = rulesets.values().map(|r| (r.id, r.name.clone())).collect();
    let notifications: Vec<Notification> = admitted
        .into_iter()
        .zip(ids)
        .map(|(f, id)| Notification {
            id,
            date: now,
            ruleset_id: f.ruleset_id,
            ruleset_name: names.get(&f.ruleset_id).cloned().unwrap_or_default(),
            rule_name: f.hit.rule_name,
            rule_tags: f.hit.rule_tags,
            snippet: f.hit.snippet,
            sha256: f.sha256,
        })
        .collect();
    // Before the rulesets are written: a delivery past the queue's bound counts on its ruleset.
    let (deliveries, queued) = webhook::enqueue(store, &notifications, &mut rulesets)?;
    let mut writes = Vec::with_capacity(notifications.len() + deliveries.len() + rulesets.len());
    for n in &notifications {
        writes.push(store_io::put(RecordTable::HuntingNotifications, n.id, n)?);
    }
    writes.extend(deliveries);
    // Their windows, not their rules: a notifying ingest rewrites a few bytes per ruleset.
    for r in rulesets.values() {
        writes.push(store_io::put_state(r)?);
    }
    Ok((
        writes,
        Staged {
            notifications,
            queued,
        },
    ))
}

/// What deleting a ruleset writes: the ruleset and its state, every notification it raised and
/// its pending webhook deliveries.
pub(crate) fn deletion(store: &dyn RecordStore, ruleset_id: u64) -> Result<Vec<RecordWrite>> {
    let mut writes = vec![
        RecordWrite::Delete(RecordTable::HuntingRulesets, ruleset_id),
        RecordWrite::Delete(RecordTable::HuntingRulesetStates, ruleset_id),
    ];
    writes.extend(webhook::dropped(store, ruleset_id, None)?);
    store_io::each_notification(store, |n| {
        if n.ruleset_id == ruleset_id {
            writes.push(RecordWrite::Delete(RecordTable::HuntingNotifications, n.id));
        }
    })?;
    Ok(writes)
}
