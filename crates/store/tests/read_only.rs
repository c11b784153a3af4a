//! Opening a data directory read-only (issue 14, item 5): it writes nothing, finds what a
//! writable open finds, refuses writes, and names the directory when another process holds it.
//! (Read-only media themselves are tested through the server, in
//! `crates/server/tests/read_only_store.rs`.)

#[path = "support/vendored.rs"]
mod vendored;

use sandscope_store::{SearchRequest, Store, StoreError};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// Every file and directory under `dir`: size, modification time and contents.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            let contents = if meta.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).unwrap()
            };
            out.insert(
                path.strip_prefix(dir).unwrap().display().to_string(),
                (meta.len(), meta.modified().unwrap(), contents),
            );
        }
    }
    out
}

fn hits(store: &Store, query: &str) -> Vec<String> {
    let mut request = SearchRequest::new(query);
    request.limit = 300;
    store
        .search(&request)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.sha256)
        .collect()
}

const QUERIES: &[&str] = &[
    "behaviour_processes:comsvcs.dll MiniDump",
    "behaviour_created_processes:PsExec64.exe",
    "behaviour_processes:rundll32",
    "sandbox_name:microsoft_sysinternals",
];

#[test]
fn a_read_only_open_writes_nothing_and_finds_what_a_writable_open_finds() {
    let dir = tempfile::tempdir().unwrap();
    let reports: Vec<_> = vendored::vendored()
        .iter()
        .filter_map(|p| vendored::report_of(p))
        .collect();
    assert_eq!(reports.len(), 5);
    let ids = {
        let store = Store::open(dir.path()).unwrap();
        store.put_reports(reports).unwrap()
    };
    let expected: Vec<Vec<String>> = {
        let store = Store::open(dir.path()).unwrap();
        QUERIES.iter().map(|q| hits(&store, q)).collect()
    };
    assert!(
        expected.iter().all(|h| !h.is_empty()),
        "every query finds something: {expected:?}"
    );

    let before = snapshot(dir.path());
    {
        let store = Store::open_read_only(dir.path()).unwrap();
        assert!(store.is_read_only());
        let got: Vec<Vec<String>> = QUERIES.iter().map(|q| hits(&store, q)).collect();
        assert_eq!(got, expected);
        for id in &ids {
            assert!(store.report(id).unwrap().is_some(), "{id}");
            assert!(store.raw_log(id).unwrap().is_some(), "{id}");
        }
        assert_eq!(store.stats().unwrap().samples, 5);
        assert_eq!(store.pending_samples().unwrap(), 0);
        assert!(store.pivot(&ids[0][..64]).is_ok());

        // Writes are refused, naming the directory.
        let again = vendored::report_of(&vendored::vendored()[0]).unwrap();
        let err = store.put_reports(vec![again]).unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "data directory {} is open read-only: nothing can be stored",
                dir.path().display()
            )
        );
        assert!(
            !store.retry_pending().unwrap(),
            "nothing to retry read-only"
        );
    }
    assert_eq!(
        snapshot(dir.path()),
        before,
        "opening, searching and a refused write changed nothing in the data directory"
    );

    // A directory that is no store is not created.
    let missing = dir.path().join("missing");
    let err = Store::open_read_only(&missing)
        .err()
        .expect("no store there");
    assert!(matches!(err, StoreError::NotAStore(_)), "{err}");
    assert!(!missing.exists(), "a read-only open creates nothing");
}

#[test]
fn a_data_directory_held_by_a_writer_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path()).unwrap();
    for open in [Store::open_read_only, Store::open] {
        let err = open(dir.path()).err().expect("the writer holds the lock");
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
        let message = err.to_string();
        assert_eq!(
            message.matches(&dir.path().display().to_string()).count(),
            1,
            "{message}"
        );
        assert!(message.contains("in use by another process"), "{message}");
    }
    drop(writer);
    Store::open_read_only(dir.path()).expect("free once the writer is gone");
}
