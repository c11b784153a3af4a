//! Kill `sandscope ingest` at random moments (kill -9) and check, after each kill, that the
//! data directory opens, that every report the process acknowledged is stored whole (report and
//! raw log) and searchable, and that nothing half-written is visible.

use sandscope_store::{SearchRequest, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn logs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack");
    let out: Vec<PathBuf> = sandscope_read::walk(&root)
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "evtx"))
        .collect();
    assert_eq!(out.len(), 5);
    out
}

/// Deterministic pseudo-random numbers (xorshift), so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn ingest(data: &Path, sandbox: &str, logs: &[PathBuf]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandscope"));
    cmd.arg("ingest")
        .arg("--data")
        .arg(data)
        .arg("--sandbox")
        .arg(sandbox)
        .arg("--batch")
        .arg("1")
        .args(logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// Check the store; returns the number of reports in it.
fn verify(data: &Path, acknowledged: &BTreeMap<String, PathBuf>) -> u64 {
    let store = Store::open(data).expect("store reopens after kill -9 without repair");
    for (id, log) in acknowledged {
        let report = store
            .report(id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged report {id} is missing"));
        let raw = store
            .raw_log(id)
            .unwrap()
            .expect("raw log stored with its report");
        assert_eq!(
            raw.bytes,
            std::fs::read(log).unwrap(),
            "raw log of {id} is whole"
        );
        let sha = report.sha256().to_string();
        let sandbox = &report.attributes.sandbox_name;
        let mut request = SearchRequest::new(format!("{sha} sandbox_name:\"{sandbox}\""));
        request.limit = 1;
        let page = store.search(&request).unwrap();
        assert_eq!(page.total_hits, 1, "acknowledged report {id} is searchable");
    }
    // Nothing half-written: every stored report is whole (decodes, has its raw log) and every
    // sample in the index has its reports, and vice versa.
    let mut samples = BTreeSet::new();
    let mut cursor = None;
    let mut reports = 0;
    loop {
        let (ids, next) = store.list_report_ids(500, cursor.as_deref()).unwrap();
        for id in &ids {
            let r = store.report(id).unwrap().expect("listed report decodes");
            assert!(store.raw_log(id).unwrap().is_some(), "{id} has its raw log");
            samples.insert(r.sha256().to_string());
            reports += 1;
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut request = SearchRequest::new("sandbox_name:microsoft OR -sandbox_name:microsoft");
    request.limit = 300;
    let page = store.search(&request).unwrap();
    let indexed: BTreeSet<String> = page.hits.iter().map(|h| h.sha256.clone()).collect();
    assert_eq!(indexed, samples, "index and reports agree after reopen");
    for hit in &page.hits {
        assert!(!hit.report_ids.is_empty());
    }
    reports
}

#[test]
fn kill_nine_during_ingest_leaves_a_consistent_store() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // One full run to learn how long an ingest takes here.
    let started = Instant::now();
    let out = ingest(&data, "crash-0", &logs).output().unwrap();
    assert!(out.status.success());
    let full = started.elapsed();
    let mut acknowledged: BTreeMap<String, PathBuf> = BTreeMap::new();
    let by_name: BTreeMap<String, PathBuf> = logs
        .iter()
        .map(|p| (p.display().to_string(), p.clone()))
        .collect();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        acknowledged.insert(f[1].to_string(), by_name[f[2]].clone());
    }
    assert_eq!(acknowledged.len(), 5);
    assert_eq!(verify(&data, &acknowledged), 5);

    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut kills = 0;
    let mut partial = 0;
    let mut run = 0;
    while kills < 24 && run < 80 {
        run += 1;
        // Half the runs re-ingest an existing sandbox name (replacement), half add new reports.
        let sandbox = if run % 2 == 0 {
            "crash-0".to_string()
        } else {
            format!("crash-{run}")
        };
        let mut child = ingest(&data, &sandbox, &logs).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // Anywhere from process start to a little before a full run would finish.
        let delay = Duration::from_micros(rng.next() % (full.as_micros() as u64 * 3 / 4 + 1));
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        if !status.success() {
            kills += 1;
        }
        let lines = reader.join().unwrap();
        if !lines.is_empty() && lines.len() < 5 {
            partial += 1;
        }
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() == 3 && f[0] == "stored" {
                acknowledged.insert(f[1].to_string(), by_name[f[2]].clone());
            }
        }
        verify(&data, &acknowledged);
    }
    assert!(
        kills >= 20,
        "only {kills} of {run} runs were killed before finishing"
    );
    eprintln!(
        "{run} runs, {kills} kills, {partial} mid-ingest with some reports acknowledged, full run {full:?}"
    );
}
