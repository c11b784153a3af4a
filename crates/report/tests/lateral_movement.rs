//! Issue 13 item 6: logs of lateral movement, not detonations. With no sample named, the
//! sibling trees a system launcher started in one burst are reported together, and the notes
//! say which launcher and trees were chosen and why.

mod common;

use common::*;
use sandscope_report::attribution::LAUNCHER_BURST_SECONDS;
use sandscope_report::{ReportOptions, SampleSelector, Sha256Origin, build_report};

fn launcher_note(notes: &[String]) -> &str {
    notes
        .iter()
        .find(|n| n.contains("read as remote or scheduled execution"))
        .unwrap_or_else(|| panic!("no launcher note in {notes:#?}"))
}

#[test]
fn wmiexec_reports_every_tree_wmi_started_in_the_burst() {
    let built = report(WMIEXEC, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    // Three sibling cmd.exe trees of WmiPrvSE (pid 836); the third ran whoami.
    assert_eq!(
        chains(&a.processes_tree),
        vec![
            vec!["3840".to_string()],
            vec!["2504".to_string()],
            vec!["2828".to_string(), "3328".to_string()],
        ]
    );
    assert_eq!(find(&a.processes_tree, "3328").name, "whoami  /all ");
    assert!(
        a.command_executions
            .iter()
            .any(|c| c.contains(r"whoami /all 1> \\127.0.0.1\ADMIN$\__1556656369.7")),
        "{:#?}",
        a.command_executions
    );
    let note = launcher_note(&built.notes);
    assert!(
        note.contains(r"WmiPrvSE.exe (pid 836), WMI's provider host"),
        "{note}"
    );
    assert!(
        note.contains("its 3 trees started no more than 60 s apart are reported together (pids 3840, 2504, 2828)"),
        "{note}"
    );
    // The roots are cmd.exe: its hash names no sample, so the id is the log's own.
    assert_eq!(built.sha256_origin, Sha256Origin::Derived);
    assert!(
        built
            .notes
            .iter()
            .any(|n| n.contains("Windows programs, not a sample file")),
        "{:#?}",
        built.notes
    );
}

#[test]
fn a_tree_outside_the_burst_is_left_out_and_counted() {
    // The same capture with the whoami command issued ten burst windows later.
    let mut events = read(&vendored(WMIEXEC));
    let later = |e: &sandscope_event::SysmonEvent| {
        e.value("ProcessId") == Some("2828") || e.value("ProcessId") == Some("3328")
    };
    let shift = jiff::SignedDuration::from_secs(10 * LAUNCHER_BURST_SECONDS);
    let mut shifted = 0;
    for event in events.iter_mut().filter(|e| later(e)) {
        event.time = event.time.checked_add(shift).unwrap();
        event.time_created = event.time_created.map(|t| t.checked_add(shift).unwrap());
        shifted += 1;
    }
    assert_eq!(shifted, 2);
    let built = build_report(&events, &ReportOptions::default()).unwrap();
    let a = &built.behaviour.attributes;
    assert_eq!(
        chains(&a.processes_tree),
        vec![vec!["3840".to_string()], vec!["2504".to_string()]]
    );
    let note = launcher_note(&built.notes);
    assert!(note.contains("(pids 3840, 2504)"), "{note}");
    assert!(
        note.contains("1 other tree(s) it started outside that burst are left out"),
        "{note}"
    );
}

#[test]
fn psexec_over_smb_reports_the_service_tree_and_the_remotely_registered_service() {
    let built = report(PSEXEC_SMB, SampleSelector::Auto);
    let a = &built.behaviour.attributes;
    assert_eq!(
        chains(&a.processes_tree),
        vec![vec![
            "3348".to_string(),
            "3872".to_string(),
            "2484".to_string()
        ]]
    );
    let note = launcher_note(&built.notes);
    assert!(
        note.contains(r"services.exe (pid 460), the service control manager"),
        "{note}"
    );
    assert!(note.contains("its one tree is reported"), "{note}");
    // services.exe wrote the service `hello` whose ImagePath is the root's command line: the
    // operator registered it over SMB, so its registry writes are the report's.
    assert_eq!(a.services_created, vec!["hello".to_string()]);
    let hello = &a.service_details[0];
    assert!(
        hello
            .image_path
            .as_deref()
            .is_some_and(|i| i.starts_with("%COMSPEC% /b /c start /b /min powershell.exe")),
        "{hello:?}"
    );
    assert!(
        a.ip_traffic
            .iter()
            .any(|t| t.destination_ip == "10.0.2.19" && t.destination_port == Some(4444))
    );
    assert_eq!(built.sha256_origin, Sha256Origin::Derived);
}

#[test]
fn a_named_sample_or_a_detonation_is_not_grouped() {
    // A named sample is the analyst's choice: no launcher grouping.
    let named = report(WMIEXEC, SampleSelector::Image("cmd.exe".into()));
    assert!(
        !named
            .notes
            .iter()
            .any(|n| n.contains("remote or scheduled execution"))
    );
    // Detonations (a launcher-free root, or a sandbox agent in the log) get no launcher note.
    for file in [MSHTA, RUNDLL_SCHTASK, PSEXEC, FLASH, APT10, CAPE_BITS] {
        let built = report(file, SampleSelector::Auto);
        assert!(
            !built
                .notes
                .iter()
                .any(|n| n.contains("remote or scheduled execution")),
            "{file}: {:#?}",
            built.notes
        );
    }
}
