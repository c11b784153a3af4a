//! Typed reads and writes of hunting records (JSON) through the [`RecordStore`] seam.

use crate::error::{HuntingError, Result};
use crate::notification::Notification;
use crate::ruleset::Ruleset;
use crate::seam::{RecordStore, RecordTable, RecordWrite};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Most rulesets one store holds: every one is loaded to list and evaluate them.
pub const MAX_RULESETS: usize = 1_000;
/// Notifications read per batch while filtering a list.
pub(crate) const SCAN_BATCH: usize = 1_000;

pub(crate) fn put<T: Serialize>(table: RecordTable, id: u64, value: &T) -> Result<RecordWrite> {
    let bytes = serde_json::to_vec(value).map_err(|source| HuntingError::Corrupt {
        table: table.name(),
        id,
        source,
    })?;
    Ok(RecordWrite::Put(table, id, bytes))
}

pub(crate) fn decode<T: DeserializeOwned>(table: RecordTable, id: u64, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| HuntingError::Corrupt {
        table: table.name(),
        id,
        source,
    })
}

pub(crate) fn get<T: DeserializeOwned>(
    store: &dyn RecordStore,
    table: RecordTable,
    id: u64,
) -> Result<Option<T>> {
    match store.record(table, id).map_err(HuntingError::Store)? {
        Some(bytes) => decode(table, id, &bytes).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn ruleset(store: &dyn RecordStore, id: u64) -> Result<Option<Ruleset>> {
    get(store, RecordTable::HuntingRulesets, id)
}

pub(crate) fn rulesets(store: &dyn RecordStore) -> Result<Vec<Ruleset>> {
    let table = RecordTable::HuntingRulesets;
    store
        .records(table, 0..=u64::MAX, MAX_RULESETS, false)
        .map_err(HuntingError::Store)?
        .into_iter()
        .map(|(id, bytes)| decode(table, id, &bytes))
        .collect()
}

/// Notifications with ids in `range`, newest first, at most `limit`.
pub(crate) fn notifications(
    store: &dyn RecordStore,
    range: std::ops::RangeInclusive<u64>,
    limit: usize,
) -> Result<Vec<Notification>> {
    let table = RecordTable::HuntingNotifications;
    store
        .records(table, range, limit, true)
        .map_err(HuntingError::Store)?
        .into_iter()
        .map(|(id, bytes)| decode(table, id, &bytes))
        .collect()
}

/// Visit every notification, newest first, a batch at a time (memory follows one batch).
pub(crate) fn each_notification(
    store: &dyn RecordStore,
    mut visit: impl FnMut(Notification),
) -> Result<()> {
    let mut upper = u64::MAX;
    loop {
        let batch = notifications(store, 0..=upper, SCAN_BATCH)?;
        let Some(last) = batch.last().map(|n| n.id) else {
            return Ok(());
        };
        let full = batch.len() == SCAN_BATCH;
        batch.into_iter().for_each(&mut visit);
        if !full || last == 0 {
            return Ok(());
        }
        upper = last - 1;
    }
}
