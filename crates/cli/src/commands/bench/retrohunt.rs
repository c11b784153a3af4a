//! `sandscope bench retrohunt`: the bundled SigmaHQ rules over every stored detonation's raw
//! log, events/s end to end from the store, printed, never asserted.
//!
//! A scratch store is filled with the corpus EVTX files repeated under new sample ids
//! (`--copies` detonations of each file, reports built without Sigma to save time), then
//! `retrohunt` runs over all of them, on the store opened read-only as the `retrohunt` command
//! opens it. With `--data` the filled store is kept (the retrohunt equivalence and restart
//! tests build their store of thousands of detonations this way).

use super::copies::sample_id;
use super::cpu::cpu_seconds;
use crate::commands::retrohunt::hunt_store;
use anyhow::{Result, bail};
use clap::Args;
use sandscope_hunting::TimeRange;
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_sigma::SigmaEngine;
use sandscope_store::{NewReport, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct RetrohuntBenchArgs {
    /// Folder of EVTX files (walked recursively; a `broken/` folder is skipped).
    #[arg(long, default_value = "../shared/corpus")]
    pub corpus: PathBuf,
    /// Detonations stored per file (each under its own sample id).
    #[arg(long, default_value_t = 10)]
    pub copies: usize,
    /// Fill (and keep) this data directory instead of a scratch one (it must be new or empty).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Reports stored per transaction while filling the store.
const BATCH: usize = 200;

pub fn run(args: RetrohuntBenchArgs) -> Result<ExitCode> {
    let files = sandscope_read::bench::corpus_evtx(&args.corpus)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.corpus.display()))?;
    if files.is_empty() {
        bail!("no EVTX files under {}", args.corpus.display());
    }
    let scratch = tempfile::tempdir()?;
    let dir = args.data.as_deref().unwrap_or(scratch.path());
    let store = Store::open(dir)?;
    if store.stats()?.reports > 0 {
        bail!(
            "{} already holds reports; give a new data directory",
            dir.display()
        );
    }
    let pipeline = Pipeline::new(None);
    let start = Instant::now();
    let mut batch: Vec<NewReport> = Vec::new();
    let mut stored = 0usize;
    for copy in 0..args.copies.max(1) {
        for file in &files {
            let options = IngestOptions {
                sha256: Some(sample_id(copy, file)),
                ..IngestOptions::default()
            };
            // A corpus file with no Sysmon report in it is passed over, as `ingest` does.
            let Ok(prepared) = pipeline.prepare(std::slice::from_ref(file), &options) else {
                continue;
            };
            batch.extend(prepared.reports);
            if batch.len() >= BATCH {
                stored += store.put_reports(std::mem::take(&mut batch))?.len();
            }
        }
    }
    stored += store.put_reports(batch)?.len();
    println!(
        "store: {stored} detonations ({} EVTX files x {}) stored in {:.1} s",
        files.len(),
        args.copies.max(1),
        start.elapsed().as_secs_f64()
    );
    // Timed as `sandscope retrohunt` runs: over the data directory opened read-only.
    drop(store);
    let store = Store::open_read_only(dir)?;
    let (engine, _) = SigmaEngine::bundled()?;
    let cpu = cpu_seconds();
    let start = Instant::now();
    let (outcome, logs) = hunt_store(&store, &engine, TimeRange::default(), &|_| {})?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "retrohunt (bundled rules, {} loaded): {} records in {logs} stored logs, {} hits, {wall:.2} s, {:.0} events/s (threads: {}); CPU {cpu:.2} s, {:.0} events per CPU second",
        engine.rule_count(),
        outcome.records,
        outcome.hits.len(),
        outcome.records as f64 / wall,
        rayon::current_num_threads(),
        outcome.records as f64 / cpu.max(0.01)
    );
    Ok(ExitCode::SUCCESS)
}
