//! The PostgreSQL store against a real PostgreSQL 15 started for the test: schema versions,
//! connection failures, reports and raw logs in and out.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;
#[path = "../../store/tests/support/vendored.rs"]
mod vendored;

use postgres_server::{PASSWORD, TestPostgres};
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

#[test]
fn schema_is_created_once_and_other_versions_are_refused_with_what_to_run() {
    let pg = TestPostgres::start();
    let url = pg.url();
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
    assert_eq!(PgStore::init(&url).unwrap(), SchemaChange::Created);
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
        (6, s.token_6)
    ) AS f(code, col) CROSS JOIN LATERAL unnest(string_to_array(btrim(f.col, E'\n'), E'\n')) AS t
    WHERE f.col IS NOT NULL;
ALTER TABLE samples DROP COLUMN text_0, DROP COLUMN text_1, DROP COLUMN text_2, DROP COLUMN text_3, DROP COLUMN text_4, DROP COLUMN text_5, DROP COLUMN text_6, DROP COLUMN text_7, DROP COLUMN text_8, DROP COLUMN text_9, DROP COLUMN token_0, DROP COLUMN token_1, DROP COLUMN token_2, DROP COLUMN token_3, DROP COLUMN token_4, DROP COLUMN token_5, DROP COLUMN token_6;
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

#[test]
fn connection_failures_name_postgresql_and_what_to_check() {
    let pg = TestPostgres::start();
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

#[test]
fn reports_and_chunked_raw_logs_round_trip() {
    let pg = TestPostgres::start();
    PgStore::init(&pg.url()).unwrap();
    let store = PgStore::open(&pg.url()).unwrap();
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

#[test]
fn search_limits_bad_cursors_and_the_flagged_lower_bound() {
    use sandscope_store::{Exhausted, SearchLimits, SearchRequest};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    let pg = TestPostgres::start();
    PgStore::init(&pg.url()).unwrap();
    let store = PgStore::open(&pg.url()).unwrap();
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

#[test]
fn postgresql_restarted_mid_ingest_is_a_clear_error_and_loses_nothing_acknowledged() {
    let pg = TestPostgres::start();
    PgStore::init(&pg.url()).unwrap();
    let store = PgStore::open(&pg.url()).unwrap();
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
