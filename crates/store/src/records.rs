//! Small keyed records that live beside the reports in `reports.redb`: the tables the hunting
//! crate keeps (rulesets, notifications, retrohunt jobs, webhook deliveries). The store knows
//! their keys, not their contents: a record is opaque bytes under a `u64` id, so the store stays
//! independent of the crates that define them (a retrohunt job's matches are keyed by job and
//! number, a webhook delivery by its notification's id: see `sandscope-hunting`), and a second
//! store needs only these few calls.

use crate::*;

/// The record tables, one per kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordTable {
    HuntingRulesets,
    /// What changes about a ruleset with every notification and webhook delivery (its rate
    /// window, its webhook's record), under the ruleset's id: written without the rules.
    HuntingRulesetStates,
    HuntingNotifications,
    RetrohuntJobs,
    RetrohuntMatches,
    /// The ranges of Retrohunt jobs split across workers, each one's progress.
    RetrohuntRanges,
    /// Livehunt webhook deliveries not yet made, each under its notification's id.
    WebhookDeliveries,
}

impl RecordTable {
    fn definition(self) -> TableDefinition<'static, u64, &'static [u8]> {
        TableDefinition::new(self.name())
    }

    /// The redb table name, and the key of the table's id counter in `meta`.
    pub fn name(self) -> &'static str {
        match self {
            RecordTable::HuntingRulesets => "hunting_rulesets",
            RecordTable::HuntingRulesetStates => "hunting_ruleset_states",
            RecordTable::HuntingNotifications => "hunting_notifications",
            RecordTable::RetrohuntJobs => "retrohunt_jobs",
            RecordTable::RetrohuntMatches => "retrohunt_matches",
            RecordTable::RetrohuntRanges => "retrohunt_ranges",
            RecordTable::WebhookDeliveries => "webhook_deliveries",
        }
    }

    fn counter_key(self) -> String {
        format!("next_id.{}", self.name())
    }
}

/// One change in a [`Store::write_records`] batch.
#[derive(Debug, Clone)]
pub enum RecordWrite {
    Put(RecordTable, u64, Vec<u8>),
    Delete(RecordTable, u64),
}

impl Store {
    /// New ids for `count` records of `table`: increasing, and never one a stored record of
    /// `table` has or had, even after a restart.
    ///
    /// The ids come from a counter in memory, without a transaction of their own: the counter
    /// kept in `meta` is moved past every id in the transaction that writes it
    /// ([`Store::write_records`], [`Store::put_reports_with`]), so allocating costs no durable
    /// commit: Livehunt's notifications are written in their reports' transaction. Ids handed
    /// out but never written may be handed out again after a restart; nothing names them
    /// (every caller stores its record before it shows the id to anyone).
    pub fn allocate_record_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>> {
        if self.read_only {
            return Err(StoreError::ReadOnly(self.dir.clone()));
        }
        let mut next_ids = self
            .next_record_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let first = match next_ids.get(&table) {
            Some(&next) => next,
            None => self.stored_next_record_id(table)?,
        };
        let end = first.saturating_add(count);
        next_ids.insert(table, end);
        Ok((first..end).collect())
    }

    /// The id after every id `table` has stored: its counter in `meta` (1 for a new table).
    fn stored_next_record_id(&self, table: RecordTable) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(1),
            Err(e) => return Err(e.into()),
        };
        let key = table.counter_key();
        Ok(meta.get(key.as_str())?.map(|v| v.value()).unwrap_or(1))
    }

    /// Apply puts and deletes in one transaction: all of them land, or none. Each table's id
    /// counter moves past the ids put, in the same transaction (see
    /// [`Store::allocate_record_ids`]); a record copied in under its own id counts too.
    pub fn write_records(&self, writes: Vec<RecordWrite>) -> Result<()> {
        if self.read_only {
            return Err(StoreError::ReadOnly(self.dir.clone()));
        }
        let txn = self.db.begin_write()?;
        let past_put = apply_record_writes(&txn, &writes)?;
        txn.commit()?;
        self.note_record_ids_put(past_put);
        Ok(())
    }

    /// After a commit of records: ids put past the ones handed out (a copy) are never handed
    /// out.
    pub(crate) fn note_record_ids_put(&self, past_put: HashMap<RecordTable, u64>) {
        let mut next_ids = self
            .next_record_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (table, next) in past_put {
            if let Some(handed) = next_ids.get_mut(&table) {
                *handed = (*handed).max(next);
            }
        }
    }

    /// One record, or `None`.
    pub fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let records = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(records.get(id)?.map(|v| v.value().to_vec()))
    }

    /// How many records `table` holds, counted no further than `cap`: the exact number below
    /// it, `cap` at or past it. redb keeps each table's length in its header, so this reads no
    /// record.
    pub fn count_records(&self, table: RecordTable, cap: usize) -> Result<usize> {
        let txn = self.db.begin_read()?;
        let records = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let len = usize::try_from(records.len()?).unwrap_or(usize::MAX);
        Ok(len.min(cap))
    }

    /// Records of `table` with ids in `range`, at most `limit` of them, in id order (highest
    /// first when `newest_first`).
    pub fn records(
        &self,
        table: RecordTable,
        range: std::ops::RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let txn = self.db.begin_read()?;
        let records = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        let mut push = |entry: std::result::Result<_, redb::StorageError>| -> Result<()> {
            let (id, bytes): (redb::AccessGuard<u64>, redb::AccessGuard<&[u8]>) = entry?;
            out.push((id.value(), bytes.value().to_vec()));
            Ok(())
        };
        let entries = records.range(range)?;
        if newest_first {
            for entry in entries.rev().take(limit) {
                push(entry)?;
            }
        } else {
            for entry in entries.take(limit) {
                push(entry)?;
            }
        }
        Ok(out)
    }
}

/// Apply `writes` in `txn` and move each table's id counter in `meta` past the ids put; returns,
/// per table, the id after the highest put (for [`Store::note_record_ids_put`] once committed).
pub(crate) fn apply_record_writes(
    txn: &redb::WriteTransaction,
    writes: &[RecordWrite],
) -> Result<HashMap<RecordTable, u64>> {
    let mut past_put: HashMap<RecordTable, u64> = HashMap::new();
    for write in writes {
        match write {
            RecordWrite::Put(table, id, bytes) => {
                txn.open_table(table.definition())?
                    .insert(*id, bytes.as_slice())?;
                let next = past_put.entry(*table).or_default();
                *next = (*next).max(id.saturating_add(1));
            }
            RecordWrite::Delete(table, id) => {
                txn.open_table(table.definition())?.remove(*id)?;
            }
        }
    }
    if past_put.is_empty() {
        // Every report batch comes through here, most of them with no records.
        return Ok(past_put);
    }
    let mut meta = txn.open_table(META)?;
    for (table, next) in &past_put {
        let key = table.counter_key();
        let stored = meta.get(key.as_str())?.map(|v| v.value()).unwrap_or(1);
        if *next > stored {
            meta.insert(key.as_str(), *next)?;
        }
    }
    Ok(past_put)
}
