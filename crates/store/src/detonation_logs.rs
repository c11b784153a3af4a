//! The seam Retrohunt reads stored detonations through: report ids a page at a time, each
//! one's raw log as a stream, and its first-seen date. It sits here, beside [`RecordStore`]
//! (`record_store.rs`), for the same reason: it speaks only store types, so the embedded store
//! implements it below and the PostgreSQL store in its own crate, and neither depends on
//! `sandscope-hunting`, which scans through it.
//!
//! [`RecordStore`]: crate::RecordStore

use crate::{RecordStoreError, Store};
use std::io::Read;

type Result<T> = std::result::Result<T, RecordStoreError>;

/// One stored raw log, opened for reading.
pub struct DetonationLog {
    pub file_name: String,
    /// Its size in bytes, as stored.
    pub size: u64,
    /// The bytes, from the first; a store may fetch them piece by piece as they are read, so a
    /// large log is never whole in memory on that account.
    pub reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for DetonationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetonationLog")
            .field("file_name", &self.file_name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Stored detonations, for Retrohunt: a scan's memory follows one page of ids and one log
/// being read, and its checkpoint is the last id of a page.
pub trait DetonationLogs: Send + Sync {
    /// Report ids (`<sha256>_<sandbox>`) in id order, after `after` (exclusive), at most
    /// `limit`; an empty list once past the last.
    fn detonation_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    /// How many detonations are stored (for progress; may be approximate while ingesting).
    fn detonation_count(&self) -> Result<u64>;
    /// The raw log a report was built from; `None` when the report is gone or kept no log.
    fn detonation_log(&self, report_id: &str) -> Result<Option<DetonationLog>>;
    /// The report's analysis date (Unix seconds): when this detonation was first seen.
    fn detonation_date(&self, report_id: &str) -> Result<Option<i64>>;
    /// The raw log whole in memory, when the store reads its logs whole anyway and this one is
    /// at most `limit` bytes: it is handed over rather than copied out of a reader. `None` when
    /// gone, larger, or kept by a store that streams its logs ([`Self::detonation_log`] then
    /// opens it).
    fn detonation_log_whole(&self, _report_id: &str, _limit: u64) -> Result<Option<WholeLog>> {
        Ok(None)
    }
}

/// One stored raw log, whole in memory.
#[derive(Debug)]
pub struct WholeLog {
    pub file_name: String,
    pub bytes: StoredBytes,
}

/// A stored raw log's bytes where the report database read them (redb's page, shared with its
/// cache), so a scan reads each log without copying it: a copy per log was an eighth of a
/// Retrohunt's time, most of it faulting in fresh pages for the copy.
pub struct StoredBytes(pub(crate) redb::OwnedAccessGuard<&'static [u8]>);

impl AsRef<[u8]> for StoredBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.value()
    }
}

impl std::fmt::Debug for StoredBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredBytes({} bytes)", self.as_ref().len())
    }
}

impl DetonationLogs for Store {
    fn detonation_ids(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self.list_report_ids(limit, after)?.0)
    }

    fn detonation_count(&self) -> Result<u64> {
        Ok(self.stats()?.reports)
    }

    fn detonation_log(&self, report_id: &str) -> Result<Option<DetonationLog>> {
        // redb hands a value over whole; the embedded store's logs are read as they are kept.
        Ok(self.raw_log(report_id)?.map(|log| DetonationLog {
            file_name: log.file_name,
            size: log.bytes.len() as u64,
            reader: Box::new(std::io::Cursor::new(log.bytes)),
        }))
    }

    fn detonation_date(&self, report_id: &str) -> Result<Option<i64>> {
        Ok(self
            .report(report_id)?
            .and_then(|r| r.attributes.analysis_date))
    }

    fn detonation_log_whole(&self, report_id: &str, limit: u64) -> Result<Option<WholeLog>> {
        Ok(self
            .raw_log_in_place(report_id)?
            .filter(|(_, bytes)| bytes.as_ref().len() as u64 <= limit)
            .map(|(file_name, bytes)| WholeLog { file_name, bytes }))
    }
}
