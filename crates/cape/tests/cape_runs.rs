//! The four real CAPE 2.4 runs of CybercentreCanada/assemblyline-service-cape, imported and
//! checked against values read by hand from their `lite.json` / `files.json`, all vendored
//! under `tests/data/` (the 2.4 MB one gzip-compressed).

use sandscope_cape::{CapeError, Flavour, import, import_bytes, inspect};
use sandscope_model::{FileBehaviour, ProcessNode};
use std::io::Write;
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

const APC_INJECT: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
const ETW_DNS: &str = "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2";
const API_HOOKS: &str = "491f359c0cf2588e4aa76a527317406927b0900cfc5c24a4736c92d372073b1e";
const BITS_BAT: &str = "9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788";

fn run_folder(sample: &str) -> PathBuf {
    let whole = Path::new(WHOLE_RUNS).join(sample);
    if whole.join("Report/reports").is_dir() {
        whole
    } else {
        Path::new(REPORT_RUNS).join(sample)
    }
}

fn lite(sample: &str) -> PathBuf {
    run_folder(sample)
        .join("Report")
        .join("reports")
        .join("lite.json")
}

fn vendored(sample: &str) -> FileBehaviour {
    let path = lite(sample);
    import(path.as_path()).unwrap_or_else(|e| panic!("{e}"))
}

/// `(pid, name, children)` of a tree, for compact assertions.
fn shape(nodes: &[ProcessNode]) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    fn walk(node: &ProcessNode, out: &mut Vec<(String, String, usize)>) {
        out.push((
            node.process_id.clone(),
            node.name.clone(),
            node.children.len(),
        ));
        for child in &node.children {
            walk(child, out);
        }
    }
    for node in nodes {
        walk(node, &mut out);
    }
    out
}

fn triple(pid: &str, name: &str, children: usize) -> (String, String, usize) {
    (pid.to_string(), name.to_string(), children)
}

#[test]
fn apc_inject_run() {
    let report = vendored(APC_INJECT);
    assert_eq!(report.sha256(), APC_INJECT);
    assert_eq!(report.id, format!("{APC_INJECT}_CAPE Sandbox"));
    let a = &report.attributes;
    assert_eq!(a.sandbox_name, "CAPE Sandbox");
    // info.started "2025-11-18 21:10:56".
    assert_eq!(a.analysis_date, Some(1_763_500_256));
    // processtree: apc-inject.exe 5900 (the sample, run from TempPath) and the svchost it
    // injected into, a separate root.
    assert_eq!(
        shape(&a.processes_tree),
        vec![
            triple("5900", r#""%SAMPLEPATH%\apc-inject.exe" "#, 0),
            triple(
                "2000",
                r"%WINDIR%\System32\svchost.exe -k LocalSystemNetworkRestricted -p -s AudioEndpointBuilder",
                0
            ),
        ]
    );
    // first_seen 21:11:22,948 − started 21:10:56.
    assert_eq!(a.processes_tree[0].time_offset, Some(26));
    assert_eq!(a.processes_created, vec![r"%SAMPLEPATH%\apc-inject.exe"]);
    assert_eq!(
        a.command_executions,
        vec![r#""%SAMPLEPATH%\apc-inject.exe" "#]
    );
    let dns: Vec<(&str, Vec<&str>, Vec<&str>)> = a
        .dns_lookups
        .iter()
        .map(|d| {
            (
                d.hostname.as_str(),
                d.resolved_ips.iter().map(String::as_str).collect(),
                d.cnames.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        dns,
        vec![
            (
                "settings-win.data.microsoft.com",
                vec!["169.254.128.1"],
                vec![]
            ),
            ("activation-v2.sls.microsoft.com", vec![], vec![]),
            ("crl.microsoft.com", vec![], vec![]),
            ("www.microsoft.com", vec![], vec![]),
            ("slscr.update.microsoft.com", vec![], vec![]),
            (
                "1.128.254.169.in-addr.arpa",
                vec![],
                vec!["www.inetsim.org"]
            ),
            ("maps.windows.com", vec![], vec![]),
        ]
    );
    // files.json lists only HollowsHunter dumps: nothing was dropped.
    assert!(a.files_dropped.is_empty());
    let traffic: Vec<String> = a
        .ip_traffic
        .iter()
        .map(|t| {
            format!(
                "{}:{}/{}",
                t.destination_ip,
                t.destination_port.unwrap_or(0),
                t.transport_layer_protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        traffic,
        vec![
            "135.233.95.144:443/TCP",
            "169.254.128.1:443/TCP",
            "169.254.128.1:80/TCP",
            "169.254.128.1:53/UDP"
        ]
    );
    assert_eq!(a.http_conversations.len(), 8);
    assert_eq!(
        a.http_conversations[0].url,
        "http://crl.microsoft.com/pki/crl/products/MicRooCerAut_2010-06-23.crl"
    );
    assert_eq!(
        a.http_conversations[0]
            .request_headers
            .get("User-Agent")
            .map(String::as_str),
        Some("Microsoft-CryptoAPI/10.0")
    );
    let signatures: Vec<_> = a
        .signature_matches
        .iter()
        .map(|s| (s.name.as_deref(), s.severity.as_deref()))
        .collect();
    assert_eq!(
        signatures,
        vec![
            (Some("stealth_network"), Some("IMPACT_SEVERITY_LOW")),
            (
                Some("antidebug_setunhandledexceptionfilter"),
                Some("IMPACT_SEVERITY_LOW")
            ),
        ]
    );
    assert!(
        a.signature_matches[0]
            .match_data
            .contains(&"ip: 135.233.95.144".to_string())
    );
    assert_eq!(a.tags, vec!["DETECT_DEBUG_ENVIRONMENT"]);
    assert!(a.mitre_attack_techniques.is_empty());
}

#[test]
fn etw_dns_run() {
    let report = vendored(ETW_DNS);
    assert_eq!(report.sha256(), ETW_DNS);
    let a = &report.attributes;
    assert_eq!(
        shape(&a.processes_tree),
        vec![triple("2500", r#""%SAMPLEPATH%\etw-dns-app.exe" "#, 0)]
    );
    assert_eq!(
        a.command_executions,
        vec![r#""%SAMPLEPATH%\etw-dns-app.exe" "#]
    );
    assert_eq!(a.dns_lookups.len(), 11);
    assert_eq!(a.dns_lookups[0].hostname, "settings-win.data.microsoft.com");
    assert_eq!(a.dns_lookups[0].resolved_ips, vec!["169.254.128.1"]);
    assert_eq!(a.dns_lookups[6].hostname, "1.128.254.169.in-addr.arpa");
    assert_eq!(a.dns_lookups[6].cnames, vec!["www.inetsim.org"]);
    assert!(
        a.dns_lookups[1..6]
            .iter()
            .all(|d| d.resolved_ips.is_empty())
    );
    // files.json: files/d15de142… ← C:\Users\buddy\AppData\Local\Temp\app.log.
    assert_eq!(a.files_dropped.len(), 1);
    assert_eq!(a.files_dropped[0].path, r"%SAMPLEPATH%\app.log");
    assert_eq!(
        a.files_dropped[0].sha256.as_deref(),
        Some("d15de142ade45df1a7c0548e699ac02f0d23047d257ae1b46c64b9c1493a109c")
    );
    assert_eq!(
        a.files_written,
        vec![r"%SAMPLEPATH%\app.log", r"%SAMPLEPATH%\audit.log"]
    );
    assert_eq!(a.http_conversations.len(), 7);
    assert_eq!(a.ip_traffic.len(), 5);
    // language_check_registry → T1614/T1627 from the CAPE community signature table.
    let techniques: Vec<&str> = a
        .mitre_attack_techniques
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(techniques, vec!["T1614", "T1627"]);
    assert_eq!(
        a.mitre_attack_techniques[0].refs[0].value,
        "language_check_registry"
    );
}

#[test]
fn api_hooks_run() {
    let report = vendored(API_HOOKS);
    assert_eq!(report.sha256(), API_HOOKS);
    let a = &report.attributes;
    assert_eq!(
        shape(&a.processes_tree),
        vec![
            triple("4228", r#""%SAMPLEPATH%\apihooks.exe" "#, 1),
            triple("1248", r"%WINDIR%\system32\cmd.exe /c echo hai", 0),
        ]
    );
    assert_eq!(
        a.processes_created,
        vec![r"%SAMPLEPATH%\apihooks.exe", r"%WINDIR%\SysWOW64\cmd.exe"]
    );
    assert_eq!(
        a.command_executions,
        vec![
            r#""%SAMPLEPATH%\apihooks.exe" "#,
            r"%WINDIR%\system32\cmd.exe /c echo hai"
        ]
    );
    // environ.CommandLine as CAPE logged it stays findable behind the normalised lines.
    assert_eq!(
        a.raw_forms[r#""%SAMPLEPATH%\apihooks.exe" "#],
        vec![r#""C:\Users\buddy\AppData\Local\Temp\apihooks.exe" "#]
    );
    assert_eq!(
        a.raw_forms[r"%WINDIR%\system32\cmd.exe /c echo hai"],
        vec![r"C:\WINDOWS\system32\cmd.exe /c echo hai"]
    );
    assert_eq!(
        a.raw_forms[r"%WINDIR%\SysWOW64\cmd.exe"],
        vec![r"C:\Windows\SysWOW64\cmd.exe"]
    );
    // Ten DNS queries, nine names (online_nat.online_nat asked as A and PTR), no answers.
    assert_eq!(a.dns_lookups.len(), 9);
    assert!(
        a.dns_lookups
            .iter()
            .all(|d| d.resolved_ips.is_empty() && d.cnames.is_empty())
    );
    assert_eq!(a.files_dropped.len(), 1);
    assert_eq!(a.files_dropped[0].path, r"%SAMPLEPATH%\test-hello");
    assert_eq!(
        a.files_dropped[0].sha256.as_deref(),
        Some("8581368b6a0b495e876ca80033f11b75665f71cbae2851f65eec2a3da124df4e")
    );
    assert_eq!(a.files_written, vec![r"%SAMPLEPATH%\test-hello"]);
    assert_eq!(a.files_deleted, vec![r"%SAMPLEPATH%\test-hello"]);
    // NtCreateMutant MutexNam3, NtOpenMutant OpenMutexName.
    assert_eq!(a.mutexes_created, vec!["MutexNam3"]);
    assert_eq!(a.mutexes_opened, vec!["OpenMutexName"]);
    // RegSetValueExA … Run\TestApiHooks = "Hoi".
    assert_eq!(a.registry_keys_set.len(), 1);
    assert_eq!(
        a.registry_keys_set[0].key,
        r"HKCU\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\TestApiHooks"
    );
    assert_eq!(a.registry_keys_set[0].value.as_deref(), Some("Hoi"));
    assert_eq!(
        a.registry_keys_deleted,
        vec![r"HKCU\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\TestApiHooks"]
    );
    assert_eq!(a.signature_matches.len(), 7);
    let autorun = a
        .mitre_attack_techniques
        .iter()
        .find(|t| t.id == "T1547.001")
        .expect("persistence_autorun maps to T1547.001");
    assert_eq!(
        autorun.signature_description,
        "Installs itself for autorun at Windows startup"
    );
    assert_eq!(autorun.severity, "IMPACT_SEVERITY_HIGH");
    assert!(a.tags.contains(&"PERSISTENCE".to_string()));
}

#[test]
fn bits_bat_run() {
    let path = lite(BITS_BAT).with_extension("json.gz");
    let report = import(path.as_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.sha256(), BITS_BAT);
    let a = &report.attributes;
    let bitsadmin = r"bitsadmin  /transfer myDownloadJob /download /priority normal http://www.example.com/package.zip C:\\Users\\buddy\\testfile2.txt";
    assert_eq!(
        shape(&a.processes_tree),
        vec![
            triple(
                "6264",
                r#""%WINDIR%\system32\cmd.exe" /c start /wait "" "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
                1
            ),
            triple(
                "7560",
                r#"%WINDIR%\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
                1
            ),
            triple("7888", bitsadmin, 0),
            triple("600", r"%WINDIR%\system32\services.exe", 2),
            triple("832", r"%WINDIR%\system32\svchost.exe -k DcomLaunch -p", 0),
            triple("2348", r"%WINDIR%\System32\svchost.exe -k netsvcs -p", 0),
        ]
    );
    // The three processes of the sample's tree; summary.executed_commands repeats two.
    assert_eq!(
        a.command_executions,
        vec![
            r#""%WINDIR%\system32\cmd.exe" /c start /wait "" "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
            r#"%WINDIR%\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
            bitsadmin,
        ]
    );
    assert_eq!(
        a.raw_forms[&a.command_executions[1]],
        vec![r#"C:\WINDOWS\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#]
    );
    assert_eq!(a.services_started, vec!["BITS"]);
    // Eight queries, seven names (online_nat.online_nat as A and PTR), no answers: INetSim
    // answered none of them.
    let names: Vec<&str> = a.dns_lookups.iter().map(|d| d.hostname.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "settings-win.data.microsoft.com",
            "maps.windows.com",
            "slscr.update.microsoft.com",
            "online_nat.online_nat",
            "1.128.254.169.in-addr.arpa",
            "crl.microsoft.com",
            "www.microsoft.com"
        ]
    );
    assert!(
        a.dns_lookups
            .iter()
            .all(|d| d.resolved_ips.is_empty() && d.cnames.is_empty())
    );
    assert!(a.files_dropped.is_empty());
    assert_eq!(
        a.files_written,
        vec![
            r"\Device\Afd\Endpoint",
            r"%USERPROFILE%\BIT3E53.tmp",
            r"%USERPROFILE%\testfile2.txt"
        ]
    );
    let info = inspect(path.as_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.sysmon_events, Some(821));
}

#[test]
fn inspect_reports_sample_and_embedded_sysmon() {
    for (sample, events) in [(APC_INJECT, 78), (ETW_DNS, 133), (API_HOOKS, 333)] {
        let path = lite(sample);
        let info = inspect(path.as_path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.flavour, Flavour::Cape);
        assert_eq!(info.sample_sha256.as_deref(), Some(sample));
        assert_eq!(info.sysmon_events, Some(events));
        let head = std::fs::read(&path).unwrap();
        assert!(sandscope_cape::looks_like_report(&head[..4096]));
        assert!(sandscope_cape::looks_like_report_file(&path));
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zip_with(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("reports/summary.txt", options).unwrap();
    writer.write_all(b"not the report").unwrap();
    writer.start_file(name, options).unwrap();
    writer.write_all(bytes).unwrap();
    writer.finish().unwrap().into_inner()
}

#[test]
fn gzip_and_zip_give_the_same_report() {
    let path = lite(APC_INJECT);
    let plain = std::fs::read(&path).unwrap();
    let expected = import_bytes("lite.json", &plain).unwrap();
    let from_gzip = import_bytes("lite.json.gz", &gzip(&plain)).unwrap();
    let from_zip = import_bytes("task.zip", &zip_with("reports/lite.json", &plain)).unwrap();
    assert_eq!(from_gzip, expected);
    assert_eq!(from_zip, expected);
    assert!(sandscope_cape::looks_like_report(&gzip(&plain)));

    let dir = tempfile::tempdir().unwrap();
    let zipped = dir.path().join("task.zip");
    std::fs::write(&zipped, zip_with("reports/lite.json", &plain)).unwrap();
    assert!(sandscope_cape::looks_like_report_file(&zipped));
    assert_eq!(import(zipped.as_path()).unwrap(), expected);
}

fn json_error(err: CapeError) -> (String, String, bool, String) {
    let text = err.to_string();
    match err {
        CapeError::Json {
            file,
            path,
            truncated,
            ..
        } => (file, path, truncated, text),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn truncated_reports_name_file_and_json_path() {
    let path = lite(APC_INJECT);
    let plain = std::fs::read(&path).unwrap();
    let text = String::from_utf8(plain.clone()).unwrap();
    let processes = text.find("\"processes\": [").expect("behavior.processes");
    let dns = text.find("\"dns\": [").expect("network.dns");
    for cut in [
        1,
        100,
        5_000,
        60_000,
        dns + 40,
        processes + 2_000,
        plain.len() - 2,
    ] {
        let err = import_bytes("cut-lite.json", &plain[..cut]).unwrap_err();
        let (file, json_path, truncated, message) = json_error(err);
        assert_eq!(file, "cut-lite.json");
        assert!(truncated, "cut at {cut}: {message}");
        assert!(message.contains("truncated report"), "{message}");
        assert!(!json_path.is_empty(), "cut at {cut}");
        assert!(!json_path.contains('?'), "cut at {cut}: {json_path}");
        if cut == processes + 2_000 {
            assert!(
                json_path.starts_with("behavior.processes[0]"),
                "cut at {cut}: {json_path}"
            );
        }
        if cut == dns + 40 {
            assert!(json_path.starts_with("network.dns[0]"), "{json_path}");
        }
    }
    // Cut inside a gzip stream: same kind of error, never a panic.
    let gz = gzip(&plain);
    let err = import_bytes("lite.json.gz", &gz[..gz.len() / 2]).unwrap_err();
    assert!(err.to_string().starts_with("lite.json.gz: "), "{err}");
}

#[test]
fn corrupted_types_name_their_json_path() {
    let path = lite(APC_INJECT);
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let cases: [(&str, serde_json::Value, &str); 5] = [
        (
            "/behavior/processes/1/environ",
            serde_json::json!(7),
            "behavior.processes[1].environ",
        ),
        (
            "/behavior/processes/0/process_id",
            serde_json::json!([5900]),
            "behavior.processes[0].process_id",
        ),
        (
            "/behavior/summary/write_files",
            serde_json::json!("C:\\x"),
            "behavior.summary.write_files",
        ),
        (
            "/network/dns/0/answers",
            serde_json::json!({"type": "A"}),
            "network.dns[0].answers",
        ),
        (
            "/behavior/processtree/0/children",
            serde_json::json!("none"),
            "behavior.processtree[0].children",
        ),
    ];
    for (pointer, replacement, expected_path) in cases {
        let mut corrupted = original.clone();
        *corrupted.pointer_mut(pointer).unwrap() = replacement;
        let bytes = serde_json::to_vec(&corrupted).unwrap();
        let (file, json_path, truncated, message) =
            json_error(import_bytes("corrupt.json", &bytes).unwrap_err());
        assert_eq!(file, "corrupt.json");
        assert_eq!(json_path, expected_path, "{message}");
        assert!(!truncated);
        assert!(message.contains(expected_path), "{message}");
        assert!(
            !message.contains("Raw"),
            "internal type names leak: {message}"
        );
    }
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    let inputs: [&[u8]; 7] = [
        b"",
        b"\x1f\x8b\x08\x00garbage",
        b"PK\x03\x04not a zip",
        b"{}",
        b"[]",
        b"{\"target\": {\"category\": \"url\"}}",
        b"{\"target\": {\"file\": {\"sha256\": \"abc\"}}}",
    ];
    for input in inputs {
        assert!(import_bytes("hostile", input).is_err());
    }
    let err = import_bytes("url.json", br#"{"target": {"category": "url"}}"#).unwrap_err();
    assert!(matches!(err, CapeError::NotAReport { .. }), "{err}");
    assert!(err.to_string().contains("url.json"), "{err}");
    // Nested past serde_json's recursion limit inside a free-form section.
    let deep = format!("{{\"signatures\": [{{\"data\": {}", "[".repeat(100_000));
    assert!(import_bytes("deep", deep.as_bytes()).is_err());
}

/// A Cuckoo 2.x report in the shape of the real 2.0.6 report fragments used by the beagle
/// project's tests (processtree with `pid`/`ppid`/`process_name`/`command_line`, epoch
/// timestamps, verb-keyed summary, signature `ttp` objects keyed by technique id); values
/// are ours.
#[test]
fn cuckoo_2x_report() {
    let report = br#"{
      "info": {"version": "2.0.6", "started": 1553810186.098672, "category": "file"},
      "target": {"category": "file", "file": {"name": "sample.exe",
        "sha256": "C1DB4B2578729A1FAEDE84D2735EB8463BFD2C6B15D2FDF2DE7A89F1954D0DFB"}},
      "behavior": {
        "processes": [
          {"pid": 2460, "ppid": 1272, "process_name": "sample.exe",
           "process_path": "C:\\Users\\Administrator\\AppData\\Local\\Temp\\sample.exe",
           "command_line": "\"C:\\Users\\Administrator\\AppData\\Local\\Temp\\sample.exe\" ",
           "first_seen": 1553810190.5, "calls": []},
          {"pid": 2548, "ppid": 2460, "process_name": "sample.exe",
           "process_path": "C:\\Users\\Administrator\\AppData\\Local\\Temp\\sample.exe",
           "command_line": "--39dd5ff7", "first_seen": 1553810192.7,
           "calls": [{"api": "NtOpenMutant", "arguments": {"mutant_name": "x"}}]}
        ],
        "processtree": [
          {"track": true, "pid": 2460, "ppid": 1272, "process_name": "sample.exe",
           "command_line": "\"C:\\Users\\Administrator\\AppData\\Local\\Temp\\sample.exe\" ",
           "first_seen": 1553810190.5,
           "children": [{"track": true, "pid": 2548, "ppid": 2460, "process_name": "sample.exe",
                         "command_line": "--39dd5ff7", "first_seen": 1553810192.7, "children": []}]}
        ],
        "summary": {
          "file_written": ["C:\\Users\\Administrator\\AppData\\Roaming\\x.dat"],
          "regkey_written": ["HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\x"],
          "file_copied": [["C:\\a.exe", "C:\\Users\\Administrator\\AppData\\Roaming\\b.exe"]],
          "mutex": ["Global\\m1"],
          "command_line": ["cmd.exe /c whoami"],
          "resolves_host": ["example.org"]
        }
      },
      "network": {"hosts": ["192.0.2.10"], "dns": [{"request": "example.org", "type": "A",
                  "answers": [{"type": "A", "data": "192.0.2.10"}]}],
                  "tcp": [{"src": "10.0.0.5", "sport": 49160, "dst": "192.0.2.10", "dport": 80,
                           "offset": 24, "time": 0.5}], "udp": []},
      "signatures": [{"name": "persistence_autorun", "description": "Installs itself for autorun",
                      "severity": 3, "families": [], "references": [], "markcount": 1, "marks": [],
                      "ttp": {"T1060": {"short": "Registry Run Keys", "long": "Run keys"}}}],
      "dropped": [{"name": "x.dat", "path": "/srv/cuckoo/storage/analyses/1/files/x.dat",
                   "filepath": "C:\\Users\\Administrator\\AppData\\Roaming\\x.dat",
                   "sha256": "8581368b6a0b495e876ca80033f11b75665f71cbae2851f65eec2a3da124df4e",
                   "type": "data", "pids": [2460]}]
    }"#;
    let report = import_bytes("cuckoo.json", report).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.id,
        "c1db4b2578729a1faede84d2735eb8463bfd2c6b15d2fdf2de7a89f1954d0dfb_Cuckoo Sandbox"
    );
    let a = &report.attributes;
    assert_eq!(a.sandbox_name, "Cuckoo Sandbox");
    assert_eq!(
        shape(&a.processes_tree),
        vec![
            triple("2460", r#""%SAMPLEPATH%\sample.exe" "#, 1),
            triple("2548", "--39dd5ff7", 0),
        ]
    );
    assert_eq!(a.processes_tree[0].children[0].time_offset, Some(6));
    assert_eq!(a.files_written, vec![r"%APPDATA%\x.dat"]);
    assert_eq!(a.files_copied.len(), 1);
    assert_eq!(a.files_copied[0].destination, r"%APPDATA%\b.exe");
    assert_eq!(
        a.registry_keys_set[0].key,
        r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\x"
    );
    assert_eq!(a.mutexes_created, vec![r"Global\m1"]);
    assert!(
        a.command_executions
            .contains(&"cmd.exe /c whoami".to_string())
    );
    assert_eq!(a.dns_lookups.len(), 1);
    assert_eq!(a.dns_lookups[0].resolved_ips, vec!["192.0.2.10"]);
    assert_eq!(a.ip_traffic.len(), 1);
    assert_eq!(a.files_dropped[0].path, r"%APPDATA%\x.dat");
    assert_eq!(a.files_dropped[0].file_type, None);
    assert_eq!(a.mitre_attack_techniques.len(), 1);
    assert_eq!(a.mitre_attack_techniques[0].id, "T1060");
}

/// Two real runs in one sandbox (different samples): the merge unions what both saw, the
/// diff shows the overlap (the Windows CRL traffic every run makes) and what differs.
#[test]
fn merge_and_diff_of_two_real_runs() {
    use sandscope_model::{BehaviourSummary, behaviour_mitre_trees, diff_reports};
    let apc = vendored(APC_INJECT);
    let etw = vendored(ETW_DNS);

    let summary = BehaviourSummary::merge(&[apc.clone(), etw.clone()]);
    let a = &summary.attributes;
    // apc-inject's 7 names are all among etw-dns's 11.
    assert_eq!(a.dns_lookups.len(), 11);
    assert_eq!(a.dns_lookups[0].resolved_ips, vec!["169.254.128.1"]);
    // etw-dns's 7 URLs are the first 7 of apc-inject's 8.
    assert_eq!(a.http_conversations.len(), 8);
    assert_eq!(a.command_executions.len(), 2);
    assert_eq!(a.processes_tree.len(), 3);
    assert_eq!(summary.processes_tree_by_sandbox["CAPE Sandbox"].len(), 3);
    assert_eq!(a.files_dropped.len(), 1);
    let json = serde_json::to_value(&summary).unwrap();
    assert!(json.get("sandbox_name").is_none() && json.get("analysis_date").is_none());

    let diff = diff_reports(&apc, &etw);
    let attribute = |name: &str| {
        diff.attributes
            .iter()
            .find(|a| a.attribute == name)
            .unwrap_or_else(|| panic!("{name} in diff"))
    };
    let dns = attribute("dns_lookups");
    assert_eq!(dns.both.len(), 7);
    assert!(dns.only_left.is_empty());
    assert_eq!(
        dns.only_right,
        vec![
            "198.128.254.169.in-addr.arpa",
            "251.0.0.224.in-addr.arpa",
            "9.7.8.8.9.3.c.2.2.b.1.0.7.c.4.6.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa",
            "b.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.f.f.ip6.arpa",
        ]
    );
    let http = attribute("http_conversations");
    assert_eq!(
        http.only_left,
        vec!["GET http://crl.microsoft.com/pki/crl/products/MicCodSigPCA_2010-07-06.crl"]
    );
    assert_eq!(http.both.len(), 7);
    let commands = attribute("command_executions");
    assert_eq!(
        commands.only_left,
        vec![r#""%SAMPLEPATH%\apc-inject.exe" "#]
    );
    assert_eq!(
        commands.only_right,
        vec![r#""%SAMPLEPATH%\etw-dns-app.exe" "#]
    );
    assert!(commands.both.is_empty());
    let dropped = attribute("files_dropped");
    assert_eq!(
        dropped.only_right,
        vec![
            r"%SAMPLEPATH%\app.log (d15de142ade45df1a7c0548e699ac02f0d23047d257ae1b46c64b9c1493a109c)"
        ]
    );

    let trees = behaviour_mitre_trees(&[vendored(API_HOOKS), apc]);
    let tactics: Vec<&str> = trees["CAPE Sandbox"]
        .tactics
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    // persistence_autorun (T1060, T1112, T1547, T1547.001), uses_windows_utilities (T1202),
    // queries_locale_api / language_check_registry (T1614, T1627 unmapped).
    assert_eq!(tactics, vec!["TA0003", "TA0004", "TA0005", "TA0007", ""]);
    let persistence = &trees["CAPE Sandbox"].tactics[0];
    let ids: Vec<&str> = persistence
        .techniques
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(ids, vec!["T1060", "T1112", "T1547", "T1547.001"]);
    assert_eq!(persistence.techniques[0].signatures[0].severity, "HIGH");
}

/// Every 4 KiB cut of a real report and a few hundred single-byte corruptions: each is
/// either a clean import or an error naming the file, never a panic.
#[test]
fn cuts_and_byte_flips_never_panic() {
    let plain = std::fs::read(lite(APC_INJECT)).unwrap();
    for cut in (0..plain.len()).step_by(4093) {
        let err = import_bytes("cut.json", &plain[..cut]).unwrap_err();
        assert!(err.to_string().contains("cut.json"), "{err}");
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut corrupted = plain.clone();
        let at = (next() % corrupted.len() as u64) as usize;
        let replacements = b"{}[]\",:0a\\\x00\xff";
        corrupted[at] = replacements[(next() % replacements.len() as u64) as usize];
        if let Err(err) = import_bytes("flip.json", &corrupted) {
            assert!(err.to_string().contains("flip.json"), "{err}");
        }
    }
}
