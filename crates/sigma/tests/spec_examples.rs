//! One test per value modifier and per condition form, on the examples the Sigma specification
//! (rules specification v2 and its modifier appendix) gives, evaluated over real
//! `SysmonEvent`s through the whole engine: routing, field lookup, evaluation.

use sandscope_event::{EventSource, Fields, SysmonEvent, parse_time};
use sandscope_sigma::{RuleOrigin, RuleStatus, RuleText, SigmaEngine, SigmaEngineBuilder};

fn rule(category: &str, detection: &str) -> String {
    format!(
        "title: Spec example\nid: 00000000-0000-0000-0000-000000000001\nlogsource:\n  product: windows\n  category: {category}\ndetection:\n{detection}\nlevel: high\n"
    )
}

fn engine_for(yaml: String) -> SigmaEngine {
    let mut builder = SigmaEngineBuilder::new();
    builder.add_texts([RuleText {
        file: "spec.yml".into(),
        origin: RuleOrigin::File,
        text: yaml,
    }]);
    let (engine, report) = builder.build();
    assert_eq!(
        report.rules[0].status,
        RuleStatus::Loaded,
        "the example rule must load"
    );
    engine
}

fn event(event_id: u16, fields: &[(&str, &str)]) -> SysmonEvent {
    let mut data = Fields::new();
    for (k, v) in fields {
        data.push(k, *v);
    }
    SysmonEvent {
        source: EventSource {
            file: "spec".into(),
            record_id: Some(1),
        },
        event_id,
        time: parse_time("2024-07-10 12:30:00.000").unwrap(),
        time_created: None,
        computer: "host".into(),
        channel: sandscope_event::SYSMON_CHANNEL.into(),
        data,
    }
}

/// Does a process_creation rule with `detection` fire on an event 1 with `fields`?
fn fires(detection: &str, fields: &[(&str, &str)]) -> bool {
    let engine = engine_for(rule("process_creation", detection));
    !engine.evaluate(&event(1, fields)).is_empty()
}

// ---- value forms -------------------------------------------------------------------------

#[test]
fn plain_value_is_case_insensitive_exact() {
    let d = "  selection:\n    Image: 'C:\\Windows\\System32\\whoami.exe'\n  condition: selection";
    assert!(fires(d, &[("Image", "c:\\windows\\system32\\WHOAMI.EXE")]));
    assert!(!fires(
        d,
        &[("Image", "C:\\Windows\\System32\\whoami.exe.bak")]
    ));
}

#[test]
fn list_of_values_is_or() {
    let d = "  selection:\n    Image|endswith:\n      - '\\cmd.exe'\n      - '\\powershell.exe'\n  condition: selection";
    assert!(fires(d, &[("Image", "C:\\x\\powershell.exe")]));
    assert!(!fires(d, &[("Image", "C:\\x\\pwsh.exe")]));
}

#[test]
fn fields_of_a_map_are_and_list_of_maps_is_or() {
    let d = "  selection:\n    - Image|endswith: '\\net.exe'\n      CommandLine|contains: ' user '\n    - OriginalFileName: 'whoami.exe'\n  condition: selection";
    assert!(fires(
        d,
        &[("Image", "C:\\net.exe"), ("CommandLine", "net user x")]
    ));
    assert!(!fires(
        d,
        &[("Image", "C:\\net.exe"), ("CommandLine", "net start")]
    ));
    assert!(fires(d, &[("OriginalFileName", "whoami.exe")]));
}

#[test]
fn wildcards_and_escapes() {
    let d = "  selection:\n    CommandLine: '*\\\\*.ps? -x\\*'\n  condition: selection";
    assert!(fires(d, &[("CommandLine", "run C:\\a\\b.ps1 -x*")]));
    assert!(!fires(d, &[("CommandLine", "run C:\\a\\b.ps1 -xy")]));
}

#[test]
fn keywords_search_every_value() {
    let d = "  keywords:\n    - 'mimikatz'\n    - 'sekurlsa'\n  condition: keywords";
    assert!(fires(d, &[("CommandLine", "x sekurlsa::logonpasswords")]));
    assert!(!fires(d, &[("CommandLine", "notepad")]));
}

#[test]
fn null_matches_an_absent_field_and_empty_string_matches_empty() {
    // SigmaHQ writes both forms side by side (`filter_main_null` / `filter_main_empty`):
    // `null` is a field that is not there, `''` a field Sysmon wrote empty.
    let d = "  selection:\n    Image|endswith: '\\x.exe'\n    OriginalFileName: null\n  condition: selection";
    assert!(fires(d, &[("Image", "C:\\x.exe")]));
    assert!(!fires(
        d,
        &[("Image", "C:\\x.exe"), ("OriginalFileName", "x.exe")]
    ));
    let d = "  selection:\n    Image|endswith: '\\x.exe'\n    OriginalFileName: ''\n  condition: selection";
    assert!(fires(
        d,
        &[("Image", "C:\\x.exe"), ("OriginalFileName", "")]
    ));
    assert!(!fires(d, &[("Image", "C:\\x.exe")]));
}

// ---- modifiers ---------------------------------------------------------------------------

#[test]
fn contains_startswith_endswith() {
    let d = "  selection:\n    CommandLine|contains: 'vssadmin'\n    Image|startswith: 'C:\\Windows\\'\n    ParentImage|endswith: '\\cmd.exe'\n  condition: selection";
    let ok = [
        ("CommandLine", "x VSSADMIN delete"),
        ("Image", "c:\\windows\\v.exe"),
        ("ParentImage", "C:\\cmd.exe"),
    ];
    assert!(fires(d, &ok));
    let mut bad = ok;
    bad[1] = ("Image", "D:\\Windows\\v.exe");
    assert!(!fires(d, &bad));
}

#[test]
fn all_requires_every_value() {
    let d = "  selection:\n    CommandLine|contains|all:\n      - ' -nop '\n      - ' -w hidden '\n  condition: selection";
    assert!(fires(
        d,
        &[("CommandLine", "powershell -nop -w hidden -c x")]
    ));
    assert!(!fires(d, &[("CommandLine", "powershell -nop -c x")]));
}

#[test]
fn base64_and_base64offset() {
    // Without `contains` the encoded value must be the whole field.
    let d = "  selection:\n    CommandLine|base64: 'http://'\n  condition: selection";
    assert!(fires(d, &[("CommandLine", "aHR0cDovLw==")]));
    assert!(!fires(d, &[("CommandLine", "x aHR0cDovLw== y")]));
    let d =
        "  selection:\n    CommandLine|base64offset|contains: 'http://'\n  condition: selection";
    // The three offsets of "http://" inside longer base64 text.
    assert!(fires(d, &[("CommandLine", "-e aHR0cDovL2V2aWw=")]));
    assert!(fires(d, &[("CommandLine", "-e IGh0dHA6Ly9ldmls")]));
    assert!(fires(d, &[("CommandLine", "-e ICBodHRwOi8vZXZpbA==")]));
    assert!(!fires(d, &[("CommandLine", "-e ZnRwOi8v")]));
}

#[test]
fn utf16_wide_with_base64offset() {
    // PowerShell -EncodedCommand is base64 of UTF-16LE; "ping" encoded that way.
    let d =
        "  selection:\n    CommandLine|wide|base64offset|contains: 'ping'\n  condition: selection";
    assert!(fires(
        d,
        &[(
            "CommandLine",
            "powershell -enc cABpAG4AZwAgADEALgAxAC4AMQAuADEA"
        )]
    ));
    assert!(!fires(
        d,
        &[("CommandLine", "powershell -enc dABlAHMAdAA=")]
    ));
}

#[test]
fn windash_accepts_every_dash() {
    let d = "  selection:\n    CommandLine|windash|contains: ' -s '\n  condition: selection";
    for cmd in [
        "x -s y",
        "x /s y",
        "x \u{2013}s y",
        "x \u{2014}s y",
        "x \u{2015}s y",
    ] {
        assert!(fires(d, &[("CommandLine", cmd)]), "{cmd}");
    }
    assert!(!fires(d, &[("CommandLine", "x s y")]));
}

#[test]
fn re_and_its_flags() {
    let d = "  selection:\n    CommandLine|re: '\\s-[eE][nN][cC]\\s'\n  condition: selection";
    assert!(fires(d, &[("CommandLine", "powershell -EnC abc")]));
    assert!(!fires(d, &[("CommandLine", "powershell -encoded")]));
    let d = "  selection:\n    CommandLine|re|i: 'INVOKE-MIMIKATZ'\n  condition: selection";
    assert!(fires(d, &[("CommandLine", "iex; invoke-mimikatz")]));
    let d = "  selection:\n    CommandLine|re|m: '^second$'\n  condition: selection";
    assert!(fires(d, &[("CommandLine", "first\nsecond\nthird")]));
    let d = "  selection:\n    CommandLine|re|s: 'a.b'\n  condition: selection";
    assert!(fires(d, &[("CommandLine", "a\nb")]));
}

#[test]
fn cased_is_case_sensitive() {
    let d =
        "  selection:\n    CommandLine|cased|contains: 'FromBase64String'\n  condition: selection";
    assert!(fires(
        d,
        &[("CommandLine", "[Convert]::FromBase64String(x)")]
    ));
    assert!(!fires(
        d,
        &[("CommandLine", "[convert]::frombase64string(x)")]
    ));
}

#[test]
fn cidr_matches_network_ranges() {
    let engine = engine_for(rule(
        "network_connection",
        "  selection:\n    DestinationIp|cidr:\n      - '10.0.0.0/8'\n      - 'fe80::/10'\n  condition: selection",
    ));
    let fires = |ip| {
        !engine
            .evaluate(&event(3, &[("DestinationIp", ip)]))
            .is_empty()
    };
    assert!(fires("10.1.2.3"));
    assert!(fires("fe80::1"));
    assert!(!fires("11.0.0.1"));
    assert!(!fires("not an ip"));
}

#[test]
fn numeric_comparisons() {
    let d = "  selection:\n    TerminalSessionId|gte: 2\n    ProcessId|lt: 1000\n  condition: selection";
    assert!(fires(
        d,
        &[("TerminalSessionId", "2"), ("ProcessId", "999")]
    ));
    assert!(!fires(
        d,
        &[("TerminalSessionId", "1"), ("ProcessId", "999")]
    ));
    let d = "  selection:\n    ProcessId|gt: 4\n    ProcessId|lte: 8\n  condition: selection";
    assert!(fires(d, &[("ProcessId", "8")]));
    assert!(!fires(d, &[("ProcessId", "4")]));
}

#[test]
fn exists_tests_field_presence() {
    let d = "  selection:\n    Image|endswith: '\\x.exe'\n    OriginalFileName|exists: false\n  condition: selection";
    assert!(fires(d, &[("Image", "C:\\x.exe")]));
    assert!(!fires(
        d,
        &[("Image", "C:\\x.exe"), ("OriginalFileName", "x.exe")]
    ));
}

#[test]
fn fieldref_compares_two_fields() {
    let d = "  selection:\n    ParentImage|fieldref: Image\n  condition: selection";
    assert!(fires(
        d,
        &[("Image", "C:\\a.exe"), ("ParentImage", "C:\\a.exe")]
    ));
    assert!(!fires(
        d,
        &[("Image", "C:\\a.exe"), ("ParentImage", "C:\\b.exe")]
    ));
}

#[test]
fn timestamp_parts() {
    // The event's UtcTime is 2024-07-10 12:30.
    let d = "  selection:\n    UtcTime|hour: 12\n    UtcTime|month: 7\n  condition: selection";
    assert!(fires(d, &[("UtcTime", "2024-07-10T12:30:00Z")]));
    assert!(!fires(d, &[("UtcTime", "2024-07-10T13:30:00Z")]));
}

// ---- condition forms ---------------------------------------------------------------------

const TWO: &str = "  selection:\n    Image|endswith: '\\rundll32.exe'\n  filter:\n    CommandLine|contains: 'shell32.dll'\n";

#[test]
fn and_not() {
    let d = format!("{TWO}  condition: selection and not filter");
    assert!(fires(
        &d,
        &[("Image", "C:\\rundll32.exe"), ("CommandLine", "x.dll,Run")]
    ));
    assert!(!fires(
        &d,
        &[
            ("Image", "C:\\rundll32.exe"),
            ("CommandLine", "shell32.dll,Control")
        ]
    ));
}

#[test]
fn or_and_parentheses() {
    let d = format!(
        "{TWO}  other:\n    User|contains: 'SYSTEM'\n  condition: (selection or other) and not filter"
    );
    assert!(fires(
        &d,
        &[("User", "NT AUTHORITY\\SYSTEM"), ("CommandLine", "a")]
    ));
    assert!(!fires(
        &d,
        &[
            ("User", "NT AUTHORITY\\SYSTEM"),
            ("CommandLine", "shell32.dll")
        ]
    ));
}

#[test]
fn one_of_and_all_of_patterns() {
    let base = "  selection_img:\n    Image|endswith: '\\certutil.exe'\n  selection_cli:\n    CommandLine|contains: 'urlcache'\n";
    let one = format!("{base}  condition: 1 of selection_*");
    let all = format!("{base}  condition: all of selection_*");
    let only_img = [("Image", "C:\\certutil.exe"), ("CommandLine", "x")];
    let both = [
        ("Image", "C:\\certutil.exe"),
        ("CommandLine", "-urlcache -f"),
    ];
    assert!(fires(&one, &only_img));
    assert!(!fires(&all, &only_img));
    assert!(fires(&all, &both));
}

#[test]
fn one_of_them_and_all_of_them() {
    let base = "  a:\n    Image|endswith: '\\a.exe'\n  b:\n    CommandLine|contains: 'b'\n";
    let one = format!("{base}  condition: 1 of them");
    let all = format!("{base}  condition: all of them");
    assert!(fires(&one, &[("Image", "C:\\a.exe"), ("CommandLine", "x")]));
    assert!(!fires(
        &all,
        &[("Image", "C:\\a.exe"), ("CommandLine", "x")]
    ));
    assert!(fires(&all, &[("Image", "C:\\a.exe"), ("CommandLine", "b")]));
}

#[test]
fn not_one_of_filters() {
    let d = "  selection:\n    Image|endswith: '\\svchost.exe'\n  filter_main_a:\n    ParentImage|endswith: '\\services.exe'\n  filter_main_b:\n    ParentImage|endswith: '\\MsMpEng.exe'\n  condition: selection and not 1 of filter_main_*";
    assert!(fires(
        d,
        &[
            ("Image", "C:\\svchost.exe"),
            ("ParentImage", "C:\\evil.exe")
        ]
    ));
    assert!(!fires(
        d,
        &[
            ("Image", "C:\\svchost.exe"),
            ("ParentImage", "C:\\MsMpEng.exe")
        ]
    ));
}

// ---- our layer: absent fields and routing -------------------------------------------------

#[test]
fn absent_field_does_not_match_but_not_filter_on_it_is_true() {
    let d = "  selection:\n    Image|endswith: '\\powershell.exe'\n  filter:\n    SourceParentImage|endswith: '\\explorer.exe'\n  condition: selection and not filter";
    // No SourceParentImage: the filter does not match, so `not filter` holds.
    assert!(fires(d, &[("Image", "C:\\powershell.exe")]));
    let d = "  selection:\n    ParentImage|contains: ''\n  condition: selection";
    assert!(!fires(d, &[("Image", "C:\\powershell.exe")]));
}

#[test]
fn a_rule_never_fires_outside_its_logsource() {
    let engine = engine_for(rule(
        "file_event",
        "  selection:\n    TargetFilename|endswith: '.ps1'\n  condition: selection",
    ));
    let fields = [("TargetFilename", "C:\\a.ps1")];
    assert_eq!(engine.evaluate(&event(11, &fields)).len(), 1);
    for other in [1, 2, 12, 13, 15, 23, 26] {
        assert!(
            engine.evaluate(&event(other, &fields)).is_empty(),
            "event {other}"
        );
    }
}

#[test]
fn registry_event_covers_12_13_14_but_registry_set_only_13() {
    let d = "  selection:\n    TargetObject|contains: '\\Run\\'\n  condition: selection";
    let event_rule = engine_for(rule("registry_event", d));
    let set_rule = engine_for(rule("registry_set", d));
    let fields = [(
        "TargetObject",
        "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\x",
    )];
    for id in [12, 13, 14] {
        assert_eq!(
            event_rule.evaluate(&event(id, &fields)).len(),
            1,
            "event {id}"
        );
        assert_eq!(
            set_rule.evaluate(&event(id, &fields)).len(),
            usize::from(id == 13)
        );
    }
}

#[test]
fn sysmon_service_rules_see_every_event_once() {
    let yaml = "title: Svc\nlogsource:\n  product: windows\n  service: sysmon\ndetection:\n  selection:\n    EventID: 12\n  condition: selection\n".to_string();
    let engine = engine_for(yaml);
    // Event 12 belongs to three categories; the channel-wide rule must still fire once.
    assert_eq!(
        engine.evaluate(&event(12, &[("TargetObject", "x")])).len(),
        1
    );
    assert!(
        engine
            .evaluate(&event(13, &[("TargetObject", "x")]))
            .is_empty()
    );
}

#[test]
fn field_names_are_sysmons_own() {
    // Event 10 writes SourceProcessGUID, event 8 SourceProcessGuid: rules use them as written.
    let engine = engine_for(rule(
        "process_access",
        "  selection:\n    SourceProcessGUID|contains: 'ABC'\n  condition: selection",
    ));
    assert_eq!(
        engine
            .evaluate(&event(10, &[("SourceProcessGUID", "{ABC}")]))
            .len(),
        1
    );
    assert!(
        engine
            .evaluate(&event(10, &[("SourceProcessGuid", "{ABC}")]))
            .is_empty()
    );
}

#[test]
fn the_match_says_which_selection_and_fields() {
    let d = format!("{TWO}  condition: selection and not filter");
    let engine = engine_for(rule("process_creation", &d));
    let matches = engine.evaluate(&event(
        1,
        &[("Image", "C:\\rundll32.exe"), ("CommandLine", "a")],
    ));
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].selections, ["selection"]);
    assert!(
        matches[0]
            .fields
            .contains(&("Image".to_string(), "C:\\rundll32.exe".to_string()))
    );
}
