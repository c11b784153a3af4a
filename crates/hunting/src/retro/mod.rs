//! Retrohunt: rules run back over every stored detonation.
//!
//! - `source`: the seam a store provides ([`DetonationLogs`]: stored raw logs, streamed by
//!   pages of report ids).
//! - `scan`: Sigma rules over those logs, each hunted as `hunt` hunts a file; used by the CLI,
//!   the jobs and the benchmark.
//! - `job`, `jobs`: the API's `retrohunt_job` objects, run in the background.
//! - `ranges`: a job split across workers, range by range, through the same scan.
//! - `lease`: which of several servers sharing a store runs an in-process job.

mod job;
mod jobs;
pub(crate) mod lease;
mod ranges;
mod scan;
mod source;

pub use job::{JobStatus, RetrohuntJob, RetrohuntMatch};
pub use jobs::{DEFAULT_MAX_RUNNING, MAX_JOBS, Retrohunts};
pub use ranges::{RANGES, RangeDispatch, RangeEnd, RangeProgress, give_up_range, scan_range};
pub use scan::{ScanEnd, ScanOptions, ScannedLog, ScannedPage, TimeRange, scan};
pub use source::{DetonationLog, DetonationLogs, RetrohuntStore, sample_of};
