//! Report-wide properties: serde round trip, documented keys only, determinism, behash order
//! independence, baseline subtraction, and hostile values.

mod common;

use common::*;
use jiff::Timestamp;
use sandscope_event::{EventSource, Fields, SysmonEvent};
use sandscope_model::FileBehaviour;
use sandscope_report::{ReportOptions, SampleSelector, build_report, render_text};
use serde_json::Value;
use std::sync::Arc;

/// Attribute names of `behaviour-report-schema.md` §2 (VirusTotal's), plus the envelope.
const VIRUSTOTAL_KEYS: &[&str] = &[
    // envelope and object
    "data",
    "id",
    "type",
    "links",
    "self",
    "next",
    "attributes",
    // 2.1
    "sandbox_name",
    "analysis_date",
    "last_modification_date",
    "behash",
    "has_html_report",
    "has_pcap",
    "has_evtx",
    "has_memdump",
    "tags",
    "verdicts",
    "verdict_confidence",
    "verdict_labels",
    // 2.2 and the tree node
    "processes_tree",
    "process_id",
    "name",
    "time_offset",
    "children",
    "processes_created",
    "processes_terminated",
    "processes_killed",
    "processes_injected",
    "command_executions",
    // 2.3
    "files_opened",
    "files_written",
    "files_deleted",
    "files_attribute_changed",
    "files_dropped",
    "path",
    "sha256",
    "files_copied",
    "source",
    "destination",
    "hosts_file",
    // 2.4
    "registry_keys_opened",
    "registry_keys_set",
    "key",
    "value",
    "registry_keys_deleted",
    // 2.5
    "services_opened",
    "services_created",
    "services_started",
    "services_stopped",
    "services_deleted",
    "services_bound",
    "mutexes_created",
    "mutexes_opened",
    "modules_loaded",
    "calls_highlighted",
    // 2.6
    "dns_lookups",
    "hostname",
    "resolved_ips",
    "ip_traffic",
    "destination_ip",
    "destination_port",
    "transport_layer_protocol",
    "http_conversations",
    // 2.7
    "mitre_attack_techniques",
    "signature_matches",
    "sigma_analysis_results",
];

/// Sandscope's documented extensions (`sandscope-model` field docs).
const EXTENSION_KEYS: &[&str] = &[
    "scheduled_tasks_created",
    "command",
    "trigger",
    "xml_file",
    "named_pipes",
    "wmi_subscriptions",
    "kind",
    "operation",
    "detail",
    "cnames",
    "service_details",
    "image_path",
    "start_type",
    "raw_forms",
];

fn check_keys(value: &Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if !VIRUSTOTAL_KEYS.contains(&key.as_str())
                    && !EXTENSION_KEYS.contains(&key.as_str())
                {
                    unknown.push(format!("{path}.{key}"));
                }
                // `raw_forms` is a map whose keys are paths, not field names.
                if key != "raw_forms" {
                    check_keys(child, &format!("{path}.{key}"), unknown);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| check_keys(i, path, unknown)),
        _ => {}
    }
}

fn all_reports() -> Vec<FileBehaviour> {
    let mut reports = Vec::new();
    for file in ALL_VENDORED {
        for sample in [SampleSelector::Auto, SampleSelector::Everything] {
            reports.push(report(file, sample).behaviour);
        }
    }
    reports
}

#[test]
fn serde_round_trip_is_lossless() {
    for behaviour in all_reports() {
        let text = json(&behaviour);
        let back: FileBehaviour = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, behaviour);
        assert_eq!(json(&back), text);
    }
}

#[test]
fn every_emitted_key_is_documented() {
    for behaviour in all_reports() {
        let envelope = sandscope_model::Envelope { data: &behaviour };
        let value = serde_json::to_value(&envelope).expect("serialises");
        let mut unknown = Vec::new();
        check_keys(&value, "", &mut unknown);
        assert!(unknown.is_empty(), "undocumented keys: {unknown:?}");
        assert_eq!(value["data"]["type"], "file_behaviour");
        assert_eq!(
            value["data"]["attributes"]["sandbox_name"],
            "Microsoft Sysinternals"
        );
        assert!(
            value["data"]["id"]
                .as_str()
                .is_some_and(|id| id.ends_with("_Microsoft Sysinternals"))
        );
    }
}

#[test]
fn same_input_gives_byte_identical_json() {
    for file in ALL_VENDORED {
        let first = json(&report(file, SampleSelector::Auto).behaviour);
        let second = json(&report(file, SampleSelector::Auto).behaviour);
        assert_eq!(first, second, "{file}");
    }
}

#[test]
fn behash_does_not_depend_on_event_order() {
    let events = read(&vendored(FLASH));
    let mut reversed = events.clone();
    reversed.reverse();
    let options = ReportOptions {
        sample: SampleSelector::Everything,
        ..Default::default()
    };
    let a = build_report(&events, &options)
        .unwrap()
        .behaviour
        .attributes;
    let b = build_report(&reversed, &options)
        .unwrap()
        .behaviour
        .attributes;
    assert!(a.behash.is_some());
    assert_eq!(a.behash, b.behash);
    // Different behaviour, different hash.
    let other = report(APT10, SampleSelector::Everything)
        .behaviour
        .attributes;
    assert_ne!(a.behash, other.behash);
}

#[test]
fn baseline_removes_what_a_clean_run_shows() {
    let events = read(&vendored(CAPE_BITS));
    let with_baseline = build_report(
        &events,
        &ReportOptions {
            sample: SampleSelector::Everything,
            baseline: events.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let a = &with_baseline.behaviour.attributes;
    assert!(
        a.registry_keys_set.is_empty() && a.files_written.is_empty() && a.named_pipes.is_empty()
    );
    // Process creations are attribution's business and stay.
    assert!(!a.processes_created.is_empty());
    assert!(
        with_baseline
            .notes
            .iter()
            .any(|n| n.starts_with("baseline:"))
    );
    // A baseline whose processes include the sample's makes auto-detection skip them.
    let auto = build_report(
        &events,
        &ReportOptions {
            baseline: events.clone(),
            ..Default::default()
        },
    );
    assert!(auto.is_err());
}

#[test]
fn explicit_selectors() {
    let events = read(&vendored(FLASH));
    let by_hash = build_report(
        &events,
        &ReportOptions {
            sample: SampleSelector::Sha256(
                "1A061C74619DE6AF8C02CBA0FA00754BDD9E3515C0E08CAD6350C7ADFC8CDD5B".into(),
            ),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        by_hash.behaviour.attributes.processes_tree[0].process_id,
        "2680"
    );
    let by_guid = build_report(
        &events,
        &ReportOptions {
            sample: SampleSelector::RootGuid("{365ABB72-7C01-5CC4-0000-00102B3E0C00}".into()),
            sha256: Some("ab".repeat(32)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        by_guid.behaviour.id,
        format!("{}_Microsoft Sysinternals", "ab".repeat(32))
    );
    assert_eq!(
        by_guid.behaviour.attributes.processes_tree[0].process_id,
        "2680"
    );
    let by_name = build_report(
        &events,
        &ReportOptions {
            sample: SampleSelector::Image("nvsmart.exe".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        chains(&by_name.behaviour.attributes.processes_tree),
        vec![vec!["2992".to_string(), "3076".to_string()]]
    );
    assert!(
        build_report(
            &events,
            &ReportOptions {
                sample: SampleSelector::Image("no-such-thing".into()),
                ..Default::default()
            },
        )
        .is_err()
    );
}

fn event(record: u64, id: u16, fields: &[(&str, &str)]) -> SysmonEvent {
    let mut data = Fields::new();
    for (k, v) in fields {
        data.push(k, *v);
    }
    let time: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    SysmonEvent {
        source: EventSource {
            file: Arc::from("hostile"),
            record_id: Some(record),
        },
        event_id: id,
        time,
        time_created: Some(time),
        computer: "host".into(),
        channel: sandscope_event::SYSMON_CHANNEL.into(),
        data,
    }
}

fn guid(n: usize) -> String {
    format!("{{11111111-2222-3333-4444-{n:012}}}")
}

#[test]
fn hostile_values_are_escaped_intact_and_never_panic() {
    let long_argument = "A".repeat(32 * 1024);
    let nasty =
        format!("cmd.exe /c echo \u{1b}[31mred\u{7}\u{0}\r\n{long_argument} \u{FFFD}\u{FFFD} end");
    let events = vec![
        event(
            1,
            1,
            &[
                ("ProcessGuid", &guid(1)),
                ("ProcessId", "10"),
                ("Image", r"C:\Users\x\Downloads\evil.exe"),
                ("CommandLine", &nasty),
                ("ParentProcessGuid", &guid(0)),
                ("ParentProcessId", "1"),
                ("ParentImage", r"C:\Windows\explorer.exe"),
            ],
        ),
        event(
            2,
            11,
            &[
                ("ProcessGuid", &guid(1)),
                (
                    "TargetFilename",
                    "C:\\Users\\x\\AppData\\Roaming\\\u{1b}]0;title\u{7}.exe",
                ),
            ],
        ),
        event(
            3,
            13,
            &[
                ("ProcessGuid", &guid(1)),
                ("EventType", "SetValue"),
                (
                    "TargetObject",
                    "HKU\\S-1-5-21-1-2-3-1000\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\\u{0}x",
                ),
                ("Details", "\u{FFFD}\u{1b}"),
            ],
        ),
        event(
            4,
            22,
            &[
                ("ProcessGuid", &guid(1)),
                ("QueryName", "a\u{1b}.example"),
                ("QueryResults", "type:  5 ;;;::ffff:;type: x;-;"),
            ],
        ),
        event(
            5,
            3,
            &[
                ("ProcessGuid", &guid(1)),
                ("DestinationIp", "not an ip"),
                ("DestinationPort", "99999999"),
                ("Initiated", "maybe"),
            ],
        ),
        event(
            6,
            8,
            &[
                ("SourceProcessGuid", &guid(1)),
                ("TargetProcessGuid", "garbage"),
            ],
        ),
        event(
            7,
            10,
            &[
                ("SourceProcessGUID", &guid(1)),
                ("TargetProcessGUID", &guid(1)),
                ("GrantedAccess", "0xzz"),
            ],
        ),
        event(
            8,
            1,
            &[
                ("ProcessGuid", &guid(2)),
                ("ParentProcessGuid", &guid(2)),
                ("CommandLine", "schtasks /create /tn"),
            ],
        ),
        event(
            9,
            13,
            &[
                ("ProcessGuid", &guid(1)),
                (
                    "TargetObject",
                    r"HKLM\System\CurrentControlSet\Services\\ImagePath",
                ),
                ("Details", "\""),
            ],
        ),
        event(
            10,
            1,
            &[
                ("ProcessGuid", &guid(3)),
                ("ParentProcessGuid", &guid(1)),
                ("CommandLine", "sc create"),
            ],
        ),
    ];
    for sample in [SampleSelector::Auto, SampleSelector::Everything] {
        let built = build_report(
            &events,
            &ReportOptions {
                sample,
                ..Default::default()
            },
        )
        .unwrap();
        let text = json(&built.behaviour);
        // Escaped in JSON, and the value survives intact.
        assert!(
            text.contains(r"\u001b[31mred\u0007\u0000\r\n"),
            "escaped control characters"
        );
        let back: FileBehaviour = serde_json::from_str(&text).unwrap();
        assert!(back.attributes.command_executions.contains(&nasty));
        assert_eq!(back, built.behaviour);
        // The terminal rendering escapes them too and keeps the whole argument.
        let rendered = render_text(&built);
        assert!(!rendered.contains('\u{7}') && !rendered.contains('\u{0}'));
        assert!(rendered.contains(r"\u{1b}[31mred\u{7}\u{0}\r\n"));
        assert!(rendered.contains(&long_argument));
    }
}

#[test]
fn deep_and_cyclic_process_chains_stay_readable() {
    // 5,000 processes each the child of the previous: the tree is cut into readable depth, JSON
    // reads back (serde's recursion limit) and nothing overflows the stack.
    let mut events = Vec::new();
    for n in 1..=5000usize {
        events.push(event(
            n as u64,
            1,
            &[
                ("ProcessGuid", &guid(n)),
                ("ProcessId", &n.to_string()),
                ("Image", r"C:\Users\x\Downloads\a.exe"),
                ("CommandLine", "a.exe"),
                ("ParentProcessGuid", &guid(n - 1)),
            ],
        ));
    }
    // A cycle: 9001 ⇄ 9002.
    events.push(event(
        6000,
        1,
        &[
            ("ProcessGuid", &guid(9001)),
            ("ParentProcessGuid", &guid(9002)),
        ],
    ));
    events.push(event(
        6001,
        1,
        &[
            ("ProcessGuid", &guid(9002)),
            ("ParentProcessGuid", &guid(9001)),
        ],
    ));
    for sample in [SampleSelector::Auto, SampleSelector::Everything] {
        let built = build_report(
            &events,
            &ReportOptions {
                sample,
                ..Default::default()
            },
        )
        .unwrap();
        let text = json(&built.behaviour);
        let back: FileBehaviour =
            serde_json::from_str(&text).expect("depth stays within serde's limit");
        let count = nodes(&back.attributes.processes_tree).len();
        assert!(count >= 5000, "every process is in the tree once: {count}");
        let _ = render_text(&built);
    }
}

#[test]
fn no_events_is_an_error() {
    assert!(build_report(&[], &ReportOptions::default()).is_err());
}

#[test]
fn a_huge_launcher_burst_keeps_every_tree_and_few_notes() {
    // 5,000 commands WmiPrvSE started in the same second: all are roots, the notes stay short.
    let events: Vec<SysmonEvent> = (1..=5000usize)
        .map(|n| {
            event(
                n as u64,
                1,
                &[
                    ("ProcessGuid", &guid(n)),
                    ("ProcessId", &n.to_string()),
                    ("Image", r"C:\Windows\System32\cmd.exe"),
                    ("CommandLine", &format!("cmd.exe /Q /c echo {n}")),
                    ("ParentProcessGuid", &guid(0)),
                    ("ParentProcessId", "836"),
                    ("ParentImage", r"C:\Windows\System32\wbem\WmiPrvSE.exe"),
                    (
                        "ParentCommandLine",
                        r"C:\Windows\system32\wbem\wmiprvse.exe -secured -Embedding",
                    ),
                ],
            )
        })
        .collect();
    let built = build_report(&events, &ReportOptions::default()).unwrap();
    assert_eq!(built.behaviour.attributes.processes_tree.len(), 5000);
    assert!(built.notes.len() < 40, "{} notes", built.notes.len());
    assert!(
        built
            .notes
            .iter()
            .any(|n| n.contains("its 5000 trees started no more than 60 s apart")),
        "{:#?}",
        built.notes
    );
    assert!(built.notes.iter().all(|n| n.len() < 4096));
}

#[test]
fn a_stored_report_with_control_characters_renders_escaped() {
    // A stored or imported report is outside data: every string it holds is escaped.
    let bad = "x\u{1b}[2J\u{7}y";
    let behaviour: FileBehaviour = serde_json::from_value(serde_json::json!({
        "id": bad, "type": "file_behaviour",
        "attributes": {
            "sandbox_name": bad, "behash": bad, "tags": [bad], "verdicts": [bad],
            "processes_tree": [{"process_id": bad, "name": bad}],
            "dns_lookups": [{"hostname": bad, "resolved_ips": [bad], "cnames": [bad]}],
            "ip_traffic": [{"destination_ip": bad, "transport_layer_protocol": bad}],
            "http_conversations": [{"url": bad, "request_method": bad}],
            "files_dropped": [{"path": bad, "sha256": bad, "type": bad}],
            "files_copied": [{"source": bad, "destination": bad}],
            "hosts_file": bad, "files_written": [bad], "registry_keys_opened": [bad],
            "registry_keys_set": [{"key": bad, "value": bad}],
            "service_details": [{"name": bad, "image_path": bad, "start_type": bad}],
            "scheduled_tasks_created": [{"name": bad, "command": bad, "trigger": bad}],
            "wmi_subscriptions": [{"kind": bad, "name": bad, "detail": bad}],
            "mutexes_created": [bad],
            "signature_matches": [{"name": bad, "description": bad, "severity": bad, "match_data": [bad]}],
            "sigma_analysis_results": [{"rule_title": bad, "rule_level": bad,
                "match_context": [{"values": {"EventID": bad, bad: bad}}]}],
            "mitre_attack_techniques": [{"id": bad, "signature_description": bad, "severity": bad,
                "refs": [{"ref": bad, "value": bad}]}]
        }
    }))
    .unwrap();
    let text = sandscope_report::render_behaviour(&behaviour, &[bad.to_string()]);
    // Styles are the renderer's own `ESC[…m`; the hostile `ESC[2J` and BEL never pass through.
    assert!(!text.contains("\u{1b}[2J") && !text.contains('\u{7}'));
    assert!(text.matches(r"x\u{1b}[2J\u{7}y").count() >= 30, "{text}");
}
