//! Retrohunt over a store of more than 2,000 detonations (the vendored EVTX files stored 84
//! times each under new sample ids, by `bench retrohunt --data`): `sandscope retrohunt` finds
//! exactly what `sandscope hunt` finds over the same files, 84 times over; and a job of the real
//! `sandscope serve`, killed with `kill -9` mid-way, is resumed by the next `serve` from its
//! checkpoint and ends with exactly the matches of a job that ran uninterrupted.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::Server;
use support::retrohunt::{
    ANY_EXE, create, filled_store, job, json_of, matches, vendored_logs, wait,
};

const COPIES: usize = 84;

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

#[test]
fn retrohunt_over_2000_stored_detonations_equals_hunt_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let corpus = vendored_logs();
    let corpus = corpus.to_str().unwrap();
    let stored = filled_store(data, COPIES) as usize;
    assert!(stored >= 2_000, "{stored} detonations");

    // The same files `bench` stored: the corpus's EVTX files outside `broken/`.
    let files: Vec<String> = sandscope_read::bench::corpus_evtx(Path::new(corpus))
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(stored, files.len() * COPIES);
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
    let seen = wait(&url, &killed, Duration::from_secs(300), |a| {
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
    let resumed = wait(&url, &killed, Duration::from_secs(300), |a| {
        a["status"] == "finished"
    });
    assert_eq!(resumed["scanned_detonations"], stored, "{resumed}");
    let uninterrupted = create(&url);
    let whole = wait(&url, &uninterrupted, Duration::from_secs(300), |a| {
        a["status"] == "finished"
    });
    assert_eq!(resumed["num_matches"], whole["num_matches"]);
    let after_kill = matches(&url, &killed);
    assert_eq!(after_kill, matches(&url, &uninterrupted));
    let total: u64 = after_kill.values().sum();
    assert_eq!(total as usize, exe_hits * COPIES);
}
