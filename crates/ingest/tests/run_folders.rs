//! CAPE run folders on the vendored runs (CybercentreCanada/assemblyline-service-cape, MIT):
//! how the inputs are grouped, and which reports a run folder yields.

use sandscope_ingest::{Detonation, IgnoredWhy, IngestOptions, Pipeline, plan};
use std::path::{Path, PathBuf};

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples"
);
/// The BITS batch-file run: `lite.json.gz` (821 embedded Sysmon events), the guest's EVTX
/// (804), `files.json` and Assemblyline's `Results/result.json`.
const BITS: &str = "9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788";
/// A run whose EVTX and embedded array hold the same 78 events.
const TIE: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
const EVTX: &str = "Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx";

fn run(sample: &str) -> PathBuf {
    Path::new(SAMPLES).join(sample)
}

fn relative(detonation: &Detonation, base: &Path) -> Vec<String> {
    detonation
        .files
        .iter()
        .map(|f| f.strip_prefix(base).unwrap().display().to_string())
        .collect()
}

#[test]
fn each_run_folder_is_one_detonation_and_other_files_stand_alone() {
    let samples = PathBuf::from(SAMPLES);
    let detonations = plan(std::slice::from_ref(&samples), false).unwrap();
    let listed: Vec<(Vec<String>, Vec<PathBuf>)> = detonations
        .iter()
        .map(|d| (relative(d, &samples), d.run_folders.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            // 491f… and 9393… are vendored without their report: plain logs.
            (
                vec![format!(
                    "491f359c0cf2588e4aa76a527317406927b0900cfc5c24a4736c92d372073b1e/{EVTX}.gz"
                )],
                vec![]
            ),
            (
                vec![
                    format!("{BITS}/Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx"),
                    format!("{BITS}/Report/files.json"),
                    format!("{BITS}/Report/reports/lite.json.gz"),
                    format!("{BITS}/Results/result.json"),
                ],
                vec![run(BITS)]
            ),
            (
                vec![format!(
                    "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2/{EVTX}.gz"
                )],
                vec![]
            ),
            (
                vec![
                    format!("{TIE}/{EVTX}"),
                    format!("{TIE}/Report/files.json"),
                    format!("{TIE}/Report/reports/lite.json"),
                    format!("{TIE}/Results/result.json"),
                ],
                vec![run(TIE)]
            ),
        ]
    );

    // With the sample named, everything is one detonation, run folders kept.
    let one = plan(std::slice::from_ref(&samples), true).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].files.len(), 10);
    assert_eq!(one[0].run_folders, vec![run(BITS), run(TIE)]);
}

#[test]
fn a_run_folder_reaches_up_to_the_folder_named_but_no_further() {
    // Named itself: Assemblyline's wrapper (with `Results/`) is part of the run.
    let whole = plan(&[run(BITS)], false).unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].run_folders, vec![run(BITS)]);
    assert_eq!(whole[0].files.len(), 4);

    // Only the analysis folder named: the run is that folder.
    let analysis = run(BITS).join("Report");
    let inner = plan(std::slice::from_ref(&analysis), false).unwrap();
    assert_eq!(inner.len(), 1);
    assert_eq!(inner[0].run_folders, vec![analysis.clone()]);
    assert_eq!(
        relative(&inner[0], &analysis),
        [
            "evtx/Microsoft-Windows-Sysmon%4Operational.evtx",
            "files.json",
            "reports/lite.json.gz"
        ]
    );

    // Files named one by one still fall in the report's analysis folder.
    let files = [analysis.join("reports/lite.json.gz"), run(BITS).join(EVTX)];
    let listed = plan(&files, false).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].files, files);
    assert_eq!(listed[0].run_folders, vec![analysis]);

    // A log named without its report is a log on its own.
    let alone = plan(&[run(BITS).join(EVTX)], false).unwrap();
    assert_eq!(alone, vec![Detonation::of_files(&[run(BITS).join(EVTX)])]);
}

fn prepare(detonation: &Detonation, options: &IngestOptions) -> sandscope_ingest::Prepared {
    Pipeline::new(None)
        .prepare_detonation(detonation, options)
        .unwrap()
}

fn ids(prepared: &sandscope_ingest::Prepared) -> Vec<String> {
    prepared
        .reports
        .iter()
        .map(|r| r.behaviour.id.clone())
        .collect()
}

fn raw_log_name(prepared: &sandscope_ingest::Prepared, id: &str) -> String {
    prepared
        .reports
        .iter()
        .find(|r| r.behaviour.id == id)
        .and_then(|r| r.raw_log.as_ref())
        .map(|l| l.file_name.clone())
        .unwrap()
}

#[test]
fn a_run_folder_yields_one_report_per_sandbox_from_the_fuller_sysmon_source() {
    let bits = &plan(&[run(BITS)], false).unwrap()[0];
    let prepared = prepare(bits, &IngestOptions::default());
    let sysinternals = format!("{BITS}_Microsoft Sysinternals");
    assert_eq!(
        ids(&prepared),
        [format!("{BITS}_CAPE Sandbox"), sysinternals.clone()]
    );
    // The embedded array holds the EVTX's 804 events and the 17 logged after it was copied.
    assert_eq!(raw_log_name(&prepared, &sysinternals), "lite.json.gz");
    assert!(
        prepared.notes.iter().any(|n| n.contains(
            "embedded in Report/reports/lite.json.gz (821 events), the more complete of the run's two Sysmon sources (Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx: 804 events)"
        )),
        "{:?}",
        prepared.notes
    );
    let ignored: Vec<(PathBuf, IgnoredWhy)> = prepared
        .ignored
        .iter()
        .map(|i| (i.file.clone(), i.why))
        .collect();
    assert_eq!(
        ignored,
        [
            (run(BITS).join("Report/files.json"), IgnoredWhy::UploadList),
            (
                run(BITS).join("Results/result.json"),
                IgnoredWhy::NoSysmonEvents
            ),
        ]
    );
    assert!(prepared.unreadable.is_empty());

    // Equal counts: the guest's own log is used.
    let tie = &plan(&[run(TIE)], false).unwrap()[0];
    let prepared = prepare(tie, &IngestOptions::default());
    let sysinternals = format!("{TIE}_Microsoft Sysinternals");
    assert_eq!(
        ids(&prepared),
        [format!("{TIE}_CAPE Sandbox"), sysinternals.clone()]
    );
    assert_eq!(
        raw_log_name(&prepared, &sysinternals),
        "Microsoft-Windows-Sysmon%4Operational.evtx"
    );

    // A named sample wins over the report's target, for both reports.
    let named = "ab".repeat(32);
    let prepared = prepare(
        bits,
        &IngestOptions {
            sha256: Some(named.clone()),
            ..Default::default()
        },
    );
    assert_eq!(
        ids(&prepared),
        [
            format!("{named}_CAPE Sandbox"),
            format!("{named}_Microsoft Sysinternals")
        ]
    );
}

#[test]
fn reports_of_one_id_are_never_passed_on_twice() {
    // `--sandbox "CAPE Sandbox"` names the Sysmon report like CAPE's own: one id, said so.
    let bits = &plan(&[run(BITS)], false).unwrap()[0];
    let prepared = prepare(
        bits,
        &IngestOptions {
            sandbox: Some("CAPE Sandbox".into()),
            ..Default::default()
        },
    );
    assert_eq!(ids(&prepared), [format!("{BITS}_CAPE Sandbox")]);
    assert!(
        prepared
            .notes
            .iter()
            .any(|n| n.contains("was built twice from these inputs; the later one is kept")),
        "{:?}",
        prepared.notes
    );

    // CAPE's `report.json` next to its `lite.json`: one CAPE report, from the larger file.
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("Report/reports");
    std::fs::create_dir_all(&reports).unwrap();
    let lite = std::fs::read(run(TIE).join("Report/reports/lite.json")).unwrap();
    std::fs::write(reports.join("lite.json"), &lite).unwrap();
    let mut fuller = lite.clone();
    fuller.extend_from_slice(b"\n\n");
    std::fs::write(reports.join("report.json"), &fuller).unwrap();
    let detonations = plan(&[dir.path().to_path_buf()], false).unwrap();
    assert_eq!(detonations.len(), 1);
    let prepared = prepare(&detonations[0], &IngestOptions::default());
    assert_eq!(
        ids(&prepared),
        [
            format!("{TIE}_CAPE Sandbox"),
            format!("{TIE}_Microsoft Sysinternals")
        ]
    );
    assert_eq!(
        raw_log_name(&prepared, &format!("{TIE}_CAPE Sandbox")),
        "report.json"
    );
    assert!(
        prepared
            .notes
            .iter()
            .any(|n| n.contains("are reports of one run")),
        "{:?}",
        prepared.notes
    );
}
