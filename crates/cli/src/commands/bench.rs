//! `sandscope bench read`: the reader benchmark (see `sandscope_read::bench`).
//!
//! Builds an EVTX file of the corpus's Sysmon chunks repeated to the requested size, then in
//! one run and with the same threads (all cores) measures Sandscope's typed reading against
//! the `evtx` crate's JSON serialisation of every record; then the peak RSS of the typed
//! reader on a 50 MB and a 500 MB input, each in a fresh process.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use sandscope_read::bench;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// EVTX reading: events/s and MB/s of Sandscope vs the evtx crate's JSON, and peak RSS.
    Read(ReadArgs),
    /// (internal) Read one file with the typed reader and print its peak RSS.
    #[command(hide = true)]
    ReadRss { path: PathBuf },
}

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
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.what {
        BenchWhat::Read(a) => read(a),
        BenchWhat::ReadRss { path } => {
            let pass = bench::sandscope_pass(&path)?;
            let rss = bench::peak_rss().unwrap_or(0);
            println!("{} {} {}", pass.items, pass.elapsed.as_secs_f64(), rss);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn default_corpus() -> PathBuf {
    let shared = Path::new("../shared/corpus");
    if shared.is_dir() {
        shared.to_path_buf()
    } else {
        PathBuf::from("tests/data")
    }
}

fn read(args: ReadArgs) -> Result<ExitCode> {
    let corpus = args.corpus.unwrap_or_else(default_corpus);
    let sources =
        bench::corpus_evtx(&corpus).with_context(|| format!("listing {}", corpus.display()))?;
    if sources.is_empty() {
        bail!("no EVTX file under {}", corpus.display());
    }
    let dir = tempfile::tempdir()?;
    let big = dir.path().join("bench.evtx");
    let chunks = bench::build_large_evtx(&sources, args.mb * 1_000_000, &big)?;
    let size = bench::file_len(&big);
    println!(
        "input: {} EVTX files from {} repeated into {} chunks, {:.1} MB; {} threads",
        sources.len(),
        corpus.display(),
        chunks,
        size as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Warm the page cache so that every pass reads from memory.
    std::hint::black_box(std::fs::read(&big)?.len());

    let json = bench::evtx_records_json_pass(&big)?;
    let dump = bench::evtx_dump_jsonl_pass(&big)?;
    let ours = bench::sandscope_pass(&big)?;
    println!(
        "{:<40} {:>12} {:>14} {:>10} {:>8}",
        "reader", "items", "items/s", "MB/s", "secs"
    );
    for p in [&json, &dump, &ours] {
        println!(
            "{:<40} {:>12} {:>14.0} {:>10.1} {:>8.2}",
            p.name,
            p.items,
            p.per_second(),
            p.mb_per_second(),
            p.elapsed.as_secs_f64()
        );
    }
    println!(
        "sandscope events/s vs evtx records_json records/s: {:.2}x; vs evtx_dump -o jsonl: {:.2}x",
        ours.per_second() / json.per_second(),
        ours.per_second() / dump.per_second()
    );
    drop(big);

    if !args.no_rss {
        let exe = std::env::current_exe()?;
        for mb in [50u64, 500] {
            let path = dir.path().join(format!("rss-{mb}.evtx"));
            bench::build_large_evtx(&sources, mb * 1_000_000, &path)?;
            let out = std::process::Command::new(&exe)
                .args(["bench", "read-rss"])
                .arg(&path)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let fields: Vec<&str> = text.split_whitespace().collect();
            if let [events, secs, rss] = fields.as_slice() {
                let rss: f64 = rss.parse().unwrap_or(0.0);
                println!(
                    "peak RSS reading {mb} MB ({events} events, {secs}s): {:.1} MB",
                    rss / 1e6
                );
            } else {
                println!("peak RSS for {mb} MB: measurement failed: {text}");
            }
            std::fs::remove_file(&path)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
