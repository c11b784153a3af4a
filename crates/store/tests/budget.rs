//! Every search spends from a work budget checked inside the store's matchers: a hostile query
//! stops at its budget, its deadline or its caller's cancellation — quickly, with bounded
//! memory, and with an error saying which limit ran out — while a selective query on the same
//! store spends a small fraction of the default budget.

use sandscope_model::*;
use sandscope_store::{
    DEFAULT_MAX_WORK, Exhausted, NewReport, SearchLimits, SearchRequest, Store, StoreError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tests that read the process's peak memory run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Words of a made-up file name: most hold an `a`, as real paths do.
const SYLLABLES: [&str; 12] = [
    "ka", "ra", "ta", "na", "ma", "sa", "lo", "ve", "ar", "ad", "xa", "qa",
];

/// `samples` samples, each writing `files` files with names of varied words, in one batch.
fn generated_store(samples: u64, files: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut reports = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..samples {
        let mut written = Vec::new();
        for f in 0..files {
            let mut name = String::new();
            for _ in 0..6 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                name.push_str(SYLLABLES[(seed % 12) as usize]);
                name.push_str(SYLLABLES[((seed >> 8) % 12) as usize]);
                name.push(if (seed >> 16).is_multiple_of(3) {
                    '_'
                } else {
                    '-'
                });
            }
            written.push(format!(
                r"C:\Users\alice\AppData\Local\Temp\{name}{i}x{f}.dat"
            ));
        }
        reports.push(NewReport {
            behaviour: FileBehaviour::new(
                &format!("{i:064x}"),
                BehaviourAttributes {
                    sandbox_name: SYSINTERNALS_SANDBOX.into(),
                    analysis_date: Some(1_700_000_000 + i as i64),
                    files_written: written,
                    ..Default::default()
                },
            ),
            raw_log: None,
        });
    }
    store.put_reports(reports).unwrap();
    (dir, store)
}

/// The process's peak resident memory, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The issue's hostile shapes within the parser's limits: 16 wildcards around one letter, the
/// most one-letter terms a query may hold (cheap here: few samples hold every letter), and
/// both at once, joined by spaces and by `OR`.
fn hostile_queries() -> Vec<String> {
    let letter = |i: u8| char::from(b'a' + i % 26);
    vec![
        format!("behaviour:{}", "*a".repeat(16)),
        (0..64)
            .map(|i| letter(i).to_string())
            .collect::<Vec<_>>()
            .join(" "),
        (0..64)
            .map(|i| format!("behaviour:{}", format!("*{}", letter(i)).repeat(16)))
            .collect::<Vec<_>>()
            .join(" "),
        // The same joined by `OR`: no term can cut the others short.
        (0..64)
            .map(|i| format!("behaviour:{}", format!("*{}", letter(i)).repeat(16)))
            .collect::<Vec<_>>()
            .join(" OR "),
    ]
}

fn search(store: &Store, query: &str, limits: SearchLimits) -> Result<u64, StoreError> {
    let mut request = SearchRequest::new(query);
    request.limits = limits;
    store.search(&request).map(|page| page.work)
}

#[test]
fn hostile_queries_stop_at_their_work_budget_in_bounded_time_and_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, store) = generated_store(400, 40);
    // A selective query spends little of the default budget.
    let work = search(
        &store,
        "behaviour_files:kara*x17.dat",
        SearchLimits::default(),
    )
    .unwrap();
    assert!(work > 0 && work < DEFAULT_MAX_WORK / 100, "{work}");
    let before = peak_rss();
    let queries = hostile_queries();
    for query in [&queries[0], &queries[2]] {
        for max_work in [10_000, 2_000_000] {
            let started = Instant::now();
            let outcome = search(
                &store,
                query,
                SearchLimits {
                    max_work,
                    ..SearchLimits::default()
                },
            );
            match outcome {
                Err(StoreError::Exhausted(Exhausted::Work { limit })) => {
                    assert_eq!(limit, max_work)
                }
                other => panic!("{query} within {max_work}: {other:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{query}: {:?}",
                started.elapsed()
            );
        }
    }
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 256 << 20, "peak memory grew by {grown} bytes");
    // The error says what ran out.
    let e = search(
        &store,
        &hostile_queries()[0],
        SearchLimits {
            max_work: 10_000,
            ..SearchLimits::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the search examined more than 10000 candidates and positions (its work budget); make \
         the query more specific"
    );
}

#[test]
fn a_passed_deadline_stops_a_search() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, store) = generated_store(50, 10);
    let outcome = search(
        &store,
        &hostile_queries()[0],
        SearchLimits {
            max_work: u64::MAX,
            deadline: Some(Instant::now()),
            ..SearchLimits::default()
        },
    );
    assert!(
        matches!(outcome, Err(StoreError::Exhausted(Exhausted::Deadline))),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "the search ran out of time"
    );
}

#[test]
fn cancellation_stops_a_running_search_and_frees_its_thread() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, store) = generated_store(400, 40);
    let store = Arc::new(store);
    let cancel = Arc::new(AtomicBool::new(false));
    // Unbounded work and time: only the flag can stop it.
    let limits = SearchLimits {
        max_work: u64::MAX,
        deadline: None,
        cancel: Some(cancel.clone()),
        parallel: false,
    };
    let running = {
        let store = store.clone();
        let query = hostile_queries()[3].clone();
        std::thread::spawn(move || search(&store, &query, limits))
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !running.is_finished(),
        "the hostile query must still be running when it is cancelled"
    );
    cancel.store(true, Ordering::Relaxed);
    let cancelled_at = Instant::now();
    while !running.is_finished() {
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(2),
            "the search did not stop within 2 s of its cancellation"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let outcome = running.join().unwrap();
    assert!(
        matches!(outcome, Err(StoreError::Exhausted(Exhausted::Cancelled))),
        "{outcome:?}"
    );
}
