//! `sandscope worker --store URL --nats URL`: pull detonation jobs from the NATS queue, build
//! their reports through the one ingest path (`commands::ingest::execute`, with one resident
//! Sigma engine for the worker's life), write them to the PostgreSQL store and acknowledge
//! each job only after the store committed it.
//!
//! At least once: a job whose worker dies is redelivered to another after the queue's ack
//! wait, and writes replace by report id, so a second build changes nothing. A job that
//! fails (error, panic, `--job-timeout`) is handed back; at its third failed delivery (or
//! its fourth, when each worker died before saying why) it is parked with the reason and
//! never delivered again. A job whose inputs yield nothing readable fails at once (no retry
//! reads the same bytes differently). SIGINT/SIGTERM: the job in hand is finished, then the
//! worker stops.
//!
//! Between detonations the worker takes ranges of Retrohunt jobs split across workers
//! (`worker_retrohunt`), scanned from the PostgreSQL store's raw logs.

use super::ingest::{IngestArgs, Shown};
use super::sigma_args::SigmaArgs;
use super::store_choice::ReportStore;
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_hunting::Livehunt;
use sandscope_hunting::RecordStore;
use sandscope_ingest::{IngestLimits, Pipeline};
use sandscope_model::FileBehaviour;
use sandscope_queue::{ACK_WAIT, Delivery, Job, JobState, JobStatus, MAX_DELIVERIES, Queue};
use sandscope_store::{Graph, Indicator, NewReport, SearchPage, SearchRequest};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args)]
pub struct WorkerArgs {
    /// The PostgreSQL store the reports go to (postgres://…).
    #[arg(long, env = "SANDSCOPE_STORE")]
    pub store: String,
    /// The NATS server of the queue (nats://HOST:PORT).
    #[arg(long, env = "SANDSCOPE_NATS")]
    pub nats: String,
    #[command(flatten)]
    pub sigma: SigmaArgs,
    /// Seconds one job may take before the attempt counts as failed.
    #[arg(long, default_value_t = 3600.0)]
    pub job_timeout: f64,
    /// Memory for one detonation's distinct events, in MiB (as `ingest --max-memory-mib`).
    #[arg(long, default_value_t = sandscope_ingest::DEFAULT_MEMORY_BUDGET >> 20)]
    pub max_memory_mib: u64,
    /// This worker's name in job status (default: host name and process id).
    #[arg(long)]
    pub name: Option<String>,
}

/// How one attempt at a job ended.
enum Attempt {
    /// Stored: the report ids.
    Done(Vec<String>),
    /// Nothing readable in the inputs: not retried.
    Failed(String),
    /// An error, a panic or a timeout: retried, parked at the last delivery.
    Error(String),
}

pub fn run(args: WorkerArgs) -> Result<ExitCode> {
    if !(args.job_timeout > 0.0 && args.job_timeout.is_finite()) {
        bail!("--job-timeout must be a positive number of seconds");
    }
    let timeout = Duration::from_secs_f64(args.job_timeout);
    let stop = super::watch::stop_on_signals()?;
    let (runtime, queue) = super::jobs::connect(&args.nats)?;
    let consumer = runtime.block_on(queue.consumer())?;
    let ranges = runtime.block_on(queue.range_consumer())?;
    let store = Arc::new(super::store_choice::open_postgres(&args.store)?);
    let limits = IngestLimits {
        memory_budget: args.max_memory_mib.saturating_mul(1024 * 1024),
        ..IngestLimits::default()
    };
    // The worker's one resident Sigma engine, shared by every job, and the store's Livehunt
    // rulesets, so a report built here notifies as one ingested anywhere else does.
    let pipeline = Pipeline::new(args.sigma.engine()?)
        .with_limits(limits)
        .with_livehunt(Arc::new(Livehunt::load(store.clone())?));
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", host_name(), std::process::id()));
    eprintln!(
        "worker {name}: taking jobs from NATS {} into {}",
        args.nats,
        store.place()
    );
    while !stop.load(Ordering::SeqCst) {
        // Detonations and Retrohunt ranges in turn, so neither waits for the other to run dry.
        match runtime.block_on(queue.next_range(&ranges, Duration::from_millis(500))) {
            Ok(Some(range)) => {
                let line = runtime.block_on(super::worker_retrohunt::handle_range(
                    &queue, range, &store, &stop,
                ));
                println!("{line}");
                let _ = std::io::stdout().flush();
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("worker {name}: {e}; trying again in 2 s");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        }
        let delivery = match runtime.block_on(queue.next(&consumer, Duration::from_millis(500))) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("worker {name}: {e}; trying again in 2 s");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        // Rulesets may have changed through a server or another process since the last job.
        if let Some(live) = pipeline.livehunt()
            && let Err(e) = live.reload(&*store)
        {
            eprintln!("worker {name}: Livehunt rulesets cannot be reloaded: {e}");
        }
        let line = runtime.block_on(handle(&queue, delivery, &store, &pipeline, &name, timeout));
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
    eprintln!("worker {name}: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Take one delivery to its end (done, failed, parked, or handed back); returns the line to
/// print.
async fn handle(
    queue: &Queue,
    delivery: Delivery,
    store: &Arc<sandscope_pgstore::PgStore>,
    pipeline: &Pipeline,
    worker: &str,
    timeout: Duration,
) -> String {
    let job = match &delivery.job {
        Ok(job) => job.clone(),
        Err(why) => {
            // No id to record a status under: drop it from the queue, say so here.
            delivery.terminate().await;
            return format!("dropped\t-\t{why}");
        }
    };
    let prior = queue.status(&job.id).await.ok().flatten();
    let mut status = prior
        .clone()
        .unwrap_or_else(|| JobStatus::new(&job.id, JobState::Queued));
    // A job found `running` at an earlier delivery: that worker died without a word.
    if let Some(p) = &prior
        && p.state == JobState::Running
        && p.deliveries < delivery.delivered
    {
        status.reason = Some(format!(
            "worker {} stopped during delivery {} (killed or lost its connection)",
            p.worker.as_deref().unwrap_or("?"),
            p.deliveries
        ));
    }
    if delivery.delivered > MAX_DELIVERIES {
        return park(queue, &delivery, &job, status).await;
    }
    status.state = JobState::Running;
    status.deliveries = delivery.delivered;
    status.worker = Some(worker.to_owned());
    if let Err(e) = queue.set_status(&status).await {
        delivery.retry(Duration::from_secs(1)).await;
        return format!("retry\t{}\t{e}", job.id);
    }
    let attempt = attempt(queue, &delivery, &job, store, pipeline, timeout).await;
    match attempt {
        Attempt::Done(ids) => {
            status.state = JobState::Done;
            status.reports = ids;
            status.reason = None;
            // Acknowledged only now that the store has committed; a failure here means a
            // redelivery, which rebuilds the same ids.
            if let Err(e) = queue.set_status(&status).await {
                return format!("unacked\t{}\t{e}", job.id);
            }
            if let Err(e) = delivery.ack().await {
                return format!("unacked\t{}\t{e}", job.id);
            }
            queue.drop_files(&job).await;
            format!("done\t{}\t{}", job.id, status.reports.join(","))
        }
        Attempt::Failed(reason) => {
            status.state = JobState::Failed;
            status.reason = Some(reason.clone());
            let _ = queue.set_status(&status).await;
            delivery.terminate().await;
            queue.drop_files(&job).await;
            format!("failed\t{}\t{}", job.id, one_line(&reason))
        }
        Attempt::Error(reason) => {
            status.reason = Some(format!("delivery {}: {reason}", delivery.delivered));
            if delivery.delivered >= MAX_DELIVERIES {
                return park(queue, &delivery, &job, status).await;
            }
            status.state = JobState::Queued;
            let _ = queue.set_status(&status).await;
            delivery.retry(Duration::from_secs(1)).await;
            format!("retry\t{}\t{}", job.id, one_line(&reason))
        }
    }
}

async fn park(queue: &Queue, delivery: &Delivery, job: &Job, mut status: JobStatus) -> String {
    status.state = JobState::Parked;
    // A job parked at its fourth delivery (each earlier worker died) had three attempts.
    status.deliveries = delivery.delivered.min(MAX_DELIVERIES);
    let reason = status
        .reason
        .clone()
        .unwrap_or_else(|| format!("delivered {MAX_DELIVERIES} times without success"));
    status.reason = Some(reason.clone());
    let _ = queue.set_status(&status).await;
    delivery.terminate().await;
    queue.drop_files(job).await;
    format!("parked\t{}\t{}", job.id, one_line(&reason))
}

/// Fetch the job's files and build and store its reports on a blocking thread, signalling
/// progress to JetStream meanwhile, within `timeout`.
async fn attempt(
    queue: &Queue,
    delivery: &Delivery,
    job: &Job,
    store: &Arc<sandscope_pgstore::PgStore>,
    pipeline: &Pipeline,
    timeout: Duration,
) -> Attempt {
    let dir = match tempfile::Builder::new().prefix("sandscope-job-").tempdir() {
        Ok(dir) => dir,
        Err(e) => return Attempt::Error(format!("temporary folder: {e}")),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let paths = tokio::select! {
        fetched = queue.fetch_files(job, dir.path()) => match fetched {
            Ok(paths) => paths,
            Err(e) => return Attempt::Error(e.to_string()),
        },
        _ = tokio::time::sleep_until(deadline) => {
            return Attempt::Error(format!("timed out after {} s fetching its files", timeout.as_secs_f64()));
        }
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let guarded = Guarded {
        inner: store.clone(),
        cancelled: cancelled.clone(),
    };
    let mut args = IngestArgs::of_paths(paths);
    args.sha256 = job.sha256.clone();
    args.sample = job.sample.clone();
    args.sandbox = job.sandbox.clone();
    let pipeline = pipeline.clone();
    let mut build = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let shown = Shown {
            progress: false,
            notes: false,
        };
        let code = super::ingest::execute(&args, &guarded, &pipeline, &mut out, &mut err, shown);
        (code, out, err)
    });
    let mut tick = tokio::time::interval(ACK_WAIT / 3);
    let outcome = loop {
        tokio::select! {
            joined = &mut build => break joined,
            _ = tokio::time::sleep_until(deadline) => {
                // The build thread cannot be stopped; it can no longer write.
                cancelled.store(true, Ordering::SeqCst);
                return Attempt::Error(format!("timed out after {} s (--job-timeout)", timeout.as_secs_f64()));
            }
            _ = tick.tick() => {
                let _ = delivery.progress().await;
            }
        }
    };
    // Keep the files until the build thread is done with them.
    drop(dir);
    match outcome {
        Err(join) => Attempt::Error(match join.try_into_panic() {
            Ok(panic) => format!("the build panicked: {}", panic_text(&*panic)),
            Err(e) => format!("the build did not finish: {e}"),
        }),
        Ok((Err(e), _, _)) => Attempt::Error(crate::error_chain(&e)),
        Ok((Ok(code), out, err)) => {
            let ids: Vec<String> = String::from_utf8_lossy(&out)
                .lines()
                .filter_map(|l| l.strip_prefix("stored\t"))
                .filter_map(|l| l.split('\t').next())
                .map(str::to_owned)
                .collect();
            if code == ExitCode::from(1) || ids.is_empty() {
                let said = String::from_utf8_lossy(&err);
                let reason: Vec<&str> = said
                    .lines()
                    .filter(|l| l.starts_with("skipped ") || l.starts_with("warning: "))
                    .collect();
                Attempt::Failed(if reason.is_empty() {
                    "no report in its inputs".to_owned()
                } else {
                    reason.join("; ")
                })
            } else {
                Attempt::Done(ids)
            }
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\t'], " ")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// The store as one attempt sees it: once the attempt has timed out, its build thread (which
/// cannot be stopped) may no longer write.
struct Guarded {
    inner: Arc<sandscope_pgstore::PgStore>,
    cancelled: Arc<AtomicBool>,
}

impl ReportStore for Guarded {
    fn search(&self, request: &SearchRequest) -> Result<SearchPage> {
        self.inner.as_ref().search(request).map_err(Into::into)
    }
    fn sample_reports(&self, sha256: &str) -> Result<Vec<FileBehaviour>> {
        ReportStore::sample_reports(self.inner.as_ref(), sha256)
    }
    fn put_reports(&self, batch: Vec<NewReport>) -> Result<Vec<String>> {
        if self.cancelled.load(Ordering::SeqCst) {
            bail!("the job timed out: its reports are not written");
        }
        ReportStore::put_reports(self.inner.as_ref(), batch).context("writing reports")
    }
    fn pivot(&self, sha256: &str) -> Result<Vec<Indicator>> {
        ReportStore::pivot(self.inner.as_ref(), sha256)
    }
    fn graph(&self, sha256: &str, depth: usize, max_nodes: usize) -> Result<Graph> {
        ReportStore::graph(self.inner.as_ref(), sha256, depth, max_nodes)
    }
    fn place(&self) -> String {
        ReportStore::place(self.inner.as_ref())
    }
    fn records(&self) -> Option<&dyn RecordStore> {
        ReportStore::records(self.inner.as_ref())
    }
}
