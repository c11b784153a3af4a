//! Training the store's report dictionary (`codec`) once it has enough reports, in its own
//! short transaction before a batch is written: a dictionary is only ever used once it is
//! committed, so a batch that fails later leaves no report naming a dictionary the store lacks.
//!
//! Training reads up to `TRAIN_REPORTS` stored reports, so it is not tried on every batch: a
//! process tries once the store (with the batch) holds `TRAIN_AT_REPORTS` reports, and after a
//! training zstd refuses (reports too small to share anything) only once the store has doubled,
//! as the embedded store does (its `next_training`).

use crate::Result;
use crate::codec::{self, Codec, FIRST_DICTIONARY};
use postgres::Client;
use sandscope_model::FileBehaviour;
use sandscope_store::NewReport;
use std::sync::atomic::{AtomicU64, Ordering};

/// When this process next tries to train: the store's size (in reports) it waits for.
pub(crate) struct Training {
    next_at: AtomicU64,
}

impl Default for Training {
    fn default() -> Training {
        Training {
            next_at: AtomicU64::new(codec::TRAIN_AT_REPORTS as u64),
        }
    }
}

impl Training {
    /// The store's size from which a training is due.
    fn due_at(&self) -> u64 {
        self.next_at.load(Ordering::Relaxed)
    }

    /// zstd refused the reports of a store of `reports`: wait until it has twice as many.
    fn refused(&self, reports: u64) {
        self.next_at
            .fetch_max(reports.saturating_mul(2), Ordering::Relaxed);
    }
}

/// Make sure `codec` writes with the store's dictionary when there is one, training it from
/// the stored reports and `batch` once there are enough of them and a training is due.
pub(crate) fn ensure(
    codec: &Codec,
    training: &Training,
    client: &mut Client,
    batch: &[&NewReport],
) -> Result<()> {
    if codec.has_dictionary() {
        return Ok(());
    }
    // Another process may have trained it.
    codec.load(client)?;
    if codec.has_dictionary() {
        return Ok(());
    }
    let due_at = training.due_at();
    let in_batch = batch.len() as u64;
    // Counted only as far as the threshold: a large store without a dictionary (one upgraded
    // from deflated reports) is not scanned whole.
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM reports LIMIT $1) r",
            &[&i64::try_from(due_at.saturating_sub(in_batch)).unwrap_or(i64::MAX)],
        )?
        .get(0);
    let reports = u64::try_from(stored).unwrap_or(0) + in_batch;
    if reports < due_at {
        return Ok(());
    }
    let wanted = codec::TRAIN_REPORTS.saturating_sub(batch.len());
    let rows = client.query(
        "SELECT report_id, body FROM reports LIMIT $1",
        &[&i64::try_from(wanted).unwrap_or(0)],
    )?;
    let stored = crate::write::decode_rows(codec, client, &rows)?;
    let samples = batch
        .iter()
        .map(|r| &r.behaviour)
        .chain(stored.iter())
        .collect::<Vec<&FileBehaviour>>();
    let Some(dictionary) = codec::train(samples) else {
        training.refused(reports);
        return Ok(());
    };
    // Two processes training at once: the first to commit wins, and both use its dictionary.
    client.execute(
        "INSERT INTO report_dicts (id, dict) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&FIRST_DICTIONARY, &dictionary],
    )?;
    codec.load(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_training_waits_for_the_store_to_double() {
        let training = Training::default();
        assert_eq!(training.due_at(), codec::TRAIN_AT_REPORTS as u64);
        training.refused(250);
        assert_eq!(training.due_at(), 500);
        // Two batches refused at once: the later threshold stays.
        training.refused(300);
        training.refused(260);
        assert_eq!(training.due_at(), 600);
    }
}
