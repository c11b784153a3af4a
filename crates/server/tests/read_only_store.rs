//! Unwritable data directories (issue 14, item 5), with real read-only mounts: a write that
//! fails because the index may not be written leaves the store searchable and is redone by
//! itself once writing works; a data directory on read-only media is served read-only
//! (`serve --read-only`): searches and reports work, uploads answer 403, nothing is written,
//! and samples a failed write left unindexed are reported, then indexed by the next writable
//! open. Needs root for the mounts (CI runs as root); fails, saying so, without it.

#[path = "support/http.rs"]
mod http;
#[path = "support/mount.rs"]
mod mount;

use axum::Router;
use axum::http::StatusCode;
use http::{get, upload};
use mount::Mount;
use sandscope_ingest::Pipeline;
use sandscope_server::{ApiKeys, Role, ServerConfig, StoreBackend, router};
use sandscope_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "ingest-key-0001";

fn evtx_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/TA0006-Credential Access/\
         T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx",
    )
}

fn sha(i: usize) -> String {
    format!("{:064x}", i + 1)
}

fn app(backend: Arc<StoreBackend>, spool: &Path) -> Router {
    let mut keys = ApiKeys::new();
    keys.add(KEY, Role::Ingest).unwrap();
    let config = ServerConfig {
        upload_dir: Some(spool.to_path_buf()),
        ..ServerConfig::default()
    };
    router(backend, keys, config)
}

async fn health(app: &Router) -> serde_json::Value {
    let answer = get(app, "/api/v3/sandscope/health", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["data"].clone()
}

async fn search_finds(app: &Router, sha256: &str) -> bool {
    let answer = get(
        app,
        &format!("/api/v3/intelligence/search?query={sha256}"),
        Some(KEY),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["data"]
        .as_array()
        .is_some_and(|hits| hits.iter().any(|h| h["id"] == sha256))
}

const STORED_UNWRITABLE: &str = "the server cannot write to its data directory: the reports were stored and become searchable by themselves once it can";

#[tokio::test]
async fn unwritable_and_read_only_data_directories_stay_searchable() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let spool = root.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let log = std::fs::read(evtx_path()).unwrap();
    let writable = |interval| {
        Arc::new(StoreBackend::with_retry_interval(
            Store::open(&data).unwrap(),
            Pipeline::new(None),
            interval,
        ))
    };

    let backend = writable(Duration::from_millis(200));
    let api = app(backend.clone(), &spool);
    for i in 0..2 {
        let answer = upload(&api, KEY, &log, &[("sha256", &sha(i))]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }

    // The index may not be written: the upload is stored but not searchable, and says so.
    let index = data.join("index");
    let index_ro = Mount::read_only(&index);
    let answer = upload(&api, KEY, &log, &[("sha256", &sha(2))]).await;
    answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "TransientError");
    assert_eq!(answer.json()["error"]["message"], STORED_UNWRITABLE);
    assert!(search_finds(&api, &sha(0)).await, "searches still work");
    assert!(!search_finds(&api, &sha(2)).await);
    let degraded = health(&api).await;
    assert_eq!(degraded["status"], "degraded");
    assert_eq!(
        degraded["reason"],
        "1 sample(s) stored but not yet searchable; the last write failed: the data directory is not writable"
    );

    // Writable again: the retry timer indexes it, without an upload or a restart.
    drop(index_ro);
    let started = Instant::now();
    while health(&api).await["status"] != "ok" {
        assert!(started.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(search_finds(&api, &sha(2)).await);

    // Fail once more and stop the server with the sample pending.
    let index_ro = Mount::read_only(&index);
    let answer = upload(&api, KEY, &log, &[("sha256", &sha(3))]).await;
    assert_eq!(answer.json()["error"]["message"], STORED_UNWRITABLE);
    drop((api, backend));

    // The whole data directory on read-only media.
    let data_ro = Mount::read_only(&data);
    let err = Store::open(&data).err().expect("cannot open for writing");
    assert!(err.to_string().contains("Read-only file system"), "{err}");
    let backend =
        Arc::new(StoreBackend::open_read_only(&data, Pipeline::new(None)).expect("read-only open"));
    let api = app(backend.clone(), &spool);
    for i in 0..3 {
        assert!(search_finds(&api, &sha(i)).await, "{i}");
    }
    assert!(!search_finds(&api, &sha(3)).await, "pending: not indexed");
    let reports = get(
        &api,
        &format!("/api/v3/files/{}/behaviours", sha(3)),
        Some(KEY),
    )
    .await;
    assert_eq!(
        reports.status,
        StatusCode::OK,
        "the pending sample's report is kept"
    );
    let health_ro = health(&api).await;
    assert_eq!(health_ro["status"], "degraded");
    assert_eq!(health_ro["read_only"], true);
    assert_eq!(
        health_ro["reason"],
        "1 sample(s) stored but not yet searchable"
    );
    let refused = upload(&api, KEY, &log, &[("sha256", &sha(4))]).await;
    refused.assert_error(StatusCode::FORBIDDEN, "ForbiddenError");
    assert_eq!(
        refused.json()["error"]["message"],
        "this server is read-only: uploads are not accepted"
    );
    let ui = get(&api, "/", None).await;
    assert_eq!(ui.status, StatusCode::OK, "the UI loads");
    assert!(ui.text().contains("<html"), "{}", ui.text());
    drop((api, backend));
    drop(data_ro);
    drop(index_ro);

    // Writable again: the next open indexes what was pending; nothing was lost.
    let backend = writable(Duration::from_secs(60));
    let api = app(backend.clone(), &spool);
    assert_eq!(health(&api).await["status"], "ok");
    for i in 0..4 {
        assert!(search_finds(&api, &sha(i)).await, "{i}");
    }
    // No spool left (the server's own spool folder may stay; it must be empty).
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            path.is_dir() && std::fs::read_dir(&path).unwrap().next().is_none(),
            "spool left: {}",
            path.display()
        );
    }
}
