//! End to end: the seed's two situations as Sysmon XML logs → `sandscope ingest` →
//! `sandscope search` with the two seed queries verbatim.

mod support;

use support::sandscope;

use std::path::Path;

const RANSOM: &str = "8c18288195245660d3836693ec97509d43df8e25d52ff3858b9778aa2c4725e1";
const MINER: &str = "7a550b8a17983af622f31270ebe566b1834c28c2a2ea2b6b0ed819c95d8e534d";

fn search_ids(data: &str, query: &str) -> Vec<String> {
    let out = sandscope(&["search", "--data", data, "--format", "json", query]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["data"].as_array().unwrap().len() as u64,
        v["meta"]["total_hits"].as_u64().unwrap()
    );
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["type"], "file");
            d["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn seed_logs_are_found_by_the_seed_queries() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/seed");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for (sha, file) in [
        (RANSOM, "ransomware_tutanota_sysmon.xml"),
        (MINER, "coinminer_sihost32_sysmon.xml"),
    ] {
        let path = seed.join(file);
        let out = sandscope(&[
            "ingest",
            "--data",
            data,
            "--sha256",
            sha,
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "ingest {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        search_ids(data, "behaviour_files:@tutanota.com"),
        vec![RANSOM]
    );
    assert_eq!(
        search_ids(
            data,
            r#"behaviour_processes:"\"AppData\\Microsoft\\Telemetry\\sihost32.exe\"""#
        ),
        vec![MINER]
    );
    // And the misses: neither query finds the other sample.
    assert!(search_ids(data, "behaviour_files:@tutanota.com -behaviour_files:eking").is_empty());
    assert_eq!(
        search_ids(data, "behaviour_network:supportxmr"),
        vec![MINER]
    );
    assert_eq!(
        search_ids(data, "behaviour_command_executions:onlogon"),
        vec![MINER]
    );

    // `compact` gives the unused room back and changes no answer.
    let out = sandscope(&["compact", "--data", data]);
    assert!(
        out.status.success(),
        "compact: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("report database"), "{said}");
    assert_eq!(
        search_ids(data, "behaviour_files:@tutanota.com"),
        vec![RANSOM]
    );
    assert_eq!(
        search_ids(data, "behaviour_network:supportxmr"),
        vec![MINER]
    );
}
