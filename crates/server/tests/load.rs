//! The load benchmark's client against the real router over TCP, briefly: every request must
//! succeed while the vendored EVTX is ingested alongside, and the numbers must add up.

#[path = "support/memory_backend.rs"]
mod memory_backend;

use memory_backend::MemoryBackend;
use sandscope_model::FileBehaviour;
use sandscope_server::Backend;
use sandscope_server::load::{LoadConfig, bench_backend};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_load_run_has_no_errors_and_ingests_alongside() {
    let evtx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/TA0006-Credential Access/\
         T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx",
    );
    let backend = Arc::new(MemoryBackend::new());
    let (report, _) = MemoryBackend::report_from_log(&evtx, Some("0".repeat(64))).unwrap();
    let sample_ids: Vec<String> = (1..=50).map(|n| format!("{n:064x}")).collect();
    for sha256 in &sample_ids {
        backend.insert(FileBehaviour::new(sha256, report.attributes.clone()), None);
    }
    let config = LoadConfig {
        clients: 8,
        duration: Duration::from_millis(1500),
        api_key: "load-test-key-0001".to_string(),
        queries: vec!["behaviour_processes:exe".to_string()],
        sample_ids,
        ingest_file: Some(evtx),
    };
    let result = bench_backend(backend.clone(), &config).await.unwrap();
    assert_eq!(result.errors, 0, "{result}");
    assert!(result.requests > 8, "{result}");
    assert!(result.ingests >= 1, "{result}");
    assert!(
        result.p50 <= result.p99 && result.p99 <= result.max,
        "{result}"
    );
    // The uploads became one more sample (re-ingesting replaces its report), next to the 50.
    assert_eq!(backend.health().unwrap().samples, 51);
}
