//! Driving Retrohunt jobs through a running server's API, shared by the Retrohunt tests of
//! both stores: one Sigma rule that matches most vendored logs, create, poll, page through
//! matching files.

use super::{SERVER_KEY, sandscope_ok};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every process started from an `.exe`: matches in most vendored logs.
pub const ANY_EXE: &str = "title: Any process started from an exe
id: 8d1c7a4e-1f0b-4f6e-9d7a-3b2c1e0f9a11
status: test
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '.exe'
  condition: selection
level: low
";

/// The vendored logs (`tests/data`).
pub fn vendored_logs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// `sandscope ARGS…`'s standard output as JSON.
pub fn json_of(args: &[&str]) -> Value {
    serde_json::from_slice(&sandscope_ok(args).stdout).expect("JSON output")
}

/// `method` (GET or POST) of `/api/v3{path}`, with a JSON `body` or none; the JSON answer.
pub fn api(url: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let uri = format!("{}/api/v3{path}", url.trim_end_matches('/'));
    let answer = match body {
        Some(body) => ureq::post(&uri)
            .header("x-apikey", SERVER_KEY)
            .header("content-type", "application/json")
            .send(body.to_string()),
        None if method == "GET" => ureq::get(&uri).header("x-apikey", SERVER_KEY).call(),
        None => ureq::post(&uri).header("x-apikey", SERVER_KEY).send_empty(),
    };
    let text = answer
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        .body_mut()
        .read_to_string()
        .expect("answer body");
    serde_json::from_str(&text).expect("JSON answer")
}

/// A job's attributes.
pub fn job(url: &str, id: &str) -> Value {
    api(
        url,
        "GET",
        &format!("/intelligence/retrohunt_jobs/{id}"),
        None,
    )["data"]["attributes"]
        .clone()
}

/// The job's attributes once `done` holds, polled for at most `within`.
pub fn wait(url: &str, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let attributes = job(url, id);
        if done(&attributes) {
            return attributes;
        }
        assert!(Instant::now() < deadline, "job {id} stuck: {attributes}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// (report, rule) → hits of every matching file of a job, each seen once.
pub fn matches(url: &str, id: &str) -> BTreeMap<(String, String), u64> {
    let mut all = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = api(
            url,
            "GET",
            &format!("/intelligence/retrohunt_jobs/{id}/matching_files?limit=300&cursor={cursor}"),
            None,
        );
        for file in page["data"].as_array().expect("data") {
            let context = &file["context_attributes"];
            let key = (
                context["behaviour_id"]
                    .as_str()
                    .expect("report")
                    .to_string(),
                context["rule_name"].as_str().expect("rule").to_string(),
            );
            let hits = context["hits"].as_u64().expect("hits");
            assert!(all.insert(key, hits).is_none(), "a match twice: {file}");
        }
        match page["meta"]["cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return all,
        }
    }
}

/// Start a job of [`ANY_EXE`]; its id.
pub fn create(url: &str) -> String {
    let body = json!({"data": {"type": "retrohunt_job", "attributes": {"rules": ANY_EXE}}});
    api(url, "POST", "/intelligence/retrohunt_jobs", Some(body))["data"]["id"]
        .as_str()
        .expect("job id")
        .to_string()
}

/// Store the vendored EVTX files `copies` times under new sample ids in the data directory
/// `data` (`bench retrohunt --data`); how many detonations it holds.
pub fn filled_store(data: &str, copies: usize) -> u64 {
    let corpus = vendored_logs();
    let copies = copies.to_string();
    let filled = sandscope_ok(&[
        "bench",
        "retrohunt",
        "--corpus",
        corpus.to_str().expect("UTF-8 path"),
        "--copies",
        &copies,
        "--data",
        data,
    ]);
    let printed = String::from_utf8_lossy(&filled.stdout).into_owned();
    printed
        .strip_prefix("store: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bench output: {printed}"))
}
