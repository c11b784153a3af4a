//! A load benchmark: many concurrent API clients searching and fetching reports while uploads
//! are ingested, reporting errors and latency percentiles.
//!
//! [`bench_backend`] serves any [`Backend`] on a loopback port through the real router and
//! drives it over real TCP, so the same benchmark measures the in-memory test backend today and
//! the store tomorrow. [`run_load`] drives any running server. [`bench_hostile`] measures
//! the search lanes: one cheap query's latency alone and while clients keep sending expensive
//! queries, and the server's peak memory in each phase. The HTTP client is a minimal
//! HTTP/1.1 keep-alive client (content-length and chunked bodies), enough for our own server
//! and free of extra dependencies.

use crate::auth::{ApiKeys, Role};
use crate::backend::Backend;
use crate::{ServerConfig, router, serve};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Concurrent reading clients (searches and fetches), each with its own connection.
    pub clients: usize,
    /// How long the readers run.
    pub duration: Duration,
    pub api_key: String,
    /// Intelligence queries the readers cycle through.
    pub queries: Vec<String>,
    /// Sample SHA-256s whose behaviours and summaries the readers fetch.
    pub sample_ids: Vec<String>,
    /// A log uploaded again and again by one extra client for the whole run (`None`: no ingest).
    pub ingest_file: Option<PathBuf>,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub requests: u64,
    /// Answers other than 200 and failed connections, readers and ingests together.
    pub errors: u64,
    /// The first few error descriptions.
    pub error_samples: Vec<String>,
    pub ingests: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub elapsed: Duration,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "{} read requests in {:.1} s ({rate:.0}/s), {} ingests alongside, {} errors",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.ingests,
            self.errors
        )?;
        write!(
            f,
            "latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )?;
        for sample in &self.error_samples {
            write!(f, "\n  error: {sample}")?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Serve `backend` on a loopback port and run the load against it.
pub async fn bench_backend(
    backend: Arc<dyn Backend>,
    config: &LoadConfig,
) -> std::io::Result<LoadReport> {
    let server = Loopback::start(backend, &config.api_key, ServerConfig::default()).await?;
    let report = run_load(server.addr, config).await;
    server.stop().await;
    report
}

/// A server on a loopback port, for the benchmarks.
struct Loopback {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Loopback {
    async fn start(
        backend: Arc<dyn Backend>,
        api_key: &str,
        config: ServerConfig,
    ) -> std::io::Result<Loopback> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut keys = ApiKeys::new();
        keys.add(api_key, Role::Ingest)
            .map_err(std::io::Error::other)?;
        let app = router(
            backend,
            keys,
            ServerConfig {
                public_url: format!("http://{addr}"),
                ..config
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
        Ok(Loopback { addr, stop, server })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// What the hostile benchmark sends.
#[derive(Debug, Clone)]
pub struct HostileConfig {
    pub api_key: String,
    /// The cheap query whose latency is measured.
    pub seed_query: String,
    /// Expensive queries the hostile clients cycle through.
    pub hostile_queries: Vec<String>,
    pub hostile_clients: usize,
    /// How long the seed query is measured in each phase.
    pub duration: Duration,
    /// The server under test (search budget, timeout, lanes).
    pub server: ServerConfig,
}

/// Latencies of one series of requests.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    pub count: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    fn of(mut samples: Vec<Duration>, errors: usize) -> Latencies {
        samples.sort_unstable();
        Latencies {
            count: samples.len(),
            errors,
            p50: percentile(&samples, 0.50),
            p99: percentile(&samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answers, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.count,
            self.errors,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// What the hostile benchmark measured.
#[derive(Debug, Clone, Default)]
pub struct HostileReport {
    /// The seed query with no other load.
    pub alone: Latencies,
    /// The seed query while the hostile clients send.
    pub under_attack: Latencies,
    /// How long the hostile answers took, and their statuses with counts.
    pub hostile: Latencies,
    pub hostile_answers: Vec<(u16, u64)>,
    /// Peak resident memory of this process (the server) in each phase, when known (Linux).
    pub peak_rss_alone: Option<u64>,
    pub peak_rss_under_attack: Option<u64>,
    pub error_samples: Vec<String>,
}

impl std::fmt::Display for HostileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: Option<u64>| {
            b.map(|b| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0)))
                .unwrap_or_else(|| "unknown".to_string())
        };
        writeln!(
            f,
            "seed query alone:        {}; server peak RSS {}",
            self.alone,
            mib(self.peak_rss_alone)
        )?;
        writeln!(
            f,
            "seed query under attack: {}; server peak RSS {}",
            self.under_attack,
            mib(self.peak_rss_under_attack)
        )?;
        let answers: Vec<String> = self
            .hostile_answers
            .iter()
            .map(|(status, n)| format!("{n} × {status}"))
            .collect();
        write!(
            f,
            "hostile queries:         {} ({})",
            self.hostile,
            answers.join(", ")
        )?;
        for sample in &self.error_samples {
            write!(f, "\n  error: {sample}")?;
        }
        Ok(())
    }
}

/// Serve `backend` with `config.server` and measure the seed query alone, then with
/// `hostile_clients` clients sending hostile queries back to back (started a second early so
/// that they are in flight).
pub async fn bench_hostile(
    backend: Arc<dyn Backend>,
    config: &HostileConfig,
) -> std::io::Result<HostileReport> {
    let server = Loopback::start(backend, &config.api_key, config.server.clone()).await?;
    let addr = server.addr;
    let key = config.api_key.as_str();
    let search_path = |q: &str| format!("/api/v3/intelligence/search?limit=10&query={}", encode(q));
    let seed = [search_path(&config.seed_query)];
    let mut report = HostileReport::default();

    reset_peak_rss();
    let alone = repeat(addr, key, &seed, Instant::now() + config.duration).await;
    report.peak_rss_alone = peak_rss();
    report.alone = Latencies::of(alone.latencies, alone.errors.len());
    report
        .error_samples
        .extend(alone.errors.into_iter().take(5));

    reset_peak_rss();
    let hostile_paths: Vec<String> = config
        .hostile_queries
        .iter()
        .map(|q| search_path(q))
        .collect();
    let warm_up = Duration::from_secs(1);
    let until = Instant::now() + warm_up + config.duration;
    let mut hostile = Vec::new();
    for client in 0..config.hostile_clients {
        let key = config.api_key.clone();
        let mut paths = hostile_paths.clone();
        let first = client % paths.len().max(1);
        paths.rotate_left(first);
        hostile.push(tokio::spawn(async move {
            repeat(addr, &key, &paths, until).await
        }));
    }
    tokio::time::sleep(warm_up).await;
    let attacked = repeat(addr, key, &seed, until).await;
    report.under_attack = Latencies::of(attacked.latencies, attacked.errors.len());
    report
        .error_samples
        .extend(attacked.errors.into_iter().take(5));
    let mut answers = std::collections::BTreeMap::new();
    let mut hostile_latencies = Vec::new();
    for handle in hostile {
        let outcome = handle.await.map_err(std::io::Error::other)?;
        for status in outcome.statuses {
            *answers.entry(status).or_insert(0u64) += 1;
        }
        hostile_latencies.extend(outcome.latencies);
        hostile_latencies.extend(outcome.error_latencies);
    }
    report.peak_rss_under_attack = peak_rss();
    report.hostile_answers = answers.into_iter().collect();
    report.hostile = Latencies::of(hostile_latencies, 0);
    server.stop().await;
    Ok(report)
}

/// What one benchmark client saw.
#[derive(Default)]
struct Series {
    /// Latencies of the 200 answers.
    latencies: Vec<Duration>,
    /// Latencies of the other answers.
    error_latencies: Vec<Duration>,
    /// Every answer's status (0: no answer).
    statuses: Vec<u16>,
    errors: Vec<String>,
}

/// One client sending `paths` in turn, each after the previous answer, until `until`.
async fn repeat(addr: SocketAddr, key: &str, paths: &[String], until: Instant) -> Series {
    let mut series = Series::default();
    let mut connection = None;
    let mut turn = 0;
    while Instant::now() < until && !paths.is_empty() {
        let path = &paths[turn % paths.len()];
        turn += 1;
        let started = Instant::now();
        let answer = get(&mut connection, addr, key, path).await;
        let took = started.elapsed();
        match answer {
            Ok((200, _)) => {
                series.statuses.push(200);
                series.latencies.push(took);
            }
            Ok((status, body)) => {
                series.statuses.push(status);
                series.error_latencies.push(took);
                series.errors.push(format!(
                    "{status} for {path}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
            Err(e) => {
                series.statuses.push(0);
                series.error_latencies.push(took);
                series.errors.push(format!("{path}: {e}"));
            }
        }
    }
    series
}

/// One keep-alive GET; the connection is reopened after a failure.
async fn get(
    connection: &mut Option<BufReader<TcpStream>>,
    addr: SocketAddr,
    key: &str,
    path: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    let result = async {
        if connection.is_none() {
            *connection = Some(BufReader::new(TcpStream::connect(addr).await?));
        }
        let stream = connection
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no connection"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nx-apikey: {key}\r\nConnection: keep-alive\r\n\r\n"
        );
        stream.get_mut().write_all(request.as_bytes()).await?;
        read_response(stream).await
    }
    .await;
    if result.is_err() {
        *connection = None;
    }
    result
}

/// This process's peak resident memory since the last [`reset_peak_rss`] (Linux only).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Start a new peak-memory measurement (Linux: writing 5 to `clear_refs` resets `VmHWM`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Drive the server at `addr`.
pub async fn run_load(addr: SocketAddr, config: &LoadConfig) -> std::io::Result<LoadReport> {
    let config = Arc::new(config.clone());
    let started = Instant::now();
    let deadline = started + config.duration;
    let mut readers = Vec::new();
    for client in 0..config.clients.max(1) {
        let config = config.clone();
        readers.push(tokio::spawn(async move {
            reader(addr, &config, client, deadline).await
        }));
    }
    let ingester = config.ingest_file.clone().map(|file| {
        let key = config.api_key.clone();
        tokio::spawn(async move { ingester(addr, &key, &file, deadline).await })
    });

    let mut report = LoadReport::default();
    let mut latencies = Vec::new();
    for handle in readers {
        let outcome = handle.await.map_err(std::io::Error::other)?;
        report.requests += outcome.latencies.len() as u64 + outcome.errors.len() as u64;
        report.errors += outcome.errors.len() as u64;
        latencies.extend(outcome.latencies);
        for e in outcome.errors {
            if report.error_samples.len() < 10 {
                report.error_samples.push(e);
            }
        }
    }
    if let Some(handle) = ingester {
        let outcome = handle.await.map_err(std::io::Error::other)?;
        report.ingests = outcome.latencies.len() as u64;
        report.errors += outcome.errors.len() as u64;
        for e in outcome.errors {
            if report.error_samples.len() < 10 {
                report.error_samples.push(format!("ingest: {e}"));
            }
        }
    }
    report.elapsed = started.elapsed();
    latencies.sort_unstable();
    report.p50 = percentile(&latencies, 0.50);
    report.p90 = percentile(&latencies, 0.90);
    report.p99 = percentile(&latencies, 0.99);
    report.max = latencies.last().copied().unwrap_or_default();
    Ok(report)
}

#[derive(Default)]
struct ClientOutcome {
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

fn encode(text: &str) -> String {
    crate::api::encode_component(text)
}

async fn reader(
    addr: SocketAddr,
    config: &LoadConfig,
    client: usize,
    deadline: Instant,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut turn = client;
    while Instant::now() < deadline {
        turn += 1;
        let sample = config
            .sample_ids
            .get(turn % config.sample_ids.len().max(1))
            .cloned()
            .unwrap_or_default();
        let path = match turn % 4 {
            0 | 1 if !config.queries.is_empty() => format!(
                "/api/v3/intelligence/search?limit=20&query={}",
                encode(&config.queries[turn % config.queries.len()])
            ),
            2 => format!("/api/v3/files/{sample}/behaviours?limit=10"),
            _ => format!("/api/v3/files/{sample}/behaviour_summary"),
        };
        let started = Instant::now();
        let result = async {
            if connection.is_none() {
                connection = Some(BufReader::new(TcpStream::connect(addr).await?));
            }
            let stream = connection.as_mut().ok_or_else(|| std::io::Error::other("no connection"))?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nx-apikey: {}\r\nConnection: keep-alive\r\n\r\n",
                config.api_key
            );
            stream.get_mut().write_all(request.as_bytes()).await?;
            read_response(stream).await
        }
        .await;
        match result {
            Ok((200, _)) => outcome.latencies.push(started.elapsed()),
            Ok((status, body)) => {
                outcome.errors.push(format!(
                    "{status} for {path}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
            Err(e) => {
                connection = None;
                outcome.errors.push(format!("{path}: {e}"));
            }
        }
    }
    outcome
}

async fn ingester(
    addr: SocketAddr,
    key: &str,
    file: &std::path::Path,
    deadline: Instant,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let bytes = match tokio::fs::read(file).await {
        Ok(b) => b,
        Err(e) => {
            outcome.errors.push(format!("{}: {e}", file.display()));
            return outcome;
        }
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().replace('"', ""))
        .unwrap_or_default();
    let boundary = "sandscope-load-7b41c9";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    while Instant::now() < deadline {
        let started = Instant::now();
        let result = async {
            let mut stream = BufReader::new(TcpStream::connect(addr).await?);
            let head = format!(
                "POST /api/v3/sandscope/ingest HTTP/1.1\r\nHost: {addr}\r\nx-apikey: {key}\r\n\
                 Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            stream.get_mut().write_all(head.as_bytes()).await?;
            stream.get_mut().write_all(&body).await?;
            read_response(&mut stream).await
        }
        .await;
        match result {
            Ok((200, _)) => outcome.latencies.push(started.elapsed()),
            Ok((status, body)) => outcome.errors.push(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            Err(e) => outcome.errors.push(e.to_string()),
        }
    }
    outcome
}

/// The benchmark reads whole answers into memory; anything bigger is an error, not an OOM.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Read one HTTP/1.1 response: status and body.
async fn read_response(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(bad("connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Err(bad("headers cut short"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            stream.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad("chunk size"))?;
            if body.len().saturating_add(size) > MAX_BODY {
                return Err(bad("response body too large"));
            }
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = content_length {
        if length > MAX_BODY {
            return Err(bad("response body too large"));
        }
        body.resize(length, 0);
        stream.read_exact(&mut body).await?;
    }
    Ok((status, body))
}
