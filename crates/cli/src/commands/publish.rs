//! `sandscope ingest --nats URL PATH…`: plan the detonations here, publish each (its files
//! included) as a job for the workers, and print the job ids. Nothing is built in-process.

use super::ingest::IngestArgs;
use anyhow::{Context, Result, bail};
use sandscope_ingest::Detonation;
use sandscope_model::is_sha256;
use sandscope_queue::{LocalInput, ToSubmit};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: &IngestArgs, nats: &str) -> Result<ExitCode> {
    if let Some(s) = &args.sha256
        && !is_sha256(&s.trim().to_ascii_lowercase())
    {
        bail!("--sha256 `{s}` is not a SHA-256");
    }
    let jobs = jobs_of(args)?;
    let (runtime, queue) = super::jobs::connect(nats)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (job, name) in jobs.into_iter() {
        let id = runtime
            .block_on(queue.submit(job))
            .with_context(|| format!("publishing {name} (jobs printed above are queued)"))?;
        writeln!(out, "queued\t{id}\t{name}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The jobs of `args.paths`, each with the name to show: with `--sha256` one job of every
/// path; otherwise one per detonation `ingest` would build (a run folder, or one log or
/// report), so the workers share a folder's detonations.
fn jobs_of(args: &IngestArgs) -> Result<Vec<(ToSubmit, String)>> {
    let job = |inputs| ToSubmit {
        sha256: args.sha256.clone(),
        sample: args.sample.clone(),
        sandbox: args.sandbox.clone(),
        inputs,
    };
    if args.sha256.is_some() {
        let inputs = args
            .paths
            .iter()
            .map(|p| input_of(p))
            .collect::<Result<Vec<_>>>()?;
        let name = args
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(vec![(job(inputs), name)]);
    }
    let detonations = sandscope_ingest::plan(&args.paths, false)?;
    let (detonations, not_logs) = super::ingest::set_aside_non_logs(detonations, &args.paths);
    if !not_logs.is_empty() {
        eprintln!(
            "info: passed over {} file(s) of the folders given that are neither logs nor sandbox reports",
            not_logs.len()
        );
    }
    detonations
        .iter()
        .map(|d| Ok((job(inputs_of(d)?), d.name())))
        .collect()
}

/// A detonation's inputs: its run folder, or its files one by one.
fn inputs_of(detonation: &Detonation) -> Result<Vec<LocalInput>> {
    match detonation.run_folders.as_slice() {
        [folder] => {
            let files = detonation
                .files
                .iter()
                .map(|f| Ok((relative(folder, f)?, f.clone())))
                .collect::<Result<Vec<_>>>()?;
            Ok(vec![LocalInput {
                name: name_of(folder)?,
                is_dir: true,
                files,
            }])
        }
        _ => detonation.files.iter().map(|f| input_of(f)).collect(),
    }
}

/// One path as a job input: a file, or a folder with every file under it.
fn input_of(path: &Path) -> Result<LocalInput> {
    let name = name_of(path)?;
    if !path.is_dir() {
        return Ok(LocalInput {
            name,
            is_dir: false,
            files: vec![(String::new(), path.to_path_buf())],
        });
    }
    let walked =
        sandscope_read::walk(path).with_context(|| format!("reading {}", path.display()))?;
    let files = walked
        .into_iter()
        .map(|f| Ok((relative(path, &f)?, f)))
        .collect::<Result<Vec<_>>>()?;
    Ok(LocalInput {
        name,
        is_dir: true,
        files,
    })
}

fn name_of(path: &Path) -> Result<String> {
    let full = std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
    Ok(full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".to_owned()))
}

/// `file` under `folder`, `/`-separated.
fn relative(folder: &Path, file: &Path) -> Result<String> {
    let rel = file
        .strip_prefix(folder)
        .with_context(|| format!("{} is not under {}", file.display(), folder.display()))?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}
