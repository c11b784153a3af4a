//! The measurement behind storing reports as deflated JSON rather than `jsonb` (see the crate
//! documentation): the same real reports both ways, sized by PostgreSQL itself; on one server
//! and on the two-server layout (where the reports' partitions are read back through it).

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
use std::path::Path;

on_each_layout!(deflated_json_reports_are_smaller_than_jsonb);

fn deflated_json_reports_are_smaller_than_jsonb(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let pg = cluster.primary();
    let store = layouts::store(&cluster);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let reports: Vec<_> = vendored::evtx_under(&root)
        .iter()
        .filter_map(|p| vendored::report_of(p))
        .collect();
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
