//! A load benchmark: many concurrent API clients searching and fetching reports while uploads
//! are ingested, reporting errors and latency percentiles.
//!
//! [`bench_backend`] serves any [`Backend`] on a loopback port through the real router and
//! drives it over real TCP, so the same benchmark measures the in-memory test backend today and
//! the store tomorrow. [`run_load`] drives any running server. The HTTP client is a minimal
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut keys = ApiKeys::new();
    keys.add(&config.api_key, Role::Ingest)
        .map_err(std::io::Error::other)?;
    let app = router(
        backend,
        keys,
        ServerConfig {
            public_url: format!("http://{addr}"),
            ..ServerConfig::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));
    let report = run_load(addr, config).await;
    let _ = stop.send(());
    let _ = server.await;
    report
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
    let pick = |q: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index]
    };
    report.p50 = pick(0.50);
    report.p90 = pick(0.90);
    report.p99 = pick(0.99);
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
