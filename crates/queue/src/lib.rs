//! The detonation work queue of a scaled-out Sandscope, on NATS JetStream.
//!
//! Publishers (`sandscope ingest --nats`, `serve --nats`) hand a detonation — its files, not
//! their paths, since workers run on other machines — to [`Queue::submit`]; workers
//! (`sandscope worker`) pull one job at a time with [`Queue::next`], build and store its
//! reports, and acknowledge it only once the store has committed them. Three JetStream
//! objects, created on first use by whoever connects first:
//! * the work-queue stream [`STREAM`]: one small JSON [`Job`] manifest per detonation
//!   (at most [`MAX_MANIFEST_BYTES`], NATS's default max payload), so no server needs a raised
//!   `max_payload`;
//! * the object store [`FILES_BUCKET`]: the job's files, chunked by JetStream (128 KiB chunks),
//!   at most [`MAX_JOB_BYTES`] per job, deleted once the job is done, failed or parked;
//! * the key-value bucket [`STATUS_BUCKET`]: each job's [`JobStatus`], so any stateless server
//!   answers `GET jobs/{id}` (no job state lives in the report store); a status is kept
//!   [`STATUS_MAX_AGE`] after its last change, then forgotten (the job's reports stay).
//!
//! Retrohunt jobs split across workers travel the same way (`retro`): one small item per
//! range on a stream of their own, and each job's abort as a flag the workers look at.
//!
//! Delivery is at least once: a worker that dies mid-build leaves its message unacknowledged
//! and JetStream hands it to another worker after [`ACK_WAIT`]. A message delivered
//! [`MAX_DELIVERIES`] times without success is parked, not retried forever.

mod error;
mod job;
mod queue;
mod retro;

pub use error::QueueError;
pub use job::{Job, JobFile, JobInput, JobState, JobStatus};
pub use queue::{Delivery, LocalInput, Queue, ToSubmit, is_job_id};
pub use retro::{RETRO_CONSUMER, RETRO_FLAGS_BUCKET, RETRO_STREAM, RETRO_SUBJECT, RangeItem};

use std::time::Duration;

/// The work-queue stream of job manifests.
pub const STREAM: &str = "SANDSCOPE_JOBS";
/// The subject jobs are published on.
pub const SUBJECT: &str = "sandscope.jobs";
/// The durable pull consumer every worker shares (work-queue: each job goes to one worker).
pub const CONSUMER: &str = "sandscope-workers";
/// The key-value bucket of job status.
pub const STATUS_BUCKET: &str = "sandscope_jobs";
/// The object store of job files.
pub const FILES_BUCKET: &str = "sandscope_files";
/// The largest job manifest: NATS's default max payload.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// The most file bytes one job may carry.
pub const MAX_JOB_BYTES: u64 = 4 << 30;
/// The most files one job may carry (a CAPE run folder has dozens).
pub const MAX_JOB_FILES: usize = 10_000;
/// How long a delivered job may go without an acknowledgement (or a progress signal, which
/// a working worker sends every third of it) before JetStream redelivers it.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// How long a job's status is kept after its last change (queued, running, done…): long past
/// any build, so a running job's status never expires; a job still waiting in the queue after
/// that long shows no status until a worker takes it. [`Queue::connect_with`] sets another.
pub const STATUS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Deliveries without success after which a job is parked.
pub const MAX_DELIVERIES: u32 = 3;
