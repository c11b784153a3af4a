//! A data directory written by an older version of the store rebuilds itself on open: its
//! index and the value tables of the old layout are replaced, and every answer stays the same.

use sandscope_model::{BehaviourAttributes, FileBehaviour};
use sandscope_store::{NewReport, SearchRequest, Store};
use std::path::Path;

/// Enough samples and values that the store trains its report and value dictionaries, with
/// values each sample owns and values many share.
fn reports() -> Vec<NewReport> {
    (0..400u64)
        .map(|i| {
            let mut files: Vec<String> = (0..16)
                .map(|f| format!(r"C:\Users\u{i}\AppData\Roaming\needle_{i}_{f}.exe"))
                .collect();
            files.push(format!(r"C:\common\stage_{}.dll", i % 40));
            NewReport {
                behaviour: FileBehaviour::new(
                    &format!("{i:064x}"),
                    BehaviourAttributes {
                        sandbox_name: "Microsoft Sysinternals".into(),
                        analysis_date: Some(1_700_000_000 + i as i64),
                        files_written: files,
                        ..Default::default()
                    },
                ),
                raw_log: None,
            }
        })
        .collect()
}

const QUERIES: [&str; 5] = [
    "behaviour_files:needle_17_3.exe",
    "behaviour_files:stage_7.dll",
    "behaviour_files:needle_1*_3.exe",
    r"behaviour_files:%APPDATA%\needle_2",
    "behaviour_files:stage_* -behaviour_files:needle_3",
];

/// Each query's total and ids.
type Answers = Vec<(u64, Vec<String>)>;

fn answers(store: &Store) -> Answers {
    QUERIES
        .iter()
        .map(|q| {
            let mut request = SearchRequest::new(*q);
            request.limit = 300;
            let page = store.search(&request).unwrap();
            let mut shas: Vec<String> = page.hits.iter().map(|h| h.sha256.clone()).collect();
            shas.sort();
            (page.total_hits, shas)
        })
        .collect()
}

/// The value tables as index format 8 laid them out (u64 value ids, hex SHA-256 keys).
const FORMAT_8_VALUES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("values");
const FORMAT_8_DIGESTS: redb::TableDefinition<&[u8; 12], u64> =
    redb::TableDefinition::new("value_digests");
const FORMAT_8_SAMPLE_NOS: redb::TableDefinition<&str, u64> =
    redb::TableDefinition::new("sample_nos");
const FORMAT_8_SAMPLE_SHAS: redb::TableDefinition<u64, &str> =
    redb::TableDefinition::new("sample_shas");
const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");

/// A store of [`reports`] and its answers to [`QUERIES`].
fn filled_store() -> (tempfile::TempDir, Answers) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for chunk in reports().chunks(100) {
        store.put_reports(chunk.to_vec()).unwrap();
    }
    let before = answers(&store);
    assert_eq!(before[0].0, 1);
    assert_eq!(before[1].0, 10);
    assert!(before.iter().all(|(hits, _)| *hits > 0), "{before:?}");
    (dir, before)
}

fn table_names(path: &Path) -> Vec<String> {
    use redb::{ReadableDatabase, TableHandle};
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    txn.list_tables()
        .unwrap()
        .map(|t| t.name().to_string())
        .collect()
}

#[test]
fn a_store_of_format_8_rebuilds_its_value_tables_and_answers_the_same() {
    let (dir, before) = filled_store();

    // Turn the directory into what format 8 left: its value tables under their old names
    // and types, the new ones absent, the old format number.
    let db_path = dir.path().join("reports.redb");
    let new_tables = [
        "value_blocks",
        "value_hash_ids",
        "sample_numbers",
        "sample_digests",
    ];
    {
        let names = table_names(&db_path);
        for name in new_tables {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        let db = redb::Database::create(&db_path).unwrap();
        let txn = db.begin_write().unwrap();
        for name in new_tables {
            let table: redb::TableDefinition<u64, u64> = redb::TableDefinition::new(name);
            assert!(txn.delete_table(table).unwrap(), "{name}");
        }
        txn.open_table(FORMAT_8_VALUES)
            .unwrap()
            .insert(0, b"stale".as_slice())
            .unwrap();
        txn.open_table(FORMAT_8_DIGESTS)
            .unwrap()
            .insert(&[7; 12], 0)
            .unwrap();
        let sha = format!("{:064x}", 1);
        txn.open_table(FORMAT_8_SAMPLE_NOS)
            .unwrap()
            .insert(sha.as_str(), 0)
            .unwrap();
        txn.open_table(FORMAT_8_SAMPLE_SHAS)
            .unwrap()
            .insert(0, sha.as_str())
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("index_format", 8)
            .unwrap();
        txn.commit().unwrap();
    }

    reopened_answers_the_same(
        dir.path(),
        &before,
        &["values", "value_digests", "sample_nos", "sample_shas"],
        &new_tables,
    );
}

/// Open the store in `dir` (rebuilding what its format needs): it answers as `before` did,
/// the `gone` tables are dropped and the `made` ones exist.
fn reopened_answers_the_same(dir: &Path, before: &Answers, gone: &[&str], made: &[&str]) {
    let store = Store::open(dir).unwrap();
    assert_eq!(&answers(&store), before);
    drop(store);
    let names = table_names(&dir.join("reports.redb"));
    for old in gone {
        assert!(!names.iter().any(|n| n == old), "{old} left in {names:?}");
    }
    for name in made {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}

/// Index format 9 kept one `value_texts` entry a value (u32 id → record) and found values by
/// their 96-bit digests.
const FORMAT_9_VALUES: redb::TableDefinition<u32, &[u8]> =
    redb::TableDefinition::new("value_texts");
const FORMAT_9_DIGESTS: redb::TableDefinition<&[u8; 12], u32> =
    redb::TableDefinition::new("value_digest_ids");
const VALUE_BLOCKS: redb::TableDefinition<u32, &[u8]> = redb::TableDefinition::new("value_blocks");
const VALUE_HASH_IDS: redb::TableDefinition<u64, ()> = redb::TableDefinition::new("value_hash_ids");

#[test]
fn a_store_of_format_9_replaces_its_value_texts_and_digests_and_answers_the_same() {
    let (dir, before) = filled_store();
    let db_path = dir.path().join("reports.redb");
    {
        let db = redb::Database::create(&db_path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(VALUE_BLOCKS).unwrap());
        assert!(txn.delete_table(VALUE_HASH_IDS).unwrap());
        txn.open_table(FORMAT_9_DIGESTS)
            .unwrap()
            .insert(&[7; 12], 0)
            .unwrap();
        txn.open_table(FORMAT_9_VALUES)
            .unwrap()
            .insert(0, b"stale".as_slice())
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("index_format", 9)
            .unwrap();
        txn.commit().unwrap();
    }

    reopened_answers_the_same(
        dir.path(),
        &before,
        &["value_texts", "value_digest_ids"],
        &["value_blocks", "value_hash_ids"],
    );
}

/// Index format 10 wrote FST term dictionaries, which this version's (sstable) reader cannot
/// read: the store must rebuild its indexes from redb without opening the old ones.
#[test]
fn a_store_of_format_10_rebuilds_its_indexes_without_reading_them_and_answers_the_same() {
    let (dir, before) = filled_store();
    let mut dictionaries = 0;
    for index in ["samples", "values"] {
        let index_dir = dir.path().join("index").join(index);
        for entry in std::fs::read_dir(&index_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "term") {
                // What an sstable reader makes of an FST: bytes of another format.
                std::fs::write(&path, vec![0xA5; 4096]).unwrap();
                dictionaries += 1;
            }
        }
    }
    assert!(dictionaries >= 2, "{dictionaries} term dictionaries");
    {
        let db = redb::Database::create(dir.path().join("reports.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("index_format", 10)
            .unwrap();
        txn.commit().unwrap();
    }

    reopened_answers_the_same(dir.path(), &before, &[], &["value_blocks"]);
}
