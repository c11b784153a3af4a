//! A server over the real store in a scratch data directory, with its upload spool in a
//! scratch directory of its own, and the hostile uploads the tests send it.

#![allow(dead_code)] // each test binary uses its own part

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flate2::Compression;
use flate2::write::GzEncoder;
use sandscope_ingest::{IngestLimits, Pipeline};
use sandscope_server::{ApiKeys, Role, ServerConfig, StoreBackend, router};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub const KEY: &str = "ingest-key-0001";

pub struct Server {
    pub app: Router,
    pub backend: Arc<StoreBackend>,
    pub data: tempfile::TempDir,
    pub spool_base: tempfile::TempDir,
}

impl Server {
    pub fn new(limits: IngestLimits) -> Self {
        let data = tempfile::tempdir().unwrap();
        let spool_base = tempfile::tempdir().unwrap();
        Self::in_dirs(limits, data, spool_base)
    }

    pub fn in_dirs(
        limits: IngestLimits,
        data: tempfile::TempDir,
        spool_base: tempfile::TempDir,
    ) -> Self {
        let pipeline = Pipeline::new(None).with_limits(limits);
        let backend = Arc::new(StoreBackend::open(data.path(), pipeline).unwrap());
        let mut keys = ApiKeys::new();
        keys.add(KEY, Role::Ingest).unwrap();
        let config = ServerConfig {
            upload_dir: Some(spool_base.path().to_path_buf()),
            max_concurrent_ingests: 8,
            ..ServerConfig::default()
        };
        let app = router(backend.clone(), keys, config);
        Server {
            app,
            backend,
            data,
            spool_base,
        }
    }

    /// Every file left under the spool directory (folders themselves do not count).
    pub fn spooled_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.spool_base.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
        out
    }

    pub async fn upload(&self, file_name: &str, bytes: &[u8]) -> (StatusCode, Value) {
        upload(&self.app, file_name, bytes).await
    }
}

/// `POST /api/v3/sandscope/ingest` of `bytes` as the client's file `file_name`.
pub async fn upload(app: &Router, file_name: &str, bytes: &[u8]) -> (StatusCode, Value) {
    upload_files(app, &[(file_name, bytes)], &[]).await
}

/// `POST /api/v3/sandscope/ingest` of several files (name, bytes) and form fields in one request.
pub async fn upload_files(
    app: &Router,
    files: &[(&str, &[u8])],
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (content_type, body) = crate::http::multipart_body(files, fields);
    let request = Request::post("/api/v3/sandscope/ingest")
        .header("x-apikey", KEY)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// A gzip'd flood: one process creation and `events` file creations (see
/// `sandscope_ingest::flood`).
pub fn gzip_flood(events: u64, distinct: bool) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    sandscope_ingest::flood::write_file_creation_flood(&mut gz, events, distinct).unwrap();
    gz.finish().unwrap()
}

/// This process's peak resident memory (`VmHWM`), in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}
