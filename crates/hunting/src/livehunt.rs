//! Livehunt: every enabled ruleset evaluated on each report as it is stored, before the ingest
//! is acknowledged. Sigma rulesets run in the ingest pipeline over the sample's attributed
//! events (the report's own analysis, [`Livehunt::sigma_findings`]); once the reports are
//! stored, query rulesets run over the sample's searchable view and every finding becomes a
//! notification, within its ruleset's `limit` ([`Livehunt::notify`]).
//!
//! The compiled rulesets are held behind one lock and swapped whole when a ruleset changes
//! ([`Livehunt::reload`]); an ingest running meanwhile finishes with the set it started with.
//!
//! The notifications are written in their own transaction, after the reports': a crash between
//! the two leaves the reports stored without their notifications, and the ingest was not
//! acknowledged, so the client's retry (which replaces the reports) raises them.

use crate::error::{HuntingError, Result};
use crate::notification::Notification;
use crate::rules::CompiledRules;
use crate::ruleset::Ruleset;
use crate::seam::{RecordStore, RecordTable, RecordWrite};
use crate::store_io;
use crate::webhook::Webhooks;
use sandscope_event::SysmonEvent;
use std::collections::{BTreeMap, HashMap};
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
}

/// The enabled rulesets, compiled; shared by the pipeline and the API (clone the `Arc`).
#[derive(Default)]
pub struct Livehunt {
    active: RwLock<Arc<Vec<Active>>>,
    /// Serialises every read-modify-write of hunting records (a ruleset's rate window and a
    /// PATCH of the same ruleset must not undo each other).
    pub(crate) writes: Mutex<()>,
    pub(crate) webhooks: Webhooks,
}

impl Livehunt {
    /// The enabled rulesets of `store`.
    pub fn load(store: &dyn RecordStore) -> Result<Livehunt> {
        Livehunt::load_with(store, Webhooks::default())
    }

    /// [`Livehunt::load`] delivering webhooks through `webhooks`.
    pub fn load_with(store: &dyn RecordStore, webhooks: Webhooks) -> Result<Livehunt> {
        let live = Livehunt {
            webhooks,
            ..Livehunt::default()
        };
        live.reload(store)?;
        Ok(live)
    }

    /// How a ruleset's webhook has fared since the process started.
    pub fn webhook_status(&self, ruleset_id: u64) -> Option<crate::webhook::WebhookStatus> {
        self.webhooks.status(ruleset_id)
    }

    /// Pick up ruleset changes: compile what changed, drop what was disabled or deleted.
    pub fn reload(&self, store: &dyn RecordStore) -> Result<()> {
        let current = self.snapshot();
        let mut next = Vec::new();
        for ruleset in store_io::rulesets(store)?.into_iter().filter(|r| r.enabled) {
            if let Some(same) = current
                .iter()
                .find(|a| a.id == ruleset.id && a.version == ruleset.modification_date)
            {
                next.push(Active {
                    id: same.id,
                    version: same.version,
                    rules: same.rules.clone(),
                });
                continue;
            }
            // Stored rulesets compiled when saved; one that no longer does (a newer engine)
            // is left out rather than stopping every other one.
            match CompiledRules::compile(ruleset.rule_language, &ruleset.rules) {
                Ok(rules) => next.push(Active {
                    id: ruleset.id,
                    version: ruleset.modification_date,
                    rules: Arc::new(rules),
                }),
                Err(e) => eprintln!(
                    "sandscope-hunting: ruleset {} ({}) no longer compiles and is skipped: {e}",
                    ruleset.id, ruleset.name
                ),
            }
        }
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<Active>> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Number of enabled rulesets.
    pub fn enabled(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether any enabled ruleset is written in Sigma (else the pipeline need not pass events).
    pub fn has_sigma(&self) -> bool {
        self.snapshot()
            .iter()
            .any(|a| matches!(*a.rules, CompiledRules::Sigma(_)))
    }

    /// The Sigma rulesets' findings over one sample's attributed events.
    pub fn sigma_findings(&self, sha256: &str, events: &[SysmonEvent]) -> Vec<Finding> {
        let active = self.snapshot();
        active
            .iter()
            .flat_map(|a| {
                a.rules.sigma_hits(events).into_iter().map(|hit| Finding {
                    ruleset_id: a.id,
                    sha256: sha256.to_string(),
                    hit,
                })
            })
            .collect()
    }

    /// After the reports of `samples` are stored: run the query rulesets over each sample and
    /// record every finding (these and `sigma`) as a notification, within each ruleset's
    /// limit. Returns the notifications recorded.
    pub fn notify(
        &self,
        store: &dyn RecordStore,
        sigma: Vec<Finding>,
        samples: &[String],
        now: i64,
    ) -> Result<Vec<Notification>> {
        let active = self.snapshot();
        let mut findings = sigma;
        if active
            .iter()
            .any(|a| matches!(*a.rules, CompiledRules::Queries(_)))
        {
            let mut seen: Vec<&String> = Vec::new();
            for sha in samples {
                if seen.contains(&sha) {
                    continue;
                }
                seen.push(sha);
                let Some(doc) = store.sample_doc(sha).map_err(HuntingError::Store)? else {
                    continue;
                };
                for a in active.iter() {
                    findings.extend(
                        a.rules
                            .query_hits(&doc, now)
                            .into_iter()
                            .map(|hit| Finding {
                                ruleset_id: a.id,
                                sha256: sha.clone(),
                                hit,
                            }),
                    );
                }
            }
        }
        if findings.is_empty() {
            return Ok(Vec::new());
        }
        let (notifications, webhooks) = {
            let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
            record(store, findings, now)?
        };
        for n in &notifications {
            if let Some(url) = webhooks.get(&n.ruleset_id) {
                let body = serde_json::json!({ "data": n.to_object() }).to_string();
                self.webhooks.send(n.ruleset_id, url, body.into_bytes());
            }
        }
        Ok(notifications)
    }
}

/// Findings to notifications: each ruleset's rate window admits or drops each one; the
/// notifications and the rulesets' windows are written in one transaction. Also returns the
/// webhook of each ruleset that has one.
fn record(
    store: &dyn RecordStore,
    findings: Vec<Finding>,
    now: i64,
) -> Result<(Vec<Notification>, HashMap<u64, String>)> {
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
    let mut writes = Vec::with_capacity(notifications.len() + rulesets.len());
    for n in &notifications {
        writes.push(store_io::put(RecordTable::HuntingNotifications, n.id, n)?);
    }
    for r in rulesets.values() {
        writes.push(store_io::put(RecordTable::HuntingRulesets, r.id, r)?);
    }
    store.write_records(writes).map_err(HuntingError::Store)?;
    let webhooks = rulesets
        .values()
        .filter_map(|r| Some((r.id, r.webhook_url.clone()?)))
        .collect();
    Ok((notifications, webhooks))
}

/// What deleting a ruleset writes: the ruleset and every notification it raised.
pub(crate) fn deletion(store: &dyn RecordStore, ruleset_id: u64) -> Result<Vec<RecordWrite>> {
    let mut writes = vec![RecordWrite::Delete(
        RecordTable::HuntingRulesets,
        ruleset_id,
    )];
    store_io::each_notification(store, |n| {
        if n.ruleset_id == ruleset_id {
            writes.push(RecordWrite::Delete(RecordTable::HuntingNotifications, n.id));
        }
    })?;
    Ok(writes)
}
