//! `sandscope bench sigma`: the Sigma speed figures of the issue, printed, not asserted.
//!
//! Start-up (unpack, parse and compile every bundled rule), then end to end from EVTX (the
//! corpus EVTX files repeated until the input reaches `--min-mb`), then the engine alone over
//! the same events already in memory. Peak memory is the process's high-water mark.

use crate::commands::hunt::hunt_files;
use anyhow::{Result, bail};
use sandscope_sigma::SigmaEngine;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn print_peak(label: &str) {
    match peak_rss_mb() {
        Some(mb) => println!("{label}: peak RSS {mb:.0} MB"),
        None => println!("{label}: peak RSS unavailable"),
    }
}

fn evtx_files(corpus: &Path) -> Result<Vec<PathBuf>> {
    let files = sandscope_read::bench::corpus_evtx(corpus)
        .map_err(|e| anyhow::anyhow!("{}: {e}", corpus.display()))?;
    if files.is_empty() {
        bail!("no EVTX files under {}", corpus.display());
    }
    Ok(files)
}

pub fn run(corpus: PathBuf, min_mb: u64) -> Result<ExitCode> {
    println!("threads: {}", rayon::current_num_threads());

    let start = Instant::now();
    let (engine, report) = SigmaEngine::bundled()?;
    let startup = start.elapsed();
    println!(
        "start-up (unpack + parse + compile bundled rules): {:.3} s, {} rules loaded ({} rejected, {} not applicable)",
        startup.as_secs_f64(),
        engine.rule_count(),
        report.rejected(),
        report.not_applicable()
    );
    print_peak("after start-up");

    let distinct = evtx_files(&corpus)?;
    let distinct_bytes: u64 = distinct
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let min_bytes = min_mb * 1024 * 1024;
    let repeats = min_bytes.div_ceil(distinct_bytes.max(1)).max(1);
    let mut input = Vec::new();
    for _ in 0..repeats {
        input.extend(distinct.iter().cloned());
    }
    let input_mb = (distinct_bytes * repeats) as f64 / (1024.0 * 1024.0);
    println!(
        "input: {} EVTX files x {repeats} = {} files, {input_mb:.1} MB",
        distinct.len(),
        input.len()
    );

    let keep_all = |_: &sandscope_sigma::RuleInfo| true;
    let start = Instant::now();
    let outcome = hunt_files(&engine, &input, &keep_all, false);
    let wall = start.elapsed().as_secs_f64();
    println!(
        "end to end from EVTX: {} records, {} hits, {wall:.2} s wall, {:.0} records/s ({:.1} MB/s)",
        outcome.records,
        outcome.hits.len(),
        outcome.records as f64 / wall,
        input_mb / wall
    );
    print_peak("after end to end");

    // Engine alone: the distinct files' events read once, then evaluated as many times as the
    // end-to-end run read them.
    let mut events = Vec::new();
    for file in &distinct {
        if let Ok(read) = sandscope_read::read_all(file) {
            events.extend(read.events);
        }
    }
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..repeats {
        hits += engine.evaluate_all(&events).len();
    }
    let wall = start.elapsed().as_secs_f64();
    let records = events.len() as u64 * repeats;
    println!(
        "engine only (events in memory): {records} records, {hits} hits, {wall:.2} s, {:.0} records/s",
        records as f64 / wall
    );
    print_peak("after engine only");
    Ok(ExitCode::SUCCESS)
}
