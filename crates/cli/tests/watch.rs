//! `sandscope ingest --watch DIR` (issue 18, item 4): a CAPE run folder written slowly, its
//! report last and in pieces, is ingested once and whole; a restarted watcher ingests nothing
//! twice; a run whose report is corrupt is reported once and skipped while the watcher goes
//! on, and taken once it is repaired. Every wait is on a condition, never on a fixed delay.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// CAPE lite report + guest Sysmon EVTX + files.json (Assemblyline's copy of one CAPE run).
const LITE_RUN: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
/// A second run, in Assemblyline's wrapper (`Report/` with the run, `Results/` beside it).
const WRAPPED_RUN: &str = "9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788";
/// The sample of the seed ransomware log, a loose log dropped beside the runs.
const RANSOM: &str = "8c18288195245660d3836693ec97509d43df8e25d52ff3858b9778aa2c4725e1";
/// Generous: a loaded two-core machine ingests slowly, and a wait ends as soon as it can.
const PATIENCE: Duration = Duration::from_secs(300);

fn sample(sha256: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples")
        .join(sha256)
}

fn seed_log() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed/ransomware_tutanota_sysmon.xml")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Drop a finished run into the watched folder at once (copied aside, then renamed in).
fn drop_run(watched: &Path, name: &str, from: &Path) {
    let aside = watched.join(format!(".incoming-{name}"));
    copy_tree(from, &aside);
    std::fs::rename(&aside, watched.join(name)).unwrap();
}

/// The run's logs and files.json first, as CAPE leaves them, but not its report.
fn run_without_report(folder: &Path) {
    let report_folder = sample(LITE_RUN).join("Report");
    copy_tree(&report_folder.join("evtx"), &folder.join("evtx"));
    std::fs::copy(report_folder.join("files.json"), folder.join("files.json")).unwrap();
    std::fs::create_dir_all(folder.join("reports")).unwrap();
}

fn lite_report() -> Vec<u8> {
    std::fs::read(sample(LITE_RUN).join("Report/reports/lite.json")).unwrap()
}

/// A running `sandscope ingest --watch`, its output collected as it comes.
struct Watcher {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let into = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

impl Watcher {
    fn start(watched: &Path, data: &Path) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandscope"))
            .args([
                "ingest",
                "--no-sigma",
                "--watch-settle",
                "0.5",
                "--watch-interval",
                "0.1",
            ])
            .arg("--watch")
            .arg(watched)
            .arg("--data")
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Watcher { child, out, err }
    }

    fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// The ids of the `stored` lines naming `run` (a path inside the watched folder).
    fn stored(&self, run: &Path) -> Vec<String> {
        stored_ids(&self.stdout(), Some(run))
    }

    /// Wait until `done` holds for (stdout, stderr).
    fn wait_until(&mut self, what: &str, done: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if done(&self.stdout(), &self.stderr()) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the watcher exited ({status}) before {what}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in time:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_stored(&mut self, run: &Path, count: usize) -> Vec<String> {
        let canonical = run.canonicalize().unwrap();
        self.wait_until(
            &format!("{count} report(s) of {}", run.display()),
            |out, _| stored_ids(out, Some(&canonical)).len() >= count,
        );
        self.stored(&canonical)
    }

    /// SIGTERM, as a service manager stops it; the watcher must end cleanly.
    fn stop(mut self) -> (String, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the watcher did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        // The collector threads end with the pipes.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.stderr().contains("watch: stopped") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            status.success(),
            "watcher exited with {status}:\n{}",
            self.stderr()
        );
        (self.stdout(), self.stderr())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The report ids of `stored\t<id>\t<input>` lines (of one input when `run` is given).
fn stored_ids(stdout: &str, run: Option<&Path>) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("stored\t"))
        .filter_map(|rest| rest.split_once('\t'))
        .filter(|(_, input)| run.is_none_or(|run| Path::new(input) == run))
        .map(|(id, _)| id.to_string())
        .collect()
}

/// The ids of a sample's stored reports, as `sandscope show` prints them (sorted).
fn shown_ids(data: &Path, sha256: &str) -> Vec<String> {
    let show = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(["show", sha256, "--data"])
        .arg(data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&show.stderr);
    assert!(show.status.success(), "{stderr}");
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let ids = shown["data"].as_array().unwrap().iter();
    sorted(ids.map(|r| r["id"].as_str().unwrap().to_string()).collect())
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn both_reports(sha256: &str) -> Vec<String> {
    vec![
        format!("{sha256}_CAPE Sandbox"),
        format!("{sha256}_Microsoft Sysinternals"),
    ]
}

#[test]
fn a_run_written_slowly_is_ingested_once_whole_and_a_restart_ingests_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("analyses");
    std::fs::create_dir(&watched).unwrap();
    let data = dir.path().join("data");
    let mut watcher = Watcher::start(&watched, &data);
    watcher.wait_until("the watcher's start", |_, err| {
        err.contains("watch: watching")
    });

    // CAPE's order: logs first, the report last, written in pieces.
    let run = watched.join("1");
    run_without_report(&run);
    let report = lite_report();
    let mut file = std::fs::File::create(run.join("reports/lite.json")).unwrap();
    for piece in report.chunks(report.len() / 8 + 1) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(file);

    // One detonation: the Sysmon log is filed under the report's sample, not on its own.
    let ids = watcher.wait_stored(&run, 2);
    assert_eq!(sorted(ids), both_reports(LITE_RUN));

    // Another run dropped whole (Assemblyline's wrapper); by the time it is stored the first
    // run was scanned again many times, and was not taken again.
    let wrapped = watched.join("2");
    drop_run(&watched, "2", &sample(WRAPPED_RUN));
    assert_eq!(
        sorted(watcher.wait_stored(&wrapped, 2)),
        both_reports(WRAPPED_RUN)
    );
    let (out, err) = watcher.stop();
    assert_eq!(stored_ids(&out, None).len(), 4, "{out}\n{err}");

    // Restarted: only what is new is ingested.
    let mut watcher = Watcher::start(&watched, &data);
    watcher.wait_until("the restart", |_, err| err.contains("2 run(s) remembered"));
    std::fs::copy(seed_log(), watched.join("loose.xml")).unwrap();
    let loose = watched.join("loose.xml");
    assert_eq!(
        watcher.wait_stored(&loose, 1),
        [format!("{RANSOM}_Microsoft Sysinternals")]
    );
    let (out, _) = watcher.stop();
    assert_eq!(stored_ids(&out, None).len(), 1, "{out}");

    // The store holds each report once, from the watched runs.
    assert_eq!(shown_ids(&data, LITE_RUN), both_reports(LITE_RUN));
}

#[test]
fn a_corrupt_report_is_reported_once_and_skipped_and_the_watcher_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("analyses");
    std::fs::create_dir(&watched).unwrap();
    let data = dir.path().join("data");

    // A run whose report was cut off (the disk filled up, CAPE was killed).
    let broken = watched.join("a-broken");
    run_without_report(&broken);
    let report = lite_report();
    std::fs::write(
        broken.join("reports/lite.json"),
        &report[..report.len() * 3 / 5],
    )
    .unwrap();
    let good = watched.join("b-good");
    drop_run(&watched, "b-good", &sample(WRAPPED_RUN));

    let mut watcher = Watcher::start(&watched, &data);
    let broken_shown = broken.canonicalize().unwrap().display().to_string();
    let skipped = format!("watch: skipped {broken_shown}: ");
    watcher.wait_until("the broken run's report", |_, err| err.contains(&skipped));
    assert_eq!(
        sorted(watcher.wait_stored(&good, 2)),
        both_reports(WRAPPED_RUN)
    );
    let err = watcher.stderr();
    let line = err.lines().find(|l| l.starts_with(&skipped)).unwrap();
    assert!(
        line.contains("lite.json") && line.contains("truncated"),
        "{line}"
    );

    // Nothing of the broken run was stored, not even its Sysmon log on its own; and after a
    // later run was taken (many scans on), it was still reported only once.
    let later = watched.join("c-later.xml");
    std::fs::copy(seed_log(), &later).unwrap();
    watcher.wait_stored(&later, 1);
    assert!(watcher.stored(&broken.canonicalize().unwrap()).is_empty());
    assert_eq!(stored_ids(&watcher.stdout(), None).len(), 3);
    assert_eq!(
        watcher.stderr().matches(&skipped).count(),
        1,
        "{}",
        watcher.stderr()
    );

    // Repaired, it changes, so it is taken again, whole.
    let repaired = broken.join("reports/.lite.json.tmp");
    std::fs::write(&repaired, &report).unwrap();
    std::fs::rename(&repaired, broken.join("reports/lite.json")).unwrap();
    assert_eq!(
        sorted(watcher.wait_stored(&broken, 2)),
        both_reports(LITE_RUN)
    );
    watcher.stop();
}

#[test]
fn serve_watches_a_folder_itself_and_ingest_watch_beside_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("analyses");
    std::fs::create_dir(&watched).unwrap();
    let data = dir.path().join("data");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args([
            "serve",
            "--no-sigma",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "watch-suite-key",
        ])
        .args([
            "--watch-settle",
            "0.5",
            "--watch-interval",
            "0.1",
            "--watch",
        ])
        .arg(&watched)
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Watcher {
        out: collect(serve.stdout.take().unwrap()),
        err: collect(serve.stderr.take().unwrap()),
        child: serve,
    };
    server.wait_until("the server and its watcher", |out, err| {
        out.contains("Sandscope is serving at") && err.contains("watch: watching")
    });

    let run = watched.join("1");
    drop_run(&watched, "1", &sample(LITE_RUN).join("Report"));
    assert_eq!(sorted(server.wait_stored(&run, 2)), both_reports(LITE_RUN));

    // The stored reports are the server's: read through it.
    assert_eq!(shown_ids(&data, LITE_RUN), both_reports(LITE_RUN));

    // A second watcher on the same data directory is refused, naming the way.
    let beside = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .arg("ingest")
        .arg("--watch")
        .arg(&watched)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&beside.stderr);
    assert_eq!(beside.status.code(), Some(1), "{message}");
    assert!(message.contains("sandscope serve --watch"), "{message}");
    server.stop();
}

#[test]
fn watching_a_missing_folder_fails_at_once_and_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .arg("ingest")
        .arg("--watch")
        .arg(dir.path().join("no-such-folder"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("no-such-folder"), "{message}");
    assert!(!data.exists(), "the data directory was created");
}
