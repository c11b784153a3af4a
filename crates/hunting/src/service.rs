//! What the API and the CLI do with rulesets and notifications: create, PATCH, delete, list
//! (with `filter`, `order` and cursors) — one implementation both call, over any
//! [`RecordStore`]. Every change to a ruleset reloads the [`Livehunt`] set at once.
//!
//! Deleting a ruleset deletes the notifications it raised, in the same transaction: a
//! notification names its ruleset, and one whose ruleset is gone could not be explained or
//! filtered by it. Deleting it, or changing its `webhook_url`, deletes its pending webhook
//! deliveries in the same transaction too.
//!
//! Every write of rulesets is a read-modify-write under the rulesets' locks: the process's
//! (`Livehunt::writes`) and the store's ([`RecordStore::lock`]), which every process sharing a
//! PostgreSQL store takes (Livehunt writing a ruleset's rate window, another server's PATCH,
//! webhook outcomes). So a PATCH is never undone by a concurrent rate-window write, and two
//! creates never pass the [`MAX_RULESETS`] check together. Rules compile before the locks are
//! taken where they can, so a large ruleset does not hold up every process's notifications.

use crate::error::{HuntingError, Result};
use crate::livehunt::{Livehunt, deletion};
use crate::notification::{Notification, NotificationFilter};
use crate::rules::CompiledRules;
use crate::ruleset::Ruleset;
use crate::seam::{RecordLock, RecordStore, RecordTable, RecordWrite};
use crate::store_io::{self, MAX_RULESETS, SCAN_BATCH};
use crate::webhook;
use serde_json::{Map, Value};
use std::sync::{MutexGuard, PoisonError};

/// Notifications examined by one filtered list page before it stops with what it found.
const MAX_SCANNED: usize = 200_000;

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor`; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Hunting over one store and its Livehunt set.
pub struct Hunting<'a> {
    pub store: &'a dyn RecordStore,
    pub live: &'a Livehunt,
}

impl Hunting<'_> {
    /// Create a ruleset from a create body's `attributes`; nothing is saved unless its rules
    /// compile.
    pub fn create_ruleset(&self, attributes: &Map<String, Value>, now: i64) -> Result<Ruleset> {
        let mut ruleset = Ruleset::from_attributes(0, attributes, now)?;
        ruleset.rule_names =
            CompiledRules::compile(ruleset.rule_language, &ruleset.rules)?.rule_names();
        let _process = self.process_lock();
        {
            let _shared = self.store_lock()?;
            self.insert(&mut ruleset)?;
        }
        self.live.reload(self.store)?;
        Ok(ruleset)
    }

    /// Store a new ruleset under a new id, within [`MAX_RULESETS`] (the store's count, so the
    /// check reads no ruleset); under the locks.
    fn insert(&self, ruleset: &mut Ruleset) -> Result<()> {
        let held = self
            .store
            .count_records(RecordTable::HuntingRulesets, MAX_RULESETS)
            .map_err(HuntingError::Store)?;
        if held >= MAX_RULESETS {
            return Err(HuntingError::Invalid(format!(
                "this store already holds the maximum of {MAX_RULESETS} rulesets"
            )));
        }
        ruleset.id = self
            .store
            .allocate_ids(RecordTable::HuntingRulesets, 1)
            .map_err(HuntingError::Store)?
            .first()
            .copied()
            .ok_or_else(|| HuntingError::Invalid("no ruleset id left".into()))?;
        self.write(ruleset)
    }

    /// A ruleset as the API shows it (with its webhook's deliveries).
    pub fn ruleset_object(&self, ruleset: &Ruleset, now: i64) -> Value {
        ruleset.to_object(now)
    }

    pub fn ruleset(&self, id: u64) -> Result<Ruleset> {
        store_io::ruleset(self.store, id)?.ok_or_else(|| not_found("Ruleset", id))
    }

    /// Apply a PATCH body's `attributes`; nothing is saved unless the result compiles.
    pub fn update_ruleset(
        &self,
        id: u64,
        attributes: &Map<String, Value>,
        now: i64,
    ) -> Result<Ruleset> {
        // Compiled outside the locks (the PATCH's new rules, on the ruleset as it is now);
        // under them, reused if the rules are still the ones compiled.
        let mut early = self.ruleset(id)?;
        let compiled = if early.apply(attributes, now)? {
            let names = CompiledRules::compile(early.rule_language, &early.rules)?.rule_names();
            Some((early.rule_language, early.rules, names))
        } else {
            None
        };
        let _process = self.process_lock();
        let ruleset = {
            let _shared = self.store_lock()?;
            let mut ruleset = self.ruleset(id)?;
            let hooked = ruleset.webhook_url.clone();
            if ruleset.apply(attributes, now)? {
                ruleset.rule_names = match &compiled {
                    Some((language, rules, names))
                        if *language == ruleset.rule_language && *rules == ruleset.rules =>
                    {
                        names.clone()
                    }
                    _ => {
                        CompiledRules::compile(ruleset.rule_language, &ruleset.rules)?.rule_names()
                    }
                };
            }
            let mut writes = store_io::put_ruleset(&ruleset)?.to_vec();
            if ruleset.webhook_url != hooked {
                // Its pending deliveries went to the old webhook: dropped with its counts.
                writes.extend(webhook::dropped(
                    self.store,
                    id,
                    ruleset.webhook_url.as_deref(),
                )?);
            }
            self.store
                .write_records(writes)
                .map_err(HuntingError::Store)?;
            ruleset
        };
        self.live.reload(self.store)?;
        Ok(ruleset)
    }

    /// Delete a ruleset and its notifications (see the module documentation).
    pub fn delete_ruleset(&self, id: u64) -> Result<()> {
        let _process = self.process_lock();
        {
            let _shared = self.store_lock()?;
            self.ruleset(id)?;
            self.store
                .write_records(deletion(self.store, id)?)
                .map_err(HuntingError::Store)?;
        }
        self.live.reload(self.store)
    }

    /// Delete every ruleset and its notifications, a ruleset per transaction; returns how many.
    pub fn delete_all_rulesets(&self) -> Result<usize> {
        let _process = self.process_lock();
        let count = {
            let _shared = self.store_lock()?;
            let rulesets = store_io::rulesets(self.store)?;
            for ruleset in &rulesets {
                self.store
                    .write_records(deletion(self.store, ruleset.id)?)
                    .map_err(HuntingError::Store)?;
            }
            rulesets.len()
        };
        self.live.reload(self.store)?;
        Ok(count)
    }

    /// This process's lock of ruleset writes; taken before [`Hunting::store_lock`].
    fn process_lock(&self) -> MutexGuard<'_, ()> {
        self.live
            .writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The store's lock of ruleset writes, which every process sharing the store takes.
    fn store_lock(&self) -> Result<RecordLock> {
        self.store
            .lock(RecordTable::HuntingRulesets)
            .map_err(HuntingError::Store)
    }

    /// Write one ruleset; under the locks.
    fn write(&self, ruleset: &Ruleset) -> Result<()> {
        let writes = store_io::put_ruleset(ruleset)?;
        self.store
            .write_records(writes.to_vec())
            .map_err(HuntingError::Store)
    }

    /// Rulesets matching `filter` (`name:` substring or a bare word, `enabled:true|false`,
    /// `tag:`, `rule_language:`), in `order` (`name`, `creation_date`, `modification_date`,
    /// `+` ascending or `-` descending; default newest first), paged.
    pub fn list_rulesets(
        &self,
        filter: &str,
        order: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Ruleset>> {
        let offset = parse_cursor(cursor)? as usize;
        let keep = ruleset_filter(filter)?;
        let mut all: Vec<Ruleset> = store_io::rulesets(self.store)?
            .into_iter()
            .filter(|r| keep.iter().all(|k| k(r)))
            .collect();
        let order = order.trim();
        let (field, descending) = match order.strip_suffix('-') {
            Some(f) => (f, true),
            None => (order.strip_suffix('+').unwrap_or(order), false),
        };
        match field {
            "" => all.sort_by(|a, b| b.creation_date.cmp(&a.creation_date).then(b.id.cmp(&a.id))),
            "name" => all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
            "creation_date" => all.sort_by_key(|r| (r.creation_date, r.id)),
            "modification_date" => all.sort_by_key(|r| (r.modification_date, r.id)),
            other => {
                return Err(HuntingError::Invalid(format!(
                    "order: unknown field `{}` (use name, creation_date or modification_date)",
                    other.chars().take(50).collect::<String>()
                )));
            }
        }
        if descending && !field.is_empty() {
            all.reverse();
        }
        let items: Vec<Ruleset> = all.iter().skip(offset).take(limit).cloned().collect();
        let end = offset + items.len();
        Ok(Page {
            next_cursor: (end < all.len() && !items.is_empty()).then(|| end.to_string()),
            items,
        })
    }

    /// Notifications matching `filter` (see [`NotificationFilter`]), newest first, paged.
    pub fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Notification>> {
        let mut upper = match cursor {
            None => u64::MAX,
            Some(_) => parse_cursor(cursor)?,
        };
        let mut items = Vec::new();
        let mut scanned = 0usize;
        loop {
            let batch = store_io::notifications(self.store, 0..=upper, SCAN_BATCH)?;
            let full = batch.len() == SCAN_BATCH;
            let Some(lowest) = batch.last().map(|n| n.id) else {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            };
            for n in batch {
                scanned += 1;
                let id = n.id;
                if filter.matches(&n) {
                    items.push(n);
                    if items.len() == limit {
                        return Ok(Page {
                            items,
                            next_cursor: (id > 0).then(|| (id - 1).to_string()),
                        });
                    }
                }
            }
            if !full || lowest == 0 {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            upper = lowest - 1;
            if scanned >= MAX_SCANNED {
                // Bounded work: the page ends here and the cursor carries on from it.
                return Ok(Page {
                    next_cursor: Some(upper.to_string()),
                    items,
                });
            }
        }
    }

    pub fn notification(&self, id: u64) -> Result<Notification> {
        store_io::get(self.store, RecordTable::HuntingNotifications, id)?
            .ok_or_else(|| not_found("Notification", id))
    }

    pub fn delete_notification(&self, id: u64) -> Result<()> {
        self.notification(id)?;
        self.store
            .write_records(vec![RecordWrite::Delete(
                RecordTable::HuntingNotifications,
                id,
            )])
            .map_err(HuntingError::Store)
    }

    /// Delete every notification `filter` matches; returns how many.
    pub fn delete_notifications(&self, filter: &NotificationFilter) -> Result<usize> {
        let mut writes: Vec<RecordWrite> = Vec::new();
        store_io::each_notification(self.store, |n| {
            if filter.matches(&n) {
                writes.push(RecordWrite::Delete(RecordTable::HuntingNotifications, n.id));
            }
        })?;
        let count = writes.len();
        self.store
            .write_records(writes)
            .map_err(HuntingError::Store)?;
        Ok(count)
    }
}

fn not_found(kind: &'static str, id: u64) -> HuntingError {
    HuntingError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<u64> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse()
            .map_err(|_| HuntingError::Invalid("invalid cursor".into())),
    }
}

type RulesetTest = Box<dyn Fn(&Ruleset) -> bool>;

fn ruleset_filter(text: &str) -> Result<Vec<RulesetTest>> {
    let mut tests: Vec<RulesetTest> = Vec::new();
    for word in text.split_whitespace() {
        let (key, value) = word.split_once(':').unwrap_or(("name", word));
        let value = value.to_lowercase();
        tests.push(match key {
            "name" => Box::new(move |r| r.name.to_lowercase().contains(&value)),
            "tag" => Box::new(move |r| r.tags.iter().any(|t| t.to_lowercase() == value)),
            "rule_language" => Box::new(move |r| r.rule_language.as_str() == value),
            "enabled" => {
                let wanted = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(HuntingError::Invalid(
                            "filter: enabled:true or enabled:false".into(),
                        ));
                    }
                };
                Box::new(move |r| r.enabled == wanted)
            }
            other => {
                return Err(HuntingError::Invalid(format!(
                    "filter: unknown key `{}` (use name, tag, enabled or rule_language)",
                    other.chars().take(50).collect::<String>()
                )));
            }
        });
    }
    Ok(tests)
}
