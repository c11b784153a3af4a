//! The Retrohunt scan: Sigma rules over every stored detonation's raw log, each log hunted
//! exactly as `sandscope hunt` hunts a file ([`crate::hunt_stream`]). One implementation for
//! the CLI, the API's jobs and the benchmark.
//!
//! Logs are taken a page of report ids at a time; a page is hunted `readers` logs at a time, on
//! the rayon pool that also decodes and evaluates them, and handed to the caller whole, in id
//! order, with the page's last id as the checkpoint to resume after. A stop request ends the
//! scan at the next log or within [`crate::stream`]'s event check, and the unfinished page is
//! dropped, so a checkpoint never covers half a page.

use super::source::DetonationLogs;
use crate::error::{HuntingError, Result};
use crate::stream::{HuntOutcome, hunt_stream};
use rayon::prelude::*;
use sandscope_read::ReadOptions;
use sandscope_sigma::{RuleInfo, SigmaEngine};
use sandscope_store::RecordStoreError;
use serde::{Deserialize, Serialize};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which detonations a scan covers, by first-seen date (Unix seconds, both ends included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

impl TimeRange {
    pub fn is_all(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    pub fn contains(&self, date: i64) -> bool {
        self.start.is_none_or(|s| date >= s) && self.end.is_none_or(|e| date <= e)
    }
}

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Logs hunted at once (1: one after the other, each still decoded and evaluated on every
    /// core).
    pub readers: usize,
    /// Report ids per page (the checkpoint granularity).
    pub page: usize,
    pub range: TimeRange,
    /// Stop before this report id (exclusive): the end of a worker's share; `None` scans to
    /// the last id.
    pub until: Option<String>,
}

/// One detonation's log, hunted.
#[derive(Debug)]
pub struct ScannedLog {
    pub report_id: String,
    /// The raw log's size.
    pub bytes: u64,
    pub outcome: HuntOutcome,
}

/// One page of the scan, complete.
#[derive(Debug)]
pub struct ScannedPage {
    /// Resume after this id.
    pub checkpoint: String,
    /// Report ids the page covered (hunted or passed over: out of range, no log).
    pub ids: usize,
    /// The logs hunted, in id order.
    pub logs: Vec<ScannedLog>,
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    Finished,
    Stopped,
}

/// Scan every detonation after `resume_after` (all when `None`) and before `options.until`,
/// calling `page` with each completed page; `page` may stop the scan by returning `Ok(false)`.
pub fn scan(
    logs: &dyn DetonationLogs,
    engine: &SigmaEngine,
    options: &ScanOptions,
    resume_after: Option<String>,
    stop: &AtomicBool,
    page: &mut dyn FnMut(ScannedPage) -> Result<bool>,
) -> Result<ScanEnd> {
    let mut cursor = resume_after;
    let keep = |_: &RuleInfo| true;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(ScanEnd::Stopped);
        }
        let mut ids = logs
            .detonation_ids(cursor.as_deref(), options.page.max(1))
            .map_err(HuntingError::Store)?;
        if let Some(until) = &options.until {
            ids.retain(|id| id < until);
        }
        let Some(last) = ids.last().cloned() else {
            return Ok(ScanEnd::Finished);
        };
        let Some(hunted) = hunt_page(logs, engine, &ids, options, stop, &keep)? else {
            return Ok(ScanEnd::Stopped);
        };
        let done = ScannedPage {
            checkpoint: last.clone(),
            ids: ids.len(),
            logs: hunted,
        };
        if !page(done)? {
            return Ok(ScanEnd::Stopped);
        }
        cursor = Some(last);
    }
}

/// Logs hunted at once, at most, whatever `readers` asks: each one a thread holds on its stack
/// while it waits for its own batches uses that thread's stack (2 MiB by default).
const MAX_LOGS_IN_FLIGHT: usize = 8;

/// Hunt the logs of `ids`, `options.readers` at a time; `None` when stopped part way.
///
/// The logs in flight are tasks of the rayon pool that also decodes their EVTX chunks and
/// evaluates their events, so a thread done with a small log helps with its neighbour's
/// batches instead of a reader thread of ours waiting on the pool (on two cores, two reader
/// threads beside the pool's two meant four threads and a spinning pool). Taking the page
/// `readers` logs at a time bounds how many logs one thread can hold on its stack (a thread
/// waiting on its own log's batches may pick up another log).
fn hunt_page<F: Fn(&RuleInfo) -> bool + Sync>(
    logs: &dyn DetonationLogs,
    engine: &SigmaEngine,
    ids: &[String],
    options: &ScanOptions,
    stop: &AtomicBool,
    keep: &F,
) -> Result<Option<Vec<ScannedLog>>> {
    let mut hunted = Vec::with_capacity(ids.len());
    for group in ids.chunks(options.readers.clamp(1, MAX_LOGS_IN_FLIGHT)) {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let one = |id: &String| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                hunt_log(logs, engine, id, options.range, stop, keep)
            }))
            .unwrap_or_else(|_| {
                Err(HuntingError::Store(RecordStoreError::new(
                    "a retrohunt reader panicked",
                )))
            })
        };
        let group: Vec<Result<Option<ScannedLog>>> = if group.len() == 1 {
            group.iter().map(one).collect()
        } else {
            group.par_iter().with_max_len(1).map(one).collect()
        };
        for log in group {
            hunted.extend(log?);
        }
    }
    if stop.load(Ordering::Relaxed) || hunted.iter().any(|l| l.outcome.stopped) {
        return Ok(None);
    }
    Ok(Some(hunted))
}

/// Hunt one detonation's log when it is in range and has one.
fn hunt_log<F: Fn(&RuleInfo) -> bool + Sync>(
    logs: &dyn DetonationLogs,
    engine: &SigmaEngine,
    id: &str,
    range: TimeRange,
    stop: &AtomicBool,
    keep: &F,
) -> Result<Option<ScannedLog>> {
    if !range.is_all() {
        let date = logs
            .detonation_date(id)
            .map_err(HuntingError::Store)?
            .unwrap_or(0);
        if !range.contains(date) {
            return Ok(None);
        }
    }
    let Some(log) = logs.detonation_log(id).map_err(HuntingError::Store)? else {
        return Ok(None);
    };
    let name = format!("{id}/{}", log.file_name);
    let mut outcome = HuntOutcome::default();
    let options = ReadOptions::default();
    hunt_stream(
        engine,
        &name,
        |sink| sandscope_read::read_reader_with(&name, log.reader, &options, sink),
        keep,
        stop,
        &mut outcome,
    );
    Ok(Some(ScannedLog {
        report_id: id.to_string(),
        bytes: log.size,
        outcome,
    }))
}
