//! `cargo bench -p sandscope-report`: events per second of reading alone versus reading and
//! building the behaviour report, over every EVTX file of the shared corpus (except the
//! deliberately broken ones), or the vendored test logs when the corpus is absent. The target
//! is read + report ≥ 0.8 × read-only.

use sandscope_report::{ReportOptions, SampleSelector, build_report};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "broken") {
                continue;
            }
            evtx_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("evtx"))
        {
            out.push(path);
        }
    }
}

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
    let mut files = Vec::new();
    evtx_files(root, &mut files);
    println!(
        "read + build report: {} EVTX files of the {label}, best of {ROUNDS} rounds",
        files.len()
    );

    let measure = |mode: Option<SampleSelector>| -> (u64, Duration) {
        let mut best = Duration::MAX;
        let mut events_seen = 0;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let mut events_total = 0u64;
            for file in &files {
                let Ok(output) = sandscope_read::read_all(file) else {
                    continue;
                };
                events_total += output.events.len() as u64;
                if let Some(sample) = &mode {
                    let options = ReportOptions {
                        sample: sample.clone(),
                        ..Default::default()
                    };
                    let built = build_report(&output.events, &options).or_else(|_| {
                        build_report(
                            &output.events,
                            &ReportOptions {
                                sample: SampleSelector::Everything,
                                ..Default::default()
                            },
                        )
                    });
                    std::hint::black_box(&built.map(|b| b.behaviour.attributes.behash));
                }
            }
            best = best.min(start.elapsed());
            events_seen = events_total;
        }
        (events_seen, best)
    };
    let rate = |events: u64, time: Duration| events as f64 / time.as_secs_f64().max(1e-9);

    let (events, read_only) = measure(None);
    let read_rate = rate(events, read_only);
    println!(
        "  read only                         {events:>8} events  {:>8.3} s  {read_rate:>12.0} events/s",
        read_only.as_secs_f64()
    );
    for (name, mode) in [
        ("read + report (auto-detected)", SampleSelector::Auto),
        (
            "read + report (--no-attribution)",
            SampleSelector::Everything,
        ),
    ] {
        let (events, time) = measure(Some(mode));
        let r = rate(events, time);
        println!(
            "  {name:<33} {events:>8} events  {:>8.3} s  {r:>12.0} events/s  ({:.2}× read-only)",
            time.as_secs_f64(),
            r / read_rate
        );
    }
}
