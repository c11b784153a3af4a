//! Training the store's report dictionary (`codec`) once it has enough reports, in its own
//! short transaction before a batch is written: a dictionary is only ever used once it is
//! committed, so a batch that fails later leaves no report naming a dictionary the store lacks.

use crate::Result;
use crate::codec::{self, Codec, FIRST_DICTIONARY};
use postgres::Client;
use sandscope_model::FileBehaviour;
use sandscope_store::NewReport;

/// Make sure `codec` writes with the store's dictionary when there is one, training it from
/// the stored reports and `batch` once there are enough of them.
pub(crate) fn ensure(codec: &Codec, client: &mut Client, batch: &[&NewReport]) -> Result<()> {
    if codec.has_dictionary() {
        return Ok(());
    }
    // Another process may have trained it.
    codec.load(client)?;
    if codec.has_dictionary() {
        return Ok(());
    }
    let wanted = codec::TRAIN_REPORTS.saturating_sub(batch.len());
    let rows = client.query(
        "SELECT report_id, body FROM reports LIMIT $1",
        &[&i64::try_from(wanted).unwrap_or(0)],
    )?;
    if rows.len() + batch.len() < codec::TRAIN_AT_REPORTS {
        return Ok(());
    }
    let stored = crate::write::decode_rows(codec, client, &rows)?;
    let reports = batch
        .iter()
        .map(|r| &r.behaviour)
        .chain(stored.iter())
        .collect::<Vec<&FileBehaviour>>();
    let Some(dictionary) = codec::train(reports) else {
        return Ok(());
    };
    // Two processes training at once: the first to commit wins, and both use its dictionary.
    client.execute(
        "INSERT INTO report_dicts (id, dict) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&FIRST_DICTIONARY, &dictionary],
    )?;
    codec.load(client)
}
