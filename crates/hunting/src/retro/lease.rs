//! Retrohunt jobs on a store several servers share (PostgreSQL): each in-process job is run by
//! one server at a time. The server running a job (its `runner`) renews the job's `heartbeat`
//! every [`HEARTBEAT`]; a job whose heartbeat is older than [`LEASE_SECONDS`] belongs to a
//! server that stopped or died, and the next server to look (at its start, or every
//! [`HEARTBEAT`] after) adopts it: resumed from its checkpoint, or marked `aborted` if it was
//! aborting. A server whose job another has adopted stops writing it at its next page.
//!
//! Two servers adopting the same job at once both resume from its stored checkpoint and number
//! their matches from its stored count, so until one sees the other's name and stops, they
//! write the same matches under the same keys.

use super::job::RetrohuntJob;
use super::jobs::Inner;
use std::sync::Weak;
use std::time::Duration;

/// How often a server renews its jobs' heartbeats and looks for jobs to adopt.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(10);
/// A heartbeat older than this says the job's server is gone.
pub(crate) const LEASE_SECONDS: i64 = 30;

/// This process's name as a runner: unique enough across servers and restarts.
pub(crate) fn runner_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::unix_now() as u64);
    format!("{}-{:016x}", std::process::id(), hasher.finish())
}

/// Whether another live server runs `job`.
pub(crate) fn held_elsewhere(job: &RetrohuntJob, me: &str, now: i64) -> bool {
    job.runner.as_deref().is_some_and(|r| r != me) && now - job.heartbeat <= LEASE_SECONDS
}

/// Renew this server's heartbeats and adopt abandoned jobs every [`HEARTBEAT`], until the
/// jobs are dropped.
pub(crate) fn spawn_sweeper(inner: Weak<Inner>) {
    let spawned = std::thread::Builder::new()
        .name("retrohunt-lease".into())
        .spawn(move || {
            loop {
                std::thread::sleep(HEARTBEAT);
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                if let Err(e) = inner.sweep() {
                    eprintln!("sandscope-hunting: retrohunt jobs: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!(
            "sandscope-hunting: retrohunt jobs will not be adopted from stopped servers: {e}"
        );
    }
}
