//! A development server: the real router over the in-memory test backend, taking the same
//! arguments as `sandscope serve`, so the vt-py and browser suites can be run against the HTTP
//! layer before the store is wired in:
//!
//! ```text
//! cargo build -p sandscope-server --example serve_memory
//! SANDSCOPE_BIN=target/debug/examples/serve_memory tests/e2e.sh
//! ```
//!
//! Not the product: reports live in memory and searches use a toy matcher.

#[path = "../tests/support/memory_backend.rs"]
mod memory_backend;

use memory_backend::MemoryBackend;
use sandscope_server::{ApiKeys, Backend, Role, ServerConfig, Upload};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        args.next();
    }
    let mut listen = "127.0.0.1:8080".to_string();
    let mut ingest = Vec::new();
    let mut keys = ApiKeys::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs a value")?,
            "--ingest" => ingest.push(PathBuf::from(args.next().ok_or("--ingest needs a value")?)),
            "--api-key" => {
                keys.add(&args.next().ok_or("--api-key needs a value")?, Role::Ingest)?
            }
            "--keys-file" => {
                keys.load_keys_file(Path::new(&args.next().ok_or("--keys-file needs a value")?))?
            }
            "--data" | "--rules" => {
                args.next();
            }
            "--help" => {
                println!(
                    "serve_memory [serve] [--listen ADDR] [--ingest PATH]... [--api-key K] [--keys-file F]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if keys.is_empty() {
        return Err("give --api-key or --keys-file".into());
    }
    let backend = Arc::new(MemoryBackend::new());
    let mut files = Vec::new();
    for path in &ingest {
        files.extend(sandscope_read::walk(path)?);
    }
    for file in files {
        let upload = Upload {
            original_name: file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            path: file.clone(),
            sha256: None,
            sandbox: None,
        };
        match backend.ingest(&upload) {
            Ok(outcome) => eprintln!("ingested {}: {:?}", file.display(), outcome.report_ids),
            Err(e) => eprintln!("skipped {}: {e}", file.display()),
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = ServerConfig {
        public_url: url.clone(),
        ..ServerConfig::default()
    };
    let app = sandscope_server::router(backend, keys, config);
    println!("Sandscope (in-memory development server) at {url}/");
    sandscope_server::serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
