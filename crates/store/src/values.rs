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
//! On disk a value costs eight bytes of lookup key (a 32-bit hash and its id, see
//! `value_lookup`) and a record of owner, field and flags and, usually, just the value as reported: its spellings
//! are re-derived on reading (only a value whose report kept other raw spellings stores them
//! all). Records are kept in blocks, the new values of one sample together, their texts
//! compressed together with the store's value dictionary once it has one (see `value_blocks`
//! and `value_codec`). A sample's value ids are delta-varint coded (its new values
//! have consecutive ids: a byte each); its SHA-256 is kept as 32 bytes, not 64 hex digits.
//!
//! All of this bookkeeping lives in redb, written in the same transaction as the reports, so the
//! two tantivy indexes are always re-derivable from redb (see the crate docs on crash safety).

use crate::value_blocks;
use crate::value_blocks::{Block, VALUE_BLOCKS};
use crate::value_lookup::{self, Registrar, VALUE_IDS};
use crate::{Result, StoreError};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use sandscope_query::{SampleDoc, TextField, TextValue};

/// What index format 9 and older mapped a value's 96-bit digest to its id with; dropped on
/// rebuild (see `value_lookup`).
const DIGEST_VALUE_IDS: TableDefinition<&[u8; DIGEST_BYTES], u32> =
    TableDefinition::new("value_digest_ids");
const DIGEST_BYTES: usize = 12;
/// What index format 6 called [`VALUE_IDS`] (128-bit keys); dropped on rebuild.
const FORMAT_6_VALUE_IDS: TableDefinition<u128, u64> = TableDefinition::new("value_keys");
/// What index format 5 and older called [`VALUE_IDS`] (byte-string keys); dropped on rebuild.
const OLD_VALUE_IDS: TableDefinition<&[u8], u64> = TableDefinition::new("value_ids");
/// What index format 9 and older kept each value's record in (one entry a value); dropped on
/// rebuild (values are now kept in blocks, see `value_blocks`).
const SINGLE_VALUES: TableDefinition<u32, &[u8]> = TableDefinition::new("value_texts");
/// What index format 8 and older called it (`u64` keys); dropped on rebuild.
const U64_VALUES: TableDefinition<u64, &[u8]> = TableDefinition::new("values");
/// What index format 8 and older called [`VALUE_IDS`] (`u64` ids); dropped on rebuild.
const U64_VALUE_IDS: TableDefinition<&[u8; DIGEST_BYTES], u64> =
    TableDefinition::new("value_digests");
/// Sample SHA-256 (its 32 bytes, not its 64 hex digits: a fixed-width key, half the size) →
/// its stable sample number (what value owners point at).
pub(crate) const SAMPLE_NOS: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("sample_numbers");
/// Sample number → its SHA-256's 32 bytes (what a hit's SHA-256 is read from).
pub(crate) const SAMPLE_SHAS: TableDefinition<u64, &[u8; 32]> =
    TableDefinition::new("sample_digests");
/// What index format 8 and older called [`SAMPLE_NOS`] and [`SAMPLE_SHAS`] (hex SHA-256s);
/// dropped on rebuild.
const HEX_SAMPLE_NOS: TableDefinition<&str, u64> = TableDefinition::new("sample_nos");
const HEX_SAMPLE_SHAS: TableDefinition<u64, &str> = TableDefinition::new("sample_shas");
/// Sample number → the sorted value ids it reports (see [`encode_ids`]). Keyed by number, not
/// SHA-256: an eighth of the key, and new samples append.
pub(crate) const SAMPLE_VALUES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("sample_value_ids");
/// What index format 7 and older keyed by SHA-256; dropped on rebuild.
const SHA_KEYED_SAMPLE_VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("sample_values");
/// Value ids whose value document must be (re)written.
pub(crate) const PENDING_VALUES: TableDefinition<u64, u64> = TableDefinition::new("pending_values");

/// `owner` of a value no single sample owns.
pub(crate) const NO_OWNER: u64 = u64::MAX;

/// `vid` as the key of [`VALUES`]; `None` for an id no stored value can have.
pub(crate) fn table_id(vid: u64) -> Option<u32> {
    u32::try_from(vid).ok()
}

/// Caps the text one field of one sample contributes, so a hostile report cannot make one
/// sample unbounded (values are already capped at 8,192 characters each).
const MAX_FIELD_BYTES: usize = 8 << 20;

/// Flag bits of a stored [`ValueRecord`] (the high half of the byte after its owner; the low
/// half is its field).
const SHARED: u8 = 0x10;
/// The record keeps the value as reported, not its spellings: they are exactly
/// `sandscope_query::text::variants` of it, re-derived on reading. This is the common case, and
/// the reported value is a fraction of the size of its spellings (a user-profile path has three).
const DERIVED: u8 = 0x20;
const FIELD_BITS: u8 = 0x0f;
const _: () = assert!(TextField::ALL.len() <= FIELD_BITS as usize + 1);

/// What redb keeps about one distinct value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueRecord {
    pub owner: u64,
    pub shared: bool,
    pub field: TextField,
    /// The indexed text: every spelling in padded normal form, each followed by `\n`, after a
    /// leading `\n` (so no query, which never contains `\n`, matches across two spellings).
    pub text: String,
    /// The value as reported, when its spellings are all derived from it (then only this is
    /// stored).
    raw: Option<String>,
}

/// Owner and field-and-flags byte of one value: what a block keeps outside its compressed
/// texts (see `value_blocks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueHeader {
    pub owner: u64,
    flags: u8,
}

impl ValueHeader {
    pub(crate) fn new(owner: u64, flags: u8) -> ValueHeader {
        ValueHeader { owner, flags }
    }

    pub(crate) fn flags(self) -> u8 {
        self.flags
    }

    pub(crate) fn shared(self) -> bool {
        self.flags & SHARED != 0
    }

    /// This value with a new owner and shared flag.
    pub(crate) fn with_owner(self, owner: u64, shared: bool) -> ValueHeader {
        let shared = if shared { SHARED } else { 0 };
        ValueHeader::new(owner, self.flags & !SHARED | shared)
    }
}

impl ValueRecord {
    /// The record of `value` as reported in `field`, with its indexed text.
    pub(crate) fn new(
        owner: u64,
        field: TextField,
        value: &TextValue,
        text: String,
    ) -> ValueRecord {
        let derived = value.variants == sandscope_query::text::variants(&value.raw);
        ValueRecord {
            owner,
            shared: false,
            field,
            text,
            raw: derived.then(|| value.raw.clone()),
        }
    }

    /// Owner and flags as a block keeps them (see `value_blocks`).
    pub(crate) fn header(&self) -> ValueHeader {
        let derived = if self.raw.is_some() { DERIVED } else { 0 };
        let shared = if self.shared { SHARED } else { 0 };
        ValueHeader::new(self.owner, self.field as u8 | derived | shared)
    }

    /// The record of value `vid` from its `header` and its `stored` text (see
    /// [`ValueRecord::stored`]).
    pub(crate) fn from_stored(
        vid: u64,
        header: ValueHeader,
        stored: String,
    ) -> Result<ValueRecord> {
        let field = TextField::ALL
            .get(usize::from(header.flags & FIELD_BITS))
            .copied()
            .ok_or(StoreError::CorruptValue(vid))?;
        let (text, raw) = if header.flags & DERIVED != 0 {
            (
                spellings(&sandscope_query::text::variants(&stored)),
                Some(stored),
            )
        } else {
            (stored, None)
        };
        Ok(ValueRecord {
            owner: header.owner,
            shared: header.shared(),
            field,
            text,
            raw,
        })
    }

    /// What the record keeps of the value: the value as reported, or its indexed text.
    pub(crate) fn stored(&self) -> &str {
        self.raw.as_deref().unwrap_or(&self.text)
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
    spellings(&value.variants)
}

fn spellings(variants: &[String]) -> String {
    let mut text = String::from("\n");
    for v in variants {
        text.push_str(v);
        text.push('\n');
    }
    text
}

/// A sample's value ids, sorted: each as its difference from the one before, in LEB128. A
/// sample's new values get consecutive ids, so most take one byte instead of eight.
pub(crate) fn encode_ids(ids: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 2);
    let mut previous = 0u64;
    for &id in ids {
        // Wrapping, so even an unsorted list round-trips (at more bytes).
        crate::leb128::push(&mut out, id.wrapping_sub(previous));
        previous = id;
    }
    out
}

/// The ids [`encode_ids`] wrote; a truncated or overlong last id is dropped.
pub(crate) fn decode_ids(mut bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut previous = 0u64;
    while let Some((delta, rest)) = crate::leb128::read(bytes) {
        previous = previous.wrapping_add(delta);
        out.push(previous);
        bytes = rest;
    }
    out
}

fn next_counter(txn: &WriteTransaction, name: &str) -> Result<u64> {
    let mut meta = txn.open_table(crate::META)?;
    let next = meta.get(name)?.map(|v| v.value()).unwrap_or(0);
    meta.insert(name, next + 1)?;
    Ok(next)
}

/// The 32 bytes of a lower-case hex SHA-256; `None` for anything else.
pub(crate) fn sha_bytes(sha256: &str) -> Option<[u8; 32]> {
    let hex = sha256.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha_hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The sample's number, assigned on first use, and whether it was assigned now.
fn sample_no(txn: &WriteTransaction, sha256: &str) -> Result<(u64, bool)> {
    let key = sha_bytes(sha256).ok_or_else(|| StoreError::InvalidSha256(sha256.to_string()))?;
    if let Some(no) = txn.open_table(SAMPLE_NOS)?.get(&key)?.map(|v| v.value()) {
        return Ok((no, false));
    }
    let no = next_counter(txn, "next_sample_no")?;
    txn.open_table(SAMPLE_NOS)?.insert(&key, no)?;
    txn.open_table(SAMPLE_SHAS)?.insert(no, &key)?;
    Ok((no, true))
}

/// Record the values `doc` reports for its sample (replacing what the sample reported before),
/// keeping the owner/shared invariant of the module docs, and queue every value document that
/// changed. `registrar` compresses new values and finds known ones. Returns whether the sample
/// was numbered now: a sample without a number has never had an index document.
pub(crate) fn register_sample(
    txn: &WriteTransaction,
    doc: &SampleDoc,
    registrar: &mut Registrar<'_>,
) -> Result<bool> {
    let (no, numbered_now) = sample_no(txn, &doc.sha256)?;
    let mut ids = txn.open_table(VALUE_IDS)?;
    let mut blocks = txn.open_table(VALUE_BLOCKS)?;
    let mut pending = txn.open_table(PENDING_VALUES)?;
    let mut next_vid = txn
        .open_table(crate::META)?
        .get("next_value_id")?
        .map(|v| v.value())
        .unwrap_or(0);
    // The sample's new values not written yet: one block from `first_new` on.
    let mut first_new = next_vid;
    let mut new_values: Vec<ValueRecord> = Vec::new();
    let mut new_bytes = 0;
    let mut reported = Vec::new();
    for field in TextField::ALL {
        let mut bytes = 0;
        for value in doc.text(field) {
            let text = indexed_text(value);
            bytes += text.len();
            if bytes > MAX_FIELD_BYTES {
                break;
            }
            let hash = value_lookup::value_hash(field, &text);
            let existing = registrar.find(
                (&ids, &blocks),
                hash,
                field,
                &text,
                (first_new, &new_values),
            )?;
            let vid = match existing {
                None => {
                    let vid = next_vid;
                    let id = table_id(vid).ok_or(StoreError::TooManyValues(vid))?;
                    let record = ValueRecord::new(no, field, value, text);
                    let size = record.stored().len();
                    if !new_values.is_empty()
                        && (new_values.len() == value_blocks::MAX_VALUES
                            || new_bytes + size > value_blocks::MAX_TEXT_BYTES)
                    {
                        Block::new(first_new, &new_values, registrar.packer()).save(&mut blocks)?;
                        new_values.clear();
                        new_bytes = 0;
                        first_new = vid;
                    }
                    next_vid += 1;
                    ids.insert(value_lookup::key(hash, id), ())?;
                    new_values.push(record);
                    new_bytes += size;
                    pending.insert(vid, 0)?;
                    vid
                }
                // One of the values this sample has just brought: its own already.
                Some(vid) if vid >= first_new => vid,
                Some(vid) => {
                    let mut block =
                        Block::containing(&blocks, vid)?.ok_or(StoreError::CorruptValue(vid))?;
                    let header = block.header(vid).ok_or(StoreError::CorruptValue(vid))?;
                    if header.owner != no && !header.shared() {
                        block.set_header(vid, header.with_owner(header.owner, true));
                        block.save(&mut blocks)?;
                        pending.insert(vid, 0)?;
                    }
                    vid
                }
            };
            reported.push(vid);
        }
    }
    if !new_values.is_empty() {
        Block::new(first_new, &new_values, registrar.packer()).save(&mut blocks)?;
    }
    txn.open_table(crate::META)?
        .insert("next_value_id", next_vid)?;
    reported.sort_unstable();
    reported.dedup();
    let mut samples = txn.open_table(SAMPLE_VALUES)?;
    let before = samples
        .get(no)?
        .map(|v| decode_ids(v.value()))
        .unwrap_or_default();
    for vid in before {
        if reported.binary_search(&vid).is_ok() {
            continue;
        }
        let Some(mut block) = Block::containing(&blocks, vid)? else {
            continue;
        };
        if let Some(header) = block.header(vid)
            && header.owner == no
        {
            block.set_header(vid, header.with_owner(NO_OWNER, true));
            block.save(&mut blocks)?;
            pending.insert(vid, 0)?;
        }
    }
    samples.insert(no, encode_ids(&reported).as_slice())?;
    Ok(numbered_now)
}

/// Create the tables of the dictionary if they do not exist (readers expect them).
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(VALUE_IDS)?;
    txn.open_table(VALUE_BLOCKS)?;
    txn.open_table(SAMPLE_NOS)?;
    txn.open_table(SAMPLE_SHAS)?;
    txn.open_table(SAMPLE_VALUES)?;
    txn.open_table(PENDING_VALUES)?;
    Ok(())
}

/// Forget every value and sample number (before re-registering everything for a new index
/// format).
pub(crate) fn clear(txn: &WriteTransaction) -> Result<()> {
    txn.delete_table(OLD_VALUE_IDS)?;
    txn.delete_table(FORMAT_6_VALUE_IDS)?;
    txn.delete_table(U64_VALUE_IDS)?;
    txn.delete_table(U64_VALUES)?;
    txn.delete_table(DIGEST_VALUE_IDS)?;
    txn.delete_table(VALUE_IDS)?;
    txn.delete_table(SINGLE_VALUES)?;
    txn.delete_table(VALUE_BLOCKS)?;
    txn.delete_table(HEX_SAMPLE_NOS)?;
    txn.delete_table(HEX_SAMPLE_SHAS)?;
    txn.delete_table(SAMPLE_NOS)?;
    txn.delete_table(SAMPLE_SHAS)?;
    txn.delete_table(SAMPLE_VALUES)?;
    txn.delete_table(SHA_KEYED_SAMPLE_VALUES)?;
    txn.delete_table(PENDING_VALUES)?;
    create_tables(txn)?;
    let mut meta = txn.open_table(crate::META)?;
    meta.remove("next_value_id")?;
    meta.remove("next_sample_no")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256s_round_trip_through_their_bytes_and_nothing_else_converts() {
        let sha = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
        let bytes = sha_bytes(sha).unwrap();
        assert_eq!(bytes[0], 0x27);
        assert_eq!(sha_hex(&bytes), sha);
        for bad in [&sha[1..], &sha.to_uppercase(), &sha.replace('f', "g"), ""] {
            assert_eq!(sha_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn value_ids_round_trip_in_few_bytes() {
        let ids = [0, 1, 2, 3, 300, 301, 70_000, u64::MAX - 1, u64::MAX];
        let bytes = encode_ids(&ids);
        assert_eq!(decode_ids(&bytes), ids);
        // Consecutive ids (a sample's new values) cost a byte each.
        let run: Vec<u64> = (1_000_000..1_000_100).collect();
        assert!(encode_ids(&run).len() < 110, "{}", encode_ids(&run).len());
        assert_eq!(decode_ids(&encode_ids(&run)), run);
        // Unsorted lists still round-trip; a truncated list loses only its last id.
        assert_eq!(decode_ids(&encode_ids(&[9, 3, 7])), [9, 3, 7]);
        let mut cut = encode_ids(&[5, 1 << 40]);
        cut.pop();
        assert_eq!(decode_ids(&cut), [5]);
        assert!(decode_ids(&[0xff; 20]).is_empty());
    }
}
