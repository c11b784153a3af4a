//! `sandscope serve`: ingest the given logs first (with progress), then serve the
//! VirusTotal-compatible API and the web UI until Ctrl-C.
//!
//! The storage backend is passed in by `main.rs` (it opens the store in `--data` with the
//! Sigma rules of `--rules`), so this module only deals with arguments, keys, progress and the
//! runtime.

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sandscope_server::{ApiKeys, Backend, Role, ServerConfig, Upload};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The data directory: reports, original logs and the search index (created if missing).
    #[arg(long, env = "SANDSCOPE_DATA", default_value = "sandscope-data")]
    pub data: PathBuf,
    /// Address to listen on. Keep it on loopback unless a TLS proxy is in front.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Logs or sandbox reports to ingest before serving (files, or directories walked recursively).
    #[arg(long, num_args = 1..)]
    pub ingest: Vec<PathBuf>,
    #[command(flatten)]
    pub sigma: super::sigma_args::SigmaArgs,
    /// An API key with read and ingest rights (repeatable). Without any key, one is generated
    /// and printed.
    #[arg(long = "api-key")]
    pub api_keys: Vec<String>,
    /// A keys file: one `<key> [read|ingest]` per line, `#` comments.
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
    /// Largest accepted upload, in MiB.
    #[arg(long, default_value_t = 256)]
    pub max_upload_mib: u64,
    /// The URL clients use to reach this server, for `links` in API answers (default:
    /// `http://<listen>`).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Seconds a search may run before it is stopped and answered 504.
    #[arg(long, value_parser = super::search::seconds, default_value = "10")]
    pub search_timeout: std::time::Duration,
    /// Work units one search may spend (candidates, postings and positions examined) before
    /// it is stopped and answered 400.
    #[arg(long, default_value_t = sandscope_server::DEFAULT_SEARCH_WORK)]
    pub search_budget: u64,
    /// Expensive searches run at once (each on one thread); default: half the cores.
    #[arg(long)]
    pub heavy_searches: Option<usize>,
}

/// Run `sandscope serve` with the backend `open_backend` builds from the arguments.
pub fn run(
    args: ServeArgs,
    open_backend: impl FnOnce(&ServeArgs) -> Result<Arc<dyn Backend>>,
) -> Result<ExitCode> {
    let (keys, generated) = api_keys(&args)?;
    let backend = open_backend(&args)
        .with_context(|| format!("opening the data directory {}", args.data.display()))?;
    let failed = ingest_all(backend.as_ref(), &args.ingest)?;

    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen))
        .trim_end_matches('/')
        .to_string();
    let config = ServerConfig {
        public_url: public_url.clone(),
        upload_limit: args.max_upload_mib.saturating_mul(1024 * 1024),
        ..ServerConfig::default()
    };
    let config = ServerConfig {
        search_timeout: args.search_timeout,
        search_work: args.search_budget,
        heavy_searches: args.heavy_searches.unwrap_or(config.heavy_searches),
        ..config
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let app = sandscope_server::router(backend, keys, config);
        if let Some(key) = &generated {
            println!("API key for this run (x-apikey header, and the UI's key box): {key}");
        }
        println!("Sandscope is serving at {public_url}/ — open it in a browser (Ctrl-C stops it).");
        sandscope_server::serve(listener, app, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving HTTP")
    })?;
    Ok(if failed > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// The accepted keys, and the key generated for this run when none was given.
fn api_keys(args: &ServeArgs) -> Result<(ApiKeys, Option<String>)> {
    let mut keys = ApiKeys::new();
    for key in &args.api_keys {
        keys.add(key, Role::Ingest)
            .map_err(|message| anyhow::anyhow!("--api-key: {message}"))?;
    }
    if let Some(path) = &args.keys_file {
        keys.load_keys_file(path)?;
    }
    if !keys.is_empty() {
        return Ok((keys, None));
    }
    let key = random_key().context("generating an API key (give --api-key instead)")?;
    keys.add(&key, Role::Ingest)
        .map_err(|message| anyhow::anyhow!("generated key: {message}"))?;
    Ok((keys, Some(key)))
}

fn random_key() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn files_under(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.is_dir() {
        let mut children = std::fs::read_dir(path)
            .with_context(|| format!("{}", path.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}", path.display()))?;
        children.sort();
        for child in children {
            files_under(&child, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Ingest every file under `paths`; returns how many failed (each is reported, none stops the
/// rest).
fn ingest_all(backend: &dyn Backend, paths: &[PathBuf]) -> Result<usize> {
    let mut files = Vec::new();
    for path in paths {
        files_under(path, &mut files)?;
    }
    if files.is_empty() {
        return Ok(0);
    }
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("ingesting {bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    let mut reports = 0;
    for file in files {
        bar.set_message(file.display().to_string());
        let upload = Upload {
            original_name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: file.clone(),
            sha256: None,
            sandbox: None,
        };
        match backend.ingest(&upload) {
            Ok(outcome) => {
                reports += outcome.report_ids.len();
                for warning in outcome.warnings {
                    bar.println(format!("warning: {}: {warning}", file.display()));
                }
            }
            Err(err) => {
                failed += 1;
                bar.println(format!("error: {}: {err}", file.display()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "ingested {reports} report(s) from {} file(s), {failed} failed",
        bar.length().unwrap_or(0)
    );
    if failed > 0 && reports == 0 {
        bail!("nothing could be ingested");
    }
    Ok(failed)
}
