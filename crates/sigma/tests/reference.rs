//! Rule by rule and file by file, our hits on the corpus EVTX files against Chainsaw's and
//! Hayabusa's (`peer-hits-by-file.tsv`, a copy of `shared/reference/sigma-hits-by-file.tsv`).
//!
//! Where the two peers agree we must agree. Every other (file, rule) where the three counts are
//! not all equal — including rules neither peer fires — is listed with its reason in
//! `reference-differences.tsv`; the computed differences must equal that list exactly, so a new
//! difference (or a fixed one) fails until the list is updated with a reason.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const PEERS: &str = include_str!("peer-hits-by-file.tsv");
const DIFFERENCES: &str = include_str!("reference-differences.tsv");

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Counts {
    chainsaw: u64,
    hayabusa: u64,
    sandscope: u64,
}

type Key = (String, String); // (corpus-relative file, rule id)

fn peer_counts() -> (BTreeMap<Key, Counts>, BTreeMap<String, String>) {
    let mut counts: BTreeMap<Key, Counts> = BTreeMap::new();
    let mut titles = BTreeMap::new();
    for line in PEERS.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "bad peer row: {line}");
        let hits: u64 = cols[4].parse().unwrap();
        let entry = counts
            .entry((cols[1].to_string(), cols[3].to_string()))
            .or_default();
        match cols[0] {
            "chainsaw" => entry.chainsaw += hits,
            "hayabusa" => entry.hayabusa += hits,
            other => panic!("unknown tool {other}"),
        }
        titles.insert(cols[3].to_string(), cols[2].to_string());
    }
    (counts, titles)
}

/// Our hits per rule id in one EVTX file.
fn our_counts(path: &Path) -> BTreeMap<String, u64> {
    let (engine, _) = common::bundled();
    let read = sandscope_read::read_all(path).expect("corpus file reads");
    let mut out = BTreeMap::new();
    for (_, m) in engine.evaluate_all(&read.events) {
        let rule = engine.rule(m.rule).unwrap();
        *out.entry(rule.id.clone().unwrap_or_else(|| rule.title.clone()))
            .or_default() += 1;
    }
    out
}

/// (file, rule) → counts for the given files, keeping only rows where the three differ.
fn differences(files: &[(String, std::path::PathBuf)]) -> BTreeMap<Key, Counts> {
    let (peers, _) = peer_counts();
    let mut all: BTreeMap<Key, Counts> = BTreeMap::new();
    let wanted: BTreeSet<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    for (key, counts) in &peers {
        if wanted.contains(key.0.as_str()) {
            all.insert(key.clone(), *counts);
        }
    }
    for (rel, path) in files {
        for (rule, n) in our_counts(path) {
            all.entry((rel.clone(), rule)).or_default().sandscope = n;
        }
    }
    all.into_iter()
        .filter(|(_, c)| !(c.chainsaw == c.hayabusa && c.hayabusa == c.sandscope))
        .collect()
}

fn listed_differences() -> BTreeMap<Key, (Counts, String)> {
    let mut out = BTreeMap::new();
    for line in DIFFERENCES.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 8, "bad difference row: {line}");
        let counts = Counts {
            chainsaw: cols[3].parse().unwrap(),
            hayabusa: cols[4].parse().unwrap(),
            sandscope: cols[5].parse().unwrap(),
        };
        assert!(
            matches!(
                cols[6],
                "peer-bug" | "mapping-gap" | "sandscope-bug" | "not-sysmon" | "peer-config"
            ),
            "unknown verdict in: {line}"
        );
        assert!(
            cols[7].len() > 20,
            "every difference needs its reason: {line}"
        );
        out.insert(
            (cols[0].to_string(), cols[1].to_string()),
            (counts, cols[7].to_string()),
        );
    }
    out
}

fn compare(files: &[(String, std::path::PathBuf)]) {
    let wanted: BTreeSet<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    let computed = differences(files);
    let listed: BTreeMap<Key, Counts> = listed_differences()
        .into_iter()
        .filter(|(k, _)| wanted.contains(k.0.as_str()))
        .map(|(k, (c, _))| (k, c))
        .collect();
    let (_, titles) = peer_counts();
    let mut report = String::new();
    for (key, c) in &computed {
        if listed.get(key) != Some(c) {
            report.push_str(&format!(
                "NEW OR CHANGED\t{}\t{}\t{}\t{}\t{}\t{}\n",
                key.0,
                key.1,
                titles.get(&key.1).map(String::as_str).unwrap_or("?"),
                c.chainsaw,
                c.hayabusa,
                c.sandscope
            ));
        }
    }
    for (key, c) in &listed {
        if !computed.contains_key(key) {
            report.push_str(&format!(
                "NO LONGER DIFFERS\t{}\t{}\t{}\t{}\t{}\n",
                key.0, key.1, c.chainsaw, c.hayabusa, c.sandscope
            ));
        }
    }
    assert!(
        report.is_empty(),
        "differences against the peers changed; investigate and update reference-differences.tsv:\n{report}"
    );
}

#[test]
fn vendored_files_match_the_peers() {
    let vendored = common::vendored();
    let files: Vec<(String, std::path::PathBuf)> = common::files_with_ext(&vendored, "evtx")
        .into_iter()
        .filter_map(|path| {
            let rel = path
                .strip_prefix(&vendored)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            Some((rel, path))
        })
        // The peers' reference covers the corpus's non-broken EVTX files.
        .filter(|(rel, _)| !rel.starts_with("broken/"))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    assert!(files.len() >= 16, "vendored EVTX files: {}", files.len());
    compare(&files);
}

#[test]
#[ignore = "needs ../shared/corpus (or SANDSCOPE_CORPUS); `cargo test -- --ignored` runs it"]
fn corpus_files_match_the_peers() {
    let corpus =
        common::corpus().expect("../shared/corpus not found (set SANDSCOPE_CORPUS to point at it)");
    let files: Vec<(String, std::path::PathBuf)> = common::files_with_ext(&corpus, "evtx")
        .into_iter()
        .filter_map(|path| {
            let rel = path
                .strip_prefix(&corpus)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            (!rel.starts_with("broken/")).then_some((rel, path))
        })
        .collect();
    assert_eq!(files.len(), 53, "non-broken EVTX files in the corpus");
    compare(&files);
}
