//! Rewriting the hash-keyed tables of the report database with full pages (part of
//! `Store::compact`).
//!
//! Reports, log metadata, sample numbers and value ids are keyed by hashes, so every
//! batch inserts all over their B-trees; a page that fills splits into two half-full ones, and
//! after a bulk ingest such a table's leaves are about two thirds full (at 100k benchmark
//! reports: 54 MiB of unused space inside the pages of these tables). Copying a table in key
//! order into a fresh one appends to its last page only, which redb fills before starting the
//! next, so the copy's pages are full; it then takes the original's name. Later inserts into
//! full pages split them again: the gain holds until the next bulk ingest, whose own
//! compaction restores it.

use crate::codec::ReportCodec;
use crate::{LOG_INFO, REPORTS, Result, values};
use redb::{Key, ReadableTable, TableDefinition, Value, WriteTransaction};

/// Rewrite every hash-keyed table (see the module docs) in one transaction, the reports
/// recompressed by `codec` at its compaction level.
pub(crate) fn repack_hash_keyed(txn: &WriteTransaction, codec: &ReportCodec) -> Result<()> {
    repack_reports(txn, codec)?;
    repack(txn, LOG_INFO)?;
    repack(txn, values::SAMPLE_NOS)?;
    repack(txn, crate::value_lookup::VALUE_IDS)?;
    Ok(())
}

/// Copy `table` in key order into a new table that then replaces it.
fn repack<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<()> {
    // A name no table of the store has; it exists only inside this transaction.
    let copy = TableDefinition::<K, V>::new("repacking");
    {
        let from = txn.open_table(table)?;
        let mut to = txn.open_table(copy)?;
        for entry in from.iter()? {
            let (key, value) = entry?;
            to.insert(key.value(), value.value())?;
        }
    }
    txn.delete_table(table)?;
    txn.rename_table(copy, table)?;
    Ok(())
}

/// [`repack`] of the reports, each recompressed with the current dictionary at the compaction
/// level (see `codec::COMPACT_LEVEL`); the same JSON comes back when read. A report that does
/// not decompress is copied as it is: compaction never drops what it cannot read.
fn repack_reports(txn: &WriteTransaction, codec: &ReportCodec) -> Result<()> {
    let copy = TableDefinition::<&str, &[u8]>::new("repacking");
    let mut encoder = codec.compaction_encoder()?;
    {
        let from = txn.open_table(REPORTS)?;
        let mut to = txn.open_table(copy)?;
        for entry in from.iter()? {
            let (key, value) = entry?;
            let (id, stored) = (key.value(), value.value());
            match codec.json(id, stored) {
                Ok(json) => to.insert(id, encoder.encode(&json)?.as_slice())?,
                Err(_) => to.insert(id, stored)?,
            };
        }
    }
    txn.delete_table(REPORTS)?;
    txn.rename_table(copy, REPORTS)?;
    Ok(())
}
