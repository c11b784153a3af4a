//! What Retrohunt needs from a store: [`RecordStore`] for its jobs and matches, and
//! [`DetonationLogs`] for each stored detonation's raw log, streamed a page of report ids at a
//! time (so a scan's memory follows one page and its checkpoint is the last id of a page).
//! Both seams are defined in `sandscope-store`, since they speak only store types: each store
//! implements them in its own crate without depending on hunting.

use crate::seam::RecordStore;
pub use sandscope_store::{DetonationLog, DetonationLogs};

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

/// The sample a report id belongs to (`<sha256>_<sandbox>`).
pub fn sample_of(report_id: &str) -> &str {
    report_id.split_once('_').map_or(report_id, |(sha, _)| sha)
}
