//! What the `/api/v3/intelligence` tests (Livehunt rulesets, Retrohunt jobs) share: the two
//! keys, a router over a scratch store, the seed logs, the shadow-copy Sigma rule, and a JSON
//! call with a key. Included by those tests beside `http.rs` and `store.rs`.

use super::http::{Answer, send};
use super::store::Scratch;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use sandscope_server::{ApiKeys, Role, ServerConfig, router};
use serde_json::Value;
use std::path::PathBuf;

pub const READ_KEY: &str = "read-key-0001";
pub const INGEST_KEY: &str = "ingest-key-0001";

/// The Sigma rule matching the ransomware seed's `vssadmin delete shadows`.
pub const SHADOWS: &str = include_str!("../../../hunting/tests/rules/shadow_copies_deleted.yml");

/// The API over `scratch`, with a read key and an ingest key, links under `http://sandscope.test`.
pub fn app(scratch: &Scratch) -> Router {
    let mut keys = ApiKeys::new();
    keys.add(READ_KEY, Role::Read).unwrap();
    keys.add(INGEST_KEY, Role::Ingest).unwrap();
    let config = ServerConfig {
        public_url: "http://sandscope.test".to_string(),
        ..ServerConfig::default()
    };
    router(scratch.backend.clone(), keys, config)
}

pub fn seed(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed")
        .join(name)
}

/// `method uri` with `key` and an optional JSON body.
pub async fn call(app: &Router, method: &str, uri: &str, key: &str, body: Option<Value>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-apikey", key)
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(app, request.body(body).unwrap()).await
}
