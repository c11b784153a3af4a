//! The Retrohunt scan: Sigma rules over every stored detonation's raw log, each log hunted
//! exactly as `sandscope hunt` hunts a file ([`crate::hunt_stream`]). One implementation for
//! the CLI, the API's jobs and the benchmark.
//!
//! Logs are taken a page of report ids at a time; a page is hunted one log per rayon thread
//! (`readers` above 1) or one log at a time on every core, and handed to the caller whole, in id
//! order, with the page's last id as the checkpoint to resume after. A stop request ends the
//! scan at the next log or within [`crate::stream`]'s event check, and the unfinished page is
//! dropped, so a checkpoint never covers half a page.

use super::source::{DetonationLog, DetonationLogs};
use crate::error::{HuntingError, Result};
use crate::stream::{HuntOutcome, hunt_stream_on};
use rayon::prelude::*;
use sandscope_read::{ReadError, ReadOptions};
use sandscope_sigma::{RuleInfo, SigmaEngine};
use sandscope_store::{RecordStoreError, StoredBytes};
use serde::{Deserialize, Serialize};
use std::io::Read;
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
    /// Above 1: logs hunted one per rayon thread, each on its thread alone; 1: one after the
    /// other, each decoded and evaluated on every core.
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

/// Logs up to this size are read whole into memory (EVTX decoded in place, no temporary file)
/// and, when several readers are asked for, hunted one per thread; a larger log is streamed and
/// hunted alone on every core, so memory stays bounded by threads times this.
const WHOLE_LOG_MAX: u64 = 16 << 20;

/// One log's turn in a page hunted one log per thread.
enum Turn {
    Hunted(Option<ScannedLog>),
    /// Too large to hunt on one thread: hunted after, alone, on every core.
    Large,
}

/// Hunt the logs of `ids`; `None` when stopped part way.
///
/// With several readers each log is a task of the rayon pool, read and evaluated on the thread
/// that took it (a stored log is small, ~100 events: split further, its hand-offs cost more
/// than they share), so the threads only meet at the end of the page. Such a task never waits
/// on the pool, so no thread holds more than the log it works on. With one reader the logs are
/// hunted one after the other, each decoded and evaluated on every core.
fn hunt_page<F: Fn(&RuleInfo) -> bool + Sync>(
    logs: &dyn DetonationLogs,
    engine: &SigmaEngine,
    ids: &[String],
    options: &ScanOptions,
    stop: &AtomicBool,
    keep: &F,
) -> Result<Option<Vec<ScannedLog>>> {
    let hunt = |id: &String, parallel: bool| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            hunt_log(logs, engine, id, options.range, stop, keep, parallel)
        }))
        .unwrap_or_else(|_| {
            Err(HuntingError::Store(RecordStoreError::new(
                "a retrohunt reader panicked",
            )))
        })
    };
    let turns: Vec<Result<Turn>> = if options.readers > 1 && ids.len() > 1 {
        ids.par_iter()
            .with_max_len(1)
            .map(|id| {
                if stop.load(Ordering::Relaxed) {
                    return Ok(Turn::Hunted(None));
                }
                hunt(id, false)
            })
            .collect()
    } else {
        ids.iter().map(|_| Ok(Turn::Large)).collect()
    };
    let mut hunted = Vec::with_capacity(ids.len());
    for (id, turn) in ids.iter().zip(turns) {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match turn? {
            Turn::Hunted(log) => hunted.extend(log),
            Turn::Large => {
                if let Turn::Hunted(log) = hunt(id, true)? {
                    hunted.extend(log);
                }
            }
        }
    }
    if stop.load(Ordering::Relaxed) || hunted.iter().any(|l| l.outcome.stopped) {
        return Ok(None);
    }
    Ok(Some(hunted))
}

/// Hunt one detonation's log when it is in range and has one: on this thread alone unless
/// `parallel`, in which case a log of any size is hunted; otherwise a log too large for one
/// thread is left for later ([`Turn::Large`]).
fn hunt_log<F: Fn(&RuleInfo) -> bool + Sync>(
    logs: &dyn DetonationLogs,
    engine: &SigmaEngine,
    id: &str,
    range: TimeRange,
    stop: &AtomicBool,
    keep: &F,
    parallel: bool,
) -> Result<Turn> {
    if !range.is_all() {
        let date = logs
            .detonation_date(id)
            .map_err(HuntingError::Store)?
            .unwrap_or(0);
        if !range.contains(date) {
            return Ok(Turn::Hunted(None));
        }
    }
    let (name, size, body) = match logs
        .detonation_log_whole(id, WHOLE_LOG_MAX)
        .map_err(HuntingError::Store)?
    {
        Some(whole) => (
            whole.file_name,
            whole.bytes.as_ref().len() as u64,
            Ok(Body::Stored(whole.bytes)),
        ),
        None => {
            let Some(log) = logs.detonation_log(id).map_err(HuntingError::Store)? else {
                return Ok(Turn::Hunted(None));
            };
            if !parallel && log.size > WHOLE_LOG_MAX {
                return Ok(Turn::Large);
            }
            (log.file_name.clone(), log.size, take_whole(log))
        }
    };
    let name = format!("{id}/{name}");
    let mut outcome = HuntOutcome::default();
    let options = ReadOptions {
        sequential: !parallel,
        ..ReadOptions::default()
    };
    hunt_stream_on(
        engine,
        &name,
        |sink| match body {
            Ok(Body::Stored(bytes)) => {
                sandscope_read::read_owned_bytes(&name, bytes, &options, sink)
            }
            Ok(Body::Whole(bytes)) => {
                sandscope_read::read_owned_bytes(&name, bytes, &options, sink)
            }
            Ok(Body::Stream(reader)) => {
                sandscope_read::read_reader_with(&name, reader, &options, sink)
            }
            Err(source) => Err(ReadError::Io {
                path: name.clone().into(),
                source,
            }),
        },
        keep,
        stop,
        parallel,
        &mut outcome,
    );
    Ok(Turn::Hunted(Some(ScannedLog {
        report_id: id.to_string(),
        bytes: size,
        outcome,
    })))
}

/// A stored log's bytes: where the store read them, whole in memory, or still a stream.
enum Body {
    Stored(StoredBytes),
    Whole(Vec<u8>),
    Stream(Box<dyn Read + Send>),
}

/// Read `log` whole when it says it is at most [`WHOLE_LOG_MAX`] bytes; a log that says so but
/// turns out longer goes on as a stream, its bytes read so far first.
fn take_whole(log: DetonationLog) -> std::io::Result<Body> {
    if log.size > WHOLE_LOG_MAX {
        return Ok(Body::Stream(log.reader));
    }
    let mut reader = log.reader;
    let mut bytes = Vec::with_capacity(usize::try_from(log.size).unwrap_or(0));
    (&mut reader)
        .take(WHOLE_LOG_MAX + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > WHOLE_LOG_MAX {
        return Ok(Body::Stream(Box::new(
            std::io::Cursor::new(bytes).chain(reader),
        )));
    }
    Ok(Body::Whole(bytes))
}
