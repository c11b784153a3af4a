use super::sigma_args::SigmaArgs;
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_store::{NewReport, Store, is_sha256};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct IngestArgs {
    /// Log files or directories (walked recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The sample's SHA-256. With it, all PATHs make one report of that sample; without it,
    /// each file is one report, of the sample the builder finds (or, when the log names no
    /// sample hash, of the SHA-256 of the log file itself).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Which process is the sample: an image name or path fragment.
    #[arg(long)]
    pub sample: Option<String>,
    /// Sandbox name for the reports (default: "Microsoft Sysinternals").
    #[arg(long)]
    pub sandbox: Option<String>,
    /// Data directory (default: $SANDSCOPE_DATA or ./sandscope-data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub sigma: SigmaArgs,
    /// Reports per transaction: each batch lands whole or not at all.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
}

pub fn data_dir(data: Option<PathBuf>) -> PathBuf {
    data.unwrap_or_else(sandscope_store::default_data_dir)
}

fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        stack.push(e);
                    } else {
                        out.push(e);
                    }
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The reports of `files` (one file, or all files of one `--sha256`).
fn build(pipeline: &Pipeline, files: &[PathBuf], args: &IngestArgs) -> Result<Vec<NewReport>> {
    let options = IngestOptions {
        sha256: args.sha256.clone(),
        sample: args.sample.clone(),
        sandbox: args.sandbox.clone(),
    };
    let prepared = pipeline.prepare(files, &options)?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    Ok(prepared.reports)
}

pub fn run(args: IngestArgs) -> Result<ExitCode> {
    if let Some(s) = &args.sha256
        && !is_sha256(&s.trim().to_ascii_lowercase())
    {
        bail!("--sha256 `{s}` is not a SHA-256");
    }
    let files = collect_files(&args.paths)?;
    let store = Store::open(&data_dir(args.data.clone()))?;
    let pipeline = Pipeline::new(args.sigma.engine()?);
    let groups: Vec<Vec<PathBuf>> = if args.sha256.is_some() {
        vec![files.clone()]
    } else {
        files.iter().map(|f| vec![f.clone()]).collect()
    };
    let bar = indicatif::ProgressBar::new(groups.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut stored, mut skipped) = (0usize, 0usize);
    let mut batch: Vec<(NewReport, String)> = Vec::new();
    let batch_size = args.batch.max(1);
    let flush =
        |batch: &mut Vec<(NewReport, String)>, out: &mut std::io::StdoutLock| -> Result<usize> {
            if batch.is_empty() {
                return Ok(0);
            }
            let taken: Vec<(NewReport, String)> = std::mem::take(batch);
            let names: Vec<String> = taken.iter().map(|(_, n)| n.clone()).collect();
            let ids = store.put_reports(taken.into_iter().map(|(r, _)| r).collect())?;
            for (id, name) in ids.iter().zip(&names) {
                writeln!(out, "stored\t{id}\t{name}")?;
            }
            out.flush()?;
            Ok(ids.len())
        };
    for group in &groups {
        let name = group
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        bar.set_message(name.clone());
        match build(&pipeline, group, &args) {
            Ok(reports) => batch.extend(reports.into_iter().map(|r| (r, name.clone()))),
            Err(e) => {
                bar.suspend(|| eprintln!("skipped {name}: {e:#}"));
                skipped += 1;
            }
        }
        if batch.len() >= batch_size {
            stored += flush(&mut batch, &mut out)?;
        }
        bar.inc(1);
    }
    stored += flush(&mut batch, &mut out)?;
    bar.finish_and_clear();
    eprintln!("{stored} report(s) stored, {skipped} file(s) skipped");
    Ok(if stored == 0 && skipped > 0 {
        ExitCode::from(1)
    } else if skipped > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
