//! Retrohunt jobs: created by the API, run in the background on threads of their own (at most
//! [`Retrohunts::start`]'s `max_running` at once, the rest `queued`), never on the caller's.
//!
//! A job's matches are records of their own, keyed `job id << 32 | n` so one job's matches are
//! one id range (paged in order, deleted with the job). Each page of the scan writes its matches
//! together with the job's progress and checkpoint in one transaction, so a match is readable
//! as soon as its page is done, and the checkpoint always agrees with the matches stored.
//!
//! Abort sets the job's flag (the scan looks at it between logs and every 1,024 events) and
//! stores `aborting`; the job's thread then stores `aborted`. A restart resumes every job left
//! `queued`, `starting` or `running` from its checkpoint (`resumed` counts how often), and marks
//! one left `aborting` as `aborted`, with the reason in `error`: no job is silently lost.
//!
//! Started with a [`RangeDispatch`] (`serve --store URL --nats URL`), a Sigma job is not run
//! here: it is cut into ranges handed to workers (`ranges`), its status is reckoned from
//! theirs when read, and an abort is passed on to them. The server holding its lease renews
//! it at every sweep and re-publishes the ranges the queue lost (`ranges::republish_lost`);
//! once its ranges add up to a final status, that status is stored and the sweeps leave it.

use super::job::{JobStatus, RetrohuntJob, RetrohuntMatch};
use super::lease;
use super::ranges::{
    RANGES, RangeDispatch, RangeMark, aggregate, progress_of, range_key, republish_lost,
};
use super::scan::{ScanEnd, ScanOptions, ScannedLog, ScannedPage, scan};
use super::source::{RetrohuntStore, sample_of};
use crate::error::{HuntingError, Result};
use crate::rules::{CompiledRules, NamedQuery};
use crate::seam::{RecordTable, RecordWrite};
use crate::service::Page;
use crate::store_io;
use crate::unix_now;
use sandscope_sigma::SigmaEngine;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Jobs running at once unless the caller says otherwise.
pub const DEFAULT_MAX_RUNNING: usize = 2;
/// Most jobs one store keeps (each is listed and resumed by reading them all).
pub const MAX_JOBS: usize = 1_000;
/// Report ids per scan page: the checkpoint and match-streaming granularity.
const JOB_PAGE: usize = 16;
/// Match records deleted per transaction when a job is deleted.
const DELETE_BATCH: usize = 1_000;
const MATCH_BITS: u32 = 32;

pub(crate) fn match_key(job: u64, n: u64) -> u64 {
    (job << MATCH_BITS) | n
}

fn match_range(job: u64) -> std::ops::RangeInclusive<u64> {
    match_key(job, 0)..=match_key(job, (1u64 << MATCH_BITS) - 1)
}

/// The Retrohunt jobs of one store. Cheap to clone.
#[derive(Clone)]
pub struct Retrohunts {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Arc<dyn RetrohuntStore>,
    /// This process's runner name, when several servers share the store (see `lease`).
    shared: Option<String>,
    /// Where Sigma jobs are split across workers; `None`: every job runs here.
    dispatch: Option<Arc<dyn RangeDispatch>>,
    max_running: usize,
    running: Mutex<usize>,
    slot_freed: Condvar,
    /// The stop flag of every job that has a thread.
    flags: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    /// Serialises every read-modify-write of job records (a page's progress against an abort
    /// or a delete).
    writes: Mutex<()>,
    /// What the previous sweep saw of each held split job's unfinished ranges.
    range_marks: Mutex<HashMap<u64, HashMap<u32, RangeMark>>>,
}

impl Retrohunts {
    /// The jobs of `store`, with the unfinished ones resumed (see the module documentation).
    pub fn start(store: Arc<dyn RetrohuntStore>, max_running: usize) -> Result<Retrohunts> {
        Self::start_with(store, max_running, None, false)
    }

    /// [`Retrohunts::start`] on a store other servers may share (`lease`): a job another live
    /// server runs is left to it, and one a stopped server left is adopted, now or later. With
    /// `dispatch`, Sigma jobs are split into ranges it hands to workers (`ranges`); query jobs
    /// still run in a server.
    pub fn start_shared(
        store: Arc<dyn RetrohuntStore>,
        max_running: usize,
        dispatch: Option<Arc<dyn RangeDispatch>>,
    ) -> Result<Retrohunts> {
        Self::start_with(store, max_running, dispatch, true)
    }

    fn start_with(
        store: Arc<dyn RetrohuntStore>,
        max_running: usize,
        dispatch: Option<Arc<dyn RangeDispatch>>,
        shared: bool,
    ) -> Result<Retrohunts> {
        let jobs = Retrohunts {
            inner: Arc::new(Inner {
                store,
                shared: shared.then(lease::runner_id),
                dispatch,
                max_running: max_running.max(1),
                running: Mutex::new(0),
                slot_freed: Condvar::new(),
                flags: Mutex::new(HashMap::new()),
                writes: Mutex::new(()),
                range_marks: Mutex::new(HashMap::new()),
            }),
        };
        jobs.inner.adopt_all()?;
        if shared {
            lease::spawn_sweeper(Arc::downgrade(&jobs.inner));
        }
        Ok(jobs)
    }

    /// Create and queue a job from a create body's `attributes`; nothing is saved unless its
    /// rules compile.
    pub fn create(&self, attributes: &Map<String, Value>, now: i64) -> Result<RetrohuntJob> {
        let mut job = RetrohuntJob::from_attributes(attributes, now)?;
        let compiled = CompiledRules::compile(job.rule_language, &job.rules)?;
        let dispatch = match (&self.inner.dispatch, compiled) {
            (Some(dispatch), CompiledRules::Sigma(_)) => {
                job.ranges = RANGES;
                job.total = self
                    .inner
                    .store
                    .logs()
                    .detonation_count()
                    .map_err(HuntingError::Store)?;
                Some(dispatch.clone())
            }
            _ => None,
        };
        {
            let _guard = self.inner.lock_writes();
            // Counted, not read: a store at the maximum is refused without decoding 1,000 jobs.
            let held = self
                .inner
                .store
                .records()
                .count_records(RecordTable::RetrohuntJobs, MAX_JOBS)
                .map_err(HuntingError::Store)?;
            if held >= MAX_JOBS {
                return Err(HuntingError::Invalid(format!(
                    "this store already holds the maximum of {MAX_JOBS} retrohunt jobs; delete some"
                )));
            }
            job.id = self
                .inner
                .store
                .records()
                .allocate_ids(RecordTable::RetrohuntJobs, 1)
                .map_err(HuntingError::Store)?
                .first()
                .copied()
                .filter(|id| *id < 1 << MATCH_BITS)
                .ok_or_else(|| HuntingError::Invalid("no retrohunt job id left".into()))?;
            job.runner = self.inner.shared.clone();
            job.heartbeat = now;
            self.inner.put(&job, Vec::new())?;
        }
        match dispatch {
            Some(dispatch) => {
                for index in 0..RANGES {
                    if let Err(e) = dispatch.publish(job.id, index) {
                        self.inner
                            .fail(job.id, &format!("its ranges cannot be queued: {e}"));
                        return self.job(job.id);
                    }
                }
            }
            None => self.spawn(job.id),
        }
        Ok(job)
    }

    pub fn job(&self, id: u64) -> Result<RetrohuntJob> {
        let job = self.inner.load(id)?.ok_or_else(|| not_found(id))?;
        self.inner.with_ranges(job)
    }

    /// Jobs, newest first, paged (the cursor is the next id down).
    pub fn list(&self, limit: usize, cursor: Option<&str>) -> Result<Page<RetrohuntJob>> {
        let upper = match cursor {
            None | Some("") => u64::MAX,
            Some(c) => c
                .parse()
                .map_err(|_| HuntingError::Invalid("invalid cursor".into()))?,
        };
        let table = RecordTable::RetrohuntJobs;
        let mut items: Vec<RetrohuntJob> = self
            .inner
            .store
            .records()
            .records(table, 0..=upper, limit.saturating_add(1), true)
            .map_err(HuntingError::Store)?
            .into_iter()
            .map(|(id, bytes)| self.inner.with_ranges(store_io::decode(table, id, &bytes)?))
            .collect::<Result<_>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = match items.last() {
            Some(last) if more && last.id > 0 => Some((last.id - 1).to_string()),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// Ask a job to stop; a finished or aborted job is left as it is.
    pub fn abort(&self, id: u64) -> Result<RetrohuntJob> {
        let _guard = self.inner.lock_writes();
        let mut job = self.job(id)?;
        if job.status.is_final() || job.status == JobStatus::Aborting {
            return Ok(job);
        }
        if let Some(dispatch) = &self.inner.dispatch
            && job.ranges > 0
        {
            // Its workers stop at their next look at the flag; nothing here waits for them.
            dispatch
                .abort(id)
                .map_err(|e| HuntingError::Invalid(format!("the workers cannot be told: {e}")))?;
            let mut stored = self.inner.load(id)?.ok_or_else(|| not_found(id))?;
            stored.status = JobStatus::Aborted;
            stored.finish_date = Some(unix_now());
            self.inner.put(&stored, Vec::new())?;
            return self.inner.with_ranges(stored);
        }
        let elsewhere = self
            .inner
            .shared
            .as_deref()
            .is_some_and(|me| lease::held_elsewhere(&job, me, unix_now()));
        if let Some(flag) = self.inner.flag(id) {
            flag.store(true, Ordering::Relaxed);
            job.status = JobStatus::Aborting;
        } else if elsewhere {
            // Its server stops at its next page and stores `aborted`.
            job.status = JobStatus::Aborting;
        } else {
            // No thread holds it (it could not start): nothing is left to stop.
            job.status = JobStatus::Aborted;
            job.finish_date = Some(unix_now());
        }
        self.inner.put(&job, Vec::new())?;
        Ok(job)
    }

    /// Stop a job if it runs, and delete it with its matches.
    pub fn delete(&self, id: u64) -> Result<()> {
        let _guard = self.inner.lock_writes();
        let job = self.job(id)?;
        if let Some(flag) = self.inner.flag(id) {
            flag.store(true, Ordering::Relaxed);
        }
        if let Some(dispatch) = &self.inner.dispatch
            && job.ranges > 0
            && !job.status.is_final()
        {
            dispatch
                .abort(id)
                .map_err(|e| HuntingError::Invalid(format!("the workers cannot be told: {e}")))?;
        }
        let records = self.inner.store.records();
        if job.ranges > 0 {
            let writes = (0..job.ranges)
                .map(|index| {
                    RecordWrite::Delete(RecordTable::RetrohuntRanges, range_key(id, index))
                })
                .collect();
            records.write_records(writes).map_err(HuntingError::Store)?;
        }
        loop {
            let batch = records
                .records(
                    RecordTable::RetrohuntMatches,
                    match_range(id),
                    DELETE_BATCH,
                    false,
                )
                .map_err(HuntingError::Store)?;
            if batch.is_empty() {
                break;
            }
            let writes = batch
                .into_iter()
                .map(|(key, _)| RecordWrite::Delete(RecordTable::RetrohuntMatches, key))
                .collect();
            records.write_records(writes).map_err(HuntingError::Store)?;
        }
        records
            .write_records(vec![RecordWrite::Delete(RecordTable::RetrohuntJobs, id)])
            .map_err(HuntingError::Store)
    }

    /// A job's matches in the order found, paged (the cursor is the next match number).
    pub fn matches(
        &self,
        id: u64,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(RetrohuntJob, Page<RetrohuntMatch>)> {
        let job = self.job(id)?;
        let from = match cursor {
            None | Some("") => 0,
            Some(c) => c
                .parse::<u64>()
                .ok()
                .filter(|n| *n < 1 << MATCH_BITS)
                .ok_or_else(|| HuntingError::Invalid("invalid cursor".into()))?,
        };
        let table = RecordTable::RetrohuntMatches;
        let range = match_key(id, from)..=*match_range(id).end();
        let rows = self
            .inner
            .store
            .records()
            .records(table, range, limit.saturating_add(1), false)
            .map_err(HuntingError::Store)?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut next = None;
        for (key, bytes) in rows.into_iter().take(limit) {
            items.push(store_io::decode(table, key, &bytes)?);
            next = Some((key & ((1 << MATCH_BITS) - 1)) + 1);
        }
        Ok((
            job,
            Page {
                items,
                next_cursor: next.filter(|_| more).map(|n| n.to_string()),
            },
        ))
    }

    /// Run job `id` on a thread of its own.
    fn spawn(&self, id: u64) {
        Inner::spawn(&self.inner, id);
    }
}

impl Inner {
    /// Run job `id` on a thread of its own.
    fn spawn(this: &Arc<Inner>, id: u64) {
        let flag = Arc::new(AtomicBool::new(false));
        this.flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, flag.clone());
        let inner = this.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("retrohunt-{id}"))
            .spawn(move || {
                if let Err(e) = inner.run(id, &flag) {
                    inner.fail(id, &e.to_string());
                }
                inner
                    .flags
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
            });
        if let Err(e) = spawned {
            this.flags
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            this.fail(id, &format!("cannot start the job's thread: {e}"));
        }
    }

    /// Take over every unfinished in-process job no live server runs (all of them on a store
    /// of one's own): resume it, or mark it aborted if it was aborting.
    fn adopt_all(self: &Arc<Inner>) -> Result<()> {
        let now = unix_now();
        for job in self.all()? {
            if job.ranges > 0 || job.status.is_final() || self.flag(job.id).is_some() {
                continue; // done, run here already, or its ranges are in the work queue
            }
            if let Some(me) = &self.shared
                && lease::held_elsewhere(&job, me, now)
            {
                continue;
            }
            self.adopt(job.id, now)?;
        }
        Ok(())
    }

    fn adopt(self: &Arc<Inner>, id: u64, now: i64) -> Result<()> {
        if self.take_over(id, now)? {
            Inner::spawn(self, id);
        }
        Ok(())
    }

    /// Make job `id` this server's: queued to resume (true), or aborted if it was aborting.
    fn take_over(&self, id: u64, now: i64) -> Result<bool> {
        let _guard = self.lock_writes();
        // Read again under the lock: an abort may have come in since the list was read.
        let Some(mut job) = self.load(id)? else {
            return Ok(false);
        };
        job.runner = self.shared.clone();
        job.heartbeat = now;
        match job.status {
            JobStatus::Aborted | JobStatus::Finished => Ok(false),
            JobStatus::Aborting => {
                job.status = JobStatus::Aborted;
                job.finish_date = Some(now);
                job.error = Some("the server stopped while the job was aborting".into());
                self.put(&job, Vec::new())?;
                Ok(false)
            }
            JobStatus::Queued | JobStatus::Starting | JobStatus::Running => {
                if job.start_date.is_some() {
                    job.resumed += 1;
                }
                job.status = JobStatus::Queued;
                self.put(&job, Vec::new())?;
                Ok(true)
            }
        }
    }

    /// Renew the heartbeat of every job this server runs, then adopt the abandoned ones.
    pub(crate) fn sweep(self: &Arc<Inner>) -> Result<()> {
        let ids: Vec<u64> = self
            .flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        for id in ids {
            let _guard = self.lock_writes();
            if let Some(mut job) = self.load(id)?
                && self.owns(&job)
                && !job.status.is_final()
            {
                job.heartbeat = unix_now();
                self.put(&job, Vec::new())?;
            }
        }
        // A split job's look failing (the store or NATS away) must not stop the adoptions.
        if let Err(e) = self.watch_split_jobs() {
            eprintln!("sandscope-hunting: retrohunt jobs split across workers: {e}");
        }
        self.adopt_all()
    }

    /// Hold the lease of every unfinished split job no other live server holds, and
    /// re-publish the ranges the queue lost. A job whose ranges add up to a final status has
    /// it stored, so later sweeps skip it.
    fn watch_split_jobs(&self) -> Result<()> {
        let (Some(me), Some(dispatch)) = (&self.shared, &self.dispatch) else {
            return Ok(());
        };
        let now = unix_now();
        let mut marks = self
            .range_marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut kept = HashMap::new();
        for job in self.all()? {
            if job.ranges == 0
                || job.status.is_final()
                || job.status == JobStatus::Aborting
                || lease::held_elsewhere(&job, me, now)
            {
                continue;
            }
            let id = job.id;
            let summed = self.with_ranges(job)?;
            if !self.hold_split(&summed, now)? || summed.status.is_final() {
                continue;
            }
            let mut job_marks = marks.remove(&id).unwrap_or_default();
            match republish_lost(self.store.as_ref(), dispatch.as_ref(), id, &mut job_marks) {
                Ok(lost) if lost.is_empty() => {}
                Ok(lost) => eprintln!(
                    "sandscope-hunting: retrohunt job {id}: range(s) {lost:?} were no longer in the work queue and made no progress: published again"
                ),
                Err(e) => eprintln!("sandscope-hunting: retrohunt job {id}: {e}"),
            }
            kept.insert(id, job_marks);
        }
        *marks = kept;
        Ok(())
    }

    /// Renew (or take) this server's lease of split job `summed` (its ranges folded in), or
    /// store its final status; false when it changed meanwhile (aborted, deleted, or held by
    /// another server).
    fn hold_split(&self, summed: &RetrohuntJob, now: i64) -> Result<bool> {
        let _guard = self.lock_writes();
        let Some(mut stored) = self.load(summed.id)? else {
            return Ok(false);
        };
        let me = self.shared.as_deref().unwrap_or_default();
        if stored.status.is_final()
            || stored.status == JobStatus::Aborting
            || lease::held_elsewhere(&stored, me, now)
        {
            return Ok(false);
        }
        stored.runner = self.shared.clone();
        stored.heartbeat = now;
        if summed.status.is_final() {
            stored.status = summed.status;
            stored.finish_date = summed.finish_date;
            stored.error = summed.error.clone();
        }
        self.put(&stored, Vec::new())?;
        Ok(true)
    }
}

/// Frees a running slot when dropped.
struct Slot<'a>(&'a Inner);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        self.0.slot_freed.notify_one();
    }
}

impl Inner {
    /// Every job, oldest first.
    fn all(&self) -> Result<Vec<RetrohuntJob>> {
        let table = RecordTable::RetrohuntJobs;
        self.store
            .records()
            .records(table, 0..=u64::MAX, MAX_JOBS + 1, false)
            .map_err(HuntingError::Store)?
            .into_iter()
            .map(|(id, bytes)| store_io::decode(table, id, &bytes))
            .collect()
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this server runs `job` (always, on a store of one's own).
    fn owns(&self, job: &RetrohuntJob) -> bool {
        self.shared.is_none() || job.runner == self.shared
    }

    fn flag(&self, id: u64) -> Option<Arc<AtomicBool>> {
        self.flags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn load(&self, id: u64) -> Result<Option<RetrohuntJob>> {
        store_io::get(self.store.records(), RecordTable::RetrohuntJobs, id)
    }

    /// A split job with its ranges' progress folded in; another job as it is.
    fn with_ranges(&self, mut job: RetrohuntJob) -> Result<RetrohuntJob> {
        if job.ranges > 0 {
            let ranges = progress_of(self.store.as_ref(), job.id)?;
            aggregate(&mut job, &ranges);
        }
        Ok(job)
    }

    /// Write `job` and `matches` (numbered from the job's count before them) in one
    /// transaction.
    fn put(&self, job: &RetrohuntJob, matches: Vec<(u64, RetrohuntMatch)>) -> Result<()> {
        let mut writes = Vec::with_capacity(matches.len() + 1);
        for (n, m) in &matches {
            writes.push(store_io::put(
                RecordTable::RetrohuntMatches,
                match_key(job.id, *n),
                m,
            )?);
        }
        writes.push(store_io::put(RecordTable::RetrohuntJobs, job.id, job)?);
        self.store
            .records()
            .write_records(writes)
            .map_err(HuntingError::Store)
    }

    /// Store the job's progress unless it was aborted, deleted or adopted by another server
    /// meanwhile; false then.
    fn progress(&self, job: &RetrohuntJob, matches: Vec<(u64, RetrohuntMatch)>) -> Result<bool> {
        let _guard = self.lock_writes();
        match self.load(job.id)? {
            Some(stored) if stored.status != JobStatus::Aborting && self.owns(&stored) => {
                let mut job = job.clone();
                job.heartbeat = unix_now();
                self.put(&job, matches)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Store the job's end: `aborted` when asked to stop, else `finished`.
    fn finish(&self, job: &mut RetrohuntJob, stopped: bool) -> Result<()> {
        let _guard = self.lock_writes();
        let Some(stored) = self.load(job.id)? else {
            return Ok(());
        };
        if !self.owns(&stored) {
            return Ok(()); // another server adopted it and ends it
        }
        job.status = if stopped || stored.status == JobStatus::Aborting {
            JobStatus::Aborted
        } else {
            JobStatus::Finished
        };
        job.finish_date = Some(unix_now());
        self.put(job, Vec::new())
    }

    /// Mark the job aborted because of `reason` (not a client's abort).
    fn fail(&self, id: u64, reason: &str) {
        let _guard = self.lock_writes();
        let Ok(Some(mut job)) = self.load(id) else {
            return;
        };
        if job.status.is_final() || !self.owns(&job) {
            return;
        }
        job.status = JobStatus::Aborted;
        job.finish_date = Some(unix_now());
        job.error = Some(reason.to_string());
        if let Err(e) = self.put(&job, Vec::new()) {
            eprintln!(
                "sandscope-hunting: retrohunt job {id} failed ({reason}) and cannot be marked aborted: {e}"
            );
        }
    }

    /// Wait for a running slot; `None` when stopped while waiting.
    fn slot(&self, stop: &AtomicBool) -> Option<Slot<'_>> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= self.max_running {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            running = self
                .slot_freed
                .wait_timeout(running, Duration::from_millis(200))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *running += 1;
        Some(Slot(self))
    }

    fn run(&self, id: u64, stop: &AtomicBool) -> Result<()> {
        let slot = self.slot(stop);
        let Some(mut job) = self.load(id)? else {
            return Ok(()); // deleted while queued
        };
        if slot.is_none() || stop.load(Ordering::Relaxed) {
            return self.finish(&mut job, true);
        }
        job.status = JobStatus::Starting;
        if !self.progress(&job, Vec::new())? {
            return self.finish(&mut job, true);
        }
        let rules = match CompiledRules::compile(job.rule_language, &job.rules) {
            Ok(rules) => rules,
            Err(e) => {
                self.fail(id, &format!("the rules no longer compile: {e}"));
                return Ok(());
            }
        };
        let now = unix_now();
        job.total = self
            .store
            .logs()
            .detonation_count()
            .map_err(HuntingError::Store)?
            .max(job.scanned);
        job.start_date.get_or_insert(now);
        job.run_seconds = 0;
        job.run_from = job.scanned;
        job.status = JobStatus::Running;
        if !self.progress(&job, Vec::new())? {
            return self.finish(&mut job, true);
        }
        let end = match &rules {
            CompiledRules::Sigma(engine) => self.run_sigma(&mut job, engine, stop)?,
            CompiledRules::Queries(queries) => self.run_queries(&mut job, queries, stop)?,
        };
        self.finish(&mut job, end == ScanEnd::Stopped)
    }

    fn run_sigma(
        &self,
        job: &mut RetrohuntJob,
        engine: &SigmaEngine,
        stop: &AtomicBool,
    ) -> Result<ScanEnd> {
        let options = ScanOptions {
            // One reader per job: each batch of events is evaluated on every core already.
            readers: 1,
            page: JOB_PAGE,
            range: job.time_range,
            until: None,
        };
        let started = unix_now();
        let resume = job.checkpoint.clone();
        scan(
            self.store.logs(),
            engine,
            &options,
            resume,
            stop,
            &mut |page: ScannedPage| {
                let now = unix_now();
                let mut matches = Vec::new();
                for log in &page.logs {
                    for m in log_matches(engine, log, now) {
                        matches.push((job.num_matches, m));
                        job.num_matches += 1;
                    }
                    job.scanned_bytes += log.bytes;
                    job.scanned_events += log.outcome.records;
                }
                job.scanned += page.ids as u64;
                job.total = job.total.max(job.scanned);
                job.checkpoint = Some(page.checkpoint);
                job.run_seconds = now - started;
                self.progress(job, matches)
            },
        )
    }

    /// Queries over every stored sample's searchable view, first-seen in the job's range.
    fn run_queries(
        &self,
        job: &mut RetrohuntJob,
        queries: &[NamedQuery],
        stop: &AtomicBool,
    ) -> Result<ScanEnd> {
        let started = unix_now();
        let mut cursor = job.checkpoint.clone();
        let mut previous: Option<String> = cursor.as_deref().map(|c| sample_of(c).to_string());
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(ScanEnd::Stopped);
            }
            let ids = self
                .store
                .logs()
                .detonation_ids(cursor.as_deref(), JOB_PAGE)
                .map_err(HuntingError::Store)?;
            let Some(last) = ids.last().cloned() else {
                return Ok(ScanEnd::Finished);
            };
            let now = unix_now();
            let mut matches = Vec::new();
            for id in &ids {
                let sha = sample_of(id);
                if previous.as_deref() == Some(sha) {
                    continue; // the sample's other reports: one view per sample
                }
                previous = Some(sha.to_string());
                let Some(doc) = self
                    .store
                    .records()
                    .sample_doc(sha)
                    .map_err(HuntingError::Store)?
                else {
                    continue;
                };
                if !job.time_range.is_all() && !job.time_range.contains(doc.first_seen.unwrap_or(0))
                {
                    continue;
                }
                for q in queries.iter().filter(|q| q.query.matches(&doc, now)) {
                    matches.push((
                        job.num_matches,
                        RetrohuntMatch {
                            sha256: sha.to_string(),
                            report_id: id.clone(),
                            rule_name: q.name.clone(),
                            rule_tags: Vec::new(),
                            hits: 1,
                            snippet: q.query.snippets(&doc, 5).join(" | "),
                            date: now,
                        },
                    ));
                    job.num_matches += 1;
                }
            }
            job.scanned += ids.len() as u64;
            job.total = job.total.max(job.scanned);
            job.checkpoint = Some(last.clone());
            job.run_seconds = now - started;
            if !self.progress(job, matches)? {
                return Ok(ScanEnd::Stopped);
            }
            cursor = Some(last);
        }
    }
}

/// One match per rule that hit the log: its hit count and the first hit's matched fields.
pub(crate) fn log_matches(engine: &SigmaEngine, log: &ScannedLog, now: i64) -> Vec<RetrohuntMatch> {
    let mut per_rule: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    for hit in &log.outcome.hits {
        let entry = per_rule.entry(hit.rule).or_insert_with(|| {
            let snippet = hit
                .matched
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            (0, snippet)
        });
        entry.0 += 1;
    }
    per_rule
        .into_iter()
        .filter_map(|(rule, (hits, snippet))| {
            let info = engine.rule(rule)?;
            Some(RetrohuntMatch {
                sha256: sample_of(&log.report_id).to_string(),
                report_id: log.report_id.clone(),
                rule_name: info.title.clone(),
                rule_tags: info.tags.clone(),
                hits,
                snippet,
                date: now,
            })
        })
        .collect()
}

fn not_found(id: u64) -> HuntingError {
    HuntingError::NotFound {
        kind: "Retrohunt job",
        id: format!("sandscope-{id}"),
    }
}
