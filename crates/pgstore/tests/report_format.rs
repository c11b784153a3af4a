//! How reports are stored (`codec`, see the crate documentation): the measurement behind
//! compressed JSON rather than `jsonb`, the same real reports both ways, sized by PostgreSQL
//! itself; and the dictionary the store trains once it has enough reports, with which every
//! format written so far still reads. On one server and on the two-server layout (where the
//! reports' partitions are read back through it).

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;
#[macro_use]
#[path = "support/layouts.rs"]
mod layouts;
// Only some of the shared helpers are used here.
#[allow(dead_code)]
#[path = "../../store/tests/support/vendored.rs"]
mod vendored;

use postgres_server::{Layout, TestCluster};
use sandscope_store::NewReport;
use std::io::Write;
use std::path::Path;

fn vendored_reports() -> Vec<NewReport> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    vendored::evtx_under(&root)
        .iter()
        .filter_map(|p| vendored::report_of(p))
        .collect()
}

on_each_layout!(compressed_json_reports_are_smaller_than_jsonb);

fn compressed_json_reports_are_smaller_than_jsonb(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let pg = cluster.primary();
    let store = layouts::store(&cluster);
    let reports = vendored_reports();
    assert!(reports.len() >= 10);
    store.put_reports(reports.clone()).unwrap();

    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE reports_jsonb (report_id text PRIMARY KEY, body jsonb NOT NULL)",
        )
        .unwrap();
    let mut json_bytes = 0;
    for r in &reports {
        let json = serde_json::to_string(&r.behaviour).unwrap();
        json_bytes += json.len();
        client
            .execute(
                "INSERT INTO reports_jsonb VALUES ($1, $2::text::jsonb)",
                &[&r.behaviour.id, &json],
            )
            .unwrap();
    }
    client
        .batch_execute("VACUUM ANALYZE reports, reports_jsonb")
        .unwrap();
    // Column sizes as stored (after PostgreSQL's own TOAST compression of large values).
    let row = client
        .query_one(
            "SELECT (SELECT sum(pg_column_size(body))::bigint FROM reports), \
                    (SELECT sum(pg_column_size(body))::bigint FROM reports_jsonb)",
            &[],
        )
        .unwrap();
    let (deflated, jsonb): (i64, i64) = (row.get(0), row.get(1));
    eprintln!(
        "{} reports, {json_bytes} bytes of JSON: deflated {deflated} bytes, jsonb {jsonb} bytes ({:.1}x)",
        reports.len(),
        jsonb as f64 / deflated as f64
    );
    assert!(
        deflated * 3 < jsonb * 2,
        "deflated {deflated} vs jsonb {jsonb}"
    );
}

on_each_layout!(a_dictionary_is_trained_once_there_are_enough_reports_and_every_format_reads);

/// The first byte of each stored body, by report id.
fn formats(client: &mut postgres::Client) -> Vec<(String, u8)> {
    client
        .query(
            "SELECT report_id, body FROM reports ORDER BY report_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get::<_, &[u8]>(1)[0]))
        .collect()
}

fn a_dictionary_is_trained_once_there_are_enough_reports_and_every_format_reads(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let pg = cluster.primary();
    let store = layouts::store(&cluster);
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let real = vendored_reports();
    assert!(real.len() >= 10 && real.len() < 200, "{}", real.len());

    // Too few reports to train on: zstd alone (0x06).
    store.put_reports(real.clone()).unwrap();
    let dicts = |c: &mut postgres::Client| -> i64 {
        c.query_one("SELECT count(*) FROM report_dicts", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(dicts(&mut client), 0);
    assert!(formats(&mut client).iter().all(|(_, f)| *f == 0x06));

    // The same reports under other samples' SHA-256s: enough to train a dictionary (0x07).
    let mut more = Vec::new();
    for round in 0..=200 / real.len() {
        for (i, r) in real.iter().enumerate() {
            let mut r = r.clone();
            let sha = format!("{round:032x}{i:032x}");
            r.behaviour.id =
                sandscope_model::behaviour_id(&sha, &r.behaviour.attributes.sandbox_name);
            r.raw_log = None;
            more.push(r);
        }
    }
    assert!(more.len() >= 200);
    store.put_reports(more.clone()).unwrap();
    assert_eq!(dicts(&mut client), 1);
    let written = formats(&mut client);
    let with_dictionary = written.iter().filter(|(_, f)| *f == 0x07).count();
    assert_eq!(with_dictionary, more.len(), "{written:?}");

    // A report as versions 1 to 3 wrote it: a raw deflate stream.
    let old = &real[0].behaviour;
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
    deflated
        .write_all(&serde_json::to_vec(old).unwrap())
        .unwrap();
    let deflated = deflated.finish().unwrap();
    client
        .execute(
            "UPDATE reports SET body = $1 WHERE sha256 = $2 AND report_id = $3",
            &[&deflated, &old.sha256(), &old.id],
        )
        .unwrap();

    // Every format reads back as written, also by a process that has not seen the dictionary.
    let fresh = layouts::store(&cluster);
    for r in real.iter().chain(&more) {
        assert_eq!(
            fresh.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour)
        );
        assert_eq!(
            store.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour)
        );
    }

    // The dictionary pays: its bodies are far smaller than the same reports deflated.
    let dictionary_bytes: i64 = client
        .query_one(
            "SELECT sum(octet_length(body))::bigint FROM reports WHERE get_byte(body, 0) = 7",
            &[],
        )
        .unwrap()
        .get(0);
    let deflated_bytes: usize = more
        .iter()
        .map(|r| {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
            e.write_all(&serde_json::to_vec(&r.behaviour).unwrap())
                .unwrap();
            e.finish().unwrap().len()
        })
        .sum();
    eprintln!(
        "{} reports: deflated {deflated_bytes} bytes, zstd with the dictionary {dictionary_bytes} bytes",
        more.len()
    );
    assert!((dictionary_bytes as usize) * 2 < deflated_bytes);

    // A damaged body is an error naming the report, not a panic.
    client
        .execute(
            "UPDATE reports SET body = '\\x0700000001ffff' WHERE sha256 = $1 AND report_id = $2",
            &[&more[0].behaviour.sha256(), &more[0].behaviour.id],
        )
        .unwrap();
    let e = fresh.report(&more[0].behaviour.id).unwrap_err().to_string();
    assert!(e.contains(&more[0].behaviour.id), "{e}");
}
