//! A full disk (issue 14, item 4), for real: the data directory sits on an 8 MiB tmpfs that
//! uploads of a vendored EVTX fill up. Once it is full, uploads answer 507
//! `InsufficientStorageError`, health says `degraded` and why; once space is freed the store
//! recovers by itself (no restart, no further upload): everything acknowledged or stored
//! becomes searchable, new uploads work, and no stray file is left in the indexes.
//! Needs root for the mount (CI runs as root); fails, saying so, without it.

#[path = "support/http.rs"]
mod http;
#[path = "support/mount.rs"]
mod mount;

use axum::http::StatusCode;
use http::{get, upload};
use mount::Mount;
use sandscope_ingest::Pipeline;
use sandscope_server::{ApiKeys, Role, ServerConfig, StoreBackend, router};
use sandscope_store::Store;
use std::collections::BTreeSet;
use std::io::Write;
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

/// The `i`-th made-up sample id: each upload is its own sample.
fn sha(i: usize) -> String {
    format!("{:064x}", i + 1)
}

/// Fill the filesystem of `path` with one file until it is full (a real ENOSPC), then free
/// `headroom` bytes of it again.
fn fill(path: &Path, headroom: u64) -> std::fs::File {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 << 10];
    let error = loop {
        if let Err(e) = file.write_all(&chunk) {
            break e;
        }
    };
    assert_eq!(
        error.raw_os_error(),
        Some(28),
        "the small disk is full: {error}"
    );
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(headroom)).unwrap();
    file
}

async fn health(app: &axum::Router) -> serde_json::Value {
    let answer = get(app, "/api/v3/sandscope/health", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()["data"].clone()
}

async fn search_finds(app: &axum::Router, sha256: &str) -> bool {
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

/// Files of a tantivy index directory that belong to no live segment (what a failed commit
/// could leave behind).
fn stray_index_files(index_dir: &Path) -> Vec<String> {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(index_dir.join("meta.json")).unwrap()).unwrap();
    let live: BTreeSet<String> = meta["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segment_id"].as_str().unwrap().replace('-', ""))
        .collect();
    std::fs::read_dir(index_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            let bookkeeping =
                name == "meta.json" || name == ".managed.json" || name.ends_with(".lock");
            let segment = name.split('.').next().unwrap_or_default();
            !bookkeeping && !live.contains(segment)
        })
        .collect()
}

const STORED: &str = "the server's disk is full: the reports were stored and become searchable by themselves once space is freed";
const NOT_STORED: &str = "the server's disk is full: nothing was stored; retry once space is freed";
const MAYBE_STORED: &str = "the server's disk is full: the upload may have been stored; upload it again once space is freed (that replaces it)";

/// Wait until the retry timer has recovered the store (no upload, no restart).
async fn wait_until_ok(app: &axum::Router) {
    let started = Instant::now();
    loop {
        let now = health(app).await;
        if now["status"] == "ok" {
            assert!(now.get("reason").is_none(), "{now}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still degraded 30 s after space was freed: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_full_disk_answers_507_and_the_store_recovers_once_space_is_freed() {
    let root = tempfile::tempdir().unwrap();
    let disk = root.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let spool = root.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let _mount = Mount::tmpfs(&disk, "8m");
    let data = disk.join("data");

    // The retry timer runs every second: long enough that the checks made right after a
    // refused upload (health, searches) see the failure before the timer redoes what it left
    // (a failure that left nothing pending is cleared by the first retry, full disk or not);
    // short enough that recovery after freeing space is seen well within `wait_until_ok`.
    let backend = Arc::new(StoreBackend::with_retry_interval(
        Store::open(&data).unwrap(),
        Pipeline::new(None),
        Duration::from_secs(1),
    ));
    let mut keys = ApiKeys::new();
    keys.add(KEY, Role::Ingest).unwrap();
    let config = ServerConfig {
        upload_dir: Some(spool.clone()),
        ..ServerConfig::default()
    };
    let app = router(backend.clone(), keys, config);
    let log = std::fs::read(evtx_path()).unwrap();

    let answer = upload(&app, KEY, &log, &[("sha256", &sha(0))]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(health(&app).await["status"], "ok");

    // Fill the disk leaving less and less room: the upload then fails in the index (after
    // redb committed it) or in redb (nothing stored), depending on what runs out first.
    let filler_path = disk.join("filler");
    let mut searchable = vec![sha(0)];
    let mut refused = Vec::new();
    let mut kinds = BTreeSet::new();
    for (round, headroom) in (0..32_u64).rev().map(|k| k * (8 << 10)).enumerate() {
        let filler = fill(&filler_path, headroom);
        let sample = sha(round + 1);
        let answer = upload(&app, KEY, &log, &[("sha256", &sample)]).await;
        if answer.status == StatusCode::OK {
            searchable.push(sample);
            drop(filler);
            std::fs::remove_file(&filler_path).unwrap();
            continue;
        }
        answer.assert_error(StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorageError");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            [STORED, NOT_STORED, MAYBE_STORED].contains(&message.as_str()),
            "{message}"
        );
        assert!(
            !answer.text().contains(&disk.display().to_string()),
            "no path"
        );
        kinds.insert(message.clone());

        // Still full: health says why, searches still answer from what is indexed.
        let degraded = health(&app).await;
        assert_eq!(degraded["status"], "degraded", "{degraded}");
        let reason = degraded["reason"].as_str().unwrap();
        assert!(
            reason.contains("the last write failed: the disk is full"),
            "{reason}"
        );
        if message == STORED {
            assert!(
                reason.starts_with("1 sample(s) stored but not yet searchable"),
                "{reason}"
            );
        }
        for sha256 in &searchable {
            assert!(
                search_finds(&app, sha256).await,
                "{sha256} searchable while full"
            );
        }
        assert!(!search_finds(&app, &sample).await);

        // Space back: the store recovers by itself; a stored sample becomes searchable.
        drop(filler);
        std::fs::remove_file(&filler_path).unwrap();
        wait_until_ok(&app).await;
        let kept = !backend.store().sample_reports(&sample).unwrap().is_empty();
        match message.as_str() {
            STORED => assert!(kept, "{sample}"),
            NOT_STORED => assert!(!kept, "{sample}: refused whole"),
            _ => {}
        }
        if kept {
            assert!(
                search_finds(&app, &sample).await,
                "{sample} indexed after recovery"
            );
            searchable.push(sample);
        } else {
            refused.push(sample);
        }
    }
    assert!(
        kinds.contains(STORED) && kinds.contains(NOT_STORED),
        "both the index and redb ran out of space first at some headroom: {kinds:?}"
    );

    // Nothing lost, nothing half-stored: exactly the acknowledged and stored samples are kept,
    // and every one is searchable.
    assert_eq!(backend.store().pending_samples().unwrap(), 0);
    for sha256 in &searchable {
        assert!(search_finds(&app, sha256).await, "{sha256} lost");
    }
    for sha256 in &refused {
        assert!(backend.store().sample_reports(sha256).unwrap().is_empty());
    }
    let (ids, _) = backend.store().list_report_ids(10_000, None).unwrap();
    assert_eq!(ids.len(), searchable.len());
    assert_eq!(backend.store().stats().unwrap().samples as usize, ids.len());

    // Writes work again.
    let answer = upload(&app, KEY, &log, &[("sha256", &sha(1000))]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(search_finds(&app, &sha(1000)).await);

    // Nothing left behind: no spooled upload, no file of a failed index commit.
    // (The server's own spool folder may stay; it must be empty.)
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            path.is_dir() && std::fs::read_dir(&path).unwrap().next().is_none(),
            "spool left: {}",
            path.display()
        );
    }
    backend.store().wait_merges().unwrap();
    for index in ["samples", "values"] {
        let strays = stray_index_files(&data.join("index").join(index));
        assert!(strays.is_empty(), "{index}: {strays:?}");
    }
}
