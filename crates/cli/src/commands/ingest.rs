use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_report::{ReportOptions, SampleSelector, build_report};
use sandscope_store::{NewReport, RawData, RawLog, Store, is_sha256};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
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

fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Build the report of `files` (one file, or all files of one `--sha256`).
fn build(files: &[PathBuf], args: &IngestArgs) -> Result<NewReport> {
    let mut events = Vec::new();
    for f in files {
        let out = sandscope_read::read_all(f)?;
        for w in &out.warnings {
            eprintln!("warning: {w}");
        }
        events.extend(out.events);
    }
    let sha256 = args.sha256.as_ref().map(|s| s.trim().to_ascii_lowercase());
    let options = ReportOptions {
        sample: match &args.sample {
            Some(s) => SampleSelector::Image(s.clone()),
            None => SampleSelector::Auto,
        },
        sha256: sha256.clone(),
        baseline: Vec::new(),
    };
    let built = build_report(&events, &options)?;
    let mut behaviour = built.behaviour;
    let mut sha = behaviour.sha256().to_ascii_lowercase();
    if !is_sha256(&sha) || sha.bytes().all(|b| b == b'0') {
        // The log names no sample hash: the log file stands for the sample.
        sha = file_sha256(&files[0])?;
    }
    if let Some(name) = &args.sandbox {
        behaviour.attributes.sandbox_name = name.clone();
    }
    behaviour.id = sandscope_model::behaviour_id(&sha, &behaviour.attributes.sandbox_name);
    let raw_log = files.first().map(|f| RawLog {
        file_name: f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        data: RawData::File(f.clone()),
    });
    Ok(NewReport { behaviour, raw_log })
}

pub fn run(args: IngestArgs) -> Result<ExitCode> {
    if let Some(s) = &args.sha256
        && !is_sha256(&s.trim().to_ascii_lowercase())
    {
        bail!("--sha256 `{s}` is not a SHA-256");
    }
    let files = collect_files(&args.paths)?;
    let store = Store::open(&data_dir(args.data.clone()))?;
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
        match build(group, &args) {
            Ok(report) => batch.push((report, name)),
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
