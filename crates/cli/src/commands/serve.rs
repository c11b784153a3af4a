//! `sandscope serve`: ingest the given logs first (through the same planning as `sandscope
//! ingest`), then serve the VirusTotal-compatible API and the web UI until Ctrl-C or SIGTERM,
//! over HTTP or, with `--tls-cert`/`--tls-key`, HTTPS; with `--watch DIR`, ingest each run
//! that lands in DIR meanwhile (see [`super::watch`]). While it runs, the command line's read
//! commands and `ingest` go through it (see [`super::control`]).

use super::ingest::{IngestArgs, Shown};
use anyhow::{Context, Result, bail};
use clap::Args;
use sandscope_ingest::Pipeline;
use sandscope_server::{ApiKeys, Backend, JobQueue, PgBackend, Role, ServerConfig, StoreBackend};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The data directory: reports, original logs and the search index (created if missing).
    #[arg(long, env = "SANDSCOPE_DATA", default_value = "sandscope-data")]
    pub data: PathBuf,
    /// A PostgreSQL store (postgres://…) instead of the data directory: any number of servers
    /// can serve one store at once.
    #[arg(long, env = "SANDSCOPE_STORE")]
    pub store: Option<String>,
    /// With --store: publish uploads as jobs on this NATS server (nats://HOST:PORT) for
    /// `sandscope worker`s, answering with the job id, instead of building them here.
    #[arg(long, env = "SANDSCOPE_NATS", requires = "store")]
    pub nats: Option<String>,
    /// Address to listen on. Keep it on loopback unless TLS is on (--tls-cert) or a TLS proxy
    /// is in front.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Logs, sandbox reports or run folders to ingest before serving (directories walked
    /// recursively, CAPE run folders as one detonation, as `sandscope ingest` does).
    #[arg(long, num_args = 1..)]
    pub ingest: Vec<PathBuf>,
    #[command(flatten)]
    pub sigma: super::sigma_args::SigmaArgs,
    /// An API key with read and ingest rights (repeatable; at least 8 characters). Without any
    /// key, one is generated and printed.
    #[arg(long = "api-key")]
    pub api_keys: Vec<String>,
    /// A keys file: one `<key> [read|ingest]` per line, `#` comments.
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
    /// Largest accepted upload, in MiB.
    #[arg(long, default_value_t = 256)]
    pub max_upload_mib: u64,
    /// Bytes one upload may expand to when decompressed, in MiB (default: 8 times
    /// --max-upload-mib, within 64 MiB to 4 GiB).
    #[arg(long)]
    pub max_decompressed_mib: Option<u64>,
    /// Bytes all uploads being ingested at once may expand to together, in MiB (default: twice
    /// one upload's).
    #[arg(long)]
    pub max_decompressed_total_mib: Option<u64>,
    /// Memory for one upload's distinct events, in MiB; a log needing more is refused (413).
    #[arg(long, default_value_t = sandscope_ingest::DEFAULT_MEMORY_BUDGET >> 20)]
    pub max_memory_mib: u64,
    /// The URL clients use to reach this server, for `links` in API answers (default:
    /// `http://<listen>`, or `https://<listen>` with TLS).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve an existing data directory without writing to it (read-only media, a snapshot):
    /// searches and reports work, uploads are refused with 403.
    #[arg(long, conflicts_with = "ingest")]
    pub read_only: bool,
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
    #[command(flatten)]
    pub watch: super::watch::WatchArgs,
}

/// Serve the PostgreSQL store at `url`: no owner record, no control socket, no watcher (the
/// process keeps no state; several such servers share the store).
fn run_on_postgres(args: ServeArgs, url: &str) -> Result<ExitCode> {
    if args.read_only || args.watch.watch.is_some() || !args.ingest.is_empty() {
        bail!(
            "--read-only, --watch and --ingest work with a data directory; with --store, ingest with `sandscope ingest --store URL`"
        );
    }
    let (keys, generated) = api_keys(&args)?;
    let store = super::store_choice::open_postgres(url)?;
    let backend = match &args.nats {
        // The workers build uploads, with their own Sigma engines: none here.
        Some(nats) => PgBackend::with_queue(store, Pipeline::new(None), JobQueue::connect(nats)?),
        // The backend loads the store's Livehunt rulesets; uploads raise their notifications.
        None => PgBackend::new(
            store,
            Pipeline::new(args.sigma.engine()?).with_limits(args.ingest_limits()),
        ),
    };
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let http = Http::bind(&args)?;
    http.serve(&args, backend, keys, generated)?;
    Ok(ExitCode::SUCCESS)
}

/// The listening socket, the public URL, the runtime and the TLS setup of one `serve`.
struct Http {
    listener: std::net::TcpListener,
    address: SocketAddr,
    public_url: String,
    runtime: tokio::runtime::Runtime,
    tls: Option<sandscope_server::TlsConfig>,
}

/// Run `sandscope serve`.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    if let Some(url) = args.store.clone() {
        return run_on_postgres(args, &url);
    }
    if args.read_only && args.watch.watch.is_some() {
        bail!("--watch ingests, so it cannot go with --read-only");
    }
    let (keys, generated) = api_keys(&args)?;
    // A read-only server writes nothing, so it leaves no owner record and takes no commands.
    let (store, owner) = if args.read_only {
        (super::control::open_store_for_reading(&args.data)?, None)
    } else {
        let (store, owner) = super::control::open_store(&args.data, "serve")?;
        (store, Some(owner))
    };
    // The backend adds the store's Livehunt rulesets to the pipeline.
    let pipeline = Pipeline::new(args.sigma.engine()?).with_limits(args.ingest_limits());
    let backend = Arc::new(StoreBackend::new(store, pipeline));
    let http = Http::bind(&args)?;
    // From here on the command line's read commands and ingests go through this process.
    let _control = if owner.is_some() {
        Some(super::control::serve_control(
            &args.data,
            backend.clone(),
            &http.public_url,
        )?)
    } else {
        None
    };
    let failed = ingest_first(&backend, &args.ingest)?;
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watcher = match &args.watch.watch {
        Some(dir) => Some(start_watcher(
            dir.clone(),
            &args,
            backend.clone(),
            stop_watching.clone(),
        )?),
        None => None,
    };

    http.serve(&args, backend, keys, generated)?;
    // The run being ingested is stored before the process ends.
    stop_watching.store(true, Ordering::SeqCst);
    // A watcher that failed said why when it stopped.
    let watch_failed = watcher.is_some_and(|w| !matches!(w.join(), Ok(Ok(_))));
    Ok(if watch_failed {
        ExitCode::from(1)
    } else if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

impl Http {
    /// Bound before the first ingest, so a taken port or a bad certificate fails at once.
    fn bind(args: &ServeArgs) -> Result<Http> {
        let tls = args.tls_cert.clone().zip(args.tls_key.clone());
        // Port 0 is resolved here, so the printed URL is the real one.
        let listener = std::net::TcpListener::bind(args.listen)
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener
            .local_addr()
            .with_context(|| format!("listening on {}", args.listen))?;
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| {
                let scheme = if tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{address}")
            })
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        // Checked before the first ingest, so a bad certificate fails at once.
        let tls = match tls {
            Some((cert, key)) => Some(runtime.block_on(sandscope_server::load_tls(&cert, &key))?),
            None => None,
        };
        Ok(Http {
            listener,
            address,
            public_url,
            runtime,
            tls,
        })
    }

    /// Serve `backend` until Ctrl-C or SIGTERM.
    fn serve(
        self,
        args: &ServeArgs,
        backend: Arc<dyn Backend>,
        keys: ApiKeys,
        generated: Option<String>,
    ) -> Result<()> {
        let Http {
            listener,
            address,
            public_url,
            runtime,
            tls,
        } = self;
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
        runtime.block_on(async move {
            listener
                .set_nonblocking(true)
                .context("setting up the listening socket")?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .with_context(|| format!("listening on {address}"))?;
            let app = sandscope_server::router(backend, keys, config);
            if let Some(key) = &generated {
                println!("API key for this run (x-apikey header, and the UI's key box): {key}");
            }
            println!(
                "Sandscope is serving at {public_url}/ — open it in a browser (Ctrl-C stops it)."
            );
            let stop = super::watch::interrupted();
            match tls {
                Some(tls) => sandscope_server::serve_tls(listener, app, tls, stop).await,
                None => sandscope_server::serve(listener, app, stop).await,
            }
            .context("serving HTTP")
        })?;
        Ok(())
    }
}

/// The folder watcher of `--watch`, on its own thread, storing through the server's store and
/// pipeline (as `--ingest` does) until `stop` is set.
fn start_watcher(
    dir: PathBuf,
    args: &ServeArgs,
    backend: Arc<StoreBackend>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<Result<ExitCode>>> {
    super::watch::check_folder(&dir)?;
    let watch = args.watch.clone();
    let data = args.data.clone();
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let sink = super::watch::Sink {
                store: backend.store(),
                pipeline: backend.pipeline(),
                out: &mut std::io::stdout(),
                err: &mut std::io::stderr(),
            };
            let result = super::watch::run(&dir, &watch, &data, sink, &stop);
            if let Err(e) = &result {
                eprintln!("sandscope: the watcher stopped: {}", crate::error_chain(e));
            }
            result
        })
        .context("starting the folder watcher")
}

impl ServeArgs {
    /// What one ingest may spend: decompression per upload and in total, and memory.
    pub fn ingest_limits(&self) -> sandscope_ingest::IngestLimits {
        const MIB: u64 = 1024 * 1024;
        let defaults =
            sandscope_ingest::IngestLimits::for_uploads(self.max_upload_mib.saturating_mul(MIB));
        let per_upload = self
            .max_decompressed_mib
            .map_or(defaults.read.max_decompressed_bytes, |m| {
                m.saturating_mul(MIB)
            });
        let total = self
            .max_decompressed_total_mib
            .map_or(per_upload.saturating_mul(2), |m| m.saturating_mul(MIB));
        let mut limits = sandscope_ingest::IngestLimits::with_decompression(per_upload, total);
        limits.memory_budget = self.max_memory_mib.saturating_mul(MIB);
        limits
    }
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

/// Ingest `paths` before serving, as `sandscope ingest` would (its warnings and skips on
/// standard error, one line of totals). Returns whether some input was skipped.
fn ingest_first(backend: &StoreBackend, paths: &[PathBuf]) -> Result<bool> {
    if paths.is_empty() {
        return Ok(false);
    }
    let args = IngestArgs::of_paths(paths.to_vec());
    let shown = Shown {
        progress: true,
        notes: false,
    };
    let stderr = std::io::stderr();
    let code = super::ingest::execute(
        &args,
        backend.store(),
        backend.pipeline(),
        &mut std::io::sink(),
        &mut stderr.lock(),
        shown,
    )?;
    if code == ExitCode::from(1) {
        bail!("nothing could be ingested from {}", shown_paths(paths));
    }
    Ok(code != ExitCode::SUCCESS)
}

fn shown_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}
