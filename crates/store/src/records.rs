//! Small keyed records that live beside the reports in `reports.redb`: the tables the hunting
//! crate keeps (rulesets, notifications, retrohunt jobs, webhook deliveries). The store knows
//! their keys, not their contents: a record is opaque bytes under a `u64` id, so the store stays
//! independent of the crates that define them (a retrohunt job's matches are keyed by job and
//! number, a webhook delivery by its notification's id: see `sandscope-hunting`), and a second
//! store needs only these few calls.

use crate::*;

/// The record tables, one per kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordTable {
    HuntingRulesets,
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
    /// New ids for `count` records of `table`: increasing, never reused, even after a restart.
    pub fn allocate_record_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>> {
        if self.read_only {
            return Err(StoreError::ReadOnly(self.dir.clone()));
        }
        let txn = self.db.begin_write()?;
        let first = {
            let mut meta = txn.open_table(META)?;
            let key = table.counter_key();
            let first = meta.get(key.as_str())?.map(|v| v.value()).unwrap_or(1);
            meta.insert(key.as_str(), first.saturating_add(count))?;
            first
        };
        txn.commit()?;
        Ok((first..first.saturating_add(count)).collect())
    }

    /// Apply puts and deletes in one transaction: all of them land, or none.
    pub fn write_records(&self, writes: Vec<RecordWrite>) -> Result<()> {
        if self.read_only {
            return Err(StoreError::ReadOnly(self.dir.clone()));
        }
        let txn = self.db.begin_write()?;
        for write in &writes {
            match write {
                RecordWrite::Put(table, id, bytes) => {
                    txn.open_table(table.definition())?
                        .insert(*id, bytes.as_slice())?;
                }
                RecordWrite::Delete(table, id) => {
                    txn.open_table(table.definition())?.remove(*id)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
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
