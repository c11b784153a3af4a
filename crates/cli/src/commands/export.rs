//! `sandscope export misp|stix SHA256…`: stored samples as MISP events or STIX 2.1 bundles
//! (built by `sandscope-export`).

use super::ingest::data_dir;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use sandscope_export::SampleFormat;
use sandscope_store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One MISP event per sample (PyMISP's feed layout, `{"Event": …}`).
    Misp,
    /// One STIX 2.1 bundle per sample.
    Stix,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(value_enum)]
    pub format: ExportFormat,
    /// The samples' SHA-256s.
    #[arg(required = true)]
    pub sha256: Vec<String>,
    /// Write here instead of standard output (where several samples' documents follow one
    /// another): a file for one sample, a folder (created if missing) of
    /// `<sha256>.<format>.json` files for several.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let format = match args.format {
        ExportFormat::Misp => SampleFormat::Misp,
        ExportFormat::Stix => SampleFormat::Stix,
    };
    let store = Store::open(&data_dir(args.data.clone()))?;
    let samples: Vec<String> = args
        .sha256
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    // Every sample must be known before anything is written.
    let mut documents = Vec::with_capacity(samples.len());
    for sha256 in &samples {
        if !sandscope_model::is_sha256(sha256) {
            bail!("`{sha256}` is not a SHA-256 (64 hex digits)");
        }
        let reports = store.sample_reports(sha256)?;
        if reports.is_empty() {
            bail!("no reports of sample {sha256} in the store");
        }
        documents.push((sha256, format.render(sha256, &reports)?));
    }
    match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            for (_, document) in &documents {
                out.write_all(document)?;
            }
            out.flush()?;
        }
        Some(path) if documents.len() == 1 => {
            std::fs::write(path, &documents[0].1)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Some(folder) => {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            for (sha256, document) in &documents {
                let path = folder.join(format.file_name(sha256));
                std::fs::write(&path, document)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
