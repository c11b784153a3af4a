//! Reports are compressed with a zstd dictionary trained on the store's own first reports:
//! reports written before it existed, with it, and after a reopen all read back as stored, and
//! those written with it take less than half the room (keys included).

#[path = "support/vendored.rs"]
mod vendored;

use sandscope_model::FileBehaviour;
use sandscope_store::{NewReport, SearchRequest, Store};
use vendored::{report_of, vendored};

/// `count` reports from the vendored logs, each log's report standing for samples `from..`.
fn reports(bases: &[FileBehaviour], from: usize, count: usize) -> Vec<NewReport> {
    (from..from + count)
        .map(|i| {
            let base = &bases[i % bases.len()];
            let mut behaviour = base.clone();
            behaviour.id =
                sandscope_model::behaviour_id(&format!("{i:064x}"), &base.attributes.sandbox_name);
            NewReport {
                behaviour,
                raw_log: None,
            }
        })
        .collect()
}

fn table(store: &Store, name: &str) -> (u64, u64) {
    let sizes = store.database_sizes().unwrap();
    sizes
        .tables
        .iter()
        .find(|t| t.name == name)
        .map_or((0, 0), |t| (t.entries, t.stored_bytes))
}

fn assert_all_read_back(store: &Store, stored: &[NewReport]) {
    for r in stored {
        assert_eq!(
            store.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour)
        );
    }
}

#[test]
fn a_dictionary_is_trained_once_the_store_has_enough_reports() {
    let bases: Vec<FileBehaviour> = vendored()
        .iter()
        .filter_map(|p| report_of(p))
        .map(|r| r.behaviour)
        .collect();
    assert_eq!(bases.len(), 5);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // Too few reports to train on: no dictionary yet.
    let first = reports(&bases, 0, 100);
    store.put_reports(first.clone()).unwrap();
    assert_eq!(table(&store, "report_dicts").0, 0);
    let (_, plain_bytes) = table(&store, "reports");

    // The batch that takes the store past 200 reports trains one and is written with it.
    let second = reports(&bases, 100, 200);
    store.put_reports(second.clone()).unwrap();
    assert_eq!(table(&store, "report_dicts").0, 1);
    let (count, all_bytes) = table(&store, "reports");
    assert_eq!(count, 300);
    let per_plain = plain_bytes / 100;
    let per_dictionary = (all_bytes - plain_bytes) / 200;
    assert!(
        per_dictionary * 2 < per_plain,
        "{per_dictionary} B/report with the dictionary, {per_plain} without"
    );
    let all: Vec<NewReport> = first.into_iter().chain(second).collect();
    assert_all_read_back(&store, &all);

    // Replacing a report written without the dictionary rewrites it with it.
    store.put_reports(all[..1].to_vec()).unwrap();
    assert!(table(&store, "reports").1 < all_bytes);
    assert_eq!(table(&store, "report_dicts").0, 1);

    // The dictionary is read back from the database: after a reopen, read-only too.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_all_read_back(&store, &all);
    let found = store
        .search(&SearchRequest::new(
            "behaviour_created_processes:PsExec64.exe",
        ))
        .unwrap();
    assert_eq!(found.total_hits, 60);
    drop(store);
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_all_read_back(&store, &all);
}
