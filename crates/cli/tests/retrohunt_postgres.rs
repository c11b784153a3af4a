//! Retrohunt on a real PostgreSQL store: the vendored EVTX files stored many times under new
//! sample ids (`bench retrohunt --data`), copied to PostgreSQL (`sandscope copy`), then
//! `sandscope retrohunt --store URL` finds exactly what it finds over the data directory; a
//! `serve --store` job finds exactly the matches of the same job on `serve --data`, is
//! resumed after a `kill -9` by one of two servers sharing the store, and stops on abort. With a real NATS and
//! `sandscope worker`s (`serve --store URL --nats URL`), the job is split into ranges the
//! workers scan: the same matches, with a worker killed mid-range and two others finishing,
//! and abort reaches them; and with every range item deleted from NATS mid-job, the server
//! holding the job publishes the lost ranges again and the job still ends with those matches.

#[path = "../../../tests/support/nats.rs"]
mod nats_server;
#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;
mod support;

use nats_server::TestNats;
use postgres_server::TestPostgres;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::retrohunt::{self, api, create, job, json_of, matches, wait};
use support::{Server, sandscope_ok};

const COPIES: usize = 24;

/// (rule id, log name, event time, record id) → how many hits.
fn hit_counts(answer: &Value) -> BTreeMap<(String, String, String, u64), usize> {
    let mut counts = BTreeMap::new();
    for h in answer["hits"].as_array().expect("hits") {
        let key = (
            h["rule_id"].as_str().unwrap_or_default().to_string(),
            h["file"].as_str().expect("file").to_string(),
            h["time"].as_str().expect("time").to_string(),
            h["record_id"].as_u64().unwrap_or_default(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// A data directory of `COPIES` times the vendored EVTX files, and how many detonations.
fn filled_store(dir: &Path) -> (String, u64) {
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    (data.to_string(), retrohunt::filled_store(data, COPIES))
}

/// A PostgreSQL store holding what the data directory `data` holds.
fn copied_to_postgres(data: &str) -> (TestPostgres, String) {
    let pg = TestPostgres::start();
    let url = pg.url();
    sandscope_ok(&["db", "init", "--store", &url]);
    sandscope_ok(&["copy", "--from", data, "--to", &url]);
    (pg, url)
}

/// The matches of a job of `ANY_EXE` run to its end on `serve --data data`.
fn embedded_matches(data: &str) -> BTreeMap<(String, String), u64> {
    let (_embedded, url) = Server::start(data);
    let whole = create(&url);
    let done = wait(&url, &whole, Duration::from_secs(300), |a| {
        a["status"] == "finished"
    });
    assert!(done["num_matches"].as_u64() > Some(0), "{done}");
    matches(&url, &whole)
}

#[test]
fn retrohunt_on_postgresql_finds_what_it_finds_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let (data, stored) = filled_store(dir.path());
    let data = data.as_str();
    let (_pg, url) = copied_to_postgres(data);

    // The CLI: every hit of the bundled rules, log by log, the same on both stores.
    let embedded = hit_counts(&json_of(&[
        "retrohunt",
        "--bundled",
        "--format",
        "json",
        "--data",
        data,
    ]));
    let on_postgres = hit_counts(&json_of(&[
        "retrohunt",
        "--bundled",
        "--format",
        "json",
        "--store",
        &url,
    ]));
    assert!(!embedded.is_empty());
    assert_eq!(on_postgres, embedded);

    // The API: a job on `serve --store`, killed mid-way, resumed by the next server, ends with
    // exactly the matches of the same job on `serve --data`.
    let (mut server, api_url) = Server::start_on(&["--store", &url]);
    let killed = create(&api_url);
    let seen = wait(&api_url, &killed, Duration::from_secs(300), |a| {
        a["status"] == "running" && a["scanned_detonations"].as_u64() > Some(0)
    });
    server.signal("-KILL");
    assert!(
        seen["scanned_detonations"].as_u64().unwrap() < stored,
        "the job finished before the kill: {seen}"
    );
    drop(server);
    // Two servers share the store from now on: the job is adopted by one of them once the
    // dead server's lease has lapsed, and run by that one only (no match twice, below).
    let (_server, api_url) = Server::start_on(&["--store", &url]);
    let (_other, _) = Server::start_on(&["--store", &url]);
    let resumed = wait(&api_url, &killed, Duration::from_secs(300), |a| {
        a["status"] == "finished"
    });
    assert!(resumed["resumed"].as_u64() >= Some(1), "{resumed}");
    assert_eq!(resumed["scanned_detonations"], stored, "{resumed}");
    let on_postgres = matches(&api_url, &killed);
    assert_eq!(resumed["num_matches"], on_postgres.len());
    assert_eq!(on_postgres, embedded_matches(data));

    // Abort: stops the job within a second, part way.
    let aborted = create(&api_url);
    api(
        &api_url,
        "POST",
        &format!("/intelligence/retrohunt_jobs/{aborted}/abort"),
        None,
    );
    let end = wait(&api_url, &aborted, Duration::from_secs(1), |a| {
        a["status"] == "aborted"
    });
    assert!(end["scanned_detonations"].as_u64() < Some(stored), "{end}");
}

/// A `sandscope worker`, killed when dropped.
struct Worker(Child);

impl Worker {
    fn start(pg: &str, nats: &str) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_sandscope"))
            .args(["worker", "--store", pg, "--nats", nats, "--no-sigma"])
            .env_remove("SANDSCOPE_STORE")
            .env_remove("SANDSCOPE_NATS")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sandscope worker");
        Worker(child)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A split Retrohunt job on PostgreSQL (`serve --store URL --nats URL`) whose first worker,
/// alone, was killed (SIGKILL) part way through it, so mid-range.
struct InterruptedSplitJob {
    _pg: TestPostgres,
    _server: Server,
    /// The data directory the PostgreSQL store was copied from.
    data: String,
    /// Detonations stored.
    stored: u64,
    url: String,
    nats: TestNats,
    api_url: String,
    /// The job's id.
    split: String,
}

impl InterruptedSplitJob {
    fn start(dir: &Path) -> InterruptedSplitJob {
        let (data, stored) = filled_store(dir);
        let (pg, url) = copied_to_postgres(&data);
        let nats = TestNats::start();
        let (server, api_url) = Server::start_on(&["--store", &url, "--nats", &nats.url()]);
        let first = Worker::start(&url, &nats.url());
        let split = create(&api_url);
        let seen = wait(&api_url, &split, Duration::from_secs(300), |a| {
            a["status"] == "running" && a["scanned_detonations"].as_u64() > Some(0)
        });
        drop(first);
        assert!(
            seen["scanned_detonations"].as_u64().unwrap() < stored,
            "the job finished before the kill: {seen}"
        );
        InterruptedSplitJob {
            _pg: pg,
            _server: server,
            data,
            stored,
            url,
            nats,
            api_url,
            split,
        }
    }
}

#[test]
fn retrohunt_split_across_two_workers_finds_what_one_process_finds() {
    let dir = tempfile::tempdir().unwrap();
    // The range the killed worker held is redelivered to one of the two workers that finish
    // the job, and resumes from its checkpoint; the matches are those of one uninterrupted
    // process.
    // Every field bound, the servers' guards too, so that none is dropped (and stopped) here.
    let InterruptedSplitJob {
        _pg,
        _server,
        data,
        stored,
        url,
        nats,
        api_url,
        split,
    } = InterruptedSplitJob::start(dir.path());
    let data = data.as_str();
    let _second = Worker::start(&url, &nats.url());
    let _third = Worker::start(&url, &nats.url());
    finishes_with_the_embedded_matches(&api_url, &split, stored, data);

    // Abort reaches the workers: the job is aborted at once and its count stops moving.
    let aborted = create(&api_url);
    wait(&api_url, &aborted, Duration::from_secs(300), |a| {
        a["scanned_detonations"].as_u64() > Some(0)
    });
    let answer = api(
        &api_url,
        "POST",
        &format!("/intelligence/retrohunt_jobs/{aborted}/abort"),
        None,
    );
    assert_eq!(
        answer["data"]["attributes"]["status"], "aborted",
        "{answer}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let settled = job(&api_url, &aborted);
    std::thread::sleep(Duration::from_secs(2));
    let later = job(&api_url, &aborted);
    assert_eq!(later["scanned_detonations"], settled["scanned_detonations"]);
    assert!(
        later["scanned_detonations"].as_u64() < Some(stored),
        "{later}"
    );
}

/// Delete every item of the retrohunt work-queue stream, as NATS losing them would; how many.
fn purge_range_items(nats: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the NATS client");
    runtime.block_on(async {
        let client = async_nats::connect(nats).await.expect("connect to NATS");
        let js = async_nats::jetstream::new(client);
        let stream = js
            .get_stream(sandscope_queue::RETRO_STREAM)
            .await
            .expect("the retrohunt stream");
        stream.purge().await.expect("purge the stream").purged
    })
}

#[test]
fn retrohunt_ranges_lost_by_nats_are_published_again_and_the_job_finishes() {
    let dir = tempfile::tempdir().unwrap();
    // Then every range item is deleted from the stream (the one the dead worker held, and
    // those no worker took yet).
    // Every field bound, the servers' guards too, so that none is dropped (and stopped) here.
    let InterruptedSplitJob {
        _pg,
        _server,
        data,
        stored,
        url,
        nats,
        api_url,
        split,
    } = InterruptedSplitJob::start(dir.path());
    let data = data.as_str();
    let purged = purge_range_items(&nats.url());
    assert!(purged > 0, "no range item was left to delete");
    // Nothing is in the queue now: only the server re-publishing the lost ranges lets the new
    // worker finish the job, the killed range resumed from its checkpoint.
    let _second = Worker::start(&url, &nats.url());
    finishes_with_the_embedded_matches(&api_url, &split, stored, data);
}

/// Split job `split` on the server at `api_url` finishes, having scanned all `stored`
/// detonations, with exactly the matches the same job finds on the data directory `data`.
fn finishes_with_the_embedded_matches(api_url: &str, split: &str, stored: u64, data: &str) {
    let done = wait(api_url, split, Duration::from_secs(300), |a| {
        a["status"] == "finished"
    });
    assert_eq!(done["scanned_detonations"], stored, "{done}");
    assert_eq!(done["progress"], 100.0);
    let split_matches = matches(api_url, split);
    assert_eq!(done["num_matches"], split_matches.len());
    assert_eq!(split_matches, embedded_matches(data));
}
