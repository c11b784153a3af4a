//! The search path's limits through the real router over the real store (`StoreBackend` on a
//! temporary data directory): values with no letters or digits and invalid UTF-8 are 400s,
//! costly queries are refused before or while they run with the limit named, a search past
//! its deadline is a 504, and a request dropped at its deadline frees its heavy-lane slot.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use sandscope_ingest::Pipeline;
use sandscope_model::{BehaviourAttributes, FileBehaviour, SYSINTERNALS_SANDBOX};
use sandscope_server::{ApiKeys, Role, ServerConfig, StoreBackend, router};
use sandscope_store::{NewReport, Store};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const KEY: &str = "read-key-0001";

/// The costliest query the parser lets through: 64 terms of 16 wildcards around one letter.
fn hostile() -> String {
    (0..64u8)
        .map(|i| {
            format!(
                "behaviour:{}",
                format!("*{}", char::from(b'a' + i % 26)).repeat(16)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
/// The same terms joined by `OR`: no term can cut the others short.
fn hostile_or() -> String {
    let letters = b"arntmslovedxqk";
    (0..64usize)
        .map(|i| {
            let letter = char::from(letters[i % letters.len()]);
            format!("behaviour:{}", format!("*{letter}").repeat(16))
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Words of made-up file names: most hold an `a`, as real paths do.
const SYLLABLES: [&str; 12] = [
    "ka", "ra", "ta", "na", "ma", "sa", "lo", "ve", "ar", "ad", "xa", "qa",
];

/// 400 samples writing 40 files each with varied names; sample 0 also reaches the seed's
/// `tutanota.com`.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut reports = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..400u64 {
        let mut written = Vec::new();
        for f in 0..40 {
            let mut name = String::new();
            for _ in 0..6 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                name.push_str(SYLLABLES[(seed % 12) as usize]);
                name.push_str(SYLLABLES[((seed >> 8) % 12) as usize]);
                name.push('-');
            }
            written.push(format!(
                r"C:\Users\alice\AppData\Local\Temp\{name}{i}x{f}.dat"
            ));
        }
        if i == 0 {
            written
                .push(r"C:\Users\alice\Documents\report.docx.[decrypt@tutanota.com].eking".into());
        }
        reports.push(NewReport {
            behaviour: FileBehaviour::new(
                &format!("{i:064x}"),
                BehaviourAttributes {
                    sandbox_name: SYSINTERNALS_SANDBOX.into(),
                    analysis_date: Some(1_700_000_000 + i as i64),
                    files_written: written,
                    ..Default::default()
                },
            ),
            raw_log: None,
        });
    }
    store.put_reports(reports).unwrap();
    (dir, store)
}

fn app(store: Store, config: ServerConfig) -> Router {
    let mut keys = ApiKeys::new();
    keys.add(KEY, Role::Read).unwrap();
    let backend = Arc::new(StoreBackend::new(store, Pipeline::new(None)));
    router(backend, keys, config)
}

/// `GET /intelligence/search` with a raw (already percent-encoded) query value.
async fn search(app: &Router, encoded_query: &str) -> (StatusCode, Value) {
    let request = Request::get(format!("/api/v3/intelligence/search?query={encoded_query}"))
        .header("x-apikey", KEY)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn error(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap_or_default(),
        body["error"]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn values_without_letters_or_digits_and_invalid_utf8_are_400s() {
    let (_dir, store) = store();
    let app = app(store, ServerConfig::default());
    let (status, body) = search(&app, &encode("behaviour_files:@tutanota.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total_hits"], 1);
    for (query, message, column) in [
        (
            "behaviour:💣",
            "`behaviour:` value has no letters or digits",
            11,
        ),
        (
            "behaviour:\0",
            "`behaviour:` value has no letters or digits",
            11,
        ),
        (
            "behaviour_files:\u{1}\u{7f}",
            "`behaviour_files:` value has no letters or digits",
            17,
        ),
        ("-", "the search term has no letters or digits", 1),
    ] {
        let (status, body) = search(&app, &encode(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert_eq!(
            error(&body),
            (
                "BadRequestError",
                format!("{message} (column {column})").as_str()
            ),
            "{query:?}"
        );
        assert_eq!(body["error"]["column"], column);
    }
    // Invalid UTF-8 is refused, not decoded to U+FFFD (which would also be refused, for
    // another reason).
    for raw in ["behaviour%3A%FF", "behaviour%3Aa%C3", "%ED%A0%80"] {
        let (status, body) = search(&app, raw).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}: {body}");
        assert_eq!(
            error(&body),
            ("BadRequestError", "malformed query string: not valid UTF-8"),
            "{raw}"
        );
    }
}

#[tokio::test]
async fn costly_queries_are_refused_naming_the_limit() {
    let (_dir, store) = store();
    let app = app(
        store,
        ServerConfig {
            search_work: 50_000,
            quick_search_work: 5_000,
            ..ServerConfig::default()
        },
    );
    // Before running: the parser's limits.
    let (status, body) = search(&app, &encode(&format!("behaviour:{}", "*a".repeat(17)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body).1,
        "`behaviour:` value has more than 16 `*` wildcards (the limit) (column 11)"
    );
    let (status, body) = search(&app, &encode(&vec!["a"; 65].join(" "))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body).1,
        "query has more than 64 terms (the limit) (column 129)"
    );
    // While running: the work budget, through the heavy lane.
    for query in [format!("behaviour:{}", "*a".repeat(16)), hostile()] {
        let started = Instant::now();
        let (status, body) = search(&app, &encode(&query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            error(&body),
            (
                "BadRequestError",
                "the search examined more than 50000 candidates and positions (its work \
                 budget); make the query more specific"
            )
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    // A selective query fits the quick lane of this small budget.
    let (status, body) = search(&app, &encode("behaviour_files:@tutanota.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_past_its_deadline_is_a_504_and_frees_its_slot() {
    let (_dir, store) = store();
    let hostile = encode(&hostile_or());
    let app = app(
        store,
        ServerConfig {
            search_timeout: Duration::from_millis(400),
            search_work: u64::MAX,
            quick_search_work: 1_000,
            heavy_searches: 1,
            ..ServerConfig::default()
        },
    );
    for _ in 0..2 {
        // The second run gets the one heavy slot only if the first search really stopped.
        let started = Instant::now();
        let (status, body) = search(&app, &hostile).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert_eq!(
            error(&body),
            ("DeadlineExceededError", "the search ran out of time")
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_at_its_deadline_cancels_its_search() {
    let (_dir, store) = store();
    let app = app(
        store,
        ServerConfig {
            request_timeout: Duration::from_millis(400),
            search_timeout: Duration::from_secs(600),
            search_work: u64::MAX,
            quick_search_work: 1_000,
            heavy_searches: 1,
            ..ServerConfig::default()
        },
    );
    let (status, body) = search(&app, &encode(&hostile_or())).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(error(&body).0, "DeadlineExceededError");
    // Unbounded, the hostile search would hold the one heavy slot for minutes; cancelled, it
    // frees it at once, and a search needing the heavy lane gets through.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = search(&app, &encode("behaviour_files:ka")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["meta"]["total_hits"].as_u64().unwrap() > 100);
}
