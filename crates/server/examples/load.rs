//! The load benchmark over the in-memory test backend: 64 clients searching and fetching while
//! the vendored EVTX is uploaded and ingested again and again.
//!
//! ```text
//! cargo run -p sandscope-server --example load -- [SECONDS] [SAMPLES]
//! ```
//!
//! With the store wired in, call `sandscope_server::load::bench_backend` with the store's
//! backend instead (same configuration).

#[path = "../tests/support/memory_backend.rs"]
mod memory_backend;

use memory_backend::MemoryBackend;
use sandscope_model::FileBehaviour;
use sandscope_server::load::{LoadConfig, bench_backend};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let samples: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let evtx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/TA0006-Credential Access/\
         T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx",
    );
    let backend = Arc::new(MemoryBackend::new());
    let (report, _) = MemoryBackend::report_from_log(&evtx, Some("0".repeat(64)))?;
    let mut sample_ids = Vec::new();
    for n in 0..samples {
        let sha256 = format!("{n:064x}");
        backend.insert(FileBehaviour::new(&sha256, report.attributes.clone()), None);
        sample_ids.push(sha256);
    }
    let process = report
        .attributes
        .processes_created
        .first()
        .and_then(|p| p.rsplit('\\').next())
        .unwrap_or("cmd.exe")
        .to_string();
    let config = LoadConfig {
        clients: 64,
        duration: Duration::from_secs(seconds),
        api_key: "load-test-key-0001".to_string(),
        queries: vec![
            format!("behaviour_processes:{process}"),
            "behaviour_files:@tutanota.com".to_string(),
            "behaviour_network:example.com".to_string(),
        ],
        sample_ids,
        ingest_file: Some(evtx),
    };
    println!(
        "{} samples in memory; 64 clients for {seconds} s with ingest running",
        samples
    );
    let report = bench_backend(backend, &config).await?;
    println!("{report}");
    if report.errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
