//! `sandscope bench read`: the reader benchmark (see `sandscope_read::bench`).
//!
//! Builds an EVTX file of the corpus's Sysmon chunks repeated to the requested size, then in
//! one run and with the same threads (all cores, or `--threads`) measures Sandscope's typed
//! reading against the `evtx` crate's JSON serialisation of every record; then the peak RSS
//! of the typed reader on a 50 MB and a 500 MB input, each in a fresh process.

use anyhow::{Context, Result};
use clap::Args;
use sandscope_read::bench;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct ReadArgs {
    /// Folder of EVTX files to build the input from (default: ../shared/corpus, else
    /// tests/data).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Size of the benchmark input, in MB.
    #[arg(long, default_value_t = 200)]
    pub mb: u64,
    /// Skip the 50 MB / 500 MB peak-RSS measurements.
    #[arg(long)]
    pub no_rss: bool,
    /// Threads for both readers (the rayon pool both use); default: one per core.
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(a: ReadArgs) -> Result<ExitCode> {
    if let Some(threads) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build_global()
            .context("setting up the thread pool")?;
    }
    let corpus = a.corpus.unwrap_or_else(default_corpus);
    let exe = std::env::current_exe()?;
    let rss = |path: &Path| {
        let mut c = std::process::Command::new(&exe);
        c.args(["bench", "read-rss"]).arg(path);
        c
    };
    let rss: Option<&dyn Fn(&Path) -> std::process::Command> =
        if a.no_rss { None } else { Some(&rss) };
    bench::run_read_benchmark(&corpus, a.mb, rss)
        .with_context(|| format!("benchmark over {}", corpus.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// One read in a fresh process, so its peak RSS is the reader's alone.
pub fn rss_probe(path: &Path) -> Result<ExitCode> {
    bench::rss_probe(path)?;
    Ok(ExitCode::SUCCESS)
}

fn default_corpus() -> PathBuf {
    let shared = Path::new("../shared/corpus");
    if shared.is_dir() {
        shared.to_path_buf()
    } else {
        PathBuf::from("tests/data")
    }
}
