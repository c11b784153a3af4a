//! `sandscope bench serve`: the HTTP load benchmark of issue 7 over the real store — 64
//! clients searching and fetching reports over loopback while another client keeps uploading
//! a log for ingest. Prints request count, errors and latency percentiles.
//!
//! `--hostile` (issue 14): the seed query's latency alone, then while eight clients send
//! expensive queries back to back, and the server's peak memory in each phase. Its store gives
//! every sample values of its own (the paths and command lines carry the sample's number), so
//! that hostile queries meet as many distinct values as a real store of that size holds.

use anyhow::{Context, Result};
use clap::Args;
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_server::load::{HostileConfig, LoadConfig, bench_backend, bench_hostile};
use sandscope_server::{ServerConfig, StoreBackend};
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
    /// Seconds of load (with `--hostile`: of each phase).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Measure the seed query alone and with hostile clients (see the module documentation).
    #[arg(long)]
    pub hostile: bool,
    /// Clients sending hostile queries, with `--hostile`.
    #[arg(long, default_value_t = 8)]
    pub hostile_clients: usize,
}

/// The cheap query whose latency `--hostile` measures.
const SEED_QUERY: &str = "behaviour_files:@tutanota.com";

/// The hostile shapes, within the parser's limits: one letter between the most
/// wildcards a value may hold, the most one-letter terms a query may hold, and both at once.
fn hostile_queries() -> Vec<String> {
    use sandscope_query::{MAX_TERMS, MAX_WILDCARDS};
    let letter = |i: usize| char::from(b'a' + (i % 26) as u8);
    let wild = |i: usize| {
        format!(
            "behaviour:{}",
            format!("*{}", letter(i)).repeat(MAX_WILDCARDS)
        )
    };
    vec![
        wild(0),
        vec!["a"; MAX_TERMS].join(" "),
        (0..MAX_TERMS).map(wild).collect::<Vec<_>>().join(" "),
    ]
}

/// Make every value of a copy its own: the copy's number is appended to each path, command
/// line and process image.
fn make_distinct(attributes: &mut sandscope_model::BehaviourAttributes, n: usize) {
    for list in [
        &mut attributes.files_written,
        &mut attributes.files_opened,
        &mut attributes.files_deleted,
        &mut attributes.files_attribute_changed,
        &mut attributes.command_executions,
        &mut attributes.processes_created,
        &mut attributes.processes_terminated,
        &mut attributes.registry_keys_opened,
        &mut attributes.mutexes_created,
        &mut attributes.modules_loaded,
    ] {
        for value in list.iter_mut() {
            value.push_str(&format!(" copy{n}"));
        }
    }
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
        if args.hostile {
            make_distinct(&mut behaviour.attributes, n);
        }
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
    if args.hostile {
        return hostile(backend, &args);
    }
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

fn hostile(backend: Arc<StoreBackend>, args: &ServeBenchArgs) -> Result<ExitCode> {
    let config = HostileConfig {
        api_key: "bench-serve-key-0001".to_string(),
        seed_query: SEED_QUERY.to_string(),
        hostile_queries: hostile_queries(),
        hostile_clients: args.hostile_clients,
        duration: Duration::from_secs(args.seconds),
        server: ServerConfig::default(),
    };
    println!(
        "{} samples with values of their own; seed query {SEED_QUERY:?} for {} s alone, then \
         {} s with {} clients sending:",
        args.samples, args.seconds, args.seconds, args.hostile_clients
    );
    for q in &config.hostile_queries {
        println!("  {q}");
    }
    println!(
        "server: search timeout {} s, budget {} units, quick lane {} units, {} heavy search(es) at once",
        config.server.search_timeout.as_secs_f64(),
        config.server.search_work,
        config.server.quick_search_work,
        config.server.heavy_searches
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench_hostile(backend, &config))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
