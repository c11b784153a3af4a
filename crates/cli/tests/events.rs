//! `sandscope events`: output shape, `--stats`, standard input, directories, exit statuses
//! (0 clean, 3 damaged but read, 1 nothing readable / not an event log / missing).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel)
}

fn sandscope(args: &[&std::ffi::OsStr], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

const PSEXEC: &str = "mdecrevoisier_EVTX-to-MITRE-Attack/EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx";

#[test]
fn clean_file_exits_0_with_one_json_object_per_event() {
    let path = data(PSEXEC);
    let out = sandscope(&[os("events"), path.as_os_str()], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 15);
    let first = &lines[0];
    for key in [
        "source",
        "record_id",
        "event_id",
        "time",
        "computer",
        "channel",
        "data",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert!(out.stderr.is_empty());
}

#[test]
fn damaged_file_exits_3_and_keeps_the_readable_records() {
    let path = data("broken/omerbenamram_evtx/samples/sysmon.evtx");
    let out = sandscope(&[os("events"), path.as_os_str()], None);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 358);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 8, "{stderr}");
    assert!(
        warnings
            .iter()
            .all(|w| w.starts_with("warning: ") && w.contains("sysmon.evtx: chunk "))
    );
}

#[test]
fn missing_and_non_logs_exit_1_with_a_one_line_reason() {
    for path in [
        data("no/such/file.evtx"),
        data("mdecrevoisier_EVTX-to-MITRE-Attack/LICENSE.md"),
    ] {
        let out = sandscope(&[os("events"), path.as_os_str()], None);
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn standard_input_and_compressed_input() {
    let bytes = std::fs::read(data("archives/syslog_sysmon_log4shell.json.gz")).unwrap();
    let out = sandscope(&[os("events"), os("-")], Some(&bytes));
    // Line 8 of that file is an event cut by the syslog line limit: recovered, with a warning.
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 93);
    assert!(text.contains("\"source\":\"-\""));
    assert!(text.contains("Linux-Sysmon/Operational"));
}

#[test]
fn directories_are_walked_and_stats_count_skipped_channels() {
    let dir = data("mdecrevoisier_EVTX-to-MITRE-Attack");
    let out = sandscope(&[os("events"), os("--stats"), dir.as_os_str()], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Sysmon events: 35"), "{text}");
    assert!(
        text.contains("Microsoft-Windows-Sysmon/Operational  35"),
        "{text}"
    );

    let zip = data("archives/evtx.zip");
    let out = sandscope(&[os("events"), os("--stats"), zip.as_os_str()], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("skipped (not Sysmon), by channel:"), "{text}");
    assert!(
        text.contains("Microsoft-Windows-DNSServer/Analytical  5"),
        "{text}"
    );

    // The whole vendored folder: damaged files among them, so 3; licences passed over.
    let all = data("");
    let out = sandscope(&[os("events"), os("--stats"), all.as_os_str()], None);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("passed over (not event logs):"), "{text}");
}

#[test]
fn walking_output_is_deterministic() {
    let dir = data("mdecrevoisier_EVTX-to-MITRE-Attack");
    let a = sandscope(&[os("events"), dir.as_os_str()], None);
    let b = sandscope(&[os("events"), dir.as_os_str()], None);
    assert_eq!(a.stdout, b.stdout);
}
