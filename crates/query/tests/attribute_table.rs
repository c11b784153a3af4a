//! Issue 15: the attribute table drives the summary merge, the diff and search alike, so an
//! attribute once known only to the terminal report (`service_details`: the binary and start
//! type of the services a sample created) is merged, compared and found, on real logs.

use sandscope_model::{BehaviourSummary, FileBehaviour, diff_reports};
use sandscope_query::{SampleDoc, parse};
use sandscope_report::{ReportOptions, build_report};
use std::path::Path;

/// PsExec run as SYSTEM: the PSEXESVC service, `%SystemRoot%\PSEXESVC.exe`, demand start.
const PSEXEC: &str = "mdecrevoisier_EVTX-to-MITRE-Attack/EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx";
/// Metasploit psexec over SMB: the service `hello` whose binary is a PowerShell command line.
const PSEXEC_SMB: &str =
    "sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx";

fn report(relative: &str) -> FileBehaviour {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data")).join(relative);
    let read = sandscope_read::read_all(&path).expect("vendored log reads");
    build_report(&read.events, &ReportOptions::default())
        .expect("report builds")
        .behaviour
}

fn service_names(report: &FileBehaviour) -> Vec<&str> {
    report
        .attributes
        .service_details
        .iter()
        .map(|s| s.name.as_str())
        .collect()
}

fn matches(reports: &[FileBehaviour], query: &str) -> bool {
    let doc = SampleDoc::from_reports(&"a".repeat(64), reports);
    parse(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .matches(&doc, 0)
}

#[test]
fn service_details_are_merged_compared_and_searched() {
    let psexec = report(PSEXEC);
    let smb = report(PSEXEC_SMB);
    assert_eq!(service_names(&psexec), vec!["PSEXESVC"]);
    assert_eq!(service_names(&smb), vec!["hello"]);

    // Summary: the union, in report order, and in the served JSON.
    let summary = BehaviourSummary::merge(&[psexec.clone(), smb.clone(), psexec.clone()]);
    let merged: Vec<&str> = summary
        .attributes
        .service_details
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(merged, vec!["PSEXESVC", "hello"]);
    let json = serde_json::to_value(&summary).expect("summary serialises");
    assert_eq!(json["service_details"][0]["start_type"], "demand");

    // Diff: each side's service, with its binary and start type.
    let diff = diff_reports(&psexec, &smb);
    let services = diff
        .attributes
        .iter()
        .find(|a| a.attribute == "service_details")
        .expect("service_details compared");
    assert_eq!(
        services.only_left,
        vec![r"PSEXESVC -> %SystemRoot%\PSEXESVC.exe (demand start)"]
    );
    assert_eq!(services.only_right.len(), 1);
    assert!(
        services.only_right[0].starts_with("hello -> %COMSPEC% /b /c start /b /min powershell.exe"),
        "{:?}",
        services.only_right
    );
    assert!(services.both.is_empty());
    let same = diff_reports(&psexec, &psexec);
    assert!(same.is_identical());
    assert!(
        same.attributes
            .iter()
            .any(|a| a.attribute == "service_details")
    );

    // Search: a service's binary is found under behaviour_services (the service names the
    // other services_* lists hold do not contain it) and under behaviour.
    assert!(
        !psexec
            .attributes
            .services_created
            .iter()
            .any(|s| s.contains(".exe"))
    );
    for query in [
        r"behaviour_services:PSEXESVC.exe",
        r#"behaviour_services:"SystemRoot\PSEXESVC.exe""#,
        r"behaviour:PSEXESVC.exe",
    ] {
        assert!(matches(std::slice::from_ref(&psexec), query), "{query}");
    }
    assert!(matches(
        std::slice::from_ref(&smb),
        "behaviour_services:powershell.exe"
    ));
    assert!(!matches(
        std::slice::from_ref(&psexec),
        "behaviour_services:powershell.exe"
    ));
}
