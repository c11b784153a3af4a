//! `sandscope retrohunt` over stored detonations finds exactly what `sandscope hunt` finds over
//! the same logs (the vendored EVTX samples, with the bundled SigmaHQ rules).

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(folder)
}

fn run(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (rule id, event time, record id) of every hit, sorted.
fn hits(answer: &serde_json::Value) -> Vec<(String, String, u64)> {
    let mut all: Vec<_> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["rule_id"].as_str().unwrap_or_default().to_string(),
                h["time"].as_str().unwrap().to_string(),
                h["record_id"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn retrohunt_over_stored_logs_finds_what_hunt_finds_over_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let store = store.to_str().unwrap();
    let logs = [
        data("mdecrevoisier_EVTX-to-MITRE-Attack"),
        data("sbousseaden_EVTX-ATTACK-SAMPLES"),
    ];
    let logs: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(["ingest", "--no-sigma", "--data", store])
        .args(&logs)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut hunt_args = vec!["hunt", "--format", "json"];
    hunt_args.extend(&logs);
    let hunted = run(&hunt_args);
    let retro = run(&[
        "retrohunt",
        "--bundled",
        "--format",
        "json",
        "--data",
        store,
    ]);
    assert!(!hits(&hunted).is_empty());
    assert_eq!(hits(&retro), hits(&hunted));
    // Each hit names the stored report its log belongs to.
    assert!(
        retro["hits"].as_array().unwrap().iter().all(|h| h["file"]
            .as_str()
            .unwrap()
            .contains("_Microsoft Sysinternals/")),
        "{retro}"
    );

    // Nothing was analysed after 2999: no log is hunted.
    let none = run(&[
        "retrohunt",
        "--bundled",
        "--format",
        "json",
        "--after",
        "2999-01-01",
        "--data",
        store,
    ]);
    assert_eq!(none["hits"], serde_json::json!([]));
}
