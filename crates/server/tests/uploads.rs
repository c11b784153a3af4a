//! Hostile uploads against the real store backend: decompression bombs, floods of distinct
//! events, the decompression budget shared by concurrent uploads, and what the client is told
//! (status, code, a message naming its file and never the server's spool path). After every
//! answer, success or failure, nothing is left in the spool directory.

#[path = "support/http.rs"]
mod http;
#[path = "support/uploads.rs"]
mod support;

use axum::http::StatusCode;
use sandscope_ingest::IngestLimits;
use support::{Server, gzip_flood};

fn assert_error(
    answer: &(StatusCode, serde_json::Value),
    status: StatusCode,
    code: &str,
) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_gzip_bomb_of_one_repeated_event_is_one_small_report() {
    let server = Server::new(IngestLimits::for_uploads(256 << 20));
    let bomb = gzip_flood(200_000, false);
    let (status, body) = server.upload("bomb.jsonl.gz", &bomb).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"][0]["id"].as_str().unwrap();
    let report = sandscope_server::Backend::behaviour(server.backend.as_ref(), id)
        .unwrap()
        .unwrap();
    assert_eq!(report.attributes.files_written.len(), 1);
    assert_eq!(report.attributes.processes_created.len(), 1);
    // Nothing lost: the upload is kept byte for byte as the report's log.
    let log = sandscope_server::Backend::raw_log(server.backend.as_ref(), id)
        .unwrap()
        .unwrap();
    assert_eq!(log.bytes, bomb);
    assert_eq!(log.file_name, "bomb.jsonl.gz");
    assert_eq!(server.spooled_files(), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn past_the_decompression_budget_is_413_naming_the_upload() {
    let server = Server::new(IngestLimits::with_decompression(1 << 20, 64 << 20));
    let answer = server
        .upload("../../etc/bomb.jsonl.gz", &gzip_flood(20_000, false))
        .await;
    let message = assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLargeError",
    );
    assert!(
        message.starts_with("bomb.jsonl.gz: decompressed size exceeds the limit of 1048576 bytes"),
        "{message}"
    );
    assert!(
        !message.contains("spool") && !message.contains('/'),
        "{message}"
    );
    assert!(server.spooled_files().is_empty());
}

#[tokio::test]
async fn past_the_memory_budget_is_413_naming_the_upload() {
    let limits = IngestLimits {
        memory_budget: 1 << 20,
        ..IngestLimits::for_uploads(256 << 20)
    };
    let server = Server::new(limits);
    let answer = server
        .upload("distinct.jsonl.gz", &gzip_flood(20_000, true))
        .await;
    let message = assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLargeError",
    );
    assert!(
        message.starts_with("distinct.jsonl.gz: too many distinct events for one report"),
        "{message}"
    );
    assert!(server.spooled_files().is_empty());
    let health = sandscope_server::Backend::health(server.backend.as_ref()).unwrap();
    assert_eq!(health.reports, 0, "nothing half-stored");
}

#[tokio::test]
async fn a_spent_shared_budget_is_the_server_s_503_and_is_given_back() {
    let limits = IngestLimits::with_decompression(64 << 20, 1 << 20);
    let pool = limits.read.shared_decompression.clone().unwrap();
    let server = Server::new(limits);
    let answer = server
        .upload("big.jsonl.gz", &gzip_flood(20_000, false))
        .await;
    let message = assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "TransientError");
    assert!(message.starts_with("big.jsonl.gz: "), "{message}");
    assert!(message.contains("shared by concurrent inputs"), "{message}");
    assert_eq!(pool.available(), pool.total());

    // Many uploads at once: each is answered 200 or 503, never more than the pool expands at
    // once, and all of it is given back.
    let small = gzip_flood(2_000, false); // about 0.6 MB expanded
    let answers = futures_join(&server, &small, 6).await;
    for answer in &answers {
        assert!(
            matches!(answer.0, StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE),
            "{}",
            answer.1
        );
    }
    assert_eq!(pool.available(), pool.total());
    assert!(server.spooled_files().is_empty());
    // With the pool whole again, one upload alone passes.
    let alone = server.upload("small.jsonl.gz", &small).await;
    assert_eq!(alone.0, StatusCode::OK, "{}", alone.1);
}

async fn futures_join(
    server: &Server,
    bytes: &[u8],
    n: usize,
) -> Vec<(StatusCode, serde_json::Value)> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = server.app.clone();
        let bytes = bytes.to_vec();
        set.spawn(
            async move { support::upload(&app, &format!("small-{i}.jsonl.gz"), &bytes).await },
        );
    }
    let mut out = Vec::new();
    while let Some(answer) = set.join_next().await {
        out.push(answer.unwrap());
    }
    out
}

#[tokio::test]
async fn a_file_that_is_no_log_is_400_naming_the_upload() {
    let server = Server::new(IngestLimits::for_uploads(256 << 20));
    let answer = server
        .upload("C:\\cases\\notes.evtx", b"just some notes")
        .await;
    let message = assert_error(&answer, StatusCode::BAD_REQUEST, "InvalidArgumentError");
    assert!(
        message.starts_with("notes.evtx: not a Sysmon event log"),
        "{message}"
    );
    assert!(server.spooled_files().is_empty());
}

#[tokio::test]
async fn spool_folders_of_killed_servers_are_removed_at_start() {
    let data = tempfile::tempdir().unwrap();
    let spool_base = tempfile::tempdir().unwrap();
    // A process id above the kernel's maximum (4194304): that server is gone.
    let dead = spool_base.path().join("sandscope-spool-4999999");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("upload-abc.evtx.gz"), b"half an upload").unwrap();
    let other = spool_base.path().join("unrelated.txt");
    std::fs::write(&other, b"not ours").unwrap();
    let server = Server::in_dirs(IngestLimits::default(), data, spool_base);
    assert!(!dead.exists());
    assert_eq!(server.spooled_files(), vec![other]);
}

/// CAPE analysis folders as Assemblyline vendored them: a run with the guest's Sysmon log, and a
/// run whose `files.json` lists a dropped file.
const CAPE_RUN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples/b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10/Report"
);
const CAPE_RUN_SHA256: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
const DROPPING_RUN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/CybercentreCanada_assemblyline-service-cape/tests/samples/491f359c0cf2588e4aa76a527317406927b0900cfc5c24a4736c92d372073b1e/Report"
);

fn run_file(run: &str, relative: &str) -> Vec<u8> {
    std::fs::read(format!("{run}/{relative}")).expect("vendored CAPE run file")
}

fn ids_of(body: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_files_of_one_upload_are_one_run() {
    let server = Server::new(IngestLimits::for_uploads(256 << 20));
    let report = run_file(CAPE_RUN, "reports/lite.json");
    let evtx = run_file(CAPE_RUN, "evtx/Microsoft-Windows-Sysmon%4Operational.evtx");
    let (status, body) = support::upload_files(
        &server.app,
        &[
            ("reports/lite.json", &report),
            ("evtx/Microsoft-Windows-Sysmon%4Operational.evtx", &evtx),
            ("files.json", &run_file(CAPE_RUN, "files.json")),
        ],
        &[("sha256", CAPE_RUN_SHA256)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = ids_of(&body);
    assert_eq!(
        ids,
        [
            format!("{CAPE_RUN_SHA256}_CAPE Sandbox"),
            format!("{CAPE_RUN_SHA256}_Microsoft Sysinternals")
        ]
    );
    // The Sysmon log keeps its own (cleaned) name; nothing is left in the spool.
    let log = sandscope_server::Backend::raw_log(server.backend.as_ref(), &ids[1])
        .unwrap()
        .unwrap();
    assert_eq!(log.file_name, "Microsoft-Windows-Sysmon4Operational.evtx");
    assert_eq!(log.bytes, evtx);
    assert!(server.spooled_files().is_empty());
}

#[tokio::test]
async fn a_run_upload_reads_its_files_json_for_dropped_files() {
    let report = run_file(DROPPING_RUN, "reports/lite.json");
    let dropped = |server: &Server, body: &serde_json::Value| {
        let id = &ids_of(body)[0];
        sandscope_server::Backend::behaviour(server.backend.as_ref(), id)
            .unwrap()
            .unwrap()
            .attributes
            .files_dropped
            .len()
    };
    // The lite report alone names no dropped file: CAPE lists them in files.json.
    let alone = Server::new(IngestLimits::for_uploads(256 << 20));
    let (status, body) = alone.upload("lite.json", &report).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(dropped(&alone, &body), 0);

    let server = Server::new(IngestLimits::for_uploads(256 << 20));
    let (status, body) = support::upload_files(
        &server.app,
        &[
            ("reports/lite.json", &report),
            ("files.json", &run_file(DROPPING_RUN, "files.json")),
        ],
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(dropped(&server, &body), 1);
    assert!(server.spooled_files().is_empty());
}

#[tokio::test]
async fn run_file_names_cannot_leave_the_run_folder_or_repeat() {
    let server = Server::new(IngestLimits::for_uploads(256 << 20));
    let report = run_file(CAPE_RUN, "reports/lite.json");
    let evtx = run_file(CAPE_RUN, "evtx/Microsoft-Windows-Sysmon%4Operational.evtx");
    // `..` components are dropped: the files land inside the run folder, and the run ingests.
    let (status, body) = support::upload_files(
        &server.app,
        &[
            ("../../reports/lite.json", &report),
            ("/etc/../evtx/sysmon.evtx", &evtx),
        ],
        &[("sha256", CAPE_RUN_SHA256)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids_of(&body).len(), 2, "{body}");
    let answer = support::upload_files(
        &server.app,
        &[("evtx/a.evtx", &evtx), ("evtx\\a.evtx", &evtx)],
        &[],
    )
    .await;
    let message = assert_error(&answer, StatusCode::BAD_REQUEST, "InvalidArgumentError");
    assert!(message.contains("evtx/a.evtx"), "{message}");
    assert!(server.spooled_files().is_empty());
}
