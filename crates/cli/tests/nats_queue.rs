//! `ingest --nats`, `worker` and `jobs` end to end: the real binary, a real PostgreSQL and a
//! real NATS JetStream server. Two workers build exactly what an embedded ingest builds; a
//! worker killed with SIGKILL loses nothing; a poison job is parked after three deliveries
//! with its reason; NATS down or restarted is an error naming NATS, and nothing it
//! acknowledged is lost; NATS restarted while two workers build several jobs, every job still
//! ends done with what an embedded ingest builds.

#[path = "../../../tests/support/nats.rs"]
mod nats_server;
#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;

use nats_server::TestNats;
use postgres_server::TestPostgres;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LOGS: &str = "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack";
/// Four CAPE run folders (report, Sysmon log and artefacts each).
const CAPE_RUNS: &str = "../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples";
const RULE: &str = "../hunting/tests/rules/shadow_copies_deleted.yml";

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sandscope"));
    c.env_remove("SANDSCOPE_STORE")
        .env_remove("SANDSCOPE_DATA")
        .env_remove("SANDSCOPE_NATS");
    c
}

fn sandscope(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Sigma options every build here uses: one real rule, not the 2,400 bundled ones.
fn sigma() -> Vec<String> {
    vec![
        "--no-default-rules".into(),
        "--rules".into(),
        data(RULE).display().to_string(),
    ]
}

struct Worker(Child);

impl Worker {
    fn start(pg: &str, nats: &str, extra: &[&str]) -> Worker {
        let child = command()
            .args(["worker", "--store", pg, "--nats", nats])
            .args(sigma())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Worker(child)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then its exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "worker did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn init(pg: &TestPostgres) -> String {
    let url = pg.url();
    let out = sandscope(&["db", "init", "--store", &url]);
    assert!(out.status.success(), "{}", text(&out));
    url
}

/// `ingest --nats`: the job ids it printed.
fn publish(nats: &str, pg: &str, paths: &[&Path]) -> Vec<String> {
    let mut c = command();
    c.args(["ingest", "--nats", nats, "--store", pg]);
    c.args(paths);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("queued\t"))
        .map(|l| l[..32].to_owned())
        .collect();
    assert!(!ids.is_empty(), "{}", text(&out));
    ids
}

fn jobs(nats: &str, ids: &[String]) -> Vec<serde_json::Value> {
    let mut args = vec!["jobs", "--nats", nats, "--format", "json"];
    args.extend(ids.iter().map(String::as_str));
    let out = sandscope(&args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

/// Wait until every job is in one of `states`; their status.
fn wait_for(
    nats: &str,
    ids: &[String],
    states: &[&str],
    within: Duration,
) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let status = jobs(nats, ids);
        if status
            .iter()
            .all(|s| states.contains(&s["state"].as_str().unwrap_or("")))
        {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "jobs not {states:?} within {within:?}: {status:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn report_ids(status: &[serde_json::Value]) -> BTreeSet<String> {
    status
        .iter()
        .flat_map(|s| s["reports"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// `queued` (report ids the queue's jobs stored in the PostgreSQL store `url`) are exactly the
/// reports an embedded `ingest` of `paths` stores, each shown the same by both stores.
fn assert_same_as_embedded_ingest(queued: &BTreeSet<String>, url: &str, paths: &[&Path]) {
    let dir = tempfile::tempdir().unwrap();
    let embedded = dir.path().join("data");
    let mut c = command();
    c.args(["ingest", "--data"])
        .arg(&embedded)
        .args(sigma())
        .args(paths);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stored: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("stored\t"))
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(queued, &stored);

    let samples: BTreeSet<&str> = stored.iter().map(|id| &id[..64]).collect();
    for sha in samples {
        let on_pg = sandscope(&["show", sha, "--store", url]);
        let on_disk = sandscope(&["show", sha, "--data", embedded.to_str().unwrap()]);
        assert!(on_pg.status.success(), "{}", text(&on_pg));
        assert!(on_disk.status.success(), "{}", text(&on_disk));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&on_pg.stdout).unwrap(),
            serde_json::from_slice::<serde_json::Value>(&on_disk.stdout).unwrap(),
            "{sha}"
        );
    }
}

#[test]
fn two_workers_build_exactly_what_an_embedded_ingest_builds() {
    let pg = TestPostgres::start();
    let nats = TestNats::start();
    let url = init(&pg);
    let workers = [
        Worker::start(&url, &nats.url(), &["--name", "one"]),
        Worker::start(&url, &nats.url(), &["--name", "two"]),
    ];
    let logs = data(LOGS);
    let runs = data(CAPE_RUNS);
    let ids = publish(&nats.url(), &url, &[&logs, &runs]);
    assert_eq!(ids.len(), 5 + 4, "one job per log and per run folder");
    let status = wait_for(&nats.url(), &ids, &["done"], Duration::from_secs(240));
    assert_same_as_embedded_ingest(&report_ids(&status), &url, &[&logs, &runs]);
    for worker in workers {
        assert!(worker.stop().success(), "a worker stops cleanly on SIGTERM");
    }
}

#[test]
fn a_worker_killed_mid_job_loses_nothing() {
    let pg = TestPostgres::start();
    let nats = TestNats::start();
    let url = init(&pg);
    let ids = publish(&nats.url(), &url, &[&data(CAPE_RUNS), &data(LOGS)]);
    // Killed once it has finished a job and is into the next (status `running`, unacknowledged).
    let first = Worker::start(&url, &nats.url(), &["--name", "first"]);
    let start = Instant::now();
    loop {
        let status = jobs(&nats.url(), &ids);
        let done = status.iter().filter(|s| s["state"] == "done").count();
        if done >= 1 && status.iter().any(|s| s["state"] == "running") {
            break;
        }
        assert!(
            done < ids.len(),
            "every job done before the kill: {status:#?}"
        );
        assert!(start.elapsed() < Duration::from_secs(120), "{status:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    first.signal("-KILL");
    drop(first);
    let _second = Worker::start(&url, &nats.url(), &["--name", "second"]);
    let status = wait_for(&nats.url(), &ids, &["done"], Duration::from_secs(180));
    let redelivered: Vec<_> = status.iter().filter(|s| s["deliveries"] == 2).collect();
    assert_eq!(redelivered.len(), 1, "the killed worker's job: {status:#?}");
    assert_eq!(redelivered[0]["worker"], "second");
    assert!(status.iter().all(|s| s["deliveries"].as_u64() <= Some(2)));
    // Every report is there, the redelivered job's included.
    for id in report_ids(&status) {
        let shown = sandscope(&["show", &id[..64], "--store", &url]);
        assert!(shown.status.success(), "{}", text(&shown));
    }
}

#[test]
fn a_job_that_times_out_three_times_is_parked_with_its_reason() {
    let pg = TestPostgres::start();
    let nats = TestNats::start();
    let url = init(&pg);
    let _worker = Worker::start(&url, &nats.url(), &["--job-timeout", "0.001"]);
    let log = data(LOGS).join("TA0040-Impact");
    let ids = publish(&nats.url(), &url, &[&log]);
    let status = wait_for(&nats.url(), &ids, &["parked"], Duration::from_secs(120));
    assert_eq!(status[0]["deliveries"], 3, "{status:#?}");
    let reason = status[0]["reason"].as_str().unwrap();
    assert!(reason.contains("timed out"), "{reason}");
    assert!(status[0]["reports"].as_array().unwrap().is_empty());
    // Parked means never delivered again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(jobs(&nats.url(), &ids)[0]["deliveries"], 3);
}

#[test]
fn nats_unreachable_or_restarted_is_an_error_naming_nats_and_loses_nothing() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("nats://127.0.0.1:{free}");
    let log = data(LOGS).join("TA0040-Impact");
    for args in [
        vec!["ingest", "--nats", &nowhere, log.to_str().unwrap()],
        vec!["jobs", "--nats", &nowhere],
        vec![
            "worker",
            "--nats",
            &nowhere,
            "--store",
            "postgres://x@127.0.0.1:1/x",
        ],
    ] {
        let out = sandscope(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("NATS") && said.contains("nats-server"),
            "{args:?}: {said}"
        );
    }

    let pg = TestPostgres::start();
    let mut nats = TestNats::start();
    let url = init(&pg);
    // Published and acknowledged by JetStream before the restart: kept across it.
    let before = publish(&nats.url(), &url, &[&log]);
    nats.stop();
    let out = sandscope(&["ingest", "--nats", &nats.url(), log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("NATS"), "{}", text(&out));
    nats.restart();
    let _worker = Worker::start(&url, &nats.url(), &[]);
    let status = wait_for(&nats.url(), &before, &["done"], Duration::from_secs(120));
    assert_eq!(report_ids(&status).len(), 1, "{status:#?}");
    // The worker survives another restart and takes the jobs published after it.
    nats.restart();
    let after = publish(&nats.url(), &url, &[&log]);
    let status = wait_for(&nats.url(), &after, &["done"], Duration::from_secs(120));
    assert_eq!(report_ids(&status), report_ids(&jobs(&nats.url(), &before)));
}

#[test]
fn nats_restarted_mid_multi_job_ingest_every_job_ends_done_as_an_embedded_ingest() {
    let pg = TestPostgres::start();
    let mut nats = TestNats::start();
    let url = init(&pg);
    let logs = data(LOGS);
    let runs = data(CAPE_RUNS);
    let ids = publish(&nats.url(), &url, &[&logs, &runs]);
    let _workers = [
        Worker::start(&url, &nats.url(), &["--name", "one"]),
        Worker::start(&url, &nats.url(), &["--name", "two"]),
    ];
    // Restarted (same storage) once the workers are at it: a job done, others still to build.
    let start = Instant::now();
    loop {
        let status = jobs(&nats.url(), &ids);
        let done = status.iter().filter(|s| s["state"] == "done").count();
        if done >= 1 && status.iter().any(|s| s["state"] == "running") {
            assert!(done < ids.len(), "{status:#?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{status:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    nats.stop();
    std::thread::sleep(Duration::from_secs(2));
    nats.restart();
    let status = wait_for(&nats.url(), &ids, &["done"], Duration::from_secs(240));
    assert_same_as_embedded_ingest(&report_ids(&status), &url, &[&logs, &runs]);
}

const KEY: &str = "nats-test-key";

/// `curl` with the API key: the status code and the body.
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-H",
            &format!("x-apikey: {KEY}"),
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl runs");
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&body[split + 1..]).parse().unwrap();
    body.truncate(split);
    (status, body)
}

#[test]
fn a_server_with_nats_answers_uploads_with_a_job_and_the_job_with_its_reports() {
    use std::io::{BufRead, BufReader};
    let pg = TestPostgres::start();
    let nats = TestNats::start();
    let url = init(&pg);
    let mut child = command()
        .args(["serve", "--store", &url, "--nats", &nats.url()])
        .args(["--listen", "127.0.0.1:0", "--api-key", KEY])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = loop {
        let line = lines.next().expect("serve exited before serving").unwrap();
        if let Some(rest) = line.strip_prefix("Sandscope is serving at ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let _server = Worker(child);

    let log =
        data(LOGS).join("TA0040-Impact/T1565-Data manipulation/ID11-DNS hosts files modified.evtx");
    let (status, body) = curl(&[
        "-F",
        &format!("file=@{}", log.display()),
        &format!("{server}/api/v3/sandscope/ingest"),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["data"], serde_json::json!([]), "{answer}");
    let job = answer["meta"]["job_id"].as_str().unwrap().to_owned();

    let status_of = || {
        let (status, body) = curl(&[&format!("{server}/api/v3/sandscope/jobs/{job}")]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["data"].clone()
    };
    assert_eq!(status_of()["state"], "queued");
    let (status, _) = curl(&[&format!(
        "{server}/api/v3/sandscope/jobs/{}",
        "0".repeat(32)
    )]);
    assert_eq!(status, 404);

    // A query ruleset added after the upload was queued: the worker reloads rulesets before
    // each job, so the report it builds notifies as an in-process ingest's would.
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("hosts.txt");
    std::fs::write(&rules, "# hosts file written\nbehaviour_files:hosts\n").unwrap();
    let added = sandscope(&[
        "rulesets",
        "add",
        "--store",
        &url,
        "hosts",
        rules.to_str().unwrap(),
        "--language",
        "query",
    ]);
    assert!(added.status.success(), "{}", text(&added));

    let _worker = Worker::start(&url, &nats.url(), &[]);
    let start = Instant::now();
    let done = loop {
        let s = status_of();
        if s["state"] == "done" {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The report an embedded ingest of the same file makes, under the same id.
    let dir = tempfile::tempdir().unwrap();
    let mut c = command();
    c.args(["ingest", "--data"])
        .arg(dir.path())
        .args(sigma())
        .arg(&log);
    let out = c.output().unwrap();
    let stored: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("stored\t"))
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(done["reports"], serde_json::json!(stored));
    let (status, body) = curl(&[&format!(
        "{server}/api/v3/file_behaviours/{}",
        stored[0].replace(' ', "%20")
    )]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Livehunt ran in the worker: one notification, for this sample, by the query's rule.
    let (status, body) = curl(&[&format!(
        "{server}/api/v3/intelligence/hunting_notifications"
    )]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let notes = page["data"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{page}");
    assert_eq!(notes[0]["attributes"]["sha256"], stored[0][..64], "{page}");
    assert_eq!(notes[0]["attributes"]["ruleset_name"], "hosts", "{page}");
}
