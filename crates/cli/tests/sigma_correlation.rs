//! Issue 17 item 4: Sigma correlation rules in `hunt` and in reports, end to end through the
//! binary, on a real log (EVTX-ATTACK-SAMPLES, GPL-3.0, vendored) with the correlation rules of
//! `crates/sigma/tests/rules/correlation/`.

mod support;

use support::sandscope_ok as sandscope;

use serde_json::Value;

const LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/sbousseaden_EVTX-ATTACK-SAMPLES/AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx"
);
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../sigma/tests/rules/correlation"
);

#[test]
fn hunt_reports_each_correlation_type_on_the_event_that_completed_it() {
    let out = sandscope(&[
        "hunt",
        "--no-default-rules",
        "--rules",
        RULES,
        "--format",
        "json",
        LOG,
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("hunt prints JSON");
    let titles: Vec<&str> = json["summary"]
        .as_array()
        .expect("a summary")
        .iter()
        .filter_map(|row| row["rule_title"].as_str())
        .collect();
    for title in [
        "Burst of registry values set by rundll32",
        "Many distinct registry keys written by rundll32",
        "Rundll32 DLL load and scheduled task creation on one host",
        "Scheduled task created, then its DLL writes encrypted data",
    ] {
        assert!(titles.contains(&title), "{title} missing from {titles:#?}");
    }
    // Rules that only feed a correlation are not hits of their own; those of a correlation
    // with `generate: true` are.
    assert!(!titles.contains(&"Registry value set by rundll32"));
    assert!(titles.contains(&"Scheduled task created from an XML file"));
}

#[test]
fn a_report_carries_correlation_hits_with_the_events_they_counted() {
    let out = sandscope(&[
        "report",
        "--no-attribution",
        "--no-default-rules",
        "--rules",
        RULES,
        LOG,
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("report prints JSON");
    let results = report["data"]["attributes"]["sigma_analysis_results"]
        .as_array()
        .expect("Sigma results");
    let burst = results
        .iter()
        .find(|r| r["rule_id"] == "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1001")
        .expect("the event_count correlation is in the report");
    assert_eq!(burst["rule_level"], "high");
    assert!(burst["match_context"].as_array().unwrap().len() >= 8);
    let stats = &report["data"]["attributes"]["sigma_analysis_stats"];
    assert_eq!(stats["critical"], 1, "{stats}");
}
