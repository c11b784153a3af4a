//! `sandscope cape` and `sandscope diff` on the vendored CAPE runs.

mod support;

use support::sandscope;

use std::path::{Path, PathBuf};

/// The runs' `Report/` folders. b145… and 9088… are vendored whole (report, guest EVTX,
/// `files.json`, `Results/result.json`) under `cape/…/commit-6296081`; 491f… and 9393… have only
/// their report and `files.json`, vendored apart (their run folders under `cape/` hold the EVTX
/// alone).
const WHOLE_RUNS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples"
);
const REPORT_RUNS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/CybercentreCanada_assemblyline-service-cape/tests/samples"
);

fn run_folder(sample: &str) -> PathBuf {
    let whole = Path::new(WHOLE_RUNS).join(sample);
    if whole.join("Report/reports").is_dir() {
        whole
    } else {
        Path::new(REPORT_RUNS).join(sample)
    }
}

fn lite(sample: &str) -> PathBuf {
    run_folder(sample).join("Report/reports/lite.json")
}

const APC_INJECT: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
const ETW_DNS: &str = "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2";

#[test]
fn cape_prints_the_report_in_the_vt_envelope() {
    let path = lite(APC_INJECT);
    let out = sandscope(&["cape".as_ref(), path.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["data"]["id"],
        format!("{APC_INJECT}_CAPE Sandbox").as_str()
    );
    assert_eq!(json["data"]["type"], "file_behaviour");
    assert_eq!(
        json["data"]["attributes"]["command_executions"],
        serde_json::json!([r#""%SAMPLEPATH%\apc-inject.exe" "#])
    );

    let out = sandscope(&[
        "cape".as_ref(),
        path.as_os_str(),
        "--format".as_ref(),
        "text".as_ref(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("processes_tree:\n  5900 \"%SAMPLEPATH%\\apc-inject.exe\" \n"),
        "{text}"
    );
}

#[test]
fn cape_reports_truncation_with_file_and_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.json");
    let bytes = std::fs::read(lite(APC_INJECT)).unwrap();
    std::fs::write(&cut, &bytes[..150_000]).unwrap();
    let out = sandscope(&["cape".as_ref(), cut.as_os_str()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cut.json: truncated report at JSON path `network.tcp[2]`"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is printed from a broken report"
    );
}

#[test]
fn diff_compares_a_saved_report_with_a_cape_file() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("apc.json");
    let out = sandscope(&["cape".as_ref(), lite(APC_INJECT).as_os_str()]);
    assert!(out.status.success());
    std::fs::write(&saved, &out.stdout).unwrap();

    let etw = lite(ETW_DNS);
    let out = sandscope(&["diff".as_ref(), saved.as_os_str(), etw.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("dns_lookups (only left 0, only right 4, both 7)"),
        "{text}"
    );
    assert!(text.contains("  = crl.microsoft.com\n"), "{text}");
    assert!(text.contains("  > 251.0.0.224.in-addr.arpa\n"), "{text}");
    assert!(
        text.contains("  < \"%SAMPLEPATH%\\apc-inject.exe\" \n"),
        "{text}"
    );

    let out = sandscope(&[
        "diff".as_ref(),
        saved.as_os_str(),
        etw.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["right"]["id"],
        format!("{ETW_DNS}_CAPE Sandbox").as_str()
    );
    let http = json["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute"] == "http_conversations")
        .unwrap();
    assert_eq!(http["both"].as_array().unwrap().len(), 7);
}
