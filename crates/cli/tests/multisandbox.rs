//! End to end for issue 6: a CAPE run that embeds the guest's Sysmon events is ingested as two
//! sandbox reports of one sample, `sandbox_name:` selects each, and `show` serves both, the
//! merged summary and the ATT&CK trees.

use std::path::Path;
use std::process::Command;

/// CAPE's apc-inject run (MIT, vendored): `lite.json` with 133 embedded Sysmon events.
const SAMPLE: &str = "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2";

fn sandscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn search(data: &str, query: &str) -> Vec<String> {
    let v = json(sandscope(&[
        "search", "--data", data, "--format", "json", query,
    ]));
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cape_run_lands_as_two_sandbox_reports_of_one_sample() {
    let lite = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../tests/data/CybercentreCanada_assemblyline-service-cape/tests/samples/{SAMPLE}/Report/reports/lite.json"
    ));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = sandscope(&[
        "ingest",
        "--data",
        data,
        "--no-sigma",
        lite.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{SAMPLE}_CAPE Sandbox")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{SAMPLE}_Microsoft Sysinternals")),
        "{stdout}"
    );

    // Each sandbox's report is selectable by name, and both belong to the one sample.
    assert_eq!(search(data, "sandbox_name:\"CAPE Sandbox\""), vec![SAMPLE]);
    assert_eq!(
        search(data, "sandbox_name:\"Microsoft Sysinternals\""),
        vec![SAMPLE]
    );
    assert!(search(data, "sandbox_name:\"Zenbox\"").is_empty());

    let all = json(sandscope(&["show", "--data", data, SAMPLE]));
    let mut sandboxes: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributes"]["sandbox_name"].as_str().unwrap())
        .collect();
    sandboxes.sort();
    assert_eq!(sandboxes, ["CAPE Sandbox", "Microsoft Sysinternals"]);

    let cape = json(sandscope(&[
        "show",
        "--data",
        data,
        "--sandbox",
        "CAPE Sandbox",
        SAMPLE,
    ]));
    assert_eq!(cape["data"].as_array().unwrap().len(), 1);

    // The summary has no per-run fields and keeps each sandbox's process tree.
    let summary = json(sandscope(&["show", "--data", data, "--summary", SAMPLE]));
    assert!(summary["data"].get("sandbox_name").is_none());
    assert!(
        summary["data"]["processes_tree"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );

    let mitre = json(sandscope(&["show", "--data", data, "--mitre", SAMPLE]));
    assert!(mitre["data"].get("CAPE Sandbox").is_some(), "{mitre}");
    assert!(
        mitre["data"].get("Microsoft Sysinternals").is_some(),
        "{mitre}"
    );

    let missing = sandscope(&["show", "--data", data, &"0".repeat(64)]);
    assert!(!missing.status.success());
}
