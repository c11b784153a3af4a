use super::sigma_args::SigmaArgs;
use super::store_choice::ReportStore;
use super::watch::WatchArgs;
use anyhow::{Result, bail};
use clap::Args;
use sandscope_hunting::{Finding, Livehunt, RecordStore};
use sandscope_ingest::{Detonation, IgnoredWhy, IngestLimits, IngestOptions, Pipeline};
use sandscope_model::is_sha256;
use sandscope_store::NewReport;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct IngestArgs {
    /// Log files, sandbox reports or directories (walked recursively; hidden entries skipped).
    #[arg(
        required_unless_present = "watch",
        conflicts_with_all = ["watch", "watch_settle", "watch_interval"]
    )]
    pub paths: Vec<PathBuf>,
    /// The sample's SHA-256. With it, all PATHs are one detonation of that sample; without
    /// it, each CAPE/Cuckoo run folder is one (its Sysmon logs filed under the report's
    /// target) and every other file is one on its own, of the sample the builder finds (or,
    /// when the log names no sample hash, of a SHA-256 derived from the log).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Which process is the sample: an image name or path fragment.
    #[arg(long)]
    pub sample: Option<String>,
    /// Sandbox name for the reports (default: "Microsoft Sysinternals").
    #[arg(long)]
    pub sandbox: Option<String>,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
    /// Publish the detonations as jobs on this NATS server (nats://HOST:PORT) for `sandscope
    /// worker`s to build, and print the job ids, instead of building here.
    #[arg(long, env = "SANDSCOPE_NATS", conflicts_with = "watch")]
    pub nats: Option<String>,
    #[command(flatten)]
    pub sigma: SigmaArgs,
    /// Reports per transaction: each batch lands whole or not at all.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Memory for one detonation's distinct events, in MiB; a log needing more is skipped
    /// with an error (repeats of one event cost nothing).
    #[arg(long, default_value_t = sandscope_ingest::DEFAULT_MEMORY_BUDGET >> 20)]
    pub max_memory_mib: u64,
    #[command(flatten)]
    pub watch: WatchArgs,
}

impl IngestArgs {
    /// `sandscope ingest PATH…` with every option at its default.
    pub fn of_paths(paths: Vec<PathBuf>) -> IngestArgs {
        IngestArgs {
            paths,
            sha256: None,
            sample: None,
            sandbox: None,
            data: None,
            store: None,
            nats: None,
            sigma: SigmaArgs::default(),
            batch: 16,
            max_memory_mib: sandscope_ingest::DEFAULT_MEMORY_BUDGET >> 20,
            watch: WatchArgs::default(),
        }
    }
}

pub fn data_dir(data: Option<PathBuf>) -> PathBuf {
    data.unwrap_or_else(sandscope_store::default_data_dir)
}

/// The reports of one detonation, with what was passed over or set aside said on stderr.
/// Returns the reports and how many of its files could not be read.
fn build(
    pipeline: &Pipeline,
    detonation: &Detonation,
    args: &IngestArgs,
    notes: bool,
    err: &mut dyn Write,
) -> Result<(Vec<NewReport>, Vec<Finding>, usize)> {
    let options = IngestOptions {
        sha256: args.sha256.clone(),
        sample: args.sample.clone(),
        sandbox: args.sandbox.clone(),
    };
    let prepared = pipeline.prepare_detonation(detonation, &options)?;
    for w in &prepared.warnings {
        writeln!(err, "warning: {w}")?;
    }
    let name = detonation.name();
    for note in prepared.notes.iter().filter(|_| notes) {
        writeln!(err, "note: {name}: {note}")?;
    }
    let mut by_reason: BTreeMap<IgnoredWhy, Vec<String>> = BTreeMap::new();
    for ignored in &prepared.ignored {
        by_reason
            .entry(ignored.why)
            .or_default()
            .push(detonation.shown(&ignored.file));
    }
    for (why, files) in by_reason.iter().filter(|_| notes) {
        writeln!(err, "info: {name}: {why}: {}", files.join(", "))?;
    }
    for unreadable in &prepared.unreadable {
        writeln!(
            err,
            "skipped {}: {}",
            unreadable.file.display(),
            unreadable.reason
        )?;
    }
    Ok((
        prepared.reports,
        prepared.livehunt,
        prepared.unreadable.len(),
    ))
}

pub fn run(args: IngestArgs) -> Result<ExitCode> {
    if let Some(nats) = &args.nats {
        return super::publish::run(&args, nats);
    }
    if let Some(url) = &args.store {
        if args.watch.watch.is_some() {
            bail!("--watch works on a data directory only (not yet with --store)");
        }
        let store = super::store_choice::open_postgres(url)?;
        return run_on(&args, store);
    }
    let data = data_dir(args.data.clone());
    if let Some(dir) = &args.watch.watch {
        return watch(dir, &args, &data);
    }
    // A server holding the directory ingests for us, with its own Sigma engine.
    if args.sigma.is_set() {
        if let Some(owner) = super::control::owner(&data).filter(|o| o.command == "serve") {
            bail!(
                "the data directory {} is held by `sandscope serve` (pid {}), which ingests \
                 with the Sigma rules it was started with: drop --rules/--no-default-rules/\
                 --no-sigma to ingest through it, or stop it",
                data.display(),
                owner.pid
            );
        }
    } else if let Some(code) = super::control::forward(&data)? {
        return Ok(code);
    }
    let (store, _owner) = super::control::open_store(&data, "ingest")?;
    run_on(&args, store)
}

/// Build and store `args.paths` in `store`, with progress on the terminal. Livehunt runs on
/// both stores (each keeps hunting records), and holds the store for its webhooks' outcomes.
fn run_on<S: ReportStore + RecordStore + 'static>(args: &IngestArgs, store: S) -> Result<ExitCode> {
    let store = Arc::new(store);
    let pipeline = pipeline(args)?.with_livehunt(Arc::new(Livehunt::load(store.clone())?));
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let shown = Shown {
        progress: true,
        notes: true,
    };
    execute(
        args,
        store.as_ref(),
        &pipeline,
        &mut stdout.lock(),
        &mut stderr.lock(),
        shown,
    )
}

/// The pipeline `args` ask for: their Sigma rules and memory budget.
fn pipeline(args: &IngestArgs) -> Result<Pipeline> {
    let limits = IngestLimits {
        memory_budget: args.max_memory_mib.saturating_mul(1024 * 1024),
        ..IngestLimits::default()
    };
    Ok(Pipeline::new(args.sigma.engine()?).with_limits(limits))
}

/// `sandscope ingest --watch DIR`: the watcher on this process's own store, until Ctrl-C.
fn watch(dir: &Path, args: &IngestArgs, data: &Path) -> Result<ExitCode> {
    // The server that holds the directory would have to watch for as long as it runs.
    if let Some(owner) = super::control::owner(data).filter(|o| o.command == "serve") {
        bail!(
            "the data directory {} is held by `sandscope serve` (pid {}): a server watches a \
             folder itself, so start it with `sandscope serve --watch {}` instead",
            data.display(),
            owner.pid,
            dir.display()
        );
    }
    super::watch::check_folder(dir)?;
    let stop = super::watch::stop_on_signals()?;
    let (store, _owner) = super::control::open_store(data, "ingest")?;
    let store = Arc::new(store);
    let pipeline = pipeline(args)?.with_livehunt(Arc::new(Livehunt::load(store.clone())?));
    let sink = super::watch::Sink {
        store: store.as_ref(),
        pipeline: &pipeline,
        out: &mut std::io::stdout(),
        err: &mut std::io::stderr(),
    };
    super::watch::run(dir, &args.watch, data, sink, &stop)
}

/// Split off the detonations that are one file found by walking a folder whose content is no
/// log or report format at all (a licence, a README, a script): they are passed over in one
/// line, not failed inputs. A file the caller named itself still fails if it is not a log.
pub(crate) fn set_aside_non_logs(
    detonations: Vec<Detonation>,
    named: &[PathBuf],
) -> (Vec<Detonation>, Vec<PathBuf>) {
    let mut kept = Vec::with_capacity(detonations.len());
    let mut not_logs = Vec::new();
    for detonation in detonations {
        match (
            detonation.files.as_slice(),
            detonation.run_folders.is_empty(),
        ) {
            ([file], true)
                if !named.contains(file)
                    && matches!(
                        sandscope_read::detect_file(file),
                        Ok(sandscope_read::Format::Unknown)
                    ) =>
            {
                not_logs.push(file.clone());
            }
            _ => kept.push(detonation),
        }
    }
    (kept, not_logs)
}

/// What an ingest shows besides its `stored` lines, warnings and skips.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// A progress bar (only when standard error is a terminal).
    pub progress: bool,
    /// Each detonation's notes (which sample was chosen, and why) and passed-over files.
    pub notes: bool,
}

/// Plan, build and store the detonations of `args.paths` in `store`: one `stored` line per
/// report on `out`; warnings, skips and (as `shown` says) notes on `err`. Exit code 0, 3 (some
/// input skipped) or 1 (nothing stored).
pub fn execute(
    args: &IngestArgs,
    store: &dyn ReportStore,
    pipeline: &Pipeline,
    out: &mut dyn Write,
    err: &mut dyn Write,
    shown: Shown,
) -> Result<ExitCode> {
    if let Some(s) = &args.sha256
        && !is_sha256(&s.trim().to_ascii_lowercase())
    {
        bail!("--sha256 `{s}` is not a SHA-256");
    }
    let detonations = sandscope_ingest::plan(&args.paths, args.sha256.is_some())?;
    let (detonations, not_logs) = set_aside_non_logs(detonations, &args.paths);
    let bar = if shown.progress {
        indicatif::ProgressBar::new(detonations.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut skipped = 0usize;
    // Report id → the input it came from, over the whole call: the store replaces by id, so a
    // second report of one id would silently take the first one's place.
    let mut stored: HashMap<String, String> = HashMap::new();
    let mut batch: Vec<(NewReport, String)> = Vec::new();
    // Livehunt's Sigma findings over the batch's reports, recorded once they are stored.
    let mut findings: Vec<Finding> = Vec::new();
    let batch_size = args.batch.max(1);
    let mut notified = 0usize;
    let mut flush = |batch: &mut Vec<(NewReport, String)>,
                     findings: &mut Vec<Finding>,
                     out: &mut dyn Write,
                     stored: &mut HashMap<String, String>|
     -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let taken: Vec<(NewReport, String)> = std::mem::take(batch);
        let names: Vec<String> = taken.iter().map(|(_, n)| n.clone()).collect();
        let (ids, recorded) = store.put_and_notify(
            pipeline,
            taken.into_iter().map(|(r, _)| r).collect(),
            std::mem::take(findings),
        )?;
        notified += recorded;
        for (id, name) in ids.iter().zip(names) {
            writeln!(out, "stored\t{id}\t{name}")?;
            stored.insert(id.clone(), name);
        }
        out.flush()?;
        Ok(())
    };
    for detonation in &detonations {
        let name = detonation.name();
        bar.set_message(name.clone());
        let mut messages = Vec::new();
        let built = build(pipeline, detonation, args, shown.notes, &mut messages);
        bar.suspend(|| err.write_all(&messages))?;
        match built {
            Ok((reports, found, unreadable)) => {
                skipped += unreadable;
                findings.extend(found);
                for report in reports {
                    let id = report.behaviour.id.clone();
                    let earlier = batch
                        .iter()
                        .position(|(r, _)| r.behaviour.id == id)
                        .map(|at| batch.remove(at).1)
                        .or_else(|| stored.get(&id).cloned());
                    if let Some(earlier) = earlier {
                        bar.suspend(|| {
                            writeln!(
                                err,
                                "warning: report {id} of {name} replaces the one of {earlier} (same sample and sandbox)"
                            )
                        })?;
                    }
                    batch.push((report, name.clone()));
                }
            }
            Err(e) => {
                // Most errors already start with the file they concern: name it once.
                let message = crate::error_chain(&e);
                let message = match message.strip_prefix(&format!("{name}: ")) {
                    Some(_) => message,
                    None => format!("{name}: {message}"),
                };
                bar.suspend(|| writeln!(err, "skipped {message}"))?;
                skipped += 1;
            }
        }
        if batch.len() >= batch_size {
            flush(&mut batch, &mut findings, out, &mut stored)?;
        }
        bar.inc(1);
    }
    flush(&mut batch, &mut findings, out, &mut stored)?;
    bar.finish_and_clear();
    let stored = stored.len();
    if !not_logs.is_empty() {
        const SHOWN: usize = 5;
        let names: Vec<String> = not_logs
            .iter()
            .take(SHOWN)
            .map(|f| f.display().to_string())
            .collect();
        let more = match not_logs.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        writeln!(
            err,
            "info: passed over {} file(s) of the folders given that are neither logs nor sandbox reports: {}{more}",
            not_logs.len(),
            names.join(", ")
        )?;
    }
    writeln!(err, "{stored} report(s) stored, {skipped} file(s) skipped")?;
    if notified > 0 {
        writeln!(err, "livehunt: {notified} notification(s)")?;
    }
    Ok(if stored == 0 && skipped > 0 {
        ExitCode::from(1)
    } else if skipped > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
