//! A search page builds one view per hit for its snippets; `SampleDoc::for_query` spells only
//! the text fields the query reads. On real reports, every query must match and give the same
//! snippets on that view as on the whole one.

use sandscope_model::FileBehaviour;
use sandscope_query::{SampleDoc, TextField, parse};
use sandscope_report::{ReportOptions, SampleSelector, build_report};
use std::path::Path;

/// Vendored logs of different kinds: the seed's two detonations, a CAPE run's Sysmon log,
/// lateral movement, credential dumping.
const LOGS: [&str; 6] = [
    "seed/ransomware_tutanota_sysmon.xml",
    "seed/coinminer_sihost32_sysmon.xml",
    "cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples/b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10/Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx",
    "sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx",
    "sbousseaden_EVTX-ATTACK-SAMPLES/Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx",
    "mdecrevoisier_EVTX-to-MITRE-Attack/TA0006-Credential Access/T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx",
];

/// One query per text modifier family, with negations, `*`, OR groups, and non-text terms
/// mixed in (they read no text field, and still decide the match).
const QUERIES: [&str; 22] = [
    "behaviour_files:@tutanota.com",
    r#"behaviour_processes:"\"AppData\\Microsoft\\Telemetry\\sihost32.exe\"""#,
    "behaviour_created_processes:powershell.exe",
    "behaviour_network:*",
    r"behaviour_registry:CurrentVersion\Run",
    "behaviour:lsass",
    "behaviour:\"cmd.exe /c\"",
    "behaviour_processes:psexec OR behaviour_processes:paexec",
    "behaviour_command_executions:whoami -behaviour_files:tutanota",
    "behaviour_services:PSEXESVC",
    "behaviour_files:readme*.txt",
    "behaviour_files:*.exe",
    "behaviour_injected_processes:*",
    "-behaviour_network:*",
    "behaviour_files:system32 behaviour_network:*",
    "sigma_high:1+ behaviour_files:temp",
    "sigma_critical:1+ OR behaviour_command_executions:rundll32",
    "behaviour_signature:*",
    "fs:2000-01-01+ behaviour_files:windows",
    "behaviour_processes:rundll32.exe",
    "behaviour_command_executions:*",
    "-behaviour:powershell",
];

fn reports() -> Vec<FileBehaviour> {
    let data = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data"));
    LOGS.iter()
        .map(|log| {
            let read = sandscope_read::read_all(&data.join(log)).expect("vendored log reads");
            // Everything each log shows: the fields the queries read are well filled.
            let options = ReportOptions {
                sample: SampleSelector::Everything,
                ..ReportOptions::default()
            };
            build_report(&read.events, &options)
                .expect("report builds")
                .behaviour
        })
        .collect()
}

#[test]
fn a_query_matches_and_snips_its_view_as_it_does_the_whole_one() {
    let reports = reports();
    let sha = "a".repeat(64);
    let mut matched = 0;
    let mut snipped = 0;
    // Each report alone, and all of them as one sample's reports.
    let samples: Vec<&[FileBehaviour]> = (0..reports.len())
        .map(|i| &reports[i..=i])
        .chain([&reports[..]])
        .collect();
    for sample in samples {
        let whole = SampleDoc::from_reports(&sha, sample);
        for text in QUERIES {
            let query = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let view = SampleDoc::for_query(&sha, sample, &query);
            let now = 1_800_000_000;
            assert_eq!(
                query.matches(&view, now),
                query.matches(&whole, now),
                "{text}"
            );
            assert_eq!(
                query.snippets(&view, 5),
                query.snippets(&whole, 5),
                "{text}"
            );
            matched += usize::from(query.matches(&whole, now));
            snipped += usize::from(!query.snippets(&whole, 5).is_empty());
        }
    }
    // The queries find things in these logs, so the comparison is not between empty answers.
    assert!(matched > 20, "only {matched} matches");
    assert!(snipped > 20, "only {snipped} with snippets");
}

#[test]
fn the_view_spells_only_the_fields_the_query_reads() {
    let reports = reports();
    let sha = "a".repeat(64);
    let whole = SampleDoc::from_reports(&sha, &reports);
    let query = parse("behaviour_files:temp -behaviour_network:pastebin.com").expect("parses");
    let view = SampleDoc::for_query(&sha, &reports, &query);
    for field in TextField::ALL {
        let read = matches!(field, TextField::Files | TextField::Network);
        assert_eq!(
            view.text(field),
            if read { whole.text(field) } else { &[] },
            "{field:?}"
        );
    }
    assert!(!whole.text(TextField::CommandExecutions).is_empty());
    assert_eq!(
        (&view.tokens, view.sigma, view.first_seen, &view.sandboxes),
        (
            &whole.tokens,
            whole.sigma,
            whole.first_seen,
            &whole.sandboxes
        )
    );
}
