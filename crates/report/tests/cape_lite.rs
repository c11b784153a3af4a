//! For each of the four CAPE runs with both a Sysmon EVTX and CAPE's `lite.json`, the
//! sample-rooted process tree we build from the EVTX agrees with `behavior.processtree` of the
//! same run. Differences, and why, are listed per run below. All vendored under `tests/data`
//! (the larger files gzip-compressed).

mod common;

use common::*;
use sandscope_report::{ReportOptions, SampleSelector, build_report};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The runs' Sysmon EVTX files (`Report/evtx/…evtx`, or `.evtx.gz`).
const EVTX_RUNS: &str =
    "cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples";
/// The `lite.json` (`Report/reports/lite.json`, or `.json.gz`) of the runs vendored without a
/// whole run folder (491f…, 9393…); b145…'s and 9088…'s sit in their run folders under
/// `EVTX_RUNS`.
const LITE_RUNS: &str = "CybercentreCanada_assemblyline-service-cape/tests/samples";

/// `path`, or its gzip-compressed copy `path.gz`.
fn plain_or_gzip(path: PathBuf) -> PathBuf {
    if path.is_file() {
        return path;
    }
    let mut gz = path.into_os_string();
    gz.push(".gz");
    PathBuf::from(gz)
}

fn read_lite(path: &Path) -> Value {
    let bytes = std::fs::read(path).expect("lite.json");
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(bytes.as_slice()),
            &mut plain,
        )
        .expect("gzip");
        plain
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).expect("JSON")
}

/// pid → parent pid (None for a root) of the lite.json tree whose root is the sample.
fn lite_sample_tree(lite: &Value, target: &str) -> BTreeMap<String, Option<String>> {
    fn walk(node: &Value, parent: Option<String>, out: &mut BTreeMap<String, Option<String>>) {
        let pid = node["pid"]
            .as_u64()
            .map(|p| p.to_string())
            .unwrap_or_default();
        out.insert(pid.clone(), parent);
        if let Some(children) = node["children"].as_array() {
            for c in children {
                walk(c, Some(pid.clone()), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    for root in lite["behavior"]["processtree"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mentions_target = root["name"].as_str() == Some(target)
            || root["environ"]["CommandLine"]
                .as_str()
                .is_some_and(|c| c.contains(target));
        if mentions_target {
            walk(root, None, &mut out);
        }
    }
    out
}

/// Every pid of lite.json's tree (all roots).
fn lite_all_pids(lite: &Value) -> Vec<String> {
    fn walk(node: &Value, out: &mut Vec<String>) {
        out.push(
            node["pid"]
                .as_u64()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        );
        for c in node["children"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    for root in lite["behavior"]["processtree"]
        .as_array()
        .into_iter()
        .flatten()
    {
        walk(root, &mut out);
    }
    out
}

fn our_tree(evtx: &Path, target: &str) -> Option<BTreeMap<String, Option<String>>> {
    let events = read(evtx);
    let built = build_report(
        &events,
        &ReportOptions {
            sample: SampleSelector::Image(target.to_string()),
            ..Default::default()
        },
    )
    .ok()?;
    // None of these test programs uses pipes or injects: whatever pipes or injections the log
    // shows in their processes are CAPE's monitor, and must not be reported.
    let attributes = &built.behaviour.attributes;
    assert!(
        attributes.named_pipes.is_empty(),
        "{:?}",
        attributes.named_pipes
    );
    assert!(attributes.processes_injected.is_empty());
    fn walk(
        node: &sandscope_model::ProcessNode,
        parent: Option<String>,
        out: &mut BTreeMap<String, Option<String>>,
    ) {
        out.insert(node.process_id.clone(), parent);
        for c in &node.children {
            walk(c, Some(node.process_id.clone()), out);
        }
    }
    let mut out = BTreeMap::new();
    for root in &attributes.processes_tree {
        walk(root, None, &mut out);
    }
    Some(out)
}

#[test]
fn sample_rooted_tree_agrees_with_cape_lite_json() {
    let mut compared = 0;
    let mut runs: Vec<PathBuf> = std::fs::read_dir(vendored(EVTX_RUNS))
        .expect("CAPE runs")
        .map(|entry| entry.expect("entry").path())
        .collect();
    runs.sort();
    for run in runs {
        let evtx =
            plain_or_gzip(run.join("Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx"));
        let name = run
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let lite_dir = if run.join("Report/reports").is_dir() {
            run.clone()
        } else {
            vendored(LITE_RUNS).join(&name)
        };
        let lite_path = plain_or_gzip(lite_dir.join("Report/reports/lite.json"));
        let lite = read_lite(&lite_path);
        let target = lite["target"]["file"]["name"]
            .as_str()
            .expect("target name")
            .to_string();
        let theirs = lite_sample_tree(&lite, &target);
        let ours = our_tree(&evtx, &target);
        compared += 1;
        match &name[..4] {
            // bits.bat: CAPE 6264 → 7560 → 7888; ours the same. lite.json's second root,
            // services.exe 600 with svchost 832 and 2348, are the processes CAPE's own loader
            // injected its monitor into (Sysmon 8 from C:\65n4hwlw\bin\BLxTMNGr.exe, rec 917
            // and 989, and PPLinject64.exe into services.exe, rec 1026-1032): not the sample's,
            // so they are not in our tree.
            "9088" => {
                let ours = ours.expect("sample found");
                assert_eq!(ours, theirs, "{name}");
                for pid in ["600", "832", "2348"] {
                    assert!(lite_all_pids(&lite).contains(&pid.to_string()));
                    assert!(!ours.contains_key(pid));
                }
            }
            // apihooks.exe: CAPE 4228 → 1248 (`cmd /c echo hai`). This EVTX has no process
            // creation for either (the run's first minutes were not kept); 1248 appears only
            // in pipe events, so Sysmon never recorded its parent: our tree is 4228 alone.
            "491f" => {
                let ours = ours.expect("sample found");
                let mut expected = theirs.clone();
                assert_eq!(expected.remove("1248"), Some(Some("4228".to_string())));
                assert_eq!(ours, expected, "{name}");
            }
            // etw-dns-app.exe: CAPE 2500 alone; ours the same (its conhost 1596 is console
            // noise, left out of trees).
            "9393" => assert_eq!(ours.expect("sample found"), theirs, "{name}"),
            // apc-inject.exe: this EVTX holds another session (an ngen run of 2025-11-18); the
            // sample appears in none of its events, so there is no tree to compare and the
            // builder says the sample was not found. CAPE's tree: 5900, plus svchost 2000
            // which it followed into after the APC injection.
            "b145" => {
                assert!(ours.is_none(), "{name}: the sample is not in this log");
                assert!(theirs.contains_key("5900"));
            }
            other => panic!("a CAPE run this test does not know: {other}"),
        }
    }
    assert_eq!(compared, 4);
}
