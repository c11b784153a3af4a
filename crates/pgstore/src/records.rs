//! Hunting's keyed records (rulesets, notifications, retrohunt jobs, webhook deliveries) on
//! PostgreSQL: the [`RecordStore`] seam over two small tables. `records` holds the opaque bytes
//! under (`kind`, `id`); `record_counters` hands out ids. Both are reference tables under Citus:
//! they are small, and every node may read them.

use crate::connect::Manager;
use crate::{PgStore, PgStoreError, Result};
use r2d2::PooledConnection;
use sandscope_query::SampleDoc;
use sandscope_store::{RecordLock, RecordStore, RecordStoreError, RecordTable, RecordWrite};
use std::ops::RangeInclusive;

/// An id as PostgreSQL's `bigint` holds it; ids are handed out from 1 upwards, so only a
/// record id no counter gave can fall outside.
fn stored_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| PgStoreError::RecordIdOutOfRange(id))
}

/// A stored id back as the seam's `u64` (the schema allows no negative ids: `CHECK (id > 0)`).
fn seam_id(id: i64) -> Result<u64> {
    u64::try_from(id).map_err(|_| PgStoreError::Corrupt {
        id: id.to_string(),
        detail: "negative record id".into(),
    })
}

impl PgStore {
    /// New ids for `count` records of `table`: increasing and never reused, across every
    /// process sharing the database (one atomic counter update).
    pub fn allocate_record_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>> {
        let step = stored_id(count)?;
        let row = self.client()?.query_one(
            "INSERT INTO record_counters (kind, next_id) VALUES ($1, 1 + $2::bigint)
             ON CONFLICT (kind) DO UPDATE SET next_id = record_counters.next_id + $2::bigint
             RETURNING next_id - $2::bigint",
            &[&table.name(), &step],
        )?;
        let first = seam_id(row.get(0))?;
        Ok((first..first.saturating_add(count)).collect())
    }

    /// Apply puts and deletes in one transaction: all of them land, or none.
    pub fn write_records(&self, writes: Vec<RecordWrite>) -> Result<()> {
        let mut client = self.client()?;
        let mut txn = client.transaction()?;
        for write in &writes {
            match write {
                RecordWrite::Put(table, id, body) => txn.execute(
                    "INSERT INTO records (kind, id, body) VALUES ($1, $2, $3)
                     ON CONFLICT (kind, id) DO UPDATE SET body = EXCLUDED.body",
                    &[&table.name(), &stored_id(*id)?, body],
                )?,
                RecordWrite::Delete(table, id) => txn.execute(
                    "DELETE FROM records WHERE kind = $1 AND id = $2",
                    &[&table.name(), &stored_id(*id)?],
                )?,
            };
        }
        txn.commit()?;
        Ok(())
    }

    /// One record, `None` if there is none under `id`.
    pub fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let row = self.client()?.query_opt(
            "SELECT body FROM records WHERE kind = $1 AND id = $2",
            &[&table.name(), &id],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records with ids in `range`, at most `limit`, lowest id first unless `newest_first`.
    pub fn records(
        &self,
        table: RecordTable,
        range: RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        // Ids past bigint's range are never stored, so the range is clamped to it.
        let low = i64::try_from(*range.start()).unwrap_or(i64::MAX);
        let high = i64::try_from(*range.end()).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = if newest_first {
            "SELECT id, body FROM records WHERE kind = $1 AND id BETWEEN $2 AND $3
             ORDER BY id DESC LIMIT $4"
        } else {
            "SELECT id, body FROM records WHERE kind = $1 AND id BETWEEN $2 AND $3
             ORDER BY id LIMIT $4"
        };
        self.client()?
            .query(sql, &[&table.name(), &low, &high, &limit])?
            .into_iter()
            .map(|row| Ok((seam_id(row.get(0))?, row.get(1))))
            .collect()
    }

    /// How many records `table` holds, counted no further than `cap`: the exact number below
    /// it, `cap` at or past it. The inner `LIMIT` stops the count at `cap` rows of the primary
    /// key, and no body leaves the server.
    pub fn count_records(&self, table: RecordTable, cap: usize) -> Result<usize> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let row = self.client()?.query_one(
            "SELECT count(*) FROM (SELECT 1 FROM records WHERE kind = $1 LIMIT $2) AS capped",
            &[&table.name(), &cap],
        )?;
        let counted: i64 = row.get(0);
        // Never negative, and at most `cap`, which came from a `usize`.
        Ok(usize::try_from(counted).unwrap_or(0))
    }

    /// Hold `table`'s lock (a transaction-level advisory lock, keyed by the table's name, on a
    /// connection of its own) until the guard is dropped: every other process's `lock` of
    /// `table` on this database waits for it. A process that dies releases it with its
    /// connection.
    pub(crate) fn lock_records(&self, table: RecordTable) -> Result<RecordsLock> {
        let mut client = self.client()?;
        client.batch_execute("BEGIN")?;
        let locked = client.execute(
            "SELECT pg_advisory_xact_lock(hashtext('sandscope.records.' || $1))",
            &[&table.name()],
        );
        let mut lock = RecordsLock { client };
        if let Err(e) = locked {
            lock.client.discard();
            return Err(e.into());
        }
        Ok(lock)
    }

    /// The searchable view of a stored sample, built from its reports as the embedded store's.
    pub fn sample_doc(&self, sha256: &str) -> Result<Option<SampleDoc>> {
        let reports = self.sample_reports(sha256)?;
        Ok((!reports.is_empty()).then(|| SampleDoc::from_reports(sha256, &reports)))
    }
}

impl RecordStore for PgStore {
    fn allocate_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>, RecordStoreError> {
        Ok(self.allocate_record_ids(table, count)?)
    }

    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), RecordStoreError> {
        Ok(PgStore::write_records(self, writes)?)
    }

    fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>, RecordStoreError> {
        Ok(PgStore::record(self, table, id)?)
    }

    fn records(
        &self,
        table: RecordTable,
        range: RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>, RecordStoreError> {
        Ok(PgStore::records(self, table, range, limit, newest_first)?)
    }

    fn count_records(&self, table: RecordTable, cap: usize) -> Result<usize, RecordStoreError> {
        Ok(PgStore::count_records(self, table, cap)?)
    }

    fn sample_doc(&self, sha256: &str) -> Result<Option<SampleDoc>, RecordStoreError> {
        Ok(PgStore::sample_doc(self, sha256)?)
    }

    fn lock(&self, table: RecordTable) -> Result<RecordLock, RecordStoreError> {
        Ok(RecordLock::held(self.lock_records(table)?))
    }
}

/// A held [`PgStore::lock_records`]: its connection's open transaction, rolled back (and the
/// lock with it) when dropped; a connection that cannot roll back is not reused.
pub(crate) struct RecordsLock {
    client: PooledConnection<Manager>,
}

impl Drop for RecordsLock {
    fn drop(&mut self) {
        if self.client.batch_execute("ROLLBACK").is_err() {
            self.client.discard();
        }
    }
}
