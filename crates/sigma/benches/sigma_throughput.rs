//! Sigma speed figures (printed, not asserted): start-up (unpack, parse, compile the bundled
//! SigmaHQ rules), end to end from EVTX over the corpus EVTX files repeated to at least 300 MB,
//! and the engine alone over the same events held in memory; peak memory after each phase.
//!
//! `cargo bench -p sandscope-sigma --bench sigma_throughput` (needs `../shared/corpus`; set
//! `SANDSCOPE_BENCH_CORPUS` for another folder and `SANDSCOPE_BENCH_MB` for another size).
//! `sandscope bench sigma` prints the same figures from the installed binary.

use sandscope_event::SysmonEvent;
use sandscope_read::{EventSink, ReadWarning, read_path};
use sandscope_sigma::SigmaEngine;
use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Streams a file's events through the engine in batches; counts records and hits.
struct CountingSink<'a> {
    engine: &'a SigmaEngine,
    batch: Vec<SysmonEvent>,
    records: usize,
    hits: usize,
}

impl CountingSink<'_> {
    fn flush(&mut self) {
        self.hits += self.engine.evaluate_all(&self.batch).len();
        self.records += self.batch.len();
        self.batch.clear();
    }
}

impl EventSink for CountingSink<'_> {
    fn event(&mut self, event: SysmonEvent) {
        self.batch.push(event);
        if self.batch.len() >= 4096 {
            self.flush();
        }
    }
    fn warning(&mut self, _: ReadWarning) {}
}

fn main() {
    let corpus = std::env::var_os("SANDSCOPE_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        });
    let min_mb: u64 = std::env::var("SANDSCOPE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    println!("threads: {}", rayon::current_num_threads());

    let start = Instant::now();
    let (engine, report) = SigmaEngine::bundled().expect("bundled rules");
    println!(
        "start-up (unpack + parse + compile): {:.3} s, {} rules loaded, {} rejected, {} not applicable; peak RSS {:.0} MB",
        start.elapsed().as_secs_f64(),
        engine.rule_count(),
        report.rejected(),
        report.not_applicable(),
        peak_rss_mb()
    );

    let files = sandscope_read::bench::corpus_evtx(&corpus).unwrap_or_default();
    if files.is_empty() {
        println!(
            "no EVTX files under {}: throughput not measured",
            corpus.display()
        );
        return;
    }
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let repeats = (min_mb * 1024 * 1024).div_ceil(bytes).max(1);
    let input: Vec<&PathBuf> = (0..repeats).flat_map(|_| files.iter()).collect();
    let input_mb = (bytes * repeats) as f64 / 1048576.0;
    println!(
        "input: {} EVTX files x {repeats} = {} files, {input_mb:.1} MB",
        files.len(),
        input.len()
    );

    // Readers are plain threads (the EVTX reader blocks on its own rayon work, which must not
    // happen inside a rayon worker); each batch is evaluated on the rayon pool.
    let start = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (records, hits) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..rayon::current_num_threads())
            .map(|_| {
                scope.spawn(|| {
                    let mut sink = CountingSink {
                        engine: &engine,
                        batch: Vec::new(),
                        records: 0,
                        hits: 0,
                    };
                    while let Some(file) =
                        input.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let _ = read_path(file, &mut sink);
                        sink.flush();
                    }
                    (sink.records, sink.hits)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let wall = start.elapsed().as_secs_f64();
    println!(
        "end to end from EVTX: {records} records, {hits} hits, {wall:.2} s wall, {:.0} records/s, {:.1} MB/s; peak RSS {:.0} MB",
        records as f64 / wall,
        input_mb / wall,
        peak_rss_mb()
    );

    let mut events = Vec::new();
    for file in &files {
        if let Ok(read) = sandscope_read::read_all(file) {
            events.extend(read.events);
        }
    }
    let start = Instant::now();
    let mut hits = 0;
    for _ in 0..repeats {
        hits += engine.evaluate_all(&events).len();
    }
    let wall = start.elapsed().as_secs_f64();
    let records = events.len() as u64 * repeats;
    println!(
        "engine only (events in memory): {records} records, {hits} hits, {wall:.2} s, {:.0} records/s; peak RSS {:.0} MB",
        records as f64 / wall,
        peak_rss_mb()
    );
}
