//! The server's memory does not grow with the events of an upload: a gzip'd flood of one
//! repeated event (issue 14: 20.8 MB took a server past 10 GB) is ingested within a small,
//! fixed growth of this process's peak resident memory. One test in this binary, so no other
//! test's allocations count.

#[path = "support/http.rs"]
mod http;
#[path = "support/uploads.rs"]
mod support;

use axum::http::StatusCode;
use sandscope_ingest::IngestLimits;
use support::{Server, gzip_flood, peak_rss};

#[tokio::test]
async fn peak_memory_does_not_follow_the_number_of_events() {
    let server = Server::new(IngestLimits::for_uploads(256 << 20));
    // Warm up (store, index writer, allocator arenas) on a small flood.
    let (status, body) = server
        .upload("warm.jsonl.gz", &gzip_flood(1_000, false))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bomb = gzip_flood(400_000, false); // about 130 MB of JSON expanded
    let before = peak_rss();
    let (status, body) = server.upload("bomb.jsonl.gz", &bomb).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let grown = peak_rss().saturating_sub(before);
    // Held as events, 400,000 of them took over 500 MB before de-duplication.
    assert!(
        grown < 48 << 20,
        "peak resident memory grew by {} MiB for {} KiB uploaded",
        grown >> 20,
        bomb.len() >> 10
    );
    assert!(server.spooled_files().is_empty());
}
