//! Compaction after a bulk ingest: the hash-keyed tables are rewritten with full pages, the
//! reports recompressed smaller, the file shrinks, the value index becomes one segment and the
//! sample index one per core, and every report, count and search answer is what it was.

#[path = "support/vendored.rs"]
mod vendored;

use sandscope_model::FileBehaviour;
use sandscope_store::{NewReport, SearchRequest, Store, TableSize};
use sha2::{Digest, Sha256};
use vendored::{report_of, vendored};

/// Report `i`: a vendored log's report under a hashed SHA-256, so that batches insert all over
/// the hash-keyed tables as real samples do.
fn report(bases: &[FileBehaviour], i: usize) -> NewReport {
    let base = &bases[i % bases.len()];
    let mut behaviour = base.clone();
    let sha = format!("{:x}", Sha256::digest(i.to_le_bytes()));
    behaviour.id = sandscope_model::behaviour_id(&sha, &base.attributes.sandbox_name);
    NewReport {
        behaviour,
        raw_log: None,
    }
}

fn tables(store: &Store) -> Vec<TableSize> {
    let mut tables = store.database_sizes().unwrap().tables;
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    tables
}

fn slack(tables: &[TableSize], name: &str) -> u64 {
    tables
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.fragmented_bytes)
        .unwrap_or_else(|| panic!("no table {name}"))
}

/// Segments of one of the store's two indexes (`samples` or `values`).
fn segments(store: &Store, index: &str) -> usize {
    let sizes = store.index_sizes().unwrap();
    let row = sizes.iter().find(|r| r.index == index);
    row.map_or(0, |r| r.segments)
}

#[test]
fn compaction_fills_the_pages_of_hash_keyed_tables_and_changes_no_answer() {
    let bases: Vec<FileBehaviour> = vendored()
        .iter()
        .filter_map(|p| report_of(p))
        .map(|r| r.behaviour)
        .collect();
    assert_eq!(bases.len(), 5);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let all: Vec<NewReport> = (0..1_500).map(|i| report(&bases, i)).collect();
    for batch in all.chunks(150) {
        store.put_reports(batch.to_vec()).unwrap();
    }
    let query = SearchRequest::new("behaviour_created_processes:PsExec64.exe");
    let found_before = store.search(&query).unwrap();
    assert_eq!(found_before.total_hits, 300);
    let before = tables(&store);
    let (index_before, file_before) = store.disk_usage().unwrap();
    let samples_before = segments(&store, "samples");
    assert!(samples_before > 1);

    assert!(store.compact().unwrap());

    let after = tables(&store);
    let (index_after, file_after) = store.disk_usage().unwrap();
    // The value index is one segment; the sample index one per core, at most four (and never
    // more than it had): a few term dictionaries instead of one a batch.
    assert_eq!(
        segments(&store, "samples"),
        sandscope_store::compacted_sample_segments().min(samples_before)
    );
    assert_eq!(segments(&store, "values"), 1);
    assert!(
        index_after < index_before,
        "{index_before} -> {index_after}"
    );
    // Same tables (no copy left behind) and entries; the same bytes but in the reports, which
    // are recompressed at a higher level; far less unused room.
    let bytes = |tables: &[TableSize]| {
        tables
            .iter()
            .map(|t| {
                let bytes = (t.name != "reports").then_some(t.stored_bytes);
                (t.name.clone(), t.entries, bytes)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(bytes(&before), bytes(&after));
    let reports = |tables: &[TableSize]| {
        let table = tables.iter().find(|t| t.name == "reports");
        table.map_or(0, |t| t.stored_bytes)
    };
    assert!(
        reports(&after) * 100 < reports(&before) * 95,
        "reports: {} bytes before compaction, {} after",
        reports(&before),
        reports(&after)
    );
    for name in ["reports", "sample_numbers"] {
        assert!(
            slack(&after, name) * 3 < slack(&before, name),
            "{name}: {} bytes unused before compaction, {} after",
            slack(&before, name),
            slack(&after, name)
        );
    }
    assert!(file_after < file_before, "{file_before} -> {file_after}");
    for r in &all {
        assert_eq!(
            store.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour)
        );
    }
    let found_after = store.search(&query).unwrap();
    assert_eq!(found_after.total_hits, found_before.total_hits);
    assert_eq!(
        found_after
            .hits
            .iter()
            .map(|h| &h.sha256)
            .collect::<Vec<_>>(),
        found_before
            .hits
            .iter()
            .map(|h| &h.sha256)
            .collect::<Vec<_>>()
    );

    // And a compacted store takes more reports and reopens as usual.
    store.put_reports(vec![report(&bases, 1_500)]).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().unwrap().reports, 1_501);
}
