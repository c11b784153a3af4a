//! `ingest --watch DIR` and `serve --watch DIR`: ingest each run that lands in a folder (CAPE's
//! `storage/analyses/`, or any folder where logs and reports are dropped) once it is complete,
//! through `ingest`'s own code ([`super::ingest::execute`]), once.
//!
//! Scanning, not file-system events: a run is complete only once its files have stayed
//! unchanged for a settle interval, which needs a timer whatever wakes the watcher; events are
//! lost past inotify's limits and never come from network file systems (CAPE's storage is often
//! NFS); and a scan only lists names, sizes and times. A run folder is complete when its report
//! (a JSON file under `reports/`, which CAPE writes last) parses whole and nothing in the folder
//! changed for the settle interval; one whose report still fails to parse then is reported once
//! and remembered as failed until its files change. What was ingested is remembered in the
//! data directory ([`state`]), and the store replaces a report by id, so nothing is ingested
//! twice, across restarts too.

mod runs;
mod signals;
mod state;

use super::ingest::{IngestArgs, Shown};
use anyhow::{Context, Result, bail};
use clap::Args;
use runs::{Run, Snapshot};
use sandscope_ingest::Pipeline;
use sandscope_store::Store;
use state::{Outcome, Remembered, WatchState};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use signals::{interrupted, stop_on_signals};

const DEFAULT_SETTLE: Duration = Duration::from_secs(5);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// How often a sleeping watcher looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The watch options shared by `ingest` and `serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct WatchArgs {
    /// Watch this folder (CAPE's `storage/analyses/`, or any folder where logs and reports
    /// land) and ingest each run in it once it is complete, once; until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,
    /// Seconds a run must stay unchanged before it is taken as complete (default: 5).
    #[arg(long, value_name = "SECS", value_parser = super::search::seconds, requires = "watch")]
    pub watch_settle: Option<Duration>,
    /// Seconds between two scans of the watched folder (default: 2).
    #[arg(long, value_name = "SECS", value_parser = super::search::seconds, requires = "watch")]
    pub watch_interval: Option<Duration>,
}

/// Where the watcher stores and what it tells.
pub struct Sink<'a> {
    pub store: &'a Store,
    pub pipeline: &'a Pipeline,
    /// `stored` lines, as `ingest` prints them.
    pub out: &'a mut dyn Write,
    /// What was skipped and why.
    pub err: &'a mut dyn Write,
}

/// Watch `dir` until `stop` is set, storing through `sink` and remembering what was done in
/// the data directory `data`. Fails only when the folder or the state cannot be read or
/// written; a run that cannot be ingested is reported and the watcher goes on.
pub fn run(
    dir: &Path,
    args: &WatchArgs,
    data: &Path,
    sink: Sink<'_>,
    stop: &AtomicBool,
) -> Result<ExitCode> {
    check_folder(dir)?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("watching {}", dir.display()))?;
    let state = WatchState::load(data, &dir)?;
    writeln!(
        sink.err,
        "watch: watching {} ({} run(s) remembered in {}); Ctrl-C stops",
        dir.display(),
        state.len(),
        state.file().display()
    )?;
    let mut watcher = Watcher {
        dir,
        settle: args.watch_settle.unwrap_or(DEFAULT_SETTLE),
        state,
        seen: HashMap::new(),
        sink,
    };
    let interval = args.watch_interval.unwrap_or(DEFAULT_INTERVAL);
    while !stop.load(Ordering::SeqCst) {
        watcher.scan(stop)?;
        let wake = Instant::now() + interval;
        while !stop.load(Ordering::SeqCst) && Instant::now() < wake {
            std::thread::sleep(STOP_CHECK.min(interval));
        }
    }
    writeln!(watcher.sink.err, "watch: stopped")?;
    Ok(ExitCode::SUCCESS)
}

/// Fails unless `dir` is a folder that can be watched (checked before anything is opened).
pub fn check_folder(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("--watch {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("--watch {}: not a folder", dir.display());
    }
    Ok(())
}

struct Watcher<'a> {
    dir: PathBuf,
    settle: Duration,
    state: WatchState,
    /// Run name → its files at the last scan, and since when they have not changed.
    seen: HashMap<String, (String, Instant)>,
    sink: Sink<'a>,
}

impl Watcher<'_> {
    fn scan(&mut self, stop: &AtomicBool) -> Result<()> {
        let runs = runs::list(&self.dir)
            .with_context(|| format!("scanning the watched folder {}", self.dir.display()))?;
        let names: HashSet<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        self.seen.retain(|name, _| names.contains(name.as_str()));
        for run in &runs {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if self.unchanged_since_taken(run) {
                continue;
            }
            // A run that vanishes or changes while it is listed is looked at next scan.
            let Ok(snapshot) = Snapshot::take(run) else {
                continue;
            };
            if self.settled(run, &snapshot) {
                self.take(run, &snapshot)?;
            }
        }
        Ok(())
    }

    /// Whether `run` was taken already and its reports (a loose file: itself) are as they
    /// were then: checked without walking it, so a folder of many runs taken long ago costs a
    /// few `stat`s a scan.
    fn unchanged_since_taken(&self, run: &Run) -> bool {
        let Some(remembered) = self.state.get(&run.name) else {
            return false;
        };
        let files: Vec<PathBuf> = if run.is_folder {
            remembered
                .report_files
                .iter()
                .map(|f| run.path.join(f))
                .collect()
        } else {
            vec![run.path.clone()]
        };
        !files.is_empty()
            && Snapshot::of_files(files)
                .is_ok_and(|now| now.fingerprint(None) == remembered.fingerprint)
    }

    /// Whether `run`'s files have not changed for the settle interval.
    fn settled(&mut self, run: &Run, snapshot: &Snapshot) -> bool {
        let now = Instant::now();
        let fingerprint = snapshot.fingerprint(None);
        match self.seen.get(&run.name) {
            Some((seen, since)) if *seen == fingerprint => {
                now.duration_since(*since) >= self.settle
            }
            _ => {
                self.seen.insert(run.name.clone(), (fingerprint, now));
                false
            }
        }
    }

    /// Ingest a settled run unless it was taken as it is already.
    fn take(&mut self, run: &Run, snapshot: &Snapshot) -> Result<()> {
        let reports = if run.is_folder {
            snapshot.reports()
        } else {
            Vec::new()
        };
        // A run folder without its report is a run still going: CAPE writes the report last.
        if run.is_folder && reports.is_empty() {
            return Ok(());
        }
        let fingerprint = snapshot.fingerprint(run.is_folder.then_some(reports.as_slice()));
        if self
            .state
            .get(&run.name)
            .is_some_and(|r| r.fingerprint == fingerprint)
        {
            return Ok(());
        }
        let shown = run.path.display().to_string();
        let (outcome, reason, stored) = match reports.iter().find_map(|r| incomplete(r)) {
            Some(reason) => (Outcome::Failed, Some(reason), Vec::new()),
            None => match self.ingest(run)? {
                Ingested::Stored(stored) => (Outcome::Ingested, None, stored),
                Ingested::Failed(reason) => (Outcome::Failed, Some(reason), Vec::new()),
                Ingested::Retry => return Ok(()),
            },
        };
        let remembered = Remembered {
            fingerprint,
            outcome,
            reason,
            report_files: reports
                .iter()
                .filter_map(|r| r.strip_prefix(&run.path).ok())
                .map(Path::to_path_buf)
                .collect(),
            reports: stored,
        };
        if let Some(reason) = &remembered.reason {
            writeln!(
                self.sink.err,
                "watch: skipped {shown}: {reason} (taken again once its files change)"
            )?;
        }
        self.state.remember(&run.name, remembered)
    }

    /// Ingest `run` as `sandscope ingest RUN` does.
    fn ingest(&mut self, run: &Run) -> Result<Ingested> {
        let args = IngestArgs::of_paths(vec![run.path.clone()]);
        let shown = Shown {
            progress: false,
            notes: false,
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let result = super::ingest::execute(
            &args,
            self.sink.store,
            self.sink.pipeline,
            &mut out,
            &mut err,
            shown,
        );
        self.sink.out.write_all(&out)?;
        self.sink.out.flush()?;
        self.sink.err.write_all(&err)?;
        let code = match result {
            Ok(code) => code,
            Err(e) => {
                // The machine's fault (a full disk, say), not the run's: try again later.
                writeln!(
                    self.sink.err,
                    "watch: {}: {}; trying again",
                    run.path.display(),
                    crate::error_chain(&e)
                )?;
                self.seen.remove(&run.name);
                return Ok(Ingested::Retry);
            }
        };
        let stored: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|line| line.strip_prefix("stored\t"))
            .filter_map(|rest| rest.split('\t').next())
            .map(str::to_string)
            .collect();
        if code == ExitCode::from(1) || stored.is_empty() {
            let text = String::from_utf8_lossy(&err);
            let reason = text
                .lines()
                .filter_map(|line| line.strip_prefix("skipped "))
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Ingested::Failed(if reason.is_empty() {
                "no report could be made of it".to_string()
            } else {
                reason
            }));
        }
        Ok(Ingested::Stored(stored))
    }
}

enum Ingested {
    Stored(Vec<String>),
    Failed(String),
    Retry,
}

/// Why a settled report cannot be taken (it does not parse whole), or `None`.
fn incomplete(report: &Path) -> Option<String> {
    sandscope_cape::inspect(report)
        .err()
        .map(|e| format!("its report does not parse: {e}"))
}
