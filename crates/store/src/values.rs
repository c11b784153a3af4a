//! The value dictionary: every distinct behaviour value is indexed once, however many samples
//! report it.
//!
//! Behaviour values repeat heavily across samples (`C:\Windows\System32\cmd.exe`, the same
//! registry keys, the same DLLs), so indexing each sample's text separately stores the same
//! word positions thousands of times. Instead each distinct (field, value) pair gets a value
//! id, and a sample reaches its values in one of two ways:
//! * the value's **owner**, the sample that first reported it, holds its words in its own
//!   document. Most values in a real corpus are reported by one sample only (random file
//!   names, hosts, hashes); they cost one set of positions, in the one document a query about
//!   them must reach anyway;
//! * every other sample reporting it lists its id in `vals`; the value is then marked
//!   **shared** and gets one document of its own in the *values* index, where a query finds it
//!   once before following the sharers' `vals` postings.
//!
//! Invariant (what makes search exact): a sample S reports value v iff `owner(v) == S` (and S's
//! document holds v's words) or S's document has the term v. Registration keeps it: the first
//! sample to report v becomes its owner; any other sample lists v in `vals` and marks v shared;
//! an owner that stops reporting v (its report was replaced) gives v up (`owner` = none,
//! shared), and every later re-index lists v in `vals` again.
//!
//! All of this bookkeeping lives in redb, written in the same transaction as the reports, so the
//! two tantivy indexes are always re-derivable from redb (see the crate docs on crash safety).

use crate::{Result, StoreError};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use sandscope_query::{SampleDoc, TextField, TextValue};
use sha2::{Digest, Sha256};

/// 16-byte digest of (field, indexed text) → value id.
pub(crate) const VALUE_IDS: TableDefinition<&[u8], u64> = TableDefinition::new("value_ids");
/// Value id → [`ValueRecord`] (encoded).
pub(crate) const VALUES: TableDefinition<u64, &[u8]> = TableDefinition::new("values");
/// Sample SHA-256 → its stable sample number (what value owners point at).
pub(crate) const SAMPLE_NOS: TableDefinition<&str, u64> = TableDefinition::new("sample_nos");
/// Sample number → its SHA-256 (what verifying a `*` query against a sample's values needs).
pub(crate) const SAMPLE_SHAS: TableDefinition<u64, &str> = TableDefinition::new("sample_shas");
/// Sample SHA-256 → the sorted value ids it reports (little-endian u64s).
pub(crate) const SAMPLE_VALUES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("sample_values");
/// Value ids whose value document must be (re)written.
pub(crate) const PENDING_VALUES: TableDefinition<u64, u64> = TableDefinition::new("pending_values");

/// `owner` of a value no single sample owns.
pub(crate) const NO_OWNER: u64 = u64::MAX;

/// Caps the text one field of one sample contributes, so a hostile report cannot make one
/// sample unbounded (values are already capped at 8,192 characters each).
const MAX_FIELD_BYTES: usize = 8 << 20;

/// What redb keeps about one distinct value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueRecord {
    pub owner: u64,
    pub shared: bool,
    pub field: TextField,
    /// The indexed text: every spelling in padded normal form, each followed by `\n`, after a
    /// leading `\n` (so no query, which never contains `\n`, matches across two spellings).
    pub text: String,
}

impl ValueRecord {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.text.len());
        out.extend_from_slice(&self.owner.to_le_bytes());
        out.push(u8::from(self.shared));
        out.push(self.field as u8);
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Owner and shared flag only, without copying the text (what indexing a sample and
    /// registering a known value need).
    pub(crate) fn decode_owner(vid: u64, bytes: &[u8]) -> Result<(u64, bool)> {
        let corrupt = || StoreError::CorruptValue(vid);
        let owner = bytes
            .get(0..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(corrupt)?;
        let shared = *bytes.get(8).ok_or_else(corrupt)? != 0;
        Ok((owner, shared))
    }

    pub(crate) fn decode(vid: u64, bytes: &[u8]) -> Result<ValueRecord> {
        let corrupt = || StoreError::CorruptValue(vid);
        let (owner, shared) = Self::decode_owner(vid, bytes)?;
        let field = *bytes.get(9).ok_or_else(corrupt)?;
        let field = TextField::ALL
            .get(usize::from(field))
            .copied()
            .ok_or_else(corrupt)?;
        let text = std::str::from_utf8(bytes.get(10..).ok_or_else(corrupt)?)
            .map_err(|_| corrupt())?
            .to_string();
        Ok(ValueRecord {
            owner,
            shared,
            field,
            text,
        })
    }

    /// Whether one spelling holds the `*`-separated `segments` in order (what a `*` pattern
    /// asks, and the index can only approximate).
    pub(crate) fn holds_in_order(&self, segments: &[String]) -> bool {
        self.text
            .split('\n')
            .filter(|s| !s.is_empty())
            .any(|s| sandscope_query::text::contains_segments(s, segments))
    }
}

/// The indexed text of a value (see [`ValueRecord::text`]).
pub(crate) fn indexed_text(value: &TextValue) -> String {
    let mut text = String::from("\n");
    for v in &value.variants {
        text.push_str(v);
        text.push('\n');
    }
    text
}

fn value_key(field: TextField, text: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update([field as u8]);
    h.update(text.as_bytes());
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

pub(crate) fn encode_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn decode_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok())
        .map(u64::from_le_bytes)
        .collect()
}

fn next_counter(txn: &WriteTransaction, name: &str) -> Result<u64> {
    let mut meta = txn.open_table(crate::META)?;
    let next = meta.get(name)?.map(|v| v.value()).unwrap_or(0);
    meta.insert(name, next + 1)?;
    Ok(next)
}

/// The sample's number, assigned on first use.
pub(crate) fn sample_no(txn: &WriteTransaction, sha256: &str) -> Result<u64> {
    if let Some(no) = txn.open_table(SAMPLE_NOS)?.get(sha256)?.map(|v| v.value()) {
        return Ok(no);
    }
    let no = next_counter(txn, "next_sample_no")?;
    txn.open_table(SAMPLE_NOS)?.insert(sha256, no)?;
    txn.open_table(SAMPLE_SHAS)?.insert(no, sha256)?;
    Ok(no)
}

/// Record the values `doc` reports for its sample (replacing what the sample reported before),
/// keeping the owner/shared invariant of the module docs, and queue every value document that
/// changed.
pub(crate) fn register_sample(txn: &WriteTransaction, doc: &SampleDoc) -> Result<()> {
    let no = sample_no(txn, &doc.sha256)?;
    let mut ids = txn.open_table(VALUE_IDS)?;
    let mut values = txn.open_table(VALUES)?;
    let mut pending = txn.open_table(PENDING_VALUES)?;
    let mut next_vid = txn
        .open_table(crate::META)?
        .get("next_value_id")?
        .map(|v| v.value())
        .unwrap_or(0);
    let mut reported = Vec::new();
    for field in TextField::ALL {
        let mut bytes = 0;
        for value in doc.text(field) {
            let text = indexed_text(value);
            bytes += text.len();
            if bytes > MAX_FIELD_BYTES {
                break;
            }
            let key = value_key(field, &text);
            let existing = ids.get(key.as_slice())?.map(|v| v.value());
            let vid = match existing {
                None => {
                    let vid = next_vid;
                    next_vid += 1;
                    ids.insert(key.as_slice(), vid)?;
                    let record = ValueRecord {
                        owner: no,
                        shared: false,
                        field,
                        text,
                    };
                    values.insert(vid, record.encode().as_slice())?;
                    pending.insert(vid, 0)?;
                    vid
                }
                Some(vid) => {
                    let Some(bytes) = values.get(vid)?.map(|v| v.value().to_vec()) else {
                        return Err(StoreError::CorruptValue(vid));
                    };
                    let (owner, shared) = ValueRecord::decode_owner(vid, &bytes)?;
                    if owner != no && !shared {
                        let record = ValueRecord {
                            shared: true,
                            ..ValueRecord::decode(vid, &bytes)?
                        };
                        values.insert(vid, record.encode().as_slice())?;
                        pending.insert(vid, 0)?;
                    }
                    vid
                }
            };
            reported.push(vid);
        }
    }
    txn.open_table(crate::META)?
        .insert("next_value_id", next_vid)?;
    reported.sort_unstable();
    reported.dedup();
    let mut samples = txn.open_table(SAMPLE_VALUES)?;
    let before = samples
        .get(doc.sha256.as_str())?
        .map(|v| decode_ids(v.value()))
        .unwrap_or_default();
    for vid in before {
        if reported.binary_search(&vid).is_ok() {
            continue;
        }
        let Some(bytes) = values.get(vid)?.map(|v| v.value().to_vec()) else {
            continue;
        };
        let record = ValueRecord::decode(vid, &bytes)?;
        if record.owner == no {
            let record = ValueRecord {
                owner: NO_OWNER,
                shared: true,
                ..record
            };
            values.insert(vid, record.encode().as_slice())?;
            pending.insert(vid, 0)?;
        }
    }
    samples.insert(doc.sha256.as_str(), encode_ids(&reported).as_slice())?;
    Ok(())
}

/// Create the tables of the dictionary if they do not exist (readers expect them).
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(VALUE_IDS)?;
    txn.open_table(VALUES)?;
    txn.open_table(SAMPLE_NOS)?;
    txn.open_table(SAMPLE_SHAS)?;
    txn.open_table(SAMPLE_VALUES)?;
    txn.open_table(PENDING_VALUES)?;
    Ok(())
}

/// Forget every value and sample number (before re-registering everything for a new index
/// format).
pub(crate) fn clear(txn: &WriteTransaction) -> Result<()> {
    txn.delete_table(VALUE_IDS)?;
    txn.delete_table(VALUES)?;
    txn.delete_table(SAMPLE_NOS)?;
    txn.delete_table(SAMPLE_SHAS)?;
    txn.delete_table(SAMPLE_VALUES)?;
    txn.delete_table(PENDING_VALUES)?;
    create_tables(txn)?;
    let mut meta = txn.open_table(crate::META)?;
    meta.remove("next_value_id")?;
    meta.remove("next_sample_no")?;
    Ok(())
}
