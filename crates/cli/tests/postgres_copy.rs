//! `sandscope copy` between a data directory and a real PostgreSQL, both ways: everything
//! arrives (search answers, reports, raw log bytes, hunting records, a finished Retrohunt job
//! listing its matching files), and a copy killed part way through completes when run again,
//! with nothing doubled.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;

use postgres_server::TestPostgres;
use sandscope_hunting::{RecordStore, RecordTable, RetrohuntMatch, RetrohuntStore, Retrohunts};
use sandscope_store::Store;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sandscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .env_remove("SANDSCOPE_STORE")
        .env_remove("SANDSCOPE_DATA")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// The vendored EVTX of one ATT&CK collection and the two seed runs.
fn logs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut logs = vec![
        root.join("seed/coinminer_sihost32_sysmon.xml"),
        root.join("seed/ransomware_tutanota_sysmon.xml"),
    ];
    let mut dirs = vec![root.join("mdecrevoisier_EVTX-to-MITRE-Attack")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "evtx") {
                logs.push(path);
            }
        }
    }
    logs.sort();
    logs
}

const QUERIES: [&str; 5] = [
    "behaviour_files:hosts",
    "behaviour_command_executions:\"pool.supportxmr.com\"",
    "NOT behaviour_files:hosts",
    "behaviour_processes:*.exe",
    "behaviour_files:hosts OR behaviour_network:tutanota.com",
];

fn searches(store: &[&str]) -> Vec<String> {
    QUERIES
        .iter()
        .map(|q| {
            let mut args = vec!["search", "--format", "json", "--limit", "300"];
            args.extend_from_slice(store);
            args.push(q);
            ok(sandscope(&args))
        })
        .collect()
}

/// Every hunting record of a store, table by table.
fn records(store: &dyn RecordStore) -> Vec<Vec<(u64, Vec<u8>)>> {
    [
        RecordTable::HuntingRulesets,
        RecordTable::HuntingNotifications,
        RecordTable::RetrohuntJobs,
        RecordTable::RetrohuntMatches,
        RecordTable::RetrohuntRanges,
        RecordTable::WebhookDeliveries,
    ]
    .into_iter()
    .map(|t| store.records(t, 0..=u64::MAX, 10_000, false).unwrap())
    .collect()
}

/// Start a copy and kill it (SIGKILL) once its first batch has landed.
fn copy_killed_after_first_batch(from: &str, to: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(["copy", "--from", from, "--to", to, "--batch", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("copied 1 reports"), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Run a Retrohunt job of `rules` (queries) on `store` to its end; its id.
fn retrohunt(store: Arc<dyn RetrohuntStore>, rules: &str) -> u64 {
    let jobs = Retrohunts::start(store, 1).unwrap();
    let attributes = json!({"rules": rules, "rule_language": "query"});
    let id = jobs
        .create(
            attributes.as_object().unwrap(),
            sandscope_hunting::unix_now(),
        )
        .unwrap()
        .id;
    let started = Instant::now();
    while !jobs.job(id).unwrap().status.is_final() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job {id} runs on"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    id
}

/// The matching files a store's Retrohunt job lists, all pages.
fn matching_files(store: Arc<dyn RetrohuntStore>, job: u64) -> Vec<RetrohuntMatch> {
    let jobs = Retrohunts::start(store, 1).unwrap();
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let (_, page) = jobs.matches(job, 2, cursor.as_deref()).unwrap();
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

#[test]
fn copy_to_postgresql_and_back_keeps_everything_and_resumes_after_a_kill() {
    let logs = logs();
    assert!(logs.len() >= 5, "{logs:?}");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let source = source.to_str().unwrap();
    let back = dir.path().join("back");
    let back = back.to_str().unwrap();

    // A data directory with a Livehunt ruleset and the notifications it raised.
    let rules = dir.path().join("hosts.txt");
    std::fs::write(&rules, "# hosts file\nbehaviour_files:hosts\n").unwrap();
    ok(sandscope(&[
        "rulesets",
        "add",
        "hosts",
        rules.to_str().unwrap(),
        "--data",
        source,
    ]));
    let mut ingest = vec!["ingest", "--no-sigma", "--data", source];
    ingest.extend(logs.iter().map(|l| l.to_str().unwrap()));
    ok(sandscope(&ingest));
    // And a finished Retrohunt job with its matching files.
    let (report_ids, notifications, job, found) = {
        let store = Arc::new(Store::open(Path::new(source)).unwrap());
        let job = retrohunt(
            store.clone(),
            "behaviour_files:hosts\nbehaviour_processes:*.exe",
        );
        let found = matching_files(store.clone(), job);
        let (ids, _) = store.list_report_ids(10_000, None).unwrap();
        // The job's thread lets go of the store as it ends: the copy below opens the directory.
        let started = Instant::now();
        while Arc::strong_count(&store) > 1 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the job's thread ends"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        (ids, records(store.as_ref()), job, found)
    };
    assert!(report_ids.len() >= 5, "{report_ids:?}");
    assert!(!notifications[1].is_empty(), "the ruleset notified");
    assert!(
        found.len() > 2,
        "the job found files on more than one page: {found:?}"
    );

    let pg = TestPostgres::start();
    let url = pg.url();
    ok(sandscope(&["db", "init", "--store", &url]));
    copy_killed_after_first_batch(source, &url);
    let landed = sandscope_pgstore::PgStore::open(&url)
        .unwrap()
        .stats()
        .unwrap()
        .reports;
    assert!(
        landed >= 1 && (landed as usize) < report_ids.len(),
        "killed part way: {landed} of {}",
        report_ids.len()
    );

    // Run again: it completes, skipping what landed; a third run copies nothing.
    let out = sandscope(&["copy", "--from", source, "--to", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let expected = format!(
        "reports: {} copied, {landed} already there",
        report_ids.len() - landed as usize
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let out = sandscope(&["copy", "--from", source, "--to", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "reports: 0 copied, {} already there",
            report_ids.len()
        )),
        "{stderr}"
    );
    {
        let pg_store = sandscope_pgstore::PgStore::open(&url).unwrap();
        assert_eq!(pg_store.stats().unwrap().reports as usize, report_ids.len());
        assert_eq!(records(&pg_store), notifications);
        assert_eq!(matching_files(Arc::new(pg_store), job), found);
    }

    // And back to a new data directory.
    ok(sandscope(&["copy", "--from", &url, "--to", back]));
    let expected = searches(&["--data", source]);
    for (query, page) in QUERIES.iter().zip(&expected) {
        let page: serde_json::Value = serde_json::from_str(page).unwrap();
        assert!(
            page["meta"]["total_hits"].as_u64() > Some(0),
            "{query}: {page}"
        );
    }
    assert_eq!(searches(&["--store", &url]), expected);
    assert_eq!(searches(&["--data", back]), expected);

    let source = Store::open(Path::new(source)).unwrap();
    let back = Store::open(Path::new(back)).unwrap();
    assert_eq!(back.list_report_ids(10_000, None).unwrap().0, report_ids);
    for id in &report_ids {
        assert_eq!(back.report(id).unwrap(), source.report(id).unwrap(), "{id}");
        let log = source.raw_log(id).unwrap();
        assert!(log.as_ref().is_some_and(|l| !l.bytes.is_empty()), "{id}");
        assert_eq!(back.raw_log(id).unwrap(), log, "{id}");
    }
    assert_eq!(records(&back), notifications);
    let back = Arc::new(back);
    assert_eq!(matching_files(back.clone(), job), found);
    // Ids handed out after the copy come after the copied ones.
    let highest = notifications[1].last().unwrap().0;
    let next = back
        .allocate_ids(RecordTable::HuntingNotifications, 1)
        .unwrap();
    assert!(next[0] > highest, "{next:?} after {highest}");
}
