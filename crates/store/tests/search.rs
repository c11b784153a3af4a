//! Search semantics over reports shaped like the seed's two situations, plus decoys that must
//! not match. Every modifier gets at least one real hit and one real miss.

use sandscope_model::*;
use sandscope_store::{NewReport, Order, RawData, RawLog, SearchRequest, Store};
use std::collections::BTreeSet;

const RANSOM: &str = "8c18288195245660d3836693ec97509d43df8e25d52ff3858b9778aa2c4725e1";
const MINER: &str = "7a550b8a17983af622f31270ebe566b1834c28c2a2ea2b6b0ed819c95d8e534d";
const DECOY_A: &str = "aaaa000000000000000000000000000000000000000000000000000000000001";
const DECOY_B: &str = "bbbb000000000000000000000000000000000000000000000000000000000002";

fn name(sha: &str) -> &'static str {
    match sha {
        RANSOM => "ransom",
        MINER => "miner",
        DECOY_A => "decoy_a",
        DECOY_B => "decoy_b",
        _ => "other",
    }
}

fn report(sha: &str, attributes: BehaviourAttributes) -> NewReport {
    NewReport {
        behaviour: FileBehaviour::new(sha, attributes),
        raw_log: None,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn ransomware() -> Vec<NewReport> {
    let sysmon = BehaviourAttributes {
        sandbox_name: SYSINTERNALS_SANDBOX.into(),
        analysis_date: Some(1_732_526_043), // 2024-11-25
        behash: Some("4d0e1b5e8f4c3a2b1c0d9e8f7a6b5c4d".into()),
        processes_created: s(&[
            r"C:\Users\alice\Downloads\invoice_2411.exe",
            r"C:\Windows\System32\vssadmin.exe",
        ]),
        command_executions: s(&["vssadmin.exe delete shadows /all /quiet"]),
        files_written: s(&[
            r"C:\Users\alice\Documents\Quarterly report.docx.id-1E2A7F3C.[decrypt@tutanota.com].eking",
            r"C:\Users\alice\Desktop\info.hta",
        ]),
        files_deleted: s(&[r"C:\Users\alice\Documents\Quarterly report.docx"]),
        sigma_analysis_results: vec![SigmaAnalysisResult {
            rule_title: "Shadow Copies Deletion Using Operating Systems Utilities".into(),
            rule_level: "high".into(),
            rule_id: "c947b146-0abc-4c87-9c64-b17e9d7274a2".into(),
            ..Default::default()
        }],
        mitre_attack_techniques: vec![MitreAttackTechnique {
            id: "T1490".into(),
            signature_description: "Inhibit System Recovery".into(),
            severity: "IMPACT_SEVERITY_HIGH".into(),
            refs: vec![MitreRef {
                reference: "tactic".into(),
                value: "TA0040".into(),
            }],
        }],
        ..Default::default()
    };
    let cape = BehaviourAttributes {
        sandbox_name: CAPE_SANDBOX.into(),
        analysis_date: Some(1_732_612_443), // a day later
        tags: s(&["DETECT_DEBUG_ENVIRONMENT"]),
        processes_injected: s(&[r"C:\Windows\explorer.exe"]),
        registry_keys_set: vec![RegistrySet {
            key: r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\eking".into(),
            value: Some(r"C:\Users\alice\Downloads\invoice_2411.exe".into()),
        }],
        mutexes_created: s(&["Global\\eking-1E2A7F3C"]),
        signature_matches: vec![SignatureMatch {
            name: Some("ransomware_file_modifications".into()),
            description: "Exhibits behavior characteristic of ransomware".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    vec![report(RANSOM, sysmon), report(RANSOM, cape)]
}

fn coinminer() -> Vec<NewReport> {
    let drop = r"C:\Users\bob\AppData\Roaming\Microsoft\Telemetry\sihost32.exe";
    let a = BehaviourAttributes {
        sandbox_name: SYSINTERNALS_SANDBOX.into(),
        analysis_date: Some(1_733_149_870), // 2024-12-02
        processes_created: s(&[
            r"C:\Users\bob\AppData\Local\Temp\setup_x64.exe",
            r"C:\Windows\System32\schtasks.exe",
            drop,
        ]),
        command_executions: s(&[
            &format!(
                r#"schtasks /create /f /sc onlogon /rl highest /tn "Microsoft\Windows\Telemetry\Sihost" /tr "{drop}""#
            ),
            &format!(r#""{drop}" --donate-level 1 -o pool.supportxmr.com:443 -k --tls"#),
        ]),
        files_written: s(&[drop]),
        dns_lookups: vec![DnsLookup {
            hostname: "pool.supportxmr.com".into(),
            resolved_ips: s(&["141.94.96.144"]),
            cnames: vec![],
        }],
        ip_traffic: vec![IpTraffic {
            destination_ip: "141.94.96.144".into(),
            destination_port: Some(443),
            transport_layer_protocol: Some("TCP".into()),
        }],
        services_created: s(&["XmrTelemetrySvc"]),
        scheduled_tasks_created: vec![ScheduledTask {
            name: r"\Microsoft\Windows\Telemetry\Sihost".into(),
            command: Some(drop.into()),
            trigger: Some("logon".into()),
            ..Default::default()
        }],
        sigma_analysis_results: (0..3)
            .map(|i| SigmaAnalysisResult {
                rule_title: format!("medium rule {i}"),
                rule_level: "medium".into(),
                rule_id: format!("0000000{i}-1111-2222-3333-444444444444"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    vec![report(MINER, a)]
}

/// Near misses: similar strings in the wrong field, a longer file name, another mailbox.
fn decoys() -> Vec<NewReport> {
    let a = BehaviourAttributes {
        sandbox_name: SYSINTERNALS_SANDBOX.into(),
        analysis_date: Some(1_700_000_000), // 2023-11-14
        processes_created: s(&[
            r"C:\Users\carol\AppData\Local\Microsoft\Telemetry\sihost32.exe",
            r"C:\Windows\System32\sihost.exe",
        ]),
        files_written: s(&[r"C:\Users\carol\Documents\notes.txt.[restore@protonmail.com].lock"]),
        dns_lookups: vec![DnsLookup {
            hostname: "mail.tutanota.com".into(),
            ..Default::default()
        }],
        registry_keys_opened: s(&[r"HKLM\System\CurrentControlSet\Services\Tcpip\Parameters"]),
        services_started: s(&["WinDefend"]),
        ..Default::default()
    };
    let b = BehaviourAttributes {
        sandbox_name: "VirusTotal Jujubox".into(),
        analysis_date: Some(1_710_000_000), // 2024-03-09
        command_executions: s(&[
            r#""C:\Users\dave\AppData\Roaming\Microsoft\Telemetry\sihost32.exe2" -o pool.minexmr.com:4444"#,
        ]),
        files_opened: s(&[r"C:\Windows\System32\drivers\etc\hosts"]),
        tags: s(&["LONG_SLEEPS"]),
        ..Default::default()
    };
    vec![report(DECOY_A, a), report(DECOY_B, b)]
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut all = ransomware();
    all.extend(coinminer());
    all.extend(decoys());
    store.put_reports(all).unwrap();
    (dir, store)
}

fn hits(store: &Store, query: &str) -> BTreeSet<&'static str> {
    let mut request = SearchRequest::new(query);
    request.limit = 300;
    request.now = 1_733_500_000; // 2024-12-06
    let page = store
        .search(&request)
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    assert_eq!(page.total_hits as usize, page.hits.len(), "{query}");
    page.hits.iter().map(|h| name(&h.sha256)).collect()
}

fn set(v: &[&'static str]) -> BTreeSet<&'static str> {
    v.iter().copied().collect()
}

#[test]
fn seed_queries_verbatim() {
    let (_d, st) = store();
    assert_eq!(hits(&st, "behaviour_files:@tutanota.com"), set(&["ransom"]));
    assert_eq!(
        hits(
            &st,
            r#"behaviour_processes:"\"AppData\\Microsoft\\Telemetry\\sihost32.exe\"""#
        ),
        set(&["miner"])
    );
    // Without the anchoring quotes the longer decoy name `sihost32.exe2` matches too.
    assert_eq!(
        hits(
            &st,
            r#"behaviour_processes:"AppData\\Roaming\\Microsoft\\Telemetry\\sihost32.exe""#
        ),
        set(&["miner", "decoy_b"])
    );
    // The expanded and the placeholder spelling both find the raw path.
    assert_eq!(
        hits(
            &st,
            r#"behaviour_files:"%USERPROFILE%\AppData\Roaming\Microsoft\Telemetry\sihost32.exe""#
        ),
        set(&["miner"])
    );
    assert_eq!(
        hits(
            &st,
            r"behaviour_files:%APPDATA%\Microsoft\Telemetry\sihost32.exe"
        ),
        set(&["miner"])
    );
}

#[test]
fn every_text_modifier_hits_and_misses() {
    let (_d, st) = store();
    let cases: &[(&str, &[&'static str])] = &[
        ("behaviour:vssadmin", &["ransom"]),
        ("behavior:tutanota.com", &["ransom", "decoy_a"]),
        ("behaviour:eking-1E2A7F3C", &["ransom"]),
        ("behaviour:nosuchthing", &[]),
        ("tutanota", &["ransom", "decoy_a"]),
        ("behaviour_files:Quarterly report.docx", &["ransom"]),
        ("behaviour_files:\"Quarterly report.docx\"", &["ransom"]),
        ("behavior_files:drivers\\etc\\hosts", &["decoy_b"]),
        ("behaviour_files:pool.supportxmr.com", &[]),
        ("behaviour_processes:vssadmin", &["ransom"]),
        ("behaviour_processes:explorer.exe", &["ransom"]),
        ("behaviour_processes:minexmr", &["decoy_b"]),
        ("behavior_processes:calc.exe", &[]),
        ("behaviour_created_processes:schtasks.exe", &["miner"]),
        ("behaviour_created_processes:explorer.exe", &[]),
        ("behaviour_injected_processes:explorer.exe", &["ransom"]),
        ("behavior_injected_processes:vssadmin", &[]),
        (
            "behaviour_command_executions:\"delete shadows\"",
            &["ransom"],
        ),
        ("behavior_command_executions:onlogon", &["miner"]),
        ("behaviour_command_executions:\"vssadmin.exe /all\"", &[]),
        ("behaviour_network:pool.supportxmr.com", &["miner"]),
        ("behaviour_network:141.94.96.144:443", &["miner"]),
        ("behavior_network:tutanota.com", &["decoy_a"]),
        ("behaviour_network:pool.minexmr.com", &[]),
        ("behaviour_registry:CurrentVersion\\Run", &["ransom"]),
        ("behaviour_registry:invoice_2411.exe", &["ransom"]),
        ("behavior_registry:Tcpip", &["decoy_a"]),
        ("behaviour_registry:RunOnce", &[]),
        ("behaviour_services:XmrTelemetrySvc", &["miner"]),
        ("behavior_services:windefend", &["decoy_a"]),
        ("behaviour_services:Telemetry", &["miner"]),
        ("behaviour_services:sihost32", &[]),
        (
            "behaviour_signature:\"characteristic of ransomware\"",
            &["ransom"],
        ),
        ("behavior_signature:ransomware_file", &["ransom"]),
        ("behaviour_signature:miner", &[]),
    ];
    for (q, want) in cases {
        assert_eq!(hits(&st, q), set(want), "{q}");
    }
}

#[test]
fn every_token_count_and_date_modifier_hits_and_misses() {
    let (_d, st) = store();
    let cases: &[(&str, &[&'static str])] = &[
        ("behaviour_tags:detect_debug_environment", &["ransom"]),
        ("behavior_tag:DETECT-DEBUG-ENVIRONMENT", &["ransom"]),
        ("behaviour_tags:long_sleeps", &["decoy_b"]),
        ("behaviour_tags:detect_debug", &[]),
        ("behaviour_tags:detect_debug*", &["ransom"]),
        ("tag:long-sleeps", &["decoy_b"]),
        ("tag:persistence", &[]),
        ("behash:4D0E1B5E8F4C3A2B1C0D9E8F7A6B5C4D", &["ransom"]),
        ("behash:00000000000000000000000000000000", &[]),
        ("sandbox_name:\"CAPE Sandbox\"", &["ransom"]),
        ("sandbox_name:cape_sandbox", &["ransom"]),
        (
            "sandbox_name:microsoft_sysinternals",
            &["ransom", "miner", "decoy_a"],
        ),
        ("sandbox_name:VirusTotal", &["decoy_b"]),
        ("sandbox_name:zenbox", &[]),
        ("sandbox_name:*sandbox", &["ransom"]),
        (
            "sigma_rule:c947b146-0abc-4c87-9c64-b17e9d7274a2",
            &["ransom"],
        ),
        ("sigma_rule:C947B146*", &["ransom"]),
        ("sigma_rule:ffffffff-0abc-4c87-9c64-b17e9d7274a2", &[]),
        ("attack_technique:T1490", &["ransom"]),
        ("attack_technique:t14*", &["ransom"]),
        ("attack_technique:T1055", &[]),
        ("attack_tactic:TA0040", &["ransom"]),
        ("attack_tactic:TA0003", &[]),
        ("sigma_high:1", &["ransom"]),
        ("sigma_high:1+", &["ransom"]),
        ("sigma_high:1-", &["miner", "decoy_a", "decoy_b"]),
        ("sigma_medium:3+", &["miner"]),
        ("sigma_medium:3-", &["ransom", "decoy_a", "decoy_b"]),
        ("sigma_medium:4+", &[]),
        (
            "sigma_critical:0",
            &["ransom", "miner", "decoy_a", "decoy_b"],
        ),
        ("sigma_critical:1+", &[]),
        ("sigma_low:0-", &[]),
        ("fs:2024-11-25", &["ransom"]),
        ("fs:2024-01-01+", &["ransom", "miner", "decoy_b"]),
        ("fs:2024-01-01-", &["decoy_a"]),
        ("fs:2024-11-25T09:14:03", &["ransom"]),
        ("fs:2024-11-25T09:14:04", &[]),
        ("ls:2024-11-26", &["ransom"]),
        ("ls:2024-11-25", &[]),
        ("fs:7d+", &["miner"]),
        ("fs:7d-", &["ransom", "decoy_a", "decoy_b"]),
        (RANSOM, &["ransom"]),
    ];
    for (q, want) in cases {
        assert_eq!(hits(&st, q), set(want), "{q}");
    }
}

#[test]
fn booleans_grouping_negation_and_escaping() {
    let (_d, st) = store();
    let cases: &[(&str, &[&'static str])] = &[
        ("behaviour:tutanota behaviour:vssadmin", &["ransom"]),
        ("behaviour:tutanota AND behaviour:vssadmin", &["ransom"]),
        (
            "behaviour:tutanota and behaviour_network:tutanota",
            &["decoy_a"],
        ),
        (
            "behaviour:vssadmin OR behaviour:minexmr",
            &["ransom", "decoy_b"],
        ),
        (
            "behaviour:vssadmin or behaviour:minexmr or sihost32",
            &["ransom", "miner", "decoy_a", "decoy_b"],
        ),
        ("tutanota NOT behaviour_network:tutanota", &["ransom"]),
        ("tutanota not behaviour_network:tutanota", &["ransom"]),
        ("tutanota -behaviour_network:tutanota", &["ransom"]),
        ("-sandbox_name:microsoft_sysinternals", &["decoy_b"]),
        ("NOT (sihost32 OR tutanota)", &[]),
        (
            "-(behaviour:vssadmin OR behaviour:minexmr)",
            &["miner", "decoy_a"],
        ),
        (
            "sihost32 (behaviour_network:supportxmr OR behaviour_network:minexmr)",
            &["miner"],
        ),
        (
            "(sihost32 behaviour_network:supportxmr) OR behaviour_tags:long_sleeps",
            &["miner", "decoy_b"],
        ),
        (
            "sihost32 behaviour_network:supportxmr OR behaviour_tags:long_sleeps",
            &["miner", "decoy_b"],
        ),
        (
            "sihost32 (behaviour_network:supportxmr OR behaviour_tags:long_sleeps)",
            &["miner", "decoy_b"],
        ),
        ("((sihost32) AND NOT (-behaviour:minexmr))", &["decoy_b"]),
        // Terms may be satisfied by different sandboxes of one sample.
        ("sandbox_name:cape_sandbox behaviour:vssadmin", &["ransom"]),
        // Escapes: doubled and single backslashes read the same inside quotes.
        (
            r#"behaviour_registry:"CurrentVersion\\Run\\eking""#,
            &["ransom"],
        ),
        (
            r#"behaviour_registry:"CurrentVersion\Run\eking""#,
            &["ransom"],
        ),
        (
            r#"behaviour_command_executions:"/tn \"Microsoft\\Windows\\Telemetry\\Sihost\"""#,
            &["miner"],
        ),
        (r#"behaviour:"and""#, &[]),
        // Wildcards inside a value are verified against the reports, in order.
        ("behaviour_files:Quarterly*eking", &["ransom"]),
        ("behaviour_files:eking*Quarterly", &[]),
        ("behaviour_network:pool.*xmr.com", &["miner"]),
        ("behaviour_network:pool.support*", &["miner"]),
        (
            "-behaviour_files:Quarterly*eking",
            &["miner", "decoy_a", "decoy_b"],
        ),
        // One- and two-character pieces inside a word.
        ("behaviour_network:xm", &["miner"]),
        ("behaviour_services:z", &[]),
    ];
    for (q, want) in cases {
        assert_eq!(hits(&st, q), set(want), "{q}");
    }
}

#[test]
fn malformed_queries_are_errors_with_columns() {
    let (_d, st) = store();
    for (q, column) in [
        ("behaviour_files:", 17),
        ("(behaviour:x", 1),
        ("behaviour:x)", 12),
        ("behaviour:x AND", 16),
        ("nosuch_modifier:x", 1),
        ("sigma_high:many", 12),
        ("behaviour:\"unterminated", 11),
        ("fs:2024-02-30", 4),
        ("a OR AND b", 6),
    ] {
        match st.search(&SearchRequest::new(q)) {
            Err(sandscope_store::StoreError::Query(e)) => assert_eq!(e.column, column, "{q}: {e}"),
            other => panic!("{q}: expected a query error, got {other:?}"),
        }
    }
}

#[test]
fn snippets_show_the_matched_values() {
    let (_d, st) = store();
    let page = st
        .search(&SearchRequest::new("behaviour_files:@tutanota.com"))
        .unwrap();
    assert_eq!(page.hits.len(), 1);
    assert_eq!(
        page.hits[0].snippets,
        vec![r"C:\Users\alice\Documents\Quarterly report.docx.id-1E2A7F3C.[decrypt@tutanota.com].eking".to_string()]
    );
    assert_eq!(page.hits[0].sandboxes.len(), 2);
}

#[test]
fn replace_is_idempotent_and_reports_are_per_sandbox() {
    let (dir, st) = store();
    assert_eq!(st.stats().unwrap().reports, 5);
    // Re-ingest the CAPE report of the ransomware with different content.
    let mut changed = ransomware().remove(1);
    changed.behaviour.attributes.processes_injected = s(&[r"C:\Windows\System32\notepad.exe"]);
    changed.raw_log = Some(RawLog {
        file_name: "report.json".into(),
        data: RawData::Bytes(b"{\"cape\": true}".to_vec()),
    });
    st.put_report(changed).unwrap();
    assert_eq!(st.stats().unwrap().reports, 5);
    assert!(hits(&st, "behaviour_injected_processes:explorer.exe").is_empty());
    assert_eq!(
        hits(&st, "behaviour_injected_processes:notepad"),
        set(&["ransom"])
    );
    // The Sysinternals report of the same sample is untouched.
    assert_eq!(hits(&st, "behaviour_files:@tutanota.com"), set(&["ransom"]));
    let id = behaviour_id(RANSOM, CAPE_SANDBOX);
    let log = st.raw_log(&id).unwrap().unwrap();
    assert_eq!(log.file_name, "report.json");
    assert_eq!(log.bytes, b"{\"cape\": true}");
    assert!(
        st.raw_log(&behaviour_id(RANSOM, SYSINTERNALS_SANDBOX))
            .unwrap()
            .is_none()
    );
    let page = st.list_sample_reports(RANSOM, 1, None).unwrap();
    assert_eq!(page.reports.len(), 1);
    let next = st
        .list_sample_reports(RANSOM, 1, page.next_cursor.as_deref())
        .unwrap();
    assert_eq!(next.reports.len(), 1);
    assert!(next.next_cursor.is_none());
    assert_ne!(page.reports[0].id, next.reports[0].id);
    // Everything survives a reopen.
    drop(st);
    let st = Store::open(dir.path()).unwrap();
    assert_eq!(st.stats().unwrap().reports, 5);
    assert_eq!(
        hits(&st, "behaviour_injected_processes:notepad"),
        set(&["ransom"])
    );
    assert!(st.report(&id).unwrap().is_some());
    assert!(st.report("nope").unwrap().is_none());
}

#[test]
fn invalid_reports_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let st = Store::open(dir.path()).unwrap();
    let mut bad = coinminer();
    bad.push(report(
        "not-a-hash",
        BehaviourAttributes {
            sandbox_name: "x".into(),
            ..Default::default()
        },
    ));
    assert!(st.put_reports(bad).is_err());
    assert_eq!(st.stats().unwrap().reports, 0);
    assert!(hits(&st, "sihost32").is_empty());
}

#[test]
fn cursor_pages_are_stable_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let st = Store::open(dir.path()).unwrap();
    let mk = |i: u64, date: i64| {
        report(
            &format!("{i:064x}"),
            BehaviourAttributes {
                sandbox_name: SYSINTERNALS_SANDBOX.into(),
                analysis_date: Some(date),
                files_written: s(&[&format!(r"C:\Temp\common\file{i}.bin")]),
                ..Default::default()
            },
        )
    };
    // 25 samples, several sharing a date so the tie-break matters.
    st.put_reports(
        (1..=25)
            .map(|i| mk(i, 1_700_000_000 + (i as i64 / 3) * 100))
            .collect(),
    )
    .unwrap();
    let mut request = SearchRequest::new("behaviour_files:common");
    request.limit = 10;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = st.search(&request).unwrap();
        assert_eq!(page.total_hits, 25 + u64::from(pages > 0));
        seen.extend(page.hits.iter().map(|h| (h.first_seen, h.sha256.clone())));
        pages += 1;
        if pages == 1 {
            // A sample ingested between pages, newer than everything: it must not shift the
            // following pages.
            st.put_report(mk(99, 1_800_000_000)).unwrap();
        }
        match page.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, sorted, "newest first, ties by sha256");
    let unique: BTreeSet<_> = seen.iter().map(|x| x.1.clone()).collect();
    assert_eq!(unique.len(), 25);
    // Oldest first.
    request.cursor = None;
    request.order = Order::parse("first_seen+").unwrap();
    request.limit = 1;
    let page = st.search(&request).unwrap();
    assert_eq!(page.hits[0].sha256, format!("{:064x}", 1));
    // A cursor of another order is refused.
    request.cursor = Some("fd.1.00000000000000000000000000000000".into());
    assert!(st.search(&request).is_err());
    for bad in [
        "garbage",
        "fa.1.aéééééééééééééééa",
        "fa.x.00000000000000000000000000000000",
        "fa",
    ] {
        request.cursor = Some(bad.into());
        assert!(st.search(&request).is_err(), "{bad}");
    }
}

/// The value dictionary indexes each distinct value once and reaches samples through the
/// value's owner or through the sharing samples' postings; replacing reports moves values
/// between those two paths. Every transition must keep search exact, also after a rebuild of
/// the index from the database.
#[test]
fn shared_and_owned_values_stay_exact_across_replacements() {
    let dir = tempfile::tempdir().unwrap();
    let st = Store::open(dir.path()).unwrap();
    let sample = |i: u64| format!("{i:064x}");
    let with_files = |i: u64, files: &[&str]| NewReport {
        behaviour: FileBehaviour::new(
            &sample(i),
            BehaviourAttributes {
                sandbox_name: SYSINTERNALS_SANDBOX.into(),
                analysis_date: Some(1_700_000_000 + i as i64),
                files_written: s(files),
                ..Default::default()
            },
        ),
        raw_log: None,
    };
    let count = |st: &Store, q: &str| {
        let mut request = SearchRequest::new(q);
        request.limit = 300;
        let page = st.search(&request).unwrap();
        page.total_hits
    };
    let shared = r"C:\ProgramData\shared\stage2.dll";
    // Sample 1 reports the value first (it owns it); 2 and 3 share it.
    st.put_report(with_files(1, &[shared, r"C:\one\only1.txt"]))
        .unwrap();
    st.put_reports(vec![
        with_files(2, &[shared]),
        with_files(3, &[shared, r"C:\three\only3.txt"]),
    ])
    .unwrap();
    assert_eq!(count(&st, "behaviour_files:stage2.dll"), 3);
    assert_eq!(count(&st, "behaviour_files:only1"), 1);
    // The owner drops the value: it must stop matching, the sharers must not.
    st.put_report(with_files(1, &[r"C:\one\only1.txt"]))
        .unwrap();
    assert_eq!(count(&st, "behaviour_files:stage2.dll"), 2);
    assert_eq!(count(&st, "behaviour_files:only1"), 1);
    // A sharer drops it, then the old owner reports it again.
    st.put_report(with_files(3, &[r"C:\three\only3.txt"]))
        .unwrap();
    assert_eq!(count(&st, "behaviour_files:stage2.dll"), 1);
    st.put_report(with_files(1, &[shared])).unwrap();
    assert_eq!(count(&st, "behaviour_files:stage2.dll"), 2);
    assert_eq!(count(&st, "behaviour_files:only1"), 0);
    assert_eq!(count(&st, "-behaviour_files:stage2.dll"), 1);

    // Many owners and many shared values: the large-set paths (a bitset over sample numbers,
    // a term-set automaton over value ids) must agree with the small ones.
    let mut batch = Vec::new();
    for i in 100..400u64 {
        let own = format!(r"C:\Users\u{i}\AppData\Roaming\needle_{i}.exe");
        let common = format!(r"C:\common\needle_common_{}.exe", i % 150);
        batch.push(with_files(i, &[own.as_str(), common.as_str()]));
    }
    st.put_reports(batch).unwrap();
    assert_eq!(count(&st, "behaviour_files:needle"), 300);
    assert_eq!(count(&st, "behaviour_files:needle_common"), 300);
    // needle_100 … needle_199, in the placeholder spelling of their path.
    assert_eq!(count(&st, r"behaviour_files:%APPDATA%\needle_1"), 100);
    assert_eq!(count(&st, "behaviour_files:needle_*.exe"), 300);
    assert_eq!(count(&st, "behaviour_files:exe*needle"), 0);
    // Samples 300…399 own needle_300 … needle_399; their common value is needle_common_(i % 150),
    // i.e. 0 … 99, of which 1 and 10 … 19 match `needle_common_1`.
    assert_eq!(
        count(
            &st,
            "behaviour_files:needle_3* -behaviour_files:needle_common_1"
        ),
        89
    );

    // Rebuilding both indexes from the database gives the same answers.
    drop(st);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let st = Store::open(dir.path()).unwrap();
    assert_eq!(count(&st, "behaviour_files:stage2.dll"), 2);
    assert_eq!(count(&st, "behaviour_files:only3"), 1);
    assert_eq!(count(&st, "behaviour_files:needle"), 300);
    assert_eq!(count(&st, "behaviour_files:needle_common"), 300);
    assert_eq!(
        count(
            &st,
            "behaviour_files:needle_3* -behaviour_files:needle_common_1"
        ),
        89
    );
}

/// The sample index is sorted newest first, so a page of the default order stops at the first
/// match older than its last entry once `exact_count_limit` matches were counted. Paging must
/// still list every match exactly once, in order, across index segments (one per batch here),
/// ties and samples without a date; `total_hits` is exact below the limit and a lower bound
/// (flagged) above it.
#[test]
fn broad_searches_stop_early_but_pages_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let st = Store::open(dir.path()).unwrap();
    let mk = |i: u64, date: Option<i64>, path: &str| {
        report(
            &format!("{i:064x}"),
            BehaviourAttributes {
                sandbox_name: SYSINTERNALS_SANDBOX.into(),
                analysis_date: date,
                files_written: s(&[&format!(r"C:\Users\bob\AppData\Local\Temp\{path}{i}.tmp")]),
                ..Default::default()
            },
        )
    };
    // Four batches (four segments) whose dates interleave; every seventh sample has no date and
    // every fifth writes elsewhere (a miss).
    let mut expected: Vec<(Option<i64>, String)> = Vec::new();
    for batch in 0..4u64 {
        let mut reports = Vec::new();
        for k in 0..12u64 {
            let i = batch * 100 + k + 1;
            let date = (i % 7 != 0).then(|| 1_700_000_000 + ((k * 4 + batch) % 9) as i64 * 3_600);
            let path = if i % 5 == 0 { "other" } else { "payload" };
            if path == "payload" {
                expected.push((date, format!("{i:064x}")));
            }
            reports.push(mk(i, date, path));
        }
        st.put_reports(reports).unwrap();
    }
    // Newest first, undated last, ties by SHA-256.
    expected.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => y.cmp(&x).then(a.1.cmp(&b.1)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(&b.1),
    });
    let all = expected.len() as u64;
    for query in [
        "behaviour_files:payload",
        r#"behaviour_files:"\\AppData\\Local\\Temp\\payload""#,
        "behaviour_files:temp*payload",
    ] {
        for (count_limit, limit) in [(1, 1), (3, 4), (5, 7), (1_000, 5), (1_000, 300)] {
            let mut request = SearchRequest::new(query);
            request.limit = limit;
            request.exact_count_limit = count_limit;
            let mut seen = Vec::new();
            let mut first = true;
            loop {
                let page = st.search(&request).unwrap();
                if first {
                    if count_limit >= all {
                        assert!(page.total_hits_exact, "{query} {count_limit}");
                        assert_eq!(page.total_hits, all, "{query}");
                    } else if page.total_hits_exact {
                        assert_eq!(page.total_hits, all, "{query}");
                    } else {
                        assert!(page.total_hits >= count_limit && page.total_hits < all);
                    }
                    first = false;
                }
                assert!(page.hits.len() <= limit);
                seen.extend(page.hits.iter().map(|h| (h.first_seen, h.sha256.clone())));
                match page.next_cursor {
                    Some(c) => request.cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{query} limit {limit} count {count_limit}");
        }
    }
    // With the small limits the broad query really stopped early.
    let mut request = SearchRequest::new("behaviour_files:payload");
    request.exact_count_limit = 3;
    request.limit = 2;
    let page = st.search(&request).unwrap();
    assert!(!page.total_hits_exact);
    assert!(page.total_hits < all);
}
