//! `Store::put_reports_with`: records made from the batch's searchable views land in the
//! reports' own transaction (Livehunt's notifications with the reports that raised them), and
//! records that cannot be made store nothing and leave the store sound.

#[path = "support/vendored.rs"]
mod support;

use sandscope_store::{RecordStoreError, RecordTable, RecordWrite, Store, StoreError};

const TABLE: RecordTable = RecordTable::HuntingNotifications;

#[test]
fn records_made_from_the_batch_land_with_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let logs = support::vendored();
    let report = support::report_of(&logs[0]).unwrap();
    let id = report.behaviour.id.clone();
    let sha = report.behaviour.sha256().to_string();
    let store = Store::open(dir.path()).unwrap();
    let record_id = store.allocate_record_ids(TABLE, 1).unwrap()[0];
    let mut seen = Vec::new();
    let ids = store
        .put_reports_with(vec![report], &mut |docs| {
            // The view is the sample's as stored: what a query ruleset evaluates.
            seen.extend(docs.keys().cloned());
            let doc = &docs[&sha];
            Ok(vec![RecordWrite::Put(
                TABLE,
                record_id,
                format!("{} processes", doc.sha256).into_bytes(),
            )])
        })
        .unwrap();
    assert_eq!(ids, std::slice::from_ref(&id));
    assert_eq!(seen, std::slice::from_ref(&sha));
    assert_eq!(
        store.record(TABLE, record_id).unwrap(),
        Some(format!("{sha} processes").into_bytes())
    );
    assert!(store.report(&id).unwrap().is_some());
    drop(store);
    // The id counter moved in the same transaction: a restart never hands the id out again.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.allocate_record_ids(TABLE, 1).unwrap(),
        [record_id + 1]
    );
}

#[test]
fn records_that_fail_store_nothing_and_leave_the_store_writable() {
    let dir = tempfile::tempdir().unwrap();
    let logs = support::vendored();
    let store = Store::open(dir.path()).unwrap();
    let report = support::report_of(&logs[0]).unwrap();
    let id = report.behaviour.id.clone();
    let error = store
        .put_reports_with(vec![report], &mut |_| {
            Err(RecordStoreError::new("ruleset 7 is unreadable"))
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Records(_)), "{error:?}");
    assert_eq!(error.to_string(), "ruleset 7 is unreadable");
    assert!(store.report(&id).unwrap().is_none(), "nothing was stored");
    assert_eq!(store.records(TABLE, 0..=u64::MAX, 10, false).unwrap(), []);
    // Not a failure of the store: no recovery pending, and the next write goes through.
    assert!(!store.needs_retry());
    assert_eq!(store.pending_samples().unwrap(), 0);
    let report = support::report_of(&logs[0]).unwrap();
    assert_eq!(
        store.put_reports(vec![report]).unwrap(),
        std::slice::from_ref(&id)
    );
    assert!(store.report(&id).unwrap().is_some());
}
