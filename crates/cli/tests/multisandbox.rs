//! End to end for issue 6: a CAPE run that embeds the guest's Sysmon events is ingested as two
//! sandbox reports of one sample, `sandbox_name:` selects each, and `show` serves both, the
//! merged summary and the ATT&CK trees; `diff` shows what the two reports share; every search
//! modifier finds CAPE-sourced behaviour; a broken CAPE report stores nothing.

mod support;

use support::sandscope;

use std::path::Path;

/// CAPE's etw-dns-app run (MIT, vendored): `lite.json` with 133 embedded Sysmon events.
const SAMPLE: &str = "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2";

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sandbox names of a sample's stored reports, as `show` lists them, sorted.
fn sandboxes_of(data: &str, sample: &str) -> Vec<String> {
    let all = json(sandscope(&["show", "--data", data, sample]));
    let mut sandboxes: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["attributes"]["sandbox_name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    sandboxes.sort();
    sandboxes
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

    assert_eq!(
        sandboxes_of(data, SAMPLE),
        ["CAPE Sandbox", "Microsoft Sysinternals"]
    );

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

/// CAPE reports vendored without a whole run folder (491f…, 9393…: report and `files.json`).
const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/CybercentreCanada_assemblyline-service-cape/tests/samples"
);
/// The BITS batch-file run (MIT, vendored gzip-compressed): its 821 embedded Sysmon events show
/// the sample's processes, so both sandboxes see them.
const BITS: &str = "9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788";
const APIHOOKS: &str = "491f359c0cf2588e4aa76a527317406927b0900cfc5c24a4736c92d372073b1e";

fn bits_lite() -> std::path::PathBuf {
    Path::new(RUNS).join(format!("{BITS}/Report/reports/lite.json.gz"))
}

fn ingest(data: &str, files: &[&Path]) -> std::process::Output {
    let mut args = vec!["ingest", "--data", data, "--no-sigma"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    sandscope(&args)
}

/// One sandbox's report of a stored sample, saved as a file `diff` reads.
fn save_sandbox_report(data: &str, sandbox: &str, dir: &Path) -> std::path::PathBuf {
    let out = sandscope(&["show", "--data", data, "--sandbox", sandbox, BITS]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("{sandbox}.json"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn diff_json(left: &Path, right: &Path) -> serde_json::Value {
    json(sandscope(&[
        "diff",
        left.to_str().unwrap(),
        right.to_str().unwrap(),
        "--format",
        "json",
    ]))
}

fn attribute<'a>(diff: &'a serde_json::Value, name: &str, side: &str) -> Vec<&'a str> {
    diff["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute"] == name)
        .map(|a| {
            a[side]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// The two reports of one CAPE run (CAPE's own, and the one built from the Sysmon events it
/// embeds) agree on the sample's processes once both normalise command lines the same way, and
/// the summary merges them into one list each.
#[test]
fn a_cape_runs_two_reports_overlap_in_diff_and_merge_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = ingest(data, &[&bits_lite()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sysmon = save_sandbox_report(data, "Microsoft Sysinternals", dir.path());
    let cape = save_sandbox_report(data, "CAPE Sandbox", dir.path());
    let diff = diff_json(&sysmon, &cape);

    let cmd_k = r#"%WINDIR%\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#;
    let bitsadmin = r"bitsadmin  /transfer myDownloadJob /download /priority normal http://www.example.com/package.zip C:\\Users\\buddy\\testfile2.txt";
    // Sysmon's root is the batch file's shell (7560) and its bitsadmin (7888); CAPE also has
    // its own launcher (6264) and the services it injected its monitor into.
    assert_eq!(
        attribute(&diff, "processes_tree", "both"),
        vec![cmd_k, bitsadmin]
    );
    assert!(attribute(&diff, "processes_tree", "only_left").is_empty());
    assert_eq!(
        attribute(&diff, "processes_tree", "only_right"),
        vec![
            r#""%WINDIR%\system32\cmd.exe" /c start /wait "" "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
            r"%WINDIR%\system32\services.exe",
            r"%WINDIR%\system32\svchost.exe -k DcomLaunch -p",
            r"%WINDIR%\System32\svchost.exe -k netsvcs -p",
        ]
    );
    assert_eq!(
        attribute(&diff, "processes_created", "both"),
        vec![
            r"%WINDIR%\SysWOW64\bitsadmin.exe",
            r"%WINDIR%\SysWOW64\cmd.exe"
        ]
    );
    assert_eq!(
        attribute(&diff, "command_executions", "both"),
        vec![bitsadmin, cmd_k]
    );
    assert!(attribute(&diff, "command_executions", "only_left").is_empty());
    assert_eq!(
        attribute(&diff, "files_written", "both"),
        vec![r"%USERPROFILE%\BIT3E53.tmp"]
    );
    // CAPE's DNS list is the guest's whole capture; every query in this run's Sysmon log came
    // from Windows' own processes (svchost, MoUsoCoreWorker, …), none from the sample's, so
    // the attributed report has no lookup to share (see the whole-guest comparison below).
    assert!(attribute(&diff, "dns_lookups", "both").is_empty());
    assert_eq!(attribute(&diff, "dns_lookups", "only_right").len(), 7);

    // Text output marks the same overlap.
    let out = sandscope(&["diff", sysmon.to_str().unwrap(), cape.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("command_executions (only left 0, only right 1, both 2)"),
        "{text}"
    );
    assert!(text.contains(&format!("  = {cmd_k}\n")), "{text}");

    // The summary lists each shared command once (CAPE's three, two of them also Sysmon's).
    let summary = json(sandscope(&["show", "--data", data, "--summary", BITS]));
    let commands: Vec<&str> = summary["data"]["command_executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(commands.contains(&cmd_k) && commands.contains(&bitsadmin));
    assert_eq!(
        summary["data"]["processes_created"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let trees = summary["data"]["processes_tree_by_sandbox"]
        .as_object()
        .unwrap();
    assert_eq!(trees["CAPE Sandbox"].as_array().unwrap().len(), 2);
    assert_eq!(trees["Microsoft Sysinternals"].as_array().unwrap().len(), 1);

    // A command is found by its normalised spelling and by the one the sandboxes logged
    // (`C:\WINDOWS\system32\cmd.exe`, kept in `raw_forms`).
    for query in [
        r#"behaviour_command_executions:"%WINDIR%\system32\cmd.exe  /K""#,
        r#"behaviour_command_executions:"C:\WINDOWS\system32\cmd.exe  /K""#,
        r#"behaviour_processes:"C:\WINDOWS\system32\cmd.exe""#,
    ] {
        assert_eq!(search(data, query), vec![BITS], "{query}");
    }
    assert!(
        search(
            data,
            r#"behaviour_command_executions:"C:\WINDOWS\system32\net1""#
        )
        .is_empty()
    );
}

/// CAPE's DNS list and the Sysmon log's DNS events both cover the whole guest: compared with
/// the log's unattributed report, the names Windows looked up during the run are in both.
#[test]
fn dns_names_overlap_with_the_logs_whole_guest_view() {
    let dir = tempfile::tempdir().unwrap();
    let lite = bits_lite();
    let whole = sandscope(&[
        "report",
        "--no-sigma",
        "--no-attribution",
        lite.to_str().unwrap(),
    ]);
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole_path = dir.path().join("whole.json");
    std::fs::write(&whole_path, &whole.stdout).unwrap();
    let diff = diff_json(&whole_path, &lite);
    assert_eq!(
        attribute(&diff, "dns_lookups", "both"),
        vec![
            "www.microsoft.com",
            "slscr.update.microsoft.com",
            "maps.windows.com",
            "settings-win.data.microsoft.com"
        ]
    );
    // Sysmon logs the bare `online_nat` (and `localhost`); CAPE's capture the suffixed name.
    assert_eq!(
        attribute(&diff, "dns_lookups", "only_left"),
        vec!["localhost -> ::1, 127.0.0.1", "online_nat"]
    );
    assert!(attribute(&diff, "dns_lookups", "only_right").contains(&"online_nat.online_nat"));
    assert_eq!(
        attribute(&diff, "processes_created", "both"),
        vec![
            r"%WINDIR%\SysWOW64\cmd.exe",
            r"%WINDIR%\SysWOW64\bitsadmin.exe"
        ]
    );
}

/// A copy of a vendored run's `lite.json` without its `sysmon` array (and the run's
/// `files.json` beside it), so that ingest stores CAPE's report alone.
fn cape_only(sample: &str, file: &str, dir: &Path) -> std::path::PathBuf {
    use std::io::Read;
    // The BITS run's report is vendored in its whole run folder.
    let root = if sample == BITS { RUNS } else { SAMPLES };
    let run = Path::new(root).join(sample).join("Report");
    let bytes = std::fs::read(run.join("reports").join(file)).unwrap();
    let text = if file.ends_with(".gz") {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut text)
            .unwrap();
        text
    } else {
        bytes
    };
    let mut report: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert!(report.as_object_mut().unwrap().remove("sysmon").is_some());
    let copy = dir.join(sample);
    std::fs::create_dir_all(copy.join("reports")).unwrap();
    std::fs::copy(run.join("files.json"), copy.join("files.json")).unwrap();
    let lite = copy.join("reports/lite.json");
    std::fs::write(&lite, serde_json::to_vec(&report).unwrap()).unwrap();
    lite
}

/// Every search modifier that a CAPE report can feed finds CAPE-sourced behaviour: the store
/// holds only CAPE reports here, so each hit comes from one.
#[test]
fn search_modifiers_find_cape_sourced_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let bits = cape_only(BITS, "lite.json.gz", dir.path());
    let apihooks = cape_only(APIHOOKS, "lite.json", dir.path());
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let out = ingest(data, &[&bits, &apihooks]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(!stdout.contains("Microsoft Sysinternals"), "{stdout}");

    let both = vec![APIHOOKS, BITS];
    let cases: &[(&str, Vec<&str>)] = &[
        // behavior.summary.write_files / files.json's dropped file.
        (r"behaviour_files:%USERPROFILE%\testfile2.txt", vec![BITS]),
        ("behaviour_files:test-hello", vec![APIHOOKS]),
        // processtree / environ.CommandLine, by normalised and raw spelling.
        (
            r"behaviour_processes:%SAMPLEPATH%\apihooks.exe",
            vec![APIHOOKS],
        ),
        (
            r"behaviour_processes:buddy\AppData\Local\Temp\apihooks.exe",
            vec![APIHOOKS],
        ),
        (
            r"behaviour_created_processes:SysWOW64\bitsadmin.exe",
            vec![BITS],
        ),
        (
            r"behaviour_created_processes:SysWOW64\cmd.exe",
            both.clone(),
        ),
        ("behaviour_command_executions:\"echo hai\"", vec![APIHOOKS]),
        ("behaviour_command_executions:myDownloadJob", vec![BITS]),
        // network.dns / network.tcp.
        (
            "behaviour_network:61.240.178.74.in-addr.arpa",
            vec![APIHOOKS],
        ),
        ("behaviour_network:20.165.94.63", vec![BITS]),
        ("behaviour_network:crl.microsoft.com", both.clone()),
        // summary.write_keys with the value from RegSetValueExA.
        (
            r"behaviour_registry:CurrentVersion\Run\TestApiHooks",
            vec![APIHOOKS],
        ),
        ("behaviour_services:BITS", vec![BITS]),
        ("behaviour_signature:persistence_autorun", vec![APIHOOKS]),
        ("behaviour_signature:stealth_network", both.clone()),
        // Mutexes are only under the catch-all modifier.
        ("behaviour:MutexNam3", vec![APIHOOKS]),
        ("behaviour_tags:persistence", vec![APIHOOKS]),
        ("tag:detect_debug_environment", vec![APIHOOKS]),
        ("attack_technique:T1547.001", vec![APIHOOKS]),
        ("attack_technique:T1202", both.clone()),
        ("sandbox_name:\"CAPE Sandbox\"", both.clone()),
        ("sandbox_name:cape", both.clone()),
        ("sandbox_name:\"Microsoft Sysinternals\"", vec![]),
        // info.started 2025-11-21 15:38:32 and 15:39:20.
        ("fs:2025-11-21", both.clone()),
        ("ls:2025-11-21T15:39:20", vec![BITS]),
        ("fs:2025-11-22+", vec![]),
        ("behaviour_files:no-such-file.txt", vec![]),
    ];
    for (query, expected) in cases {
        let mut hits = search(data, query);
        hits.sort();
        assert_eq!(&hits, expected, "{query}");
    }
}

/// A malformed or cut CAPE report is refused whole: the error names the file and the JSON
/// path, and neither the CAPE report nor the Sysinternals report of its embedded events is
/// stored.
#[test]
fn malformed_cape_reports_are_refused_whole_at_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let lite = Path::new(SAMPLES).join(format!("{APIHOOKS}/Report/reports/lite.json"));
    let bytes = std::fs::read(&lite).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    // Cut inside `behavior`, after the complete `sysmon` array.
    let behavior = text.find("\"behavior\": {").expect("behavior section");
    assert!(text.find("\"sysmon\": [").unwrap() < behavior);
    let cut = dir.path().join("cut-lite.json");
    std::fs::write(&cut, &bytes[..behavior + 5_000]).unwrap();
    let mut report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    report["network"]["dns"][2]["answers"] = serde_json::json!("none");
    let corrupt = dir.path().join("corrupt-lite.json");
    std::fs::write(&corrupt, serde_json::to_vec(&report).unwrap()).unwrap();

    for (file, message) in [
        (
            &cut,
            "cut-lite.json: truncated report at JSON path `behavior",
        ),
        (
            &corrupt,
            "corrupt-lite.json: malformed report at JSON path `network.dns[2].answers`",
        ),
    ] {
        let out = ingest(data, &[file]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
        assert!(stderr.contains("0 report(s) stored"), "{stderr}");
    }
    assert!(search(data, "sandbox_name:cape").is_empty());
    assert!(search(data, "sandbox_name:microsoft").is_empty());
    assert!(
        !sandscope(&["show", "--data", data, APIHOOKS])
            .status
            .success()
    );
}

/// Whole CAPE run folders as the corpus has them (vendored): the report, the guest's Sysmon
/// EVTX, `files.json` and Assemblyline's `Results/result.json`.
const RUNS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples"
);

fn bits_run() -> std::path::PathBuf {
    Path::new(RUNS).join(BITS)
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ingest <run folder>`: the EVTX is filed under the run's target (not under a SHA-256 made
/// up from the log), the report's embedded events and the EVTX make one Sysinternals report,
/// and the run's non-log files are listed, not counted as damaged input.
#[test]
fn a_cape_run_folder_lands_as_two_reports_of_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let run = bits_run();
    let out = ingest(data, &[&run]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let run_name = run.display().to_string();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        [
            format!("stored\t{BITS}_CAPE Sandbox\t{run_name}"),
            format!("stored\t{BITS}_Microsoft Sysinternals\t{run_name}"),
        ]
    );
    assert!(
        stderr.contains("2 report(s) stored, 0 file(s) skipped"),
        "{stderr}"
    );
    // Which Sysmon source was used, and why: the embedded array has the EVTX's 804 events and
    // the 17 logged after CAPE copied the EVTX.
    assert!(
        stderr.contains(
            "the `sysmon` array embedded in Report/reports/lite.json.gz (821 events), the more complete of the run's two Sysmon sources (Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx: 804 events)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "info: {run_name}: read by the CAPE importer for the dropped files: Report/files.json"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "info: {run_name}: no Sysmon events, passed over: Results/result.json"
        )),
        "{stderr}"
    );

    assert_eq!(
        sandboxes_of(data, BITS),
        ["CAPE Sandbox", "Microsoft Sysinternals"]
    );
    // One sample in the store: no second Sysinternals report under a derived SHA-256.
    assert_eq!(
        search(data, "sandbox_name:\"Microsoft Sysinternals\""),
        vec![BITS]
    );
    assert_eq!(search(data, "sandbox_name:\"CAPE Sandbox\""), vec![BITS]);
    // The sample's Sysmon-seen commands are searchable under its SHA-256.
    assert_eq!(
        search(
            data,
            "sandbox_name:\"Microsoft Sysinternals\" behaviour_command_executions:myDownloadJob"
        ),
        vec![BITS]
    );
}

/// Several run folders in one call: each is one sample; where the EVTX holds as many events
/// as the embedded array, the guest's own log is used.
#[test]
fn each_run_folder_of_a_directory_is_its_own_sample() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let tie = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
    let out = ingest(data, &[&bits_run(), &Path::new(RUNS).join(tie)]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "Sysmon report from Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx (78 events), the guest's own log; the `sysmon` array embedded in Report/reports/lite.json (78 events) is not used"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 report(s) stored, 0 file(s) skipped"),
        "{stderr}"
    );
    let mut both = vec![BITS, tie];
    both.sort();
    let mut hits = search(data, "sandbox_name:\"Microsoft Sysinternals\"");
    hits.sort();
    assert_eq!(hits, both);
}

/// A copy of the BITS run folder in `dir`.
fn copy_of_bits_run(dir: &Path) -> std::path::PathBuf {
    let from = bits_run();
    let to = dir.join(BITS);
    for rel in [
        "Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx",
        "Report/files.json",
        "Report/reports/lite.json.gz",
        "Results/result.json",
    ] {
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), to.join(rel)).unwrap();
    }
    to
}

/// Damage is still damage inside a run folder: a cut EVTX is reported and gives exit 3, while
/// the run's reports are stored and a file that is no log at all is only listed. Outside a run
/// folder, a file that gives no report is skipped as before.
#[test]
fn damaged_files_in_and_around_a_run_folder_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let run = copy_of_bits_run(dir.path());
    let evtx =
        std::fs::read(run.join("Report/evtx/Microsoft-Windows-Sysmon%4Operational.evtx")).unwrap();
    // Cut inside the 4 KiB file header.
    std::fs::write(run.join("Report/evtx/cut.evtx"), &evtx[..2_000]).unwrap();
    std::fs::copy(
        Path::new(RUNS).join("../../../LICENSE"),
        run.join("Report/LICENSE"),
    )
    .unwrap();

    let out = ingest(data, &[&run]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "skipped {}: ",
            run.join("Report/evtx/cut.evtx").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("not an event log, passed over: Report/LICENSE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 report(s) stored, 1 file(s) skipped"),
        "{stderr}"
    );
    assert_eq!(
        search(data, "sandbox_name:\"Microsoft Sysinternals\""),
        vec![BITS]
    );

    // The same side file on its own is no run's artefact: skipped, nothing stored.
    let stray = dir.path().join("result.json");
    std::fs::copy(run.join("Results/result.json"), &stray).unwrap();
    let out = ingest(data, &[&stray]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("0 report(s) stored, 1 file(s) skipped"),
        "{stderr}"
    );
}

/// The store replaces a report by id; two inputs of one call that give the same id (here two
/// copies of one log) are said to replace each other, and counted once, whether or not the
/// first was already written.
#[test]
fn one_ingest_never_replaces_a_report_silently() {
    let dir = tempfile::tempdir().unwrap();
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx",
    );
    let first = dir.path().join("first.evtx");
    let second = dir.path().join("second.evtx");
    std::fs::copy(&log, &first).unwrap();
    std::fs::copy(&log, &second).unwrap();
    for batch in ["16", "1"] {
        let data = dir.path().join(format!("data-{batch}"));
        let out = sandscope(&[
            "ingest",
            "--data",
            data.to_str().unwrap(),
            "--no-sigma",
            "--batch",
            batch,
            first.to_str().unwrap(),
            second.to_str().unwrap(),
        ]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "of {} replaces the one of {} (same sample and sandbox)",
                second.display(),
                first.display()
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("1 report(s) stored, 0 file(s) skipped"),
            "{stderr}"
        );
    }
}
