//! Two writers at once, as two ingest workers are: each its own store (its own pool and codec,
//! as in another process), writing real reports of the same samples in opposite orders, and
//! both reaching the dictionary's training threshold with their first batch. Nothing may
//! deadlock or be lost: every report lands, each sample's searchable row is built from all of
//! its reports, and the store has one dictionary that every body names. On both layouts.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;
#[macro_use]
#[path = "support/layouts.rs"]
mod layouts;
#[path = "../../store/tests/support/vendored.rs"]
mod vendored;

use postgres_server::{Layout, TestCluster};
use sandscope_pgstore::PgStore;
use sandscope_query::SampleDoc;
use sandscope_store::{NewReport, SearchRequest};
use std::sync::Barrier;

on_each_layout!(two_writers_on_the_same_samples_lose_nothing);

/// The vendored reports re-keyed under `samples` SHA-256s (real contents, many samples).
fn samples(count: usize) -> Vec<NewReport> {
    let real: Vec<NewReport> = vendored::vendored()
        .iter()
        .filter_map(|p| vendored::report_of(p))
        .collect();
    assert!(real.len() >= 3, "vendored logs give reports");
    (0..count)
        .map(|i| {
            let mut r = real[i % real.len()].clone();
            r.behaviour.id = sandscope_model::behaviour_id(
                &format!("{i:064x}"),
                &r.behaviour.attributes.sandbox_name,
            );
            r.raw_log = None;
            r
        })
        .collect()
}

/// `reports` as sandbox `sandbox` ran them (new report ids, the same samples).
fn run_by(reports: &[NewReport], sandbox: &str) -> Vec<NewReport> {
    reports
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.behaviour.attributes.sandbox_name = sandbox.to_string();
            r.behaviour.id = sandscope_model::behaviour_id(r.behaviour.sha256(), sandbox);
            r
        })
        .collect()
}

/// A first batch of 200 (the dictionary's threshold: both writers train at once), then
/// batches of 25.
fn batches(reports: Vec<NewReport>) -> Vec<Vec<NewReport>> {
    let mut rest = reports;
    let later = rest.split_off(200);
    let mut out = vec![rest];
    out.extend(later.chunks(25).map(<[NewReport]>::to_vec));
    out
}

fn two_writers_on_the_same_samples_lose_nothing(layout: Layout) {
    let cluster = TestCluster::start(layout);
    layouts::init(&cluster);
    let base = samples(300);
    let first = run_by(&base, "Writer A");
    let mut second = run_by(&base, "Writer B");
    // The other order: each writer's batches lock samples the other is writing.
    second.reverse();
    let writers = [
        PgStore::open(&cluster.url()).unwrap(),
        PgStore::open(&cluster.url()).unwrap(),
    ];
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        for (store, reports) in writers.iter().zip([first.clone(), second.clone()]) {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for batch in batches(reports) {
                    store.put_reports(batch).unwrap();
                }
            });
        }
    });

    let reader = PgStore::open(&cluster.url()).unwrap();
    assert_eq!(reader.stats().unwrap().reports, 600);
    for r in first.iter().chain(&second) {
        assert_eq!(
            reader.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour),
            "{}",
            r.behaviour.id
        );
    }
    // Each sample's row holds both writers' reports, as if written one after the other.
    for r in &base {
        let sha = r.behaviour.sha256();
        let stored = reader.sample_reports(sha).unwrap();
        assert_eq!(stored.len(), 2, "{sha}");
        assert_eq!(
            reader.sample_doc(sha).unwrap(),
            Some(SampleDoc::from_reports(sha, &stored)),
            "{sha}"
        );
    }
    for sandbox in ["writer_a", "writer_b"] {
        let page = reader
            .search(&SearchRequest::new(format!("sandbox_name:{sandbox}")))
            .unwrap();
        assert_eq!(page.total_hits, 300, "{sandbox}");
        assert!(page.total_hits_exact);
    }

    // One dictionary, trained by whichever writer committed first and used by both.
    let mut client = postgres::Client::connect(&cluster.url(), postgres::NoTls).unwrap();
    let dictionaries: i64 = client
        .query_one("SELECT count(*) FROM report_dicts", &[])
        .unwrap()
        .get(0);
    assert_eq!(dictionaries, 1);
    let without: i64 = client
        .query_one(
            "SELECT count(*) FROM reports WHERE substr(body, 1, 5) <> '\\x0700000001'::bytea",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(without, 0, "every report is written with the dictionary");
}
