//! `sandscope bench serve`: the HTTP load benchmark of issue 7 over the real store — 64
//! clients searching and fetching reports over loopback while another client keeps uploading
//! a log for ingest. Prints request count, errors and latency percentiles.

use anyhow::{Context, Result};
use clap::Args;
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_server::StoreBackend;
use sandscope_server::load::{LoadConfig, bench_backend};
use sandscope_store::{NewReport, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct ServeBenchArgs {
    /// A Sysmon log: its report, under new SHA-256s, fills the store, and it is the upload.
    #[arg(long, default_value = "tests/data/seed/ransomware_tutanota_sysmon.xml")]
    pub log: PathBuf,
    /// Samples stored before the load starts.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Concurrent reading clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

pub fn run(args: ServeBenchArgs) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("data"))?;
    let pipeline = Pipeline::new(None);
    let prepared = pipeline
        .prepare(std::slice::from_ref(&args.log), &IngestOptions::default())
        .with_context(|| format!("building the report of {}", args.log.display()))?;
    let base = prepared
        .reports
        .into_iter()
        .next()
        .context("the log yields no report")?;
    let mut sample_ids = Vec::with_capacity(args.samples);
    let mut batch = Vec::new();
    for n in 0..args.samples {
        let sha256 = format!("{n:064x}");
        let mut behaviour = base.behaviour.clone();
        behaviour.id = sandscope_model::behaviour_id(&sha256, &behaviour.attributes.sandbox_name);
        batch.push(NewReport {
            behaviour,
            raw_log: None,
        });
        sample_ids.push(sha256);
        if batch.len() == 500 {
            store.put_reports(std::mem::take(&mut batch))?;
        }
    }
    store.put_reports(batch)?;
    let backend = Arc::new(StoreBackend::new(store, pipeline));
    let config = LoadConfig {
        clients: args.clients,
        duration: Duration::from_secs(args.seconds),
        api_key: "bench-serve-key-0001".to_string(),
        queries: vec![
            "behaviour_files:@tutanota.com".to_string(),
            "behaviour_processes:vssadmin".to_string(),
            "behaviour_network:tutanota".to_string(),
        ],
        sample_ids,
        ingest_file: Some(args.log.clone()),
    };
    println!(
        "{} samples in the store; {} clients for {} s while {} is ingested again and again",
        args.samples,
        args.clients,
        args.seconds,
        args.log.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench_backend(backend, &config))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
