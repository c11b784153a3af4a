//! `sandscope rulesets add|list|show|enable|disable|delete`, and `sandscope ingest` hunting
//! with the rulesets of its data directory (the seed's two detonations).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Sigma rule matching the ransomware seed's `vssadmin delete shadows`.
const SHADOWS: &str = include_str!("../../hunting/tests/rules/shadow_copies_deleted.yml");

fn seed(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed")
        .join(file)
}

fn sandscope(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn rulesets_are_managed_and_hunt_every_later_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sigma = dir.path().join("shadows.yml");
    std::fs::write(&sigma, SHADOWS).unwrap();
    let queries = dir.path().join("miners.txt");
    std::fs::write(
        &queries,
        "# XMR pool\nbehaviour_command_executions:\"pool.supportxmr.com\"\n",
    )
    .unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();

    let added = stdout(&sandscope(
        &data,
        &[
            "rulesets",
            "add",
            "ransom",
            &path(&sigma),
            "--tag",
            "impact",
        ],
    ));
    assert!(
        added.starts_with("added ruleset 1 (ransom, 1 rule(s))"),
        "{added}"
    );
    let added = stdout(&sandscope(
        &data,
        &["rulesets", "add", "miners", &path(&queries)],
    ));
    assert!(
        added.starts_with("added ruleset 2 (miners, 1 rule(s))"),
        "{added}"
    );
    stdout(&sandscope(&data, &["rulesets", "disable", "2"]));
    let list = stdout(&sandscope(&data, &["rulesets", "list"]));
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(
        rows,
        [
            "1\ttrue\tsigma\t1\t100\tfalse\transom",
            "2\tfalse\tquery\t1\t100\tfalse\tminers"
        ]
    );

    // Both seeds ingested: the ransomware run matches the enabled Sigma ruleset; the miner
    // would match the query ruleset, which is disabled.
    for log in [
        "coinminer_sihost32_sysmon.xml",
        "ransomware_tutanota_sysmon.xml",
    ] {
        let out = sandscope(&data, &["ingest", "--no-sigma", &path(&seed(log))]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let expected = log.starts_with("ransomware");
        assert_eq!(
            stderr.contains("livehunt: 1 notification(s)"),
            expected,
            "{log}: {stderr}"
        );
    }

    let shown: serde_json::Value =
        serde_json::from_str(&stdout(&sandscope(&data, &["rulesets", "show", "2"]))).unwrap();
    assert_eq!(shown["data"]["attributes"]["enabled"], false);
    assert_eq!(shown["data"]["attributes"]["rule_names"][0], "XMR pool");

    stdout(&sandscope(&data, &["rulesets", "delete", "1"]));
    let list = stdout(&sandscope(&data, &["rulesets", "list", "--format", "json"]));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], "2");

    // A ruleset that does not compile: refused, saying which rule and line, nothing added.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "behaviour_files:(\n").unwrap();
    let out = sandscope(&data, &["rulesets", "add", "bad", &path(&bad)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("line 1"), "{stderr}");
    let out = sandscope(&data, &["rulesets", "show", "3"]);
    assert_ne!(out.status.code(), Some(0));
}
