//! Retrohunt over a store of more than 2,000 detonations (the vendored EVTX files stored 84
//! times each under new sample ids, by `bench retrohunt --data`): `sandscope retrohunt` finds
//! exactly what `sandscope hunt` finds over the same files, 84 times over; and a job of the real
//! `sandscope serve`, killed with `kill -9` mid-way, is resumed by the next `serve` from its
//! checkpoint and ends with exactly the matches of a job that ran uninterrupted.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{SERVER_KEY, Server, sandscope_ok};

const COPIES: usize = 84;

/// Every process started from an `.exe`: matches in most vendored logs.
const ANY_EXE: &str = "title: Any process started from an exe
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

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// (rule id, event time, record id) → how many hits.
fn hit_counts(answer: &Value) -> BTreeMap<(String, String, u64), usize> {
    let mut counts = BTreeMap::new();
    for h in answer["hits"].as_array().expect("hits") {
        let key = (
            h["rule_id"].as_str().unwrap_or_default().to_string(),
            h["time"].as_str().expect("time").to_string(),
            h["record_id"].as_u64().unwrap_or_default(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_slice(&sandscope_ok(args).stdout).expect("JSON output")
}

fn api(url: &str, method: &str, path: &str, body: Option<Value>) -> Value {
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

fn job(url: &str, id: &str) -> Value {
    api(
        url,
        "GET",
        &format!("/intelligence/retrohunt_jobs/{id}"),
        None,
    )["data"]["attributes"]
        .clone()
}

fn wait(url: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
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
fn matches(url: &str, id: &str) -> BTreeMap<(String, String), u64> {
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

fn create(url: &str) -> String {
    let body = json!({"data": {"type": "retrohunt_job", "attributes": {"rules": ANY_EXE}}});
    api(url, "POST", "/intelligence/retrohunt_jobs", Some(body))["data"]["id"]
        .as_str()
        .expect("job id")
        .to_string()
}

#[test]
fn retrohunt_over_2000_stored_detonations_equals_hunt_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let corpus = corpus();
    let corpus = corpus.to_str().unwrap();
    let copies = COPIES.to_string();
    let filled = sandscope_ok(&[
        "bench",
        "retrohunt",
        "--corpus",
        corpus,
        "--copies",
        &copies,
        "--data",
        data,
    ]);
    let printed = String::from_utf8_lossy(&filled.stdout).into_owned();
    let stored: usize = printed
        .strip_prefix("store: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bench output: {printed}"));
    assert!(stored >= 2_000, "{printed}");

    // The same files `bench` stored: the corpus's EVTX files outside `broken/`.
    let files: Vec<String> = sandscope_read::bench::corpus_evtx(Path::new(corpus))
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(stored, files.len() * COPIES, "{printed}");
    let mut hunt_args = vec!["hunt", "--format", "json"];
    hunt_args.extend(files.iter().map(String::as_str));
    let hunted = hit_counts(&json_of(&hunt_args));
    let retro = hit_counts(&json_of(&[
        "retrohunt",
        "--bundled",
        "--format",
        "json",
        "--data",
        data,
    ]));
    assert!(!hunted.is_empty());
    let expected: BTreeMap<_, _> = hunted
        .iter()
        .map(|(k, n)| (k.clone(), n * COPIES))
        .collect();
    assert_eq!(retro, expected);

    // A job killed mid-way resumes under the next server.
    let rule = dir.path().join("any_exe.yml");
    std::fs::write(&rule, ANY_EXE).unwrap();
    let mut one_rule = vec!["hunt", "--format", "json", "--no-default-rules", "--rules"];
    one_rule.push(rule.to_str().unwrap());
    one_rule.extend(files.iter().map(String::as_str));
    let exe_hits: usize = hit_counts(&json_of(&one_rule)).values().sum();
    assert!(exe_hits > 0);

    let (mut server, url) = Server::start(data);
    let killed = create(&url);
    let seen = wait(&url, &killed, |a| {
        a["status"] == "running" && a["scanned_detonations"].as_u64() > Some(0)
    });
    server.signal("-KILL");
    assert!(
        seen["scanned_detonations"].as_u64().unwrap() < stored as u64,
        "the job finished before the kill: {seen}"
    );
    drop(server);

    let (_server, url) = Server::start(data);
    let reopened = job(&url, &killed);
    assert_eq!(reopened["resumed"], 1, "{reopened}");
    let resumed = wait(&url, &killed, |a| a["status"] == "finished");
    assert_eq!(resumed["scanned_detonations"], stored, "{resumed}");
    let uninterrupted = create(&url);
    let whole = wait(&url, &uninterrupted, |a| a["status"] == "finished");
    assert_eq!(resumed["num_matches"], whole["num_matches"]);
    let after_kill = matches(&url, &killed);
    assert_eq!(after_kill, matches(&url, &uninterrupted));
    let total: u64 = after_kill.values().sum();
    assert_eq!(total as usize, exe_hits * COPIES);
}
