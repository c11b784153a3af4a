//! `cargo bench -p sandscope-report`: events per second of reading alone versus reading and
//! building the behaviour report, over every EVTX file of the shared corpus (except the
//! deliberately broken ones), or the vendored test logs when the corpus is absent. The target
//! is read + report ≥ 0.8 × read-only.

use sandscope_report::{ReportOptions, SampleSelector, build_report};
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn main() {
    let corpus = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    let vendored = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data"));
    let (root, label) = if corpus.is_dir() {
        (corpus, "shared corpus")
    } else {
        (vendored, "vendored test data (shared corpus absent)")
    };
    let files = sandscope_read::bench::corpus_evtx(root).unwrap_or_default();
    println!(
        "read + build report: {} EVTX files of the {label}, best of {ROUNDS} rounds",
        files.len()
    );

    // Reading and building are timed separately (best of the rounds each) and added: on a
    // shared machine that is far less noisy than timing the two back to back.
    let mut logs = Vec::new();
    let mut read_best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let read: Vec<_> = files
            .iter()
            .filter_map(|f| sandscope_read::read_all(f).ok())
            .map(|o| o.events)
            .collect();
        read_best = read_best.min(start.elapsed());
        logs = read;
    }
    let events: u64 = logs.iter().map(|l| l.len() as u64).sum();
    let rate = |time: Duration| events as f64 / time.as_secs_f64().max(1e-9);
    let read_rate = rate(read_best);
    println!(
        "  read only                          {events:>8} events  {:>8.3} s  {read_rate:>12.0} events/s",
        read_best.as_secs_f64()
    );
    for (name, mode) in [
        ("auto-detected sample", SampleSelector::Auto),
        ("--no-attribution", SampleSelector::Everything),
    ] {
        let mut build_best = Duration::MAX;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for events in logs.iter().filter(|l| !l.is_empty()) {
                let options = ReportOptions {
                    sample: mode.clone(),
                    ..Default::default()
                };
                // Logs without a detectable sample are reported whole, as the CLI user would.
                let built = build_report(events, &options).or_else(|_| {
                    build_report(
                        events,
                        &ReportOptions {
                            sample: SampleSelector::Everything,
                            ..Default::default()
                        },
                    )
                });
                std::hint::black_box(&built.map(|b| b.behaviour.attributes.behash));
            }
            build_best = build_best.min(start.elapsed());
        }
        let total = read_best + build_best;
        println!(
            "  build report only ({name:<20}) {:>8.3} s  {:>12.0} events/s",
            build_best.as_secs_f64(),
            rate(build_best)
        );
        println!(
            "  read + build report ({name:<20}) {:>6.3} s  {:>12.0} events/s  ({:.2}× read-only)",
            total.as_secs_f64(),
            rate(total),
            rate(total) / read_rate
        );
    }
}
