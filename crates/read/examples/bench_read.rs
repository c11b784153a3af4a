//! The reader benchmark without building the whole `sandscope` binary (same code as
//! `sandscope bench read`):
//!
//!     cargo run --release -p sandscope-read --example bench_read -- [CORPUS_DIR] [MB]
use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice()
        && flag == "--rss-probe"
    {
        return sandscope_read::bench::rss_probe(Path::new(path));
    }
    let corpus = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpus"));
    let mb = args.get(1).and_then(|m| m.parse().ok()).unwrap_or(200);
    let exe = std::env::current_exe()?;
    let rss = |path: &Path| {
        let mut c = std::process::Command::new(&exe);
        c.arg("--rss-probe").arg(path);
        c
    };
    sandscope_read::bench::run_read_benchmark(&corpus, mb, Some(&rss))
}
