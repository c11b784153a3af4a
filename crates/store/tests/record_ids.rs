//! Record ids (`Store::allocate_record_ids`): handed out from memory, and the counter in the
//! report database moved past every id in the transaction that stores it, so a stored id is
//! never handed out again — after a restart, after a deletion, or after a record was copied in
//! under its own id.

use sandscope_store::{RecordTable, RecordWrite, Store};

const TABLE: RecordTable = RecordTable::HuntingNotifications;

fn put(id: u64) -> RecordWrite {
    RecordWrite::Put(TABLE, id, format!("record {id}").into_bytes())
}

#[test]
fn ids_increase_and_survive_a_restart_past_every_stored_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.allocate_record_ids(TABLE, 3).unwrap(), [1, 2, 3]);
        assert_eq!(store.allocate_record_ids(TABLE, 2).unwrap(), [4, 5]);
        // Tables count apart.
        assert_eq!(
            store
                .allocate_record_ids(RecordTable::HuntingRulesets, 1)
                .unwrap(),
            [1]
        );
        // 4 is stored, 5 never is.
        store.write_records(vec![put(1), put(4)]).unwrap();
        store
            .write_records(vec![RecordWrite::Delete(TABLE, 4)])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    // Past 4, though 4 was deleted since; 5 was handed out but nothing names it.
    assert_eq!(store.allocate_record_ids(TABLE, 1).unwrap(), [5]);
    assert_eq!(
        store
            .allocate_record_ids(RecordTable::HuntingRulesets, 1)
            .unwrap(),
        [1],
        "nothing was stored under ruleset id 1"
    );
}

#[test]
fn a_record_copied_in_under_its_own_id_moves_the_counter_past_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.allocate_record_ids(TABLE, 1).unwrap(), [1]);
        // As `sandscope copy` writes: another store's ids, no allocation.
        store.write_records(vec![put(40), put(7)]).unwrap();
        assert_eq!(store.allocate_record_ids(TABLE, 2).unwrap(), [41, 42]);
    }
    {
        let store = Store::open(dir.path()).unwrap();
        // Copied into a store that had not handed out any id yet.
        store.write_records(vec![put(90)]).unwrap();
        assert_eq!(store.allocate_record_ids(TABLE, 1).unwrap(), [91]);
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.allocate_record_ids(TABLE, 1).unwrap(), [91]);
    assert_eq!(
        store.record(TABLE, 90).unwrap().unwrap(),
        b"record 90".to_vec()
    );
}

#[test]
fn a_read_only_store_hands_out_no_ids() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let store = Store::open_read_only(dir.path()).unwrap();
    assert!(store.allocate_record_ids(TABLE, 1).is_err());
    assert!(store.write_records(vec![put(1)]).is_err());
}
