//! The one seam hunting needs from a store: opaque records under `u64` ids in a few tables, and
//! a sample's searchable view. The embedded store keeps the records in its redb
//! (`sandscope_store::Store` implements this below); another store implements the same five
//! calls, so where hunting state lives is a backend detail, never a second implementation.

use crate::error::StoreFailure;
use sandscope_query::SampleDoc;
use sandscope_store::Store;
pub use sandscope_store::{RecordTable, RecordWrite};
use std::ops::RangeInclusive;

pub trait RecordStore: Send + Sync {
    /// New ids for `count` records of `table`: increasing, never reused.
    fn allocate_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>, StoreFailure>;
    /// Apply puts and deletes atomically.
    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreFailure>;
    fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>, StoreFailure>;
    /// Records with ids in `range`, at most `limit`, oldest (lowest id) first unless
    /// `newest_first`.
    fn records(
        &self,
        table: RecordTable,
        range: RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreFailure>;
    /// The searchable view of a stored sample (what `Query::matches` reads), `None` if unknown.
    fn sample_doc(&self, sha256: &str) -> Result<Option<SampleDoc>, StoreFailure>;
}

impl RecordStore for Store {
    fn allocate_ids(&self, table: RecordTable, count: u64) -> Result<Vec<u64>, StoreFailure> {
        Ok(self.allocate_record_ids(table, count)?)
    }

    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreFailure> {
        Ok(Store::write_records(self, writes)?)
    }

    fn record(&self, table: RecordTable, id: u64) -> Result<Option<Vec<u8>>, StoreFailure> {
        Ok(Store::record(self, table, id)?)
    }

    fn records(
        &self,
        table: RecordTable,
        range: RangeInclusive<u64>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreFailure> {
        Ok(Store::records(self, table, range, limit, newest_first)?)
    }

    fn sample_doc(&self, sha256: &str) -> Result<Option<SampleDoc>, StoreFailure> {
        let reports = self.sample_reports(sha256)?;
        Ok((!reports.is_empty()).then(|| SampleDoc::from_reports(sha256, &reports)))
    }
}
