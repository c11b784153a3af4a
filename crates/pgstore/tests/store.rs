//! The PostgreSQL store against a real PostgreSQL 15 started for the test: schema versions,
//! connection failures, reports and raw logs in and out; each test on one server and on the
//! two-server layout (`db init --shards`).

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;
#[macro_use]
#[path = "support/layouts.rs"]
mod layouts;
#[path = "../../store/tests/support/vendored.rs"]
mod vendored;

use postgres_server::{Layout, PASSWORD, TestCluster, TestPostgres};
use sandscope_pgstore::{PgStore, PgStoreError, SCHEMA_VERSION, SchemaChange};
use sandscope_store::{NewReport, RawData, RawLog};

fn reports() -> Vec<NewReport> {
    let reports: Vec<NewReport> = vendored::vendored()
        .iter()
        .filter_map(|p| vendored::report_of(p))
        .collect();
    assert!(reports.len() >= 3, "vendored logs give reports");
    reports
}

on_each_layout!(
    schema_is_created_once_and_other_versions_are_refused_with_what_to_run,
    connection_failures_name_postgresql_and_what_to_check,
    reports_and_chunked_raw_logs_round_trip,
    search_limits_bad_cursors_and_the_flagged_lower_bound,
    postgresql_restarted_mid_ingest_is_a_clear_error_and_loses_nothing_acknowledged,
    concurrent_batches_of_one_sample_all_land,
);

fn schema_is_created_once_and_other_versions_are_refused_with_what_to_run(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let url = cluster.url();
    match PgStore::open(&url) {
        Err(e @ PgStoreError::NoSchema { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("PostgreSQL") && m.contains("sandscope db init"),
                "{m}"
            );
        }
        other => panic!("an empty database must be refused: {:?}", other.err()),
    }
    assert_eq!(layouts::init(&cluster), SchemaChange::Created);
    assert_eq!(layouts::init(&cluster), SchemaChange::AlreadyCurrent);
    // `db init` without `--shards` on an existing store keeps its layout.
    assert_eq!(PgStore::init(&url).unwrap(), SchemaChange::AlreadyCurrent);
    PgStore::open(&url).unwrap();

    let set_version = |v: i32| {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.execute("UPDATE sandscope_schema SET version = $1", &[&v])
            .unwrap();
    };
    set_version(SCHEMA_VERSION - 1);
    let m = PgStore::open(&url).err().unwrap().to_string();
    assert!(
        m.contains("PostgreSQL") && m.contains("sandscope db upgrade"),
        "{m}"
    );
    if layout == Layout::TwoServers {
        // The sharded layout is created at the current version; no upgrade changes a table
        // on every server yet, so an older sharded store is refused rather than half-upgraded.
        assert!(matches!(
            PgStore::upgrade(&url),
            Err(PgStoreError::SchemaOlder { .. })
        ));
    }
    set_version(SCHEMA_VERSION + 1);
    let m = PgStore::open(&url).err().unwrap().to_string();
    assert!(m.contains("newer") && m.contains("PostgreSQL"), "{m}");
    assert!(matches!(
        PgStore::init(&url),
        Err(PgStoreError::SchemaNewer { .. })
    ));
}

/// Turn a current store back into what version 2 was: one row per sample, field and value in
/// `sample_values` and `sample_tokens`, each with its trigram index, no value columns in
/// `samples`, and ascending date indexes.
const BACK_TO_VERSION_2: &str = r#"
CREATE TABLE sample_values (
    sha256 text COLLATE "C" NOT NULL,
    field smallint NOT NULL,
    value text COLLATE "C" NOT NULL,
    PRIMARY KEY (sha256, field, value)
);
CREATE INDEX sample_values_trgm ON sample_values USING gin (value gin_trgm_ops);
CREATE TABLE sample_tokens (
    sha256 text COLLATE "C" NOT NULL,
    field smallint NOT NULL,
    token text COLLATE "C" NOT NULL,
    PRIMARY KEY (sha256, field, token)
);
CREATE INDEX sample_tokens_token ON sample_tokens (field, token);
CREATE INDEX sample_tokens_trgm ON sample_tokens USING gin (token gin_trgm_ops);
INSERT INTO sample_values
    SELECT s.sha256, f.code, v FROM samples s CROSS JOIN LATERAL (VALUES
        (0, s.text_0),
        (1, s.text_1),
        (2, s.text_2),
        (3, s.text_3),
        (4, s.text_4),
        (5, s.text_5),
        (6, s.text_6),
        (7, s.text_7),
        (8, s.text_8),
        (9, s.text_9)
    ) AS f(code, col) CROSS JOIN LATERAL unnest(string_to_array(f.col, E'\n')) AS v
    WHERE f.col IS NOT NULL;
INSERT INTO sample_tokens
    SELECT s.sha256, f.code, t FROM samples s CROSS JOIN LATERAL (VALUES
        (0, s.token_0),
        (1, s.token_1),
        (2, s.token_2),
        (3, s.token_3),
        (4, s.token_4),
        (5, s.token_5),
        (6, ARRAY[s.sha256])
    ) AS f(code, col) CROSS JOIN LATERAL unnest(f.col) AS t
    WHERE f.col IS NOT NULL;
ALTER TABLE samples DROP COLUMN text_0, DROP COLUMN text_1, DROP COLUMN text_2, DROP COLUMN text_3, DROP COLUMN text_4, DROP COLUMN text_5, DROP COLUMN text_6, DROP COLUMN text_7, DROP COLUMN text_8, DROP COLUMN text_9, DROP COLUMN token_0, DROP COLUMN token_1, DROP COLUMN token_2, DROP COLUMN token_3, DROP COLUMN token_4, DROP COLUMN token_5;
DROP TABLE report_dicts;
DROP INDEX samples_first_seen, samples_last_seen;
CREATE INDEX samples_first_seen ON samples (first_seen, sha256);
CREATE INDEX samples_last_seen ON samples (last_seen, sha256);
UPDATE sandscope_schema SET version = 2;
"#;

/// Queries over text values, tokens, `*` and negation, with the ids they find.
fn answers(store: &PgStore, shas: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut queries: Vec<String> = [
        "behaviour:windows",
        "behaviour_files:*",
        "behaviour_processes:exe -behaviour_files:temp",
        "behaviour_processes:\"%windir%\"",
        "sandbox_name:*",
        "behaviour_network:*",
    ]
    .iter()
    .map(|q| q.to_string())
    .collect();
    // A bare SHA-256 is a token term.
    queries.extend(shas.iter().map(|sha| sha.to_string()));
    queries
        .into_iter()
        .map(|q| {
            let mut request = sandscope_store::SearchRequest::new(&q);
            request.limit = 300;
            let page = store.search(&request).unwrap();
            let ids = page.hits.iter().map(|h| h.sha256.clone()).collect();
            (q, ids)
        })
        .collect()
}

#[test]
fn a_version_2_store_upgrades_to_value_columns_and_finds_the_same_samples() {
    let pg = TestPostgres::start();
    let url = pg.url();
    PgStore::init(&url).unwrap();
    let batch = reports();
    let shas: Vec<String> = batch
        .iter()
        .map(|r| r.behaviour.sha256().to_string())
        .collect();
    let shas: Vec<&str> = shas.iter().map(String::as_str).collect();
    let store = PgStore::open(&url).unwrap();
    store.put_reports(batch).unwrap();
    let before = answers(&store, &shas);
    for (q, ids) in &before {
        assert!(
            !ids.is_empty(),
            "`{q}` finds samples in the vendored reports"
        );
    }
    assert!(
        before.iter().any(|(_, ids)| ids.len() < shas.len()),
        "some query tells samples apart"
    );
    drop(store);

    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.batch_execute(BACK_TO_VERSION_2).unwrap();
    let rows: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM sample_values) + (SELECT count(*) FROM sample_tokens)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(rows > 20, "version 2 rows to migrate: {rows}");
    let e = PgStore::open(&url).err().unwrap();
    assert!(
        matches!(e, PgStoreError::SchemaOlder { found: 2, .. }),
        "{e}"
    );
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::Upgraded { from: 2 }
    );
    // The old tables are gone; every value row was moved into its sample's row.
    let old: bool = client
        .query_one("SELECT to_regclass('sample_values') IS NULL", &[])
        .unwrap()
        .get(0);
    assert!(old);
    let moved: i64 = client
        .query_one(
            "SELECT count(*) FROM samples s CROSS JOIN LATERAL \
             unnest(string_to_array(s.text_0, E'\\n')) AS v",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(moved > 0 && moved <= rows, "{moved} of {rows}");
    let store = PgStore::open(&url).unwrap();
    assert_eq!(answers(&store, &shas), before);

    // `db init` creates the current version at once, `db upgrade` gets there step by step:
    // both must end with the same tables, columns and indexes.
    client.batch_execute("CREATE DATABASE fresh").unwrap();
    let fresh_url = pg.database_url("fresh");
    assert_ne!(fresh_url, url);
    PgStore::init(&fresh_url).unwrap();
    let mut fresh = postgres::Client::connect(&fresh_url, postgres::NoTls).unwrap();
    assert_eq!(schema_of(&mut client), schema_of(&mut fresh));
}

/// Every column (table, name, type, collation, nullability) and index definition of the public
/// schema, sorted (column positions differ after an upgrade drops and adds columns).
fn schema_of(client: &mut postgres::Client) -> Vec<String> {
    let mut items: Vec<String> = client
        .query(
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || \
             coalesce(collation_name, '-') || ' ' || is_nullable \
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    items.extend(
        client
            .query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
    );
    items.sort();
    assert!(items.len() > 20, "{items:?}");
    items
}

#[test]
fn a_version_1_store_upgrades_to_hunting_records_and_keeps_its_reports() {
    let pg = TestPostgres::start();
    let url = pg.url();
    PgStore::init(&url).unwrap();
    let batch = reports();
    let ids = PgStore::open(&url).unwrap().put_reports(batch).unwrap();
    // What version 1 was: version 2's tables without hunting's records.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.batch_execute(BACK_TO_VERSION_2).unwrap();
    client
        .batch_execute(
            "DROP TABLE records, record_counters; UPDATE sandscope_schema SET version = 1",
        )
        .unwrap();
    let e = PgStore::open(&url).err().unwrap();
    assert!(
        matches!(e, PgStoreError::SchemaOlder { found: 1, .. }),
        "{e}"
    );

    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::Upgraded { from: 1 }
    );
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::AlreadyCurrent
    );
    let store = PgStore::open(&url).unwrap();
    for id in &ids {
        assert!(store.report(id).unwrap().is_some(), "{id} survives");
    }
    let table = sandscope_store::RecordTable::HuntingRulesets;
    assert_eq!(store.allocate_record_ids(table, 2).unwrap(), [1, 2]);
    store
        .write_records(vec![sandscope_store::RecordWrite::Put(
            table,
            2,
            b"x".to_vec(),
        )])
        .unwrap();
    assert_eq!(store.record(table, 2).unwrap(), Some(b"x".to_vec()));
}

fn connection_failures_name_postgresql_and_what_to_check(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let pg = cluster.primary();
    let bad = PgStore::open("postgres://127.0.0.1:notaport/x")
        .err()
        .unwrap();
    assert!(matches!(bad, PgStoreError::BadUrl(_)), "{bad}");
    assert!(bad.to_string().contains("PostgreSQL store URL"), "{bad}");

    // A port nothing listens on: take a free one and let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = PgStore::open(&format!("postgres://postgres@127.0.0.1:{port}/sandscope"))
        .err()
        .unwrap();
    assert!(matches!(e, PgStoreError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("cannot reach PostgreSQL"), "{e}");

    let e = PgStore::open(&pg.password_url("wrong")).err().unwrap();
    assert!(matches!(e, PgStoreError::Authentication { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("password") && !m.contains("wrong"),
        "no password in: {m}"
    );

    // The right password reaches the database (which has no schema yet).
    let e = PgStore::open(&pg.password_url(PASSWORD)).err().unwrap();
    assert!(matches!(e, PgStoreError::NoSchema { .. }), "{e}");

    let e = PgStore::open(&pg.database_url("nosuchdb")).err().unwrap();
    assert!(matches!(e, PgStoreError::NoDatabase { .. }), "{e}");
}

fn reports_and_chunked_raw_logs_round_trip(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let store = layouts::store(&cluster);
    let batch = reports();
    let ids = store.put_reports(batch.clone()).unwrap();
    assert_eq!(ids.len(), batch.len());
    for r in &batch {
        let id = &r.behaviour.id;
        assert_eq!(store.report(id).unwrap().as_ref(), Some(&r.behaviour));
        let Some(RawLog {
            file_name,
            data: RawData::File(path),
        }) = &r.raw_log
        else {
            panic!("vendored reports keep their log file");
        };
        let log = store.raw_log(id).unwrap().unwrap();
        assert_eq!(&log.file_name, file_name);
        assert_eq!(log.bytes, std::fs::read(path).unwrap());
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.reports as usize, batch.len());
    assert_eq!(stats.raw_logs as usize, batch.len());
    // ANALYZE gives the planner statistics on the loaded samples (through the foreign
    // partition too on two servers).
    let statistics = |sql: &str| -> i64 {
        postgres::Client::connect(&cluster.url(), postgres::NoTls)
            .unwrap()
            .query_one(sql, &[])
            .unwrap()
            .get(0)
    };
    let sampled =
        "SELECT count(*) FROM pg_stats WHERE tablename = 'samples' AND attname = 'sha256'";
    assert_eq!(statistics(sampled), 0, "no statistics before ANALYZE");
    store.analyze().unwrap();
    assert!(statistics(sampled) > 0, "statistics after ANALYZE");
    // The size counts at least the tables on the store's server (the local partition on two
    // servers; the second server's is counted too, see `size_statistics_and_compaction_reach_...`).
    let local_reports = match layout {
        Layout::OneServer => "reports",
        Layout::TwoServers => "reports_p0",
    };
    let reports_bytes: i64 = postgres::Client::connect(&cluster.url(), postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT pg_total_relation_size($1::text::regclass)",
            &[&local_reports],
        )
        .unwrap()
        .get(0);
    let size = store.size_bytes().unwrap();
    assert!(
        reports_bytes > 0 && size > reports_bytes as u64,
        "{size} bytes in all, {reports_bytes} in {local_reports}"
    );

    // Writing the batch again leaves dead rows and index entries behind; compacting rebuilds
    // the indexes online (on this few rows it saves nothing: the benchmark measures that), and
    // everything still reads and is found.
    let query = sandscope_store::SearchRequest::new("behaviour:exe");
    let found = store.search(&query).unwrap().total_hits;
    store.put_reports(batch.clone()).unwrap();
    store.compact().unwrap();
    for r in &batch {
        assert_eq!(
            store.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour)
        );
    }
    assert!(found > 0);
    assert_eq!(store.search(&query).unwrap().total_hits, found);

    // A log of several chunks (1 MiB each) comes back byte for byte; replacing the report
    // replaces its log.
    let mut big = batch[0].clone();
    let bytes: Vec<u8> = (0..(5u32 << 19) + 7)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    big.raw_log = Some(RawLog {
        file_name: "big.evtx".into(),
        data: RawData::Bytes(bytes.clone()),
    });
    store.put_report(big.clone()).unwrap();
    let mut streamed = Vec::new();
    let name = store
        .copy_raw_log(&big.behaviour.id, &mut streamed)
        .unwrap();
    assert_eq!(name.as_deref(), Some("big.evtx"));
    assert_eq!(streamed, bytes);
    assert_eq!(store.stats().unwrap().reports as usize, batch.len());

    // An id that is not `<sha256>_<sandbox>` is refused before anything is written.
    let mut bad = batch[1].clone();
    bad.behaviour.id = "not-an-id".into();
    assert!(matches!(
        store.put_reports(vec![batch[2].clone(), bad]),
        Err(PgStoreError::InvalidReport(_))
    ));
    assert!(store.report("unknown").unwrap().is_none());
}

fn search_limits_bad_cursors_and_the_flagged_lower_bound(layout: Layout) {
    use sandscope_store::{Exhausted, SearchLimits, SearchRequest};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    let cluster = TestCluster::start(layout);
    let pg = cluster.primary();
    let store = layouts::store(&cluster);
    let batch = reports();
    store.put_reports(batch.clone()).unwrap();
    let all = batch.len() as u64;

    // Past `exact_count_limit` the default order gives a flagged lower bound; other orders
    // count exactly, as the embedded store does.
    let mut request = SearchRequest::new("behaviour:*");
    request.limit = 1;
    request.exact_count_limit = 2;
    let page = store.search(&request).unwrap();
    assert_eq!((page.total_hits, page.total_hits_exact), (2, false));
    assert!(page.next_cursor.is_some());
    // Past the limit the pages are read in order again: the same samples, in the same order,
    // as the pages of an exact count.
    let pages_of = |exact_count_limit: u64| {
        let mut request = SearchRequest::new("behaviour:*");
        request.limit = 1;
        request.exact_count_limit = exact_count_limit;
        let mut shas = Vec::new();
        loop {
            let page = store.search(&request).unwrap();
            shas.extend(page.hits.iter().map(|h| h.sha256.clone()));
            assert!(shas.len() <= batch.len(), "paging ends");
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => return shas,
            }
        }
    };
    let exact = pages_of(10_000);
    assert!(exact.len() > 2, "more samples than the limit below");
    assert_eq!(pages_of(2), exact);
    request.order = sandscope_store::Order::LastSeenAsc;
    let page = store.search(&request).unwrap();
    assert_eq!((page.total_hits, page.total_hits_exact), (all, true));

    request.cursor = Some("fd.1.zz".into());
    assert!(matches!(
        store.search(&request),
        Err(PgStoreError::InvalidCursor)
    ));
    request.cursor = None;

    request.limits = SearchLimits {
        max_work: 1,
        ..SearchLimits::default()
    };
    assert!(matches!(
        store.search(&request),
        Err(PgStoreError::Exhausted(Exhausted::Work { limit: 1 }))
    ));
    request.limits = SearchLimits {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..SearchLimits::default()
    };
    assert!(matches!(
        store.search(&request),
        Err(PgStoreError::Exhausted(Exhausted::Cancelled))
    ));
    request.limits = SearchLimits {
        deadline: Some(Instant::now() - Duration::from_millis(1)),
        ..SearchLimits::default()
    };
    assert!(matches!(
        store.search(&request),
        Err(PgStoreError::Exhausted(Exhausted::Deadline))
    ));
    // A statement that outlives the deadline is stopped by PostgreSQL and told as the deadline.
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client
        .batch_execute("BEGIN; LOCK TABLE samples IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    request.limits = SearchLimits {
        deadline: Some(Instant::now() + Duration::from_millis(300)),
        ..SearchLimits::default()
    };
    let started = Instant::now();
    let result = store.search(&request);
    assert!(
        matches!(result, Err(PgStoreError::Exhausted(Exhausted::Deadline))),
        "{:?}",
        result.map(|p| p.total_hits)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A cancellation while PostgreSQL waits is told as the cancellation.
    let cancel = Arc::new(AtomicBool::new(false));
    request.limits = SearchLimits {
        cancel: Some(cancel.clone()),
        ..SearchLimits::default()
    };
    let flag = cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let result = store.search(&request);
    setter.join().unwrap();
    assert!(
        matches!(result, Err(PgStoreError::Exhausted(Exhausted::Cancelled))),
        "{:?}",
        result.map(|p| p.total_hits)
    );
    client.batch_execute("ROLLBACK").unwrap();
}

fn postgresql_restarted_mid_ingest_is_a_clear_error_and_loses_nothing_acknowledged(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let pg = cluster.primary();
    let store = layouts::store(&cluster);
    let batch = reports();
    let acknowledged = store.put_reports(batch[..1].to_vec()).unwrap();

    // Stopped while a large batch is being written: it either committed before the stop
    // (then it is kept) or fails naming PostgreSQL (then nothing of it is stored).
    let mut big = batch[1].clone();
    big.raw_log = Some(RawLog {
        file_name: "big.evtx".into(),
        data: RawData::Bytes(vec![7; 48 << 20]),
    });
    let big_id = big.behaviour.id.clone();
    let during = std::thread::scope(|scope| {
        let writer = scope.spawn(|| store.put_reports(vec![big]));
        std::thread::sleep(std::time::Duration::from_millis(300));
        pg.stop();
        writer.join().unwrap()
    });
    // Stopped between batches: the next batch is refused, saying what to do.
    let e = store.put_reports(batch[2..3].to_vec()).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("PostgreSQL") && m.contains("check that the server runs"),
        "{m}"
    );

    pg.start_again();
    let after = store.put_reports(batch[3..].to_vec()).unwrap();
    for id in acknowledged.iter().chain(&after) {
        assert!(store.report(id).unwrap().is_some(), "{id} was acknowledged");
        assert!(store.raw_log(id).unwrap().is_some(), "{id}'s log");
    }
    assert!(store.report(&batch[2].behaviour.id).unwrap().is_none());
    match during {
        Ok(ids) => {
            assert_eq!(ids, std::slice::from_ref(&big_id));
            let log = store.raw_log(&big_id).unwrap().unwrap();
            assert_eq!(log.bytes.len(), 48 << 20, "acknowledged whole");
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("PostgreSQL") && m.contains("retry"), "{m}");
            assert!(
                store.report(&big_id).unwrap().is_none(),
                "nothing half-written"
            );
        }
    }
    let expected = 1 + after.len() + usize::from(store.report(&big_id).unwrap().is_some());
    assert_eq!(store.stats().unwrap().reports as usize, expected);
}

/// Rows of `table`'s partition on each server of the two-server layout.
fn rows_per_server(url: &str, table: &str) -> (i64, i64) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let count = |client: &mut postgres::Client, partition: String| -> i64 {
        client
            .query_one(&format!("SELECT count(*) FROM {partition}"), &[])
            .unwrap()
            .get(0)
    };
    (
        count(&mut client, format!("{table}_p0")),
        count(&mut client, format!("{table}_p1")),
    )
}

#[test]
fn the_two_server_layout_spreads_samples_and_names_a_shard_server_that_cannot_be_used() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let url = cluster.url();
    let second = cluster.shard_server();
    // The second server reached with a password (kept in the user mapping, never shown).
    let shards = [url.clone(), second.password_url(PASSWORD)];
    assert_eq!(
        PgStore::init_sharded(&url, &shards).unwrap(),
        SchemaChange::Created
    );
    let store = PgStore::open(&url).unwrap();
    let batch = reports();
    let ids = store.put_reports(batch.clone()).unwrap();

    // Every large table is split, each sample's rows on one server (the same partition).
    let (local, remote) = rows_per_server(&url, "samples");
    assert!(local > 0 && remote > 0, "{local} local, {remote} remote");
    let (local_reports, remote_reports) = rows_per_server(&url, "reports");
    assert_eq!((local_reports + remote_reports) as usize, batch.len());
    let mut direct = postgres::Client::connect(&second.url(), postgres::NoTls).unwrap();
    let on_second: i64 = direct
        .query_one("SELECT count(*) FROM samples_p1", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        on_second, remote,
        "the foreign partition is the second server's table"
    );
    let misplaced: i64 = direct
        .query_one(
            "SELECT count(*) FROM reports_p1 r WHERE NOT EXISTS \
             (SELECT 1 FROM samples_p1 s WHERE s.sha256 = r.sha256)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(misplaced, 0, "a sample's reports live beside it");
    drop(direct);

    // A report replaced on either server is replaced, not doubled.
    store.put_reports(batch.clone()).unwrap();
    assert_eq!(store.stats().unwrap().reports as usize, batch.len());

    // The second server down: open, upgrade and init name it; an open store's search fails
    // naming a shard server; nothing acknowledged is lost once it is back.
    second.stop();
    let shown = format!("127.0.0.1:{}/sandscope", second.port());
    for e in [
        PgStore::open(&url).err().unwrap(),
        PgStore::upgrade(&url).err().unwrap(),
        PgStore::init(&url).err().unwrap(),
    ] {
        assert!(matches!(e, PgStoreError::ShardUnavailable { .. }), "{e}");
        let m = e.to_string();
        assert!(
            m.contains(&shown) && m.contains("shard server") && m.contains("check that it runs"),
            "{m}"
        );
        assert!(!m.contains(PASSWORD), "no password in: {m}");
    }
    let e = store
        .search(&sandscope_store::SearchRequest::new("behaviour:*"))
        .unwrap_err();
    assert!(matches!(e, PgStoreError::ShardLost(_)), "{e}");
    assert!(e.to_string().contains("shard server"), "{e}");
    assert!(!e.to_string().contains(PASSWORD), "no password in: {e}");
    second.start_again();
    let store = PgStore::open(&url).unwrap();
    for id in &ids {
        assert!(store.report(id).unwrap().is_some(), "{id} survives");
    }
}

#[test]
fn shards_are_refused_when_they_cannot_make_the_layout() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let url = cluster.url();
    let second = cluster.shard_server().url();
    let refused = |shards: &[String]| match PgStore::init_sharded(&url, shards) {
        Err(e @ PgStoreError::BadShards(_)) => e.to_string(),
        other => panic!("{shards:?} must be refused: {other:?}"),
    };
    let m = refused(std::slice::from_ref(&url));
    assert!(m.contains("at least two"), "{m}");
    let m = refused(&[second.clone(), url.clone()]);
    assert!(m.contains("store's own"), "{m}");
    let m = refused(&[url.clone(), url.clone()]);
    assert!(m.contains("named twice"), "{m}");
    // Nothing was made by the refusals: the real layout is made, and then kept.
    assert_eq!(layouts::init(&cluster), SchemaChange::Created);
    let m = refused(&[url.clone(), cluster.primary().create_database("other")]);
    assert!(m.contains("already laid out"), "{m}");
    // A store on one server is not turned into a sharded one either.
    let single = TestCluster::start(Layout::OneServer);
    PgStore::init(&single.url()).unwrap();
    let e = PgStore::init_sharded(&single.url(), &[single.url(), second])
        .err()
        .unwrap();
    assert!(e.to_string().contains("one server"), "{e}");
}

/// The search's `LIKE` runs on the second server, and a page in order is read from each
/// server on its own: `auto_explain` logs the real searches' plans (`EXPLAIN VERBOSE`), whose
/// foreign scans show the SQL sent there.
#[test]
fn a_like_on_the_foreign_partition_is_pushed_down_to_its_server() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let pg = cluster.primary();
    pg.psql(
        "ALTER DATABASE sandscope SET session_preload_libraries = 'auto_explain';
         ALTER DATABASE sandscope SET auto_explain.log_min_duration = 0;
         ALTER DATABASE sandscope SET auto_explain.log_verbose = on;",
    )
    .unwrap();
    let store = layouts::store(&cluster);
    let batch = reports();
    store.put_reports(batch).unwrap();
    let page = store
        .search(&sandscope_store::SearchRequest::new(
            "behaviour_files:hosts",
        ))
        .unwrap();
    assert!(
        !page.hits.is_empty(),
        "the vendored logs touch the hosts file"
    );
    // Past the count's limit the page is read in order, one page per server: each server is
    // sent the order and the page's `LIMIT`, so it stops at the page's end. (Whether to send
    // them is the planner's choice from the foreign partition's statistics, which only
    // `ANALYZE` gathers: autovacuum never analyzes a foreign table.)
    store.analyze().unwrap();
    let mut past_the_limit = sandscope_store::SearchRequest::new("behaviour_files:windows");
    past_the_limit.exact_count_limit = 1;
    past_the_limit.limit = 1;
    let common = store.search(&past_the_limit).unwrap();
    assert!(!common.total_hits_exact, "{} hits", common.total_hits);
    assert_eq!(common.hits.len(), 1);
    let everything = store
        .search(&sandscope_store::SearchRequest::new(
            "behaviour_files:windows",
        ))
        .unwrap();
    assert!(everything.total_hits > 1);
    assert_eq!(
        common.hits[0].sha256, everything.hits[0].sha256,
        "the newest match, whichever server holds it"
    );

    let log = pg.log();
    let remote: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Remote SQL:") && l.contains("samples_p1"))
        .collect();
    assert!(
        remote
            .iter()
            .any(|l| l.contains("~~") && l.contains("hosts")),
        "no LIKE sent to the second server in:\n{}",
        remote.join("\n")
    );
    assert!(
        log.contains("Async Foreign Scan"),
        "the foreign partitions are scanned asynchronously"
    );
    // Each server's page is read on its own, at once: under a merge of the partitions (what
    // PostgreSQL makes of one ordered scan of the partitioned table) the second server's
    // foreign scan is neither asynchronous nor limited to the page.
    let ordered_pages: Vec<&str> = log
        .split("LOG:  duration:")
        .filter(|plan| plan.contains("samples_p1") && plan.contains("first_seen DESC NULLS LAST"))
        .collect();
    assert!(!ordered_pages.is_empty(), "no ordered page in:\n{log}");
    assert!(
        ordered_pages
            .iter()
            .all(|plan| !plan.contains("Merge Append")),
        "a page in order merged the partitions:\n{}",
        ordered_pages.join("\n")
    );

    // A negation is sent there too (the ordered page's with it), so that server filters its
    // own rows: kept on the store's server, it made that server fetch every candidate's
    // column from the other, and no `LIMIT` could be sent.
    let mut negated =
        sandscope_store::SearchRequest::new("behaviour_files:windows -behaviour_files:hosts");
    negated.exact_count_limit = 1;
    negated.limit = 1;
    let page = store.search(&negated).unwrap();
    assert!(!page.total_hits_exact, "{} hits", page.total_hits);
    let log = pg.log();
    let sent: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Remote SQL:") && l.contains("samples_p1") && l.contains("hosts"))
        .collect();
    assert!(
        sent.iter()
            .any(|l| l.contains("!~~ '%hosts%'") && l.contains("ORDER BY first_seen DESC")),
        "no negation sent with the ordered page in:\n{}",
        sent.join("\n")
    );
}

/// The session options `db init` gives each foreign server (`planner`'s settings).
const OPTIONS: &str = "-c work_mem=32MB -c enable_seqscan=off -c jit=off";

/// What a session `postgres_fdw` opens on the second server holds: a view there of its own
/// settings, read through a foreign table on the store's server (a new connection each time).
fn remote_session_settings(url: &str) -> (String, String) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let row = client
        .query_one(
            "SELECT enable_seqscan, work_mem FROM remote_planner_settings",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// The sessions the store's server opens on the second one start with the search's planner
/// settings (a search's `set_config` stays on the store's server); a store laid out without
/// them gets them from `db upgrade`, and from `db init` run again.
#[test]
fn the_second_servers_sessions_plan_like_the_store_servers_search() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let url = cluster.url();
    let _store = layouts::store(&cluster);
    let mut second =
        postgres::Client::connect(&cluster.shard_server().url(), postgres::NoTls).unwrap();
    second
        .batch_execute(
            "CREATE VIEW planner_settings AS SELECT current_setting('enable_seqscan') \
             AS enable_seqscan, current_setting('work_mem') AS work_mem",
        )
        .unwrap();
    let mut first = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    first
        .batch_execute(
            "CREATE FOREIGN TABLE remote_planner_settings (enable_seqscan text, work_mem text) \
             SERVER sandscope_shard_1 OPTIONS (schema_name 'public', table_name 'planner_settings')",
        )
        .unwrap();
    let searching = ("off".to_string(), "32MB".to_string());
    assert_eq!(remote_session_settings(&url), searching);

    // A store laid out before: its server has no options, its sessions PostgreSQL's defaults.
    first
        .batch_execute("ALTER SERVER sandscope_shard_1 OPTIONS (DROP options)")
        .unwrap();
    assert_eq!(
        remote_session_settings(&url),
        ("on".to_string(), "4MB".to_string())
    );
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::LayoutRefreshed {
            changes: vec![format!(
                "foreign server sandscope_shard_1: options '{OPTIONS}' (was not set)"
            )]
        }
    );
    assert_eq!(remote_session_settings(&url), searching);
    // Other values (an older build's) are replaced by `db init` too.
    first
        .batch_execute("ALTER SERVER sandscope_shard_1 OPTIONS (SET options '-c work_mem=8MB')")
        .unwrap();
    assert_eq!(
        remote_session_settings(&url),
        ("on".to_string(), "8MB".to_string())
    );
    assert_eq!(
        layouts::init(&cluster),
        SchemaChange::LayoutRefreshed {
            changes: vec![format!(
                "foreign server sandscope_shard_1: options '{OPTIONS}' (was '-c work_mem=8MB')"
            )]
        }
    );
    assert_eq!(remote_session_settings(&url), searching);
    assert_eq!(layouts::init(&cluster), SchemaChange::AlreadyCurrent);
    // Opening changes nothing.
    first
        .batch_execute("ALTER SERVER sandscope_shard_1 OPTIONS (DROP options)")
        .unwrap();
    PgStore::open(&url).unwrap();
    assert_eq!(
        remote_session_settings(&url),
        ("on".to_string(), "4MB".to_string())
    );
}

/// Bytes of the store's tables on one server: `tables` (regclass names) summed there.
fn bytes_on(url: &str, tables: &[&str]) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query_one(
            "SELECT sum(pg_total_relation_size(t::regclass))::bigint FROM unnest($1::text[]) t",
            &[&tables],
        )
        .unwrap()
        .get(0)
}

/// Each index of the second server's partition and its file (changed by a rebuild), and how
/// often its tables were vacuumed by hand.
fn second_server_maintenance(url: &str) -> (Vec<(String, u32)>, i64) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let files = client
        .query(
            "SELECT c.relname::text, c.relfilenode::oid FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid::regclass::text LIKE '%\\_p1' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let vacuums = client
        .query_one(
            "SELECT sum(vacuum_count)::bigint FROM pg_stat_user_tables WHERE relname LIKE '%\\_p1'",
            &[],
        )
        .unwrap()
        .get(0);
    (files, vacuums)
}

/// The one value `sql` answers on the server at `url`.
fn value_on<T: for<'a> postgres::types::FromSql<'a>>(url: &str, sql: &str) -> T {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap()
        .query_one(sql, &[])
        .unwrap()
        .get(0)
}

/// How many times the second server's partition tables were analysed by an `ANALYZE` run
/// there (autovacuum's are counted apart).
fn second_server_analyses(url: &str) -> i64 {
    value_on(
        url,
        "SELECT sum(analyze_count)::bigint FROM pg_stat_user_tables WHERE relname LIKE '%\\_p1'",
    )
}

/// On two servers the store's size counts the second server's partition, and `analyze` and
/// `compact` analyse, vacuum and reindex it there (through `dblink` and the foreign server); a
/// store laid out without `dblink` is told to run `db upgrade`, which creates it.
#[test]
fn size_statistics_and_compaction_reach_the_second_server() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let url = cluster.url();
    let second = cluster.shard_server().url();
    let store = layouts::store(&cluster);
    store.put_reports(reports()).unwrap();
    let local = [
        "samples_p0",
        "reports_p0",
        "raw_logs_p0",
        "raw_log_chunks_p0",
    ]
    .into_iter()
    .chain([
        "sandscope_schema",
        "records",
        "record_counters",
        "report_dicts",
    ])
    .collect::<Vec<_>>();
    let remote = [
        "samples_p1",
        "reports_p1",
        "raw_logs_p1",
        "raw_log_chunks_p1",
    ];
    let before = bytes_on(&url, &local) + bytes_on(&second, &remote);
    let size = store.size_bytes().unwrap();
    let after = bytes_on(&url, &local) + bytes_on(&second, &remote);
    assert!(bytes_on(&second, &remote) > 0);
    assert!(
        (before..=after).contains(&(size as i64)),
        "{size} bytes counted, {before}..{after} on the two servers"
    );

    let analyses = second_server_analyses(&second);
    store.analyze().unwrap();
    assert_eq!(
        second_server_analyses(&second),
        analyses + 4,
        "each table analysed there"
    );

    let (files, vacuums) = second_server_maintenance(&second);
    // The four tables' keys, `samples`' two dates and sixteen value columns.
    assert_eq!(files.len(), 4 + 2 + 16, "{files:?}");
    store.compact().unwrap();
    let (rebuilt, vacuumed) = second_server_maintenance(&second);
    for ((name, file), (again, new_file)) in files.iter().zip(&rebuilt) {
        assert_eq!(name, again);
        assert_ne!(file, new_file, "{name} is rebuilt on the second server");
    }
    assert_eq!(vacuumed, vacuums + 4, "each table vacuumed once there");

    // A store laid out before `db init` created `dblink`: told what to run, and then fine.
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .batch_execute("DROP EXTENSION dblink")
        .unwrap();
    for e in [
        store.size_bytes().unwrap_err(),
        store.analyze().unwrap_err(),
        store.compact().unwrap_err(),
    ] {
        assert!(matches!(e, PgStoreError::NoDblink { .. }), "{e}");
        assert!(e.to_string().contains("sandscope db upgrade"), "{e}");
    }
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::LayoutRefreshed {
            changes: vec!["created the dblink extension".to_string()]
        }
    );
    assert!(store.size_bytes().unwrap() > 0);
    store.compact().unwrap();
}

/// The second server's foreign server options, as PostgreSQL keeps them (`name=value`).
fn shard_server_options(url: &str) -> Vec<String> {
    value_on(
        url,
        "SELECT srvoptions::text[] FROM pg_foreign_server WHERE srvname = 'sandscope_shard_1'",
    )
}

/// postgres_fdw sends a batch's reports to the second server many rows to an `INSERT`
/// (its foreign server's `batch_size`), as its log of every statement shows; a store laid out
/// without a batch size gets it from `db upgrade`, one an operator chose is kept.
#[test]
fn a_batch_reaches_the_second_server_in_multi_row_inserts() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let url = cluster.url();
    cluster
        .shard_server()
        .psql("ALTER DATABASE sandscope SET log_statement = 'all'")
        .unwrap();
    let store = layouts::store(&cluster);
    let batch = reports();
    store.put_reports(batch.clone()).unwrap();
    let (_, remote) = rows_per_server(&url, "reports");
    assert!(remote >= 2, "{remote} reports on the second server");
    let log = cluster.shard_server().log();
    let inserts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("INSERT INTO public.reports_p1"))
        .collect();
    assert_eq!(
        inserts.len(),
        1,
        "one INSERT for the batch's reports there:\n{}",
        inserts.join("\n")
    );
    assert!(
        inserts[0].contains(&format!("${}", 3 * remote)),
        "{}",
        inserts[0]
    );

    let mut first = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    first
        .batch_execute("ALTER SERVER sandscope_shard_1 OPTIONS (DROP batch_size)")
        .unwrap();
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::LayoutRefreshed {
            changes: vec![
                "foreign server sandscope_shard_1: batch_size '100' (was not set)".to_string()
            ]
        }
    );
    assert!(shard_server_options(&url).contains(&"batch_size=100".to_string()));
    first
        .batch_execute("ALTER SERVER sandscope_shard_1 OPTIONS (SET batch_size '10')")
        .unwrap();
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::AlreadyCurrent
    );
    assert!(shard_server_options(&url).contains(&"batch_size=10".to_string()));
}

/// The foreign `samples` partition's options, as PostgreSQL keeps them (`name=value`).
fn samples_partition_options(url: &str) -> Vec<String> {
    value_on(
        url,
        "SELECT ftoptions::text[] FROM pg_foreign_table WHERE ftrelid = 'samples_p1'::regclass",
    )
}

/// A search's share of matches on the second server comes in one fetch (the foreign
/// `samples` partition's `fetch_size`: the exact-count limit plus one, halved); a store laid
/// out without it gets it from `db upgrade`, one an operator chose is kept.
#[test]
fn the_second_servers_matches_come_in_one_fetch() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let url = cluster.url();
    let _store = layouts::store(&cluster);
    assert!(samples_partition_options(&url).contains(&"fetch_size=5001".to_string()));
    let mut first = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    first
        .batch_execute("ALTER FOREIGN TABLE samples_p1 OPTIONS (DROP fetch_size)")
        .unwrap();
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::LayoutRefreshed {
            changes: vec!["foreign table samples_p1: fetch_size '5001' (was not set)".to_string()]
        }
    );
    assert!(samples_partition_options(&url).contains(&"fetch_size=5001".to_string()));
    first
        .batch_execute("ALTER FOREIGN TABLE samples_p1 OPTIONS (SET fetch_size '500')")
        .unwrap();
    assert_eq!(
        PgStore::upgrade(&url).unwrap(),
        SchemaChange::AlreadyCurrent
    );
    assert!(samples_partition_options(&url).contains(&"fetch_size=500".to_string()));
}

/// Several processes storing reports of the same sample at once (one per sandbox): every
/// batch lands and the sample's searchable rows hold them all. On two servers the sample is
/// put on the second one, whose side of a transaction runs at `REPEATABLE READ`.
fn concurrent_batches_of_one_sample_all_land(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let store = layouts::store(&cluster);
    let batch = reports();
    store.put_reports(batch.clone()).unwrap();
    let base = match layout {
        Layout::OneServer => batch[0].clone(),
        Layout::TwoServers => {
            let mut client = postgres::Client::connect(&cluster.url(), postgres::NoTls).unwrap();
            let remote: String = client
                .query_one("SELECT sha256 FROM samples_p1 ORDER BY sha256 LIMIT 1", &[])
                .unwrap()
                .get(0);
            batch
                .iter()
                .find(|r| r.behaviour.sha256() == remote)
                .unwrap()
                .clone()
        }
    };
    let sha = base.behaviour.sha256().to_string();
    let variants: Vec<NewReport> = (0..8)
        .map(|i| {
            let mut r = base.clone();
            r.behaviour.attributes.sandbox_name = format!("Sandbox {i}");
            r.behaviour.id =
                sandscope_model::behaviour_id(&sha, &r.behaviour.attributes.sandbox_name);
            r.raw_log = None;
            r
        })
        .collect();
    let stores: Vec<PgStore> = (0..variants.len())
        .map(|_| PgStore::open(&cluster.url()).unwrap())
        .collect();
    let barrier = std::sync::Barrier::new(variants.len());
    std::thread::scope(|scope| {
        for (store, report) in stores.iter().zip(&variants) {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                store.put_report(report.clone()).unwrap()
            });
        }
    });
    let stored = store.sample_reports(&sha).unwrap();
    assert_eq!(stored.len(), variants.len() + 1, "every sandbox's report");
    let doc = store.sample_doc(&sha).unwrap().unwrap();
    assert_eq!(doc, sandscope_query::SampleDoc::from_reports(&sha, &stored));
    let mut request = sandscope_store::SearchRequest::new("sandbox_name:sandbox_7");
    request.limit = 10;
    let page = store.search(&request).unwrap();
    assert_eq!(page.hits.len(), 1);
    assert_eq!(page.hits[0].report_ids.len(), variants.len() + 1);
}
