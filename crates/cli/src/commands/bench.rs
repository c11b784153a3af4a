//! `sandscope bench …`: the speed figures the issues ask for, printed, never asserted.

mod copies;
mod cpu;
mod livehunt;
mod read;
mod retrohunt;
mod serve;
mod sigma;
mod store;

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// EVTX reading: events/s and MB/s of Sandscope vs the evtx crate's JSON, and peak RSS.
    Read(read::ReadArgs),
    /// (internal) Read one file with the typed reader and print its peak RSS.
    #[command(hide = true)]
    ReadRss { path: PathBuf },
    /// The bundled SigmaHQ rules over EVTX files repeated to a large input.
    Sigma {
        /// Folder of EVTX files (walked recursively; a `broken/` folder is skipped).
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
        /// Repeat the files until the input is at least this many MB.
        #[arg(long, default_value_t = 300)]
        min_mb: u64,
    },
    /// Livehunt's cost on ingest with 0, 1, 10 and 100 enabled rulesets.
    Livehunt(livehunt::LivehuntBenchArgs),
    /// The bundled rules over every stored detonation's raw log (`retrohunt`): events/s.
    Retrohunt(retrohunt::RetrohuntBenchArgs),
    /// HTTP load: concurrent clients searching and fetching while an ingest runs.
    Serve(serve::ServeBenchArgs),
    /// Ingest synthetic reports (mutated from real ones) and time searches against grep -F.
    Store(store::StoreBenchArgs),
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.what {
        BenchWhat::Read(a) => read::run(a),
        BenchWhat::ReadRss { path } => read::rss_probe(&path),
        BenchWhat::Sigma { corpus, min_mb } => sigma::run(corpus, min_mb),
        BenchWhat::Livehunt(a) => livehunt::run(a),
        BenchWhat::Retrohunt(a) => retrohunt::run(a),
        BenchWhat::Serve(a) => serve::run(a),
        BenchWhat::Store(a) => store::run(a),
    }
}
