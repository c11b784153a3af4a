//! The seam for keyed records (`records`) that any store implements: hunting keeps its
//! rulesets and notifications through it, so where they live is the store's business. It sits
//! here, beside [`RecordTable`] and [`RecordWrite`], because it speaks only store types: the
//! embedded store implements it below, the PostgreSQL store in its own crate, and neither
//! store depends on the crates that define the records.

use crate::{RecordTable, RecordWrite, Store, StoreError};
use sandscope_query::SampleDoc;
use std::ops::RangeInclusive;

/// A failure of a [`RecordStore`]: the store's own error, whichever store it is.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RecordStoreError(Box<dyn std::error::Error + Send + Sync>);

impl RecordStoreError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl From<StoreError> for RecordStoreError {
    fn from(error: StoreError) -> Self {
        Self::new(error)
    }
}

type Result<T> = std::result::Result<T, RecordStoreError>;

/// Opaque records under `u64` ids in a few tables, and a sample's searchable view.
pub trait RecordStore: Send + Sync {
    /// New ids for `count` records of `table`: increasing, and never the id of a record
    /// `table` stores or stored. An id handed out and never stored may be handed out again
    /// after a restart, so a caller stores its record before it shows the id to anyone.
    fn allocate_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>>;
    /// Apply puts and deletes atomically.
    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<()>;
    fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>>;
    /// Records with ids in `range`, at most `limit`, oldest (lowest id) first unless
    /// `newest_first`.
    fn records(
        &self,
        table: RecordTable,
        range: RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>>;
    /// How many records `table` holds, counted no further than `cap`: the exact number below
    /// it, `cap` at or past it. A bound is checked with it without reading the records.
    fn count_records(&self, table: RecordTable, cap: usize) -> Result<usize>;
    /// The searchable view of a stored sample (what `Query::matches` reads), `None` if unknown.
    fn sample_doc(&self, sha256: &str) -> Result<Option<SampleDoc>>;
    /// Held while a read-modify-write of `table`'s records must not interleave with another
    /// process's: every other `lock` of `table` on the same store waits until it is dropped.
    /// By default nothing is held: a store one process owns (the embedded store's directory
    /// lock) has its callers serialise among themselves in that process.
    fn lock(&self, table: RecordTable) -> Result<RecordLock> {
        let _ = table;
        Ok(RecordLock::default())
    }
}

/// What [`RecordStore::lock`] holds until dropped (nothing, for a store one process owns).
#[derive(Default)]
pub struct RecordLock {
    /// Released when dropped.
    _held: Option<Box<dyn Send>>,
}

impl RecordLock {
    /// A lock released when `held` is dropped.
    pub fn held(held: impl Send + 'static) -> Self {
        Self {
            _held: Some(Box::new(held)),
        }
    }
}

impl RecordStore for Store {
    fn allocate_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>> {
        Ok(self.allocate_record_ids(table, count)?)
    }

    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<()> {
        Ok(Store::write_records(self, writes)?)
    }

    fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>> {
        Ok(Store::record(self, table, id)?)
    }

    fn records(
        &self,
        table: RecordTable,
        range: RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        Ok(Store::records(self, table, range, limit, newest_first)?)
    }

    fn count_records(&self, table: RecordTable, cap: usize) -> Result<usize> {
        Ok(Store::count_records(self, table, cap)?)
    }

    fn sample_doc(&self, sha256: &str) -> Result<Option<SampleDoc>> {
        let reports = self.sample_reports(sha256)?;
        Ok((!reports.is_empty()).then(|| SampleDoc::from_reports(sha256, &reports)))
    }
}
