//! The load benchmark's client against the real router over TCP, briefly: every request must
//! succeed while the vendored EVTX is ingested alongside, and the numbers must add up.

#[path = "support/store.rs"]
mod store;

use sandscope_model::FileBehaviour;
use sandscope_server::Backend;
use sandscope_server::load::{LoadConfig, bench_backend};
use std::time::Duration;
use store::{Scratch, lsass_evtx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_load_run_has_no_errors_and_ingests_alongside() {
    let evtx = lsass_evtx();
    let scratch = Scratch::new();
    let sample_ids: Vec<String> = (1..=50).map(|n| format!("{n:064x}")).collect();
    let report = scratch.ingest(&evtx, &sample_ids[0]);
    scratch.put(
        sample_ids[1..]
            .iter()
            .map(|sha256| FileBehaviour::new(sha256, report.attributes.clone()))
            .collect(),
    );
    let config = LoadConfig {
        clients: 8,
        duration: Duration::from_millis(1500),
        api_key: "load-test-key-0001".to_string(),
        queries: vec!["behaviour_processes:exe".to_string()],
        sample_ids,
        ingest_file: Some(evtx),
    };
    let result = bench_backend(scratch.backend.clone(), &config)
        .await
        .unwrap();
    assert_eq!(result.errors, 0, "{result}");
    assert!(result.requests > 8, "{result}");
    assert!(result.ingests >= 1, "{result}");
    assert!(
        result.p50 <= result.p99 && result.p99 <= result.max,
        "{result}"
    );
    // The uploads became one more sample (re-ingesting replaces its report), next to the 50.
    assert_eq!(scratch.backend.health().unwrap().samples, 51);
}
