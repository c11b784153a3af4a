//! `sandscope compact`: give a data directory's unused room back to the file system.
//!
//! A bulk ingest leaves the report database with free pages and half-full pages in its
//! hash-keyed tables, and each index in several segments (see `Store::compact`); compacting
//! rewrites those tables (the reports recompressed at a higher level than ingest's) and merges
//! the value index into one segment and the sample index into one per core (at most four, so
//! a heavy query still runs on every core). It is a command of its
//! own, not the end of every ingest, because it rewrites those tables whole (a small ingest
//! into a large store would pay for the whole store each time) and needs the directory to
//! itself (a running server cannot be compacted under it).
//!
//! On a PostgreSQL store (`--store URL`) it vacuums the store's tables and rebuilds their
//! indexes online (`PgStore::compact`), on every server of a sharded store, and prints their
//! size on all of them before and after: indexes grown batch by batch take more room than
//! rebuilt ones, and servers and workers keep reading and writing meanwhile.

use super::control::open_store;
use super::ingest::data_dir;
use super::store_choice::{ReportStore, open_postgres};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CompactArgs {
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store (postgres://…) instead of the data directory.
    #[arg(long, env = "SANDSCOPE_STORE", conflicts_with = "data")]
    pub store: Option<String>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

pub fn run(args: CompactArgs) -> Result<ExitCode> {
    if let Some(url) = args.store {
        let store = open_postgres(&url)?;
        let before = store.size_bytes()?;
        store.compact()?;
        let after = store.size_bytes()?;
        println!(
            "{}: tables and indexes {:.1} → {:.1} MiB",
            store.place(),
            mib(before),
            mib(after)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let data = data_dir(args.data);
    let (mut store, _owner) = open_store(&data, "compact")?;
    let (_, before) = store.disk_usage()?;
    store.compact()?;
    let (index, after) = store.disk_usage()?;
    println!(
        "{}: report database {:.1} → {:.1} MiB (index {:.1} MiB)",
        data.display(),
        mib(before),
        mib(after),
        mib(index)
    );
    Ok(ExitCode::SUCCESS)
}
