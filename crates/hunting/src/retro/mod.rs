//! Retrohunt: rules run back over every stored detonation.
//!
//! - `source`: the seam a store provides ([`DetonationLogs`]: stored raw logs, streamed by
//!   pages of report ids).
//! - `scan`: Sigma rules over those logs, each hunted as `hunt` hunts a file; used by the CLI,
//!   the jobs and the benchmark.
//! - `job`, `jobs`: the API's `retrohunt_job` objects, run in the background.

mod job;
mod jobs;
mod scan;
mod source;

pub use job::{JobStatus, RetrohuntJob, RetrohuntMatch};
pub use jobs::{DEFAULT_MAX_RUNNING, MAX_JOBS, Retrohunts};
pub use scan::{ScanEnd, ScanOptions, ScannedLog, ScannedPage, TimeRange, scan};
pub use source::{DetonationLogs, RetrohuntStore, sample_of};
