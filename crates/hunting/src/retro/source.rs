//! What Retrohunt needs from a store: each stored detonation's raw log, streamed a page of
//! report ids at a time (so a scan's memory follows one page and its checkpoint is the last id
//! of a page). The embedded store implements it over its redb; another store implements the
//! same three calls (and may hand each worker its own id range).

use crate::seam::RecordStore;
use sandscope_store::RecordStoreError;
use sandscope_store::{Store, StoredLog};

pub trait DetonationLogs: Send + Sync {
    /// Report ids (`<sha256>_<sandbox>`) in id order, after `after` (exclusive), at most
    /// `limit`; an empty list once past the last.
    fn detonation_ids(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, RecordStoreError>;
    /// How many detonations are stored (for progress; may be approximate while ingesting).
    fn detonation_count(&self) -> Result<u64, RecordStoreError>;
    /// The raw log a report was built from; `None` when the report is gone or kept no log.
    fn detonation_log(&self, report_id: &str) -> Result<Option<StoredLog>, RecordStoreError>;
    /// The report's analysis date (Unix seconds): when this detonation was first seen.
    fn detonation_date(&self, report_id: &str) -> Result<Option<i64>, RecordStoreError>;
}

/// Everything Retrohunt jobs use: records (jobs, matches, sample views) and the raw logs.
pub trait RetrohuntStore: Send + Sync {
    fn records(&self) -> &dyn RecordStore;
    fn logs(&self) -> &dyn DetonationLogs;
}

impl<T: RecordStore + DetonationLogs> RetrohuntStore for T {
    fn records(&self) -> &dyn RecordStore {
        self
    }
    fn logs(&self) -> &dyn DetonationLogs {
        self
    }
}

impl DetonationLogs for Store {
    fn detonation_ids(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, RecordStoreError> {
        Ok(self.list_report_ids(limit, after)?.0)
    }

    fn detonation_count(&self) -> Result<u64, RecordStoreError> {
        Ok(self.stats()?.reports)
    }

    fn detonation_log(&self, report_id: &str) -> Result<Option<StoredLog>, RecordStoreError> {
        Ok(self.raw_log(report_id)?)
    }

    fn detonation_date(&self, report_id: &str) -> Result<Option<i64>, RecordStoreError> {
        Ok(self
            .report(report_id)?
            .and_then(|r| r.attributes.analysis_date))
    }
}

/// The sample a report id belongs to (`<sha256>_<sandbox>`).
pub fn sample_of(report_id: &str) -> &str {
    report_id.split_once('_').map_or(report_id, |(sha, _)| sha)
}
