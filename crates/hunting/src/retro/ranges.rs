//! A Retrohunt job split across workers (`serve --store URL --nats URL`): its report ids cut
//! into [`RANGES`] ranges by the first hex digit of the sample's SHA-256 (so a range is one
//! `sha256` interval, which a sharded store answers shard by shard), each a work item a
//! `sandscope worker` scans with its resident engine through the one scan (`scan.rs`).
//!
//! A range keeps its own progress record (checkpoint, counts, done) beside the job; each page
//! writes the range's progress and its matches in one transaction, under match numbers derived
//! from that progress (`index << RANGE_MATCH_BITS | n`), so a range redelivered after its
//! worker died resumes from its checkpoint and rewrites, never repeats, a match. The job's
//! status, progress, `num_matches` and dates are the sum of its ranges, reckoned when read.
//!
//! A range whose item NATS lost (purged, or its stream lost) would leave the job waiting
//! forever: the server holding the job's lease looks at its unfinished ranges at every sweep
//! ([`republish_lost`]) and re-publishes one that made no progress since its previous look and
//! whose item the queue no longer holds. Redelivery being safe, a spurious re-publish costs
//! only a worker's look at a range already done.

use super::job::{JobStatus, RetrohuntJob};
use super::jobs::{log_matches, match_key};
use super::scan::{ScanEnd, ScanOptions, ScannedPage, scan};
use super::source::RetrohuntStore;
use crate::error::{HuntingError, Result};
use crate::rules::CompiledRules;
use crate::seam::RecordTable;
use crate::{store_io, unix_now};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

/// Ranges per split job: one per first hex digit of the SHA-256.
pub const RANGES: u32 = 16;
/// Match numbers per range (the low bits of a split job's match numbers).
const RANGE_MATCH_BITS: u32 = 24;
/// Report ids per page: the checkpoint granularity, and how often a worker says it is alive.
const RANGE_PAGE: usize = 16;

/// One range's progress, stored under `job id << 32 | index` in `RetrohuntRanges`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeProgress {
    pub checkpoint: Option<String>,
    pub scanned: u64,
    pub scanned_bytes: u64,
    pub scanned_events: u64,
    pub num_matches: u64,
    pub start_date: Option<i64>,
    pub finish_date: Option<i64>,
    pub done: bool,
    /// Why the range could not be scanned (its work item was given up).
    pub error: Option<String>,
}

/// Where a split job's ranges go: the work queue the workers pull from.
pub trait RangeDispatch: Send + Sync {
    /// Queue range `index` of job `job` for a worker.
    fn publish(&self, job: u64, index: u32) -> std::result::Result<(), String>;
    /// Tell the workers scanning job `job`'s ranges to stop.
    fn abort(&self, job: u64) -> std::result::Result<(), String>;
    /// Whether range `index` of job `job` is still in the queue: waiting for a worker, or
    /// delivered and not yet acknowledged.
    fn queued(&self, job: u64, index: u32) -> std::result::Result<bool, String>;
}

/// What a sweep saw of an unfinished range: how many report ids it had scanned (`None`: it
/// had not started).
pub(crate) type RangeMark = Option<u64>;

/// Whether a range will not change any more.
fn settled(range: &RangeProgress) -> bool {
    range.done || range.error.is_some()
}

/// How a worker's turn at a range ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    /// Scanned to its end (now or by an earlier delivery).
    Done,
    /// The job was aborted or deleted: nothing more to do.
    Abandoned,
    /// The stop flag was set (the worker is stopping): deliver it again.
    Stopped,
}

pub(crate) fn range_key(job: u64, index: u32) -> u64 {
    (job << 32) | u64::from(index)
}

/// The report ids of range `index`: after the hex digit `index` (every id starting with it
/// sorts after the digit alone) and before the next digit.
fn bounds(index: u32) -> (String, Option<String>) {
    let digit = |i: u32| char::from_digit(i, 16).map(String::from);
    (digit(index).unwrap_or_default(), digit(index + 1))
}

/// Every range's progress of job `job`, by index (absent: not started).
pub(crate) fn progress_of(
    store: &dyn RetrohuntStore,
    job: u64,
) -> Result<Vec<(u32, RangeProgress)>> {
    let table = RecordTable::RetrohuntRanges;
    store
        .records()
        .records(
            table,
            range_key(job, 0)..=range_key(job, RANGES - 1),
            RANGES as usize,
            false,
        )
        .map_err(HuntingError::Store)?
        .into_iter()
        .map(|(key, bytes)| {
            Ok((
                (key & 0xffff_ffff) as u32,
                store_io::decode(table, key, &bytes)?,
            ))
        })
        .collect()
}

/// Fold a split job's ranges into its status and counts (the job record keeps what only the
/// server decides: creation, abort, `total`).
pub(crate) fn aggregate(job: &mut RetrohuntJob, ranges: &[(u32, RangeProgress)]) {
    job.scanned = ranges.iter().map(|(_, r)| r.scanned).sum();
    job.scanned_bytes = ranges.iter().map(|(_, r)| r.scanned_bytes).sum();
    job.scanned_events = ranges.iter().map(|(_, r)| r.scanned_events).sum();
    job.num_matches = ranges.iter().map(|(_, r)| r.num_matches).sum();
    job.total = job.total.max(job.scanned);
    job.start_date = ranges.iter().filter_map(|(_, r)| r.start_date).min();
    if let Some(start) = job.start_date {
        job.run_seconds = unix_now() - start;
    }
    if job.status.is_final() {
        return;
    }
    if let Some(error) = ranges.iter().find_map(|(_, r)| r.error.clone()) {
        job.status = JobStatus::Aborted;
        job.error = Some(error);
        job.finish_date = ranges.iter().filter_map(|(_, r)| r.finish_date).max();
    } else if ranges.len() == RANGES as usize && ranges.iter().all(|(_, r)| r.done) {
        job.status = JobStatus::Finished;
        job.finish_date = ranges.iter().filter_map(|(_, r)| r.finish_date).max();
    } else if job.start_date.is_some() {
        job.status = JobStatus::Running;
    }
}

fn live(store: &dyn RetrohuntStore, job: u64) -> Result<Option<RetrohuntJob>> {
    let stored: Option<RetrohuntJob> =
        store_io::get(store.records(), RecordTable::RetrohuntJobs, job)?;
    Ok(stored.filter(|j| !j.status.is_final() && j.status != JobStatus::Aborting))
}

/// Scan range `index` of split job `job` from its checkpoint (a worker's work item);
/// `alive` is called after each page (a worker tells its queue it is still at work).
pub fn scan_range(
    store: &dyn RetrohuntStore,
    job: u64,
    index: u32,
    stop: &AtomicBool,
    alive: &mut dyn FnMut(),
) -> Result<RangeEnd> {
    if index >= RANGES {
        return Err(HuntingError::Invalid(format!("no retrohunt range {index}")));
    }
    let Some(stored) = live(store, job)? else {
        return Ok(RangeEnd::Abandoned);
    };
    let key = range_key(job, index);
    let table = RecordTable::RetrohuntRanges;
    let mut range: RangeProgress = store_io::get(store.records(), table, key)?.unwrap_or_default();
    if settled(&range) {
        return Ok(RangeEnd::Done);
    }
    let CompiledRules::Sigma(engine) = CompiledRules::compile(stored.rule_language, &stored.rules)?
    else {
        return Err(HuntingError::Invalid(
            "only Sigma retrohunt jobs are split across workers".into(),
        ));
    };
    let (after, until) = bounds(index);
    let options = ScanOptions {
        // One reader: a worker's Sigma engine already evaluates each batch on every core.
        readers: 1,
        page: RANGE_PAGE,
        range: stored.time_range,
        until,
    };
    range.start_date.get_or_insert(unix_now());
    let resume = range.checkpoint.clone().or(Some(after));
    let mut abandoned = false;
    let end = scan(
        store.logs(),
        &engine,
        &options,
        resume,
        stop,
        &mut |page: ScannedPage| {
            if live(store, job)?.is_none() {
                abandoned = true;
                return Ok(false);
            }
            let now = unix_now();
            let mut writes = Vec::new();
            for log in &page.logs {
                for m in log_matches(&engine, log, now) {
                    if range.num_matches >= 1 << RANGE_MATCH_BITS {
                        return Err(HuntingError::Invalid(format!(
                            "retrohunt range {index} has more than {} matches",
                            1u64 << RANGE_MATCH_BITS
                        )));
                    }
                    let n = (u64::from(index) << RANGE_MATCH_BITS) | range.num_matches;
                    writes.push(store_io::put(
                        RecordTable::RetrohuntMatches,
                        match_key(job, n),
                        &m,
                    )?);
                    range.num_matches += 1;
                }
                range.scanned_bytes += log.bytes;
                range.scanned_events += log.outcome.records;
            }
            range.scanned += page.ids as u64;
            range.checkpoint = Some(page.checkpoint);
            writes.push(store_io::put(table, key, &range)?);
            store
                .records()
                .write_records(writes)
                .map_err(HuntingError::Store)?;
            alive();
            Ok(true)
        },
    )?;
    if abandoned {
        return Ok(RangeEnd::Abandoned);
    }
    if end == ScanEnd::Stopped {
        return Ok(RangeEnd::Stopped);
    }
    range.done = true;
    range.finish_date = Some(unix_now());
    store
        .records()
        .write_records(vec![store_io::put(table, key, &range)?])
        .map_err(HuntingError::Store)?;
    Ok(RangeEnd::Done)
}

/// Re-publish the ranges of split job `job` that the queue lost: unfinished, without progress
/// since the previous look (`marks`, by index, replaced by this look's), and no longer in the
/// queue. Returns the indices re-published.
pub(crate) fn republish_lost(
    store: &dyn RetrohuntStore,
    dispatch: &dyn RangeDispatch,
    job: u64,
    marks: &mut HashMap<u32, RangeMark>,
) -> Result<Vec<u32>> {
    let ranges: HashMap<u32, RangeProgress> = progress_of(store, job)?.into_iter().collect();
    let mut seen = HashMap::new();
    let mut republished = Vec::new();
    for index in 0..RANGES {
        let range = ranges.get(&index);
        if range.is_some_and(settled) {
            continue;
        }
        let mark = range.map(|r| r.scanned);
        seen.insert(index, mark);
        if marks.get(&index) != Some(&mark) {
            continue; // first look, or it moved since
        }
        let queue = |e: String| HuntingError::Invalid(format!("the work queue: {e}"));
        if dispatch.queued(job, index).map_err(queue)? {
            continue;
        }
        // Read again after the queue answered: a worker stores its range done (or given up)
        // before it acknowledges the item, so a range still unfinished now lost its item.
        let again: Option<RangeProgress> = store_io::get(
            store.records(),
            RecordTable::RetrohuntRanges,
            range_key(job, index),
        )?;
        if again.as_ref().is_some_and(settled) {
            continue;
        }
        dispatch.publish(job, index).map_err(queue)?;
        republished.push(index);
    }
    *marks = seen;
    Ok(republished)
}

/// Record that range `index` of job `job` was given up (its work item failed for good), so
/// the job ends `aborted` with `reason` instead of waiting for it forever.
pub fn give_up_range(store: &dyn RetrohuntStore, job: u64, index: u32, reason: &str) -> Result<()> {
    let key = range_key(job, index);
    let table = RecordTable::RetrohuntRanges;
    let mut range: RangeProgress = store_io::get(store.records(), table, key)?.unwrap_or_default();
    range.error = Some(format!("range {index}: {reason}"));
    range.finish_date = Some(unix_now());
    store
        .records()
        .write_records(vec![store_io::put(table, key, &range)?])
        .map_err(HuntingError::Store)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every report id falls in exactly one range, whatever its sample's first hex digit.
    #[test]
    fn the_ranges_cover_every_id_once() {
        for first in "0123456789abcdef".chars() {
            let id = format!("{first}{}_cape", "0".repeat(63));
            let last = format!("{first}{}_zz", "f".repeat(63));
            for id in [&id, &last] {
                let holders: Vec<u32> = (0..RANGES)
                    .filter(|&i| {
                        let (after, until) = bounds(i);
                        id.as_str() > after.as_str()
                            && until.as_deref().is_none_or(|u| id.as_str() < u)
                    })
                    .collect();
                assert_eq!(holders.len(), 1, "{id}: {holders:?}");
            }
        }
    }

    fn range(scanned: u64, done: bool) -> RangeProgress {
        RangeProgress {
            scanned,
            num_matches: scanned / 2,
            start_date: Some(100),
            finish_date: done.then_some(200 + scanned as i64),
            done,
            ..RangeProgress::default()
        }
    }

    #[test]
    fn a_split_job_adds_up_its_ranges() {
        let attributes = serde_json::json!({ "rules": "x" });
        let mut job = RetrohuntJob::from_attributes(attributes.as_object().unwrap(), 50).unwrap();
        job.ranges = RANGES;
        job.total = 100;
        aggregate(&mut job, &[]);
        assert_eq!(job.status, JobStatus::Queued);

        let mut ranges: Vec<(u32, RangeProgress)> =
            (0..RANGES - 1).map(|i| (i, range(6, true))).collect();
        aggregate(&mut job, &ranges);
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!((job.scanned, job.num_matches), (90, 45));

        ranges.push((RANGES - 1, range(10, true)));
        aggregate(&mut job, &ranges);
        assert_eq!(job.status, JobStatus::Finished);
        assert_eq!((job.scanned, job.num_matches), (100, 50));
        assert_eq!(job.finish_date, Some(210));
        assert_eq!(job.progress(), 100.0);

        let mut failed = job.clone();
        failed.status = JobStatus::Running;
        ranges[3].1.error = Some("range 3: no store".into());
        aggregate(&mut failed, &ranges);
        assert_eq!(failed.status, JobStatus::Aborted);
        assert_eq!(failed.error.as_deref(), Some("range 3: no store"));
    }
}
