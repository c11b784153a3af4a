//! Typed reads and writes of hunting records (JSON) through the [`RecordStore`] seam.

use crate::error::{HuntingError, Result};
use crate::notification::Notification;
use crate::ruleset::{Ruleset, RulesetState};
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

/// A ruleset with its state (see [`RulesetState`]).
pub(crate) fn ruleset(store: &dyn RecordStore, id: u64) -> Result<Option<Ruleset>> {
    let Some(mut ruleset) = get::<Ruleset>(store, RecordTable::HuntingRulesets, id)? else {
        return Ok(None);
    };
    // A ruleset stored before states were kept apart has its state in its own record.
    if let Some(state) = get(store, RecordTable::HuntingRulesetStates, id)? {
        ruleset.set_state(state);
    }
    Ok(Some(ruleset))
}

/// Every ruleset with its state, by id.
pub(crate) fn rulesets(store: &dyn RecordStore) -> Result<Vec<Ruleset>> {
    let all = |table: RecordTable| {
        store
            .records(table, 0..=u64::MAX, MAX_RULESETS, false)
            .map_err(HuntingError::Store)
    };
    let table = RecordTable::HuntingRulesetStates;
    let mut states = std::collections::HashMap::new();
    for (id, bytes) in all(table)? {
        states.insert(id, decode::<RulesetState>(table, id, &bytes)?);
    }
    let table = RecordTable::HuntingRulesets;
    all(table)?
        .into_iter()
        .map(|(id, bytes)| {
            let mut ruleset: Ruleset = decode(table, id, &bytes)?;
            if let Some(state) = states.remove(&id) {
                ruleset.set_state(state);
            }
            Ok(ruleset)
        })
        .collect()
}

/// The writes of a whole ruleset: its definition and its state.
pub(crate) fn put_ruleset(ruleset: &Ruleset) -> Result<[RecordWrite; 2]> {
    Ok([
        put(RecordTable::HuntingRulesets, ruleset.id, ruleset)?,
        put_state(ruleset)?,
    ])
}

/// The write of a ruleset's state alone (a notification, a delivery), not its rules.
pub(crate) fn put_state(ruleset: &Ruleset) -> Result<RecordWrite> {
    put(
        RecordTable::HuntingRulesetStates,
        ruleset.id,
        &ruleset.state(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::RateWindow;
    use crate::webhook::WebhookStatus;

    /// A ruleset written before its state was kept apart carries its window and webhook counts
    /// in its own record: they still read, until a state record replaces them.
    #[test]
    fn a_ruleset_of_an_older_store_keeps_its_window_until_its_state_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = sandscope_store::Store::open(dir.path()).unwrap();
        let attributes = serde_json::json!({"name": "old", "rules": "behaviour:x"});
        let mut ruleset = Ruleset::from_attributes(7, attributes.as_object().unwrap(), 1).unwrap();
        let mut older = serde_json::to_value(&ruleset).unwrap();
        older["window"] = serde_json::json!({"start": 100, "kept": 2, "dropped": 1});
        older["webhook"] = serde_json::json!({"delivered": 5, "failures": 1, "last_error": "x"});
        assert!(
            serde_json::to_value(&ruleset)
                .unwrap()
                .get("window")
                .is_none()
        );
        let table = RecordTable::HuntingRulesets;
        let bytes = serde_json::to_vec(&older).unwrap();
        store
            .write_records(vec![RecordWrite::Put(table, 7, bytes)])
            .unwrap();
        let read = ruleset_of(&store, 7);
        assert_eq!((read.window.kept, read.window.dropped), (2, 1));
        assert_eq!(read.webhook.delivered, 5);

        ruleset.window = RateWindow {
            start: 200,
            kept: 9,
            dropped: 0,
        };
        ruleset.webhook = WebhookStatus::default();
        store
            .write_records(vec![put_state(&ruleset).unwrap()])
            .unwrap();
        for read in [ruleset_of(&store, 7), rulesets(&store).unwrap().remove(0)] {
            assert_eq!(read.window, ruleset.window);
            assert_eq!(read.webhook, WebhookStatus::default());
            assert_eq!(read.name, "old");
        }
    }

    fn ruleset_of(store: &dyn RecordStore, id: u64) -> Ruleset {
        ruleset(store, id).unwrap().unwrap()
    }
}
