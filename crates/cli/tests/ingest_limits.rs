//! `sandscope ingest` on hostile logs generated here (never checked in): peak memory of the
//! child process (its `VmHWM`, read from `/proc/<pid>/status` while it runs) must not follow
//! the number of events; a log past the memory budget is refused with a clear error and exit
//! code 1; and errors say each cause once, naming the directory concerned.

use flate2::Compression;
use flate2::write::GzEncoder;
use sandscope_ingest::flood::write_file_creation_flood;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn gzip_flood(dir: &Path, name: &str, events: u64, distinct: bool) -> PathBuf {
    let path = dir.join(name);
    let mut gz = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::best());
    write_file_creation_flood(&mut gz, events, distinct).unwrap();
    gz.finish().unwrap();
    path
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line[6..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Run `sandscope` with `args`; its output, and its peak resident memory as last seen.
fn run_measured(args: &[&std::ffi::OsStr], limit: Duration) -> (Output, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    // The pipes are small and the outputs short: poll until the process exits.
    while child.try_wait().unwrap().is_none() {
        if let Some(hwm) = vm_hwm(pid) {
            peak = peak.max(hwm);
        }
        assert!(started.elapsed() < limit, "sandscope ran past {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    (child.wait_with_output().unwrap(), peak)
}

fn ingest_args<'a>(data: &'a Path, file: &'a Path, extra: &[&'a str]) -> Vec<&'a std::ffi::OsStr> {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["ingest".as_ref(), "--data".as_ref(), data.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    args.push(file.as_os_str());
    args
}

#[test]
fn peak_memory_does_not_follow_the_number_of_repeated_events() {
    let dir = tempfile::tempdir().unwrap();
    let small = gzip_flood(dir.path(), "small.jsonl.gz", 10_000, false);
    let large = gzip_flood(dir.path(), "large.jsonl.gz", 500_000, false);
    let mut peaks = Vec::new();
    for (name, file) in [("small", &small), ("large", &large)] {
        let data = dir.path().join(format!("data-{name}"));
        let (out, peak) = run_measured(&ingest_args(&data, file, &[]), Duration::from_secs(300));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("stored\t"));
        assert!(
            stderr.contains("were counted once (2 distinct)"),
            "{stderr}"
        );
        peaks.push(peak);
    }
    assert!(peaks[0] > 0, "VmHWM was read");
    // 50 times the events: held one by one, they grew the process by ~1.5 KB each (750 MB).
    assert!(
        peaks[1] < peaks[0] + (48 << 20),
        "peak RSS {} MiB for 10,000 events, {} MiB for 500,000",
        peaks[0] >> 20,
        peaks[1] >> 20
    );
}

#[test]
fn a_log_past_the_memory_budget_is_refused_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = gzip_flood(dir.path(), "distinct.jsonl.gz", 200_000, true);
    let data = dir.path().join("data");
    let (out, peak) = run_measured(
        &ingest_args(&data, &file, &["--max-memory-mib", "16", "--no-sigma"]),
        Duration::from_secs(300),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "skipped {}: too many distinct events for one report",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("memory budget of 16777216 bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("0 report(s) stored, 1 file(s) skipped"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(peak < 256 << 20, "peak RSS {} MiB", peak >> 20);
    let store = sandscope_store::Store::open(&data).unwrap();
    assert_eq!(store.stats().unwrap().reports, 0);
}

#[test]
fn a_locked_data_directory_is_named_and_its_cause_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _held = sandscope_store::Store::open(&data).unwrap();
    let file = gzip_flood(dir.path(), "one.jsonl.gz", 1, false);
    let out = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(ingest_args(&data, &file, &["--no-sigma"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // No owner record here (the holder is this test, not a sandscope process): the message
    // names the directory once and says what to do.
    assert!(
        stderr.contains(&format!(
            "the data directory {} is held by another process; wait for it to finish, or stop it",
            data.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches(&data.display().to_string()).count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_data_directory_that_is_a_file_is_named_and_its_cause_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("not-a-dir");
    std::fs::write(&data, b"x").unwrap();
    let file = gzip_flood(dir.path(), "one.jsonl.gz", 1, false);
    let out = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(ingest_args(&data, &file, &["--no-sigma"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
}
