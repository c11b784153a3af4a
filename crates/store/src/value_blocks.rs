//! How the value dictionary keeps its records: in blocks of consecutive value ids (the new
//! values one sample registers), their texts compressed together.
//!
//! A value's text alone is too short for zstd to do well even with the value dictionary: its
//! random file names stay literals, and every compressed text carries its own block and
//! sequence headers; one redb entry per value also costs its key and page bookkeeping. The
//! values one sample brings are written together and are alike (the same user profile, the
//! same directories), so compressed together they cost little more than what is their own, in
//! one entry.
//!
//! A block, under the id of its first value: the number of values (LEB128); per value its
//! owner + 1 as the zig-zag LEB128 difference from the previous value's (a sample's own run
//! costs a byte a value) and its field-and-flags byte (see [`ValueHeader`]); a byte saying how
//! the texts are kept (plain, or packed with the value dictionary); then the texts, each after
//! its length (LEB128). Owners and flags stay outside the compressed part, so a value changing
//! hands rewrites them without compressing the texts again.

use crate::codec::ReportCodec;
use crate::value_codec::Packer;
use crate::values::{ValueHeader, ValueRecord, table_id};
use crate::{Result, StoreError};
use redb::{ReadableTable, TableDefinition};
use std::cell::RefCell;
use std::sync::Arc;

/// First value id of a block → the block (see the module docs).
pub(crate) const VALUE_BLOCKS: TableDefinition<u32, &[u8]> = TableDefinition::new("value_blocks");

/// A block holds at most this many values …
pub(crate) const MAX_VALUES: usize = 256;
/// … and, unless it holds one value, at most this many bytes of text: a block is decompressed
/// whole to read one value, and its texts stay well inside one zstd block (see `value_codec`).
pub(crate) const MAX_TEXT_BYTES: usize = 32 << 10;

/// How a block keeps its texts.
const PLAIN: u8 = 0;
const PACKED: u8 = 1;

/// One block as stored, its texts not decompressed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    first: u64,
    headers: Vec<ValueHeader>,
    packed: bool,
    texts: Vec<u8>,
}

impl Block {
    /// The block of `records`, the first with id `first`; their texts are packed by `packer`
    /// when that makes them smaller.
    pub(crate) fn new(
        first: u64,
        records: &[ValueRecord],
        packer: Option<&mut Packer<'_>>,
    ) -> Block {
        let mut plain = Vec::with_capacity(records.iter().map(|r| 2 + r.stored().len()).sum());
        for record in records {
            crate::leb128::push(&mut plain, record.stored().len() as u64);
            plain.extend_from_slice(record.stored().as_bytes());
        }
        let packed = packer.and_then(|p| p.pack(&plain));
        Block {
            first,
            headers: records.iter().map(ValueRecord::header).collect(),
            packed: packed.is_some(),
            texts: packed.unwrap_or(plain),
        }
    }

    /// The block with the greatest first id not above `vid`, if it holds `vid`.
    pub(crate) fn containing(
        table: &impl ReadableTable<u32, &'static [u8]>,
        vid: u64,
    ) -> Result<Option<Block>> {
        let Some(id) = table_id(vid) else {
            return Ok(None);
        };
        let Some(entry) = table.range(..=id)?.next_back() else {
            return Ok(None);
        };
        let (first, bytes) = entry?;
        let block = Block::decode(u64::from(first.value()), bytes.value())?;
        Ok(block.holds(vid).then_some(block))
    }

    /// Write the block under its first id.
    pub(crate) fn save(&self, table: &mut redb::Table<'_, u32, &'static [u8]>) -> Result<()> {
        let key = table_id(self.first).ok_or(StoreError::TooManyValues(self.first))?;
        table.insert(key, self.encode().as_slice())?;
        Ok(())
    }

    fn holds(&self, vid: u64) -> bool {
        vid.checked_sub(self.first)
            .is_some_and(|i| i < self.headers.len() as u64)
    }

    fn index(&self, vid: u64) -> Option<usize> {
        self.holds(vid).then(|| (vid - self.first) as usize)
    }

    /// Owner and flags of value `vid`, if the block holds it.
    pub(crate) fn header(&self, vid: u64) -> Option<ValueHeader> {
        self.index(vid).map(|i| self.headers[i])
    }

    /// Give value `vid` (which the block holds) `header`.
    pub(crate) fn set_header(&mut self, vid: u64, header: ValueHeader) {
        if let Some(i) = self.index(vid) {
            self.headers[i] = header;
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + 2 * self.headers.len() + self.texts.len());
        crate::leb128::push(&mut out, self.headers.len() as u64);
        let mut previous = 0u64;
        for header in &self.headers {
            let owner = header.owner.wrapping_add(1);
            crate::leb128::push(&mut out, zigzag(owner.wrapping_sub(previous)));
            previous = owner;
            out.push(header.flags());
        }
        out.push(if self.packed { PACKED } else { PLAIN });
        out.extend_from_slice(&self.texts);
        out
    }

    pub(crate) fn decode(first: u64, bytes: &[u8]) -> Result<Block> {
        let corrupt = || StoreError::CorruptValue(first);
        let (count, mut rest) = crate::leb128::read(bytes).ok_or_else(corrupt)?;
        // Each value takes at least two bytes of header: a count beyond that is damage.
        if count == 0 || count > rest.len() as u64 / 2 {
            return Err(corrupt());
        }
        let mut headers = Vec::with_capacity(count as usize);
        let mut previous = 0u64;
        for _ in 0..count {
            let (delta, after) = crate::leb128::read(rest).ok_or_else(corrupt)?;
            let (&flags, after) = after.split_first().ok_or_else(corrupt)?;
            previous = previous.wrapping_add(unzigzag(delta));
            headers.push(ValueHeader::new(previous.wrapping_sub(1), flags));
            rest = after;
        }
        let (&mode, texts) = rest.split_first().ok_or_else(corrupt)?;
        if mode != PLAIN && mode != PACKED {
            return Err(corrupt());
        }
        Ok(Block {
            first,
            headers,
            packed: mode == PACKED,
            texts: texts.to_vec(),
        })
    }

    /// The stored text of every value, in id order; `codec` holds the store's value
    /// dictionary (a packed block without it is corrupt).
    pub(crate) fn texts(&self, codec: &ReportCodec) -> Result<Vec<String>> {
        let corrupt = || StoreError::CorruptValue(self.first);
        let unpacked;
        let mut rest = if self.packed {
            unpacked = codec
                .value_dictionary()
                .and_then(|d| d.unpack(&self.texts))
                .ok_or_else(corrupt)?;
            unpacked.as_slice()
        } else {
            self.texts.as_slice()
        };
        let mut texts = Vec::with_capacity(self.headers.len());
        while !rest.is_empty() {
            let (len, after) = crate::leb128::read(rest).ok_or_else(corrupt)?;
            let len = usize::try_from(len).map_err(|_| corrupt())?;
            let (text, after) = after.split_at_checked(len).ok_or_else(corrupt)?;
            texts.push(String::from_utf8(text.to_vec()).map_err(|_| corrupt())?);
            rest = after;
        }
        if texts.len() != self.headers.len() {
            return Err(corrupt());
        }
        Ok(texts)
    }

    /// The record of value `vid`, if the block holds it.
    pub(crate) fn record(&self, vid: u64, codec: &ReportCodec) -> Result<Option<ValueRecord>> {
        let Some(i) = self.index(vid) else {
            return Ok(None);
        };
        let mut texts = self.texts(codec)?;
        ValueRecord::from_stored(vid, self.headers[i], std::mem::take(&mut texts[i])).map(Some)
    }

    /// Every record of the block, in id order, with its id.
    pub(crate) fn records(&self, codec: &ReportCodec) -> Result<Vec<(u64, ValueRecord)>> {
        let texts = self.texts(codec)?;
        (self.first..)
            .zip(self.headers.iter().zip(texts))
            .map(|(vid, (header, text))| Ok((vid, ValueRecord::from_stored(vid, *header, text)?)))
            .collect()
    }
}

fn zigzag(n: u64) -> u64 {
    let n = n as i64;
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> u64 {
    (n >> 1) ^ (n & 1).wrapping_neg()
}

/// Reads values one at a time, keeping the last block read (a sample's values are mostly
/// consecutive, so mostly in one block).
pub(crate) struct ValueReader<T> {
    table: T,
    codec: Arc<ReportCodec>,
    last: RefCell<Option<(Block, Option<Vec<String>>)>>,
}

impl<T: ReadableTable<u32, &'static [u8]>> ValueReader<T> {
    /// Reads `table` (the [`VALUE_BLOCKS`] of the transaction `codec` was taken after).
    pub(crate) fn new(table: T, codec: Arc<ReportCodec>) -> ValueReader<T> {
        ValueReader {
            table,
            codec,
            last: RefCell::new(None),
        }
    }

    /// `f` of the block holding `vid` and its texts so far; `None` when no value has that id.
    fn with_block<R>(
        &self,
        vid: u64,
        f: impl FnOnce(&Block, &mut Option<Vec<String>>) -> Result<R>,
    ) -> Result<Option<R>> {
        let mut last = self.last.borrow_mut();
        if !last.as_ref().is_some_and(|(block, _)| block.holds(vid)) {
            match Block::containing(&self.table, vid)? {
                Some(block) => *last = Some((block, None)),
                None => return Ok(None),
            }
        }
        match last.as_mut() {
            Some((block, texts)) => f(block, texts).map(Some),
            None => Ok(None),
        }
    }

    /// Owner and flags of value `vid`, without decompressing any text.
    pub(crate) fn header(&self, vid: u64) -> Result<Option<ValueHeader>> {
        Ok(self
            .with_block(vid, |block, _| Ok(block.header(vid)))?
            .flatten())
    }

    /// The record of value `vid`.
    pub(crate) fn record(&self, vid: u64) -> Result<Option<ValueRecord>> {
        let codec = &self.codec;
        self.with_block(vid, |block, texts| {
            if texts.is_none() {
                *texts = Some(block.texts(codec)?);
            }
            let i = block.index(vid);
            match (i, texts.as_ref()) {
                (Some(i), Some(texts)) => {
                    ValueRecord::from_stored(vid, block.headers[i], texts[i].clone()).map(Some)
                }
                _ => Ok(None),
            }
        })
        .map(Option::flatten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value_codec::ValueDictionary;
    use crate::values::{NO_OWNER, indexed_text};
    use sandscope_query::{TextField, TextValue};

    fn value(raw: &str, extra_raw: Option<&str>) -> TextValue {
        let mut variants = sandscope_query::text::variants(raw);
        for v in extra_raw
            .map(sandscope_query::text::variants)
            .unwrap_or_default()
        {
            if !variants.contains(&v) {
                variants.push(v);
            }
        }
        TextValue {
            raw: raw.to_string(),
            variants,
        }
    }

    fn record(owner: u64, v: &TextValue) -> ValueRecord {
        ValueRecord::new(owner, TextField::Files, v, indexed_text(v))
    }

    /// What one sample of the benchmark brings: paths under its own profile with random names.
    fn sample_paths(sample: u64) -> Vec<TextValue> {
        (0..20)
            .map(|i| {
                let n = sample.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i * 0x2545_F491);
                value(
                    &format!(
                        r"C:\Users\bob{sample}\AppData\Local\Temp\{:08x}\setup_{:x}.exe",
                        n >> 32,
                        n & 0xff_ffff
                    ),
                    None,
                )
            })
            .collect()
    }

    fn round_trip(block: &Block, codec: &ReportCodec) -> Vec<(u64, ValueRecord)> {
        Block::decode(block.first, &block.encode())
            .unwrap()
            .records(codec)
            .unwrap()
    }

    #[test]
    fn blocks_keep_reported_values_and_read_back_every_spelling() {
        let codec = ReportCodec::default();
        let path = r"C:\Users\bob\AppData\Local\Temp\setup_1f2e.exe";
        let plain = value(path, None);
        // A value whose report kept another raw spelling keeps all its spellings.
        let kept = value(
            path,
            Some(r"C:\Users\BOB~1\AppData\Local\Temp\setup_1f2e.exe"),
        );
        let records = vec![record(7, &plain), record(7, &kept), record(9, &plain)];
        let block = Block::new(40, &records, None);
        // Three spellings of the plain path, stored once as reported.
        assert_eq!(plain.variants.len(), 3);
        assert_eq!(records[0].stored(), path);
        let back = round_trip(&block, &codec);
        assert_eq!(
            back.iter().map(|(vid, _)| *vid).collect::<Vec<_>>(),
            [40, 41, 42]
        );
        assert_eq!(
            back.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            records
        );
        assert!(records[1].text.contains(" bob 1 "), "{}", records[1].text);
        assert!(records[0].holds_in_order(&["appdata".into(), "temp".into()]));
        assert_eq!(block.header(39), None);
        assert_eq!(block.header(43), None);

        // A value changing hands: its header changes, its text stays as it was.
        let mut changed = block.clone();
        let header = changed.header(41).unwrap();
        changed.set_header(41, header.with_owner(NO_OWNER, true));
        assert_eq!(changed.texts, block.texts);
        let back = round_trip(&changed, &codec);
        assert_eq!((back[1].1.owner, back[1].1.shared), (NO_OWNER, true));
        assert_eq!(back[1].1.text, records[1].text);
        assert_eq!((back[0].1.owner, back[2].1.owner), (7, 9));
    }

    #[test]
    fn damaged_blocks_are_errors_naming_the_block_not_panics() {
        let codec = ReportCodec::default();
        let records: Vec<ValueRecord> = sample_paths(3).iter().map(|v| record(3, v)).collect();
        let bytes = Block::new(5, &records, None).encode();
        for cut in 0..bytes.len() {
            let read = Block::decode(5, &bytes[..cut]).and_then(|b| b.records(&codec));
            assert!(
                matches!(read, Err(StoreError::CorruptValue(5))),
                "cut at {cut}"
            );
        }
        let mut bad_field = bytes.clone();
        bad_field[2] = 0x0e;
        assert!(
            Block::decode(5, &bad_field)
                .unwrap()
                .records(&codec)
                .is_err()
        );
        let mut bad_text = bytes.clone();
        bad_text.push(0xff);
        assert!(
            Block::decode(5, &bad_text)
                .unwrap()
                .records(&codec)
                .is_err()
        );
        assert!(Block::decode(5, &[0xff; 30]).is_err());
    }

    #[test]
    fn a_samples_values_compressed_together_cost_a_fraction_of_each_compressed_alone() {
        let samples: Vec<Vec<TextValue>> = (0..400).map(sample_paths).collect();
        let dictionary =
            crate::value_codec::train(samples.iter().flatten().map(|v| v.raw.as_bytes())).unwrap();
        let dictionary = Arc::new(ValueDictionary::new(&dictionary).unwrap());
        let codec = ReportCodec::default().with_value_dictionary(Some(dictionary.clone()));
        let mut packer = dictionary.packer().unwrap();
        let values = &samples[17];
        let records: Vec<ValueRecord> = values.iter().map(|v| record(17, v)).collect();
        let block = Block::new(100, &records, Some(&mut packer));
        let alone: usize = values
            .iter()
            .map(|v| {
                2 + packer
                    .pack(v.raw.as_bytes())
                    .map_or(v.raw.len(), |p| p.len())
            })
            .sum();
        let together = block.encode().len();
        assert!(
            together * 10 < alone * 7,
            "{together} bytes together, {alone} alone"
        );
        assert_eq!(round_trip(&block, &codec).len(), values.len());
        assert_eq!(round_trip(&block, &codec)[3].1, records[3]);
        // Without the dictionary, or damaged, it is an error naming the block.
        assert!(matches!(
            block.records(&ReportCodec::default()),
            Err(StoreError::CorruptValue(100))
        ));
        let mut damaged = block.clone();
        damaged.texts.pop();
        assert!(damaged.records(&codec).is_err());
    }

    #[test]
    fn a_reader_finds_each_value_in_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("v.redb")).unwrap();
        let blocks: Vec<Vec<ValueRecord>> = (0..3)
            .map(|s| sample_paths(s).iter().map(|v| record(s, v)).collect())
            .collect();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(VALUE_BLOCKS).unwrap();
            for (s, records) in blocks.iter().enumerate() {
                Block::new(s as u64 * 20, records, None)
                    .save(&mut table)
                    .unwrap();
            }
        }
        txn.commit().unwrap();
        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        let reader = ValueReader::new(
            txn.open_table(VALUE_BLOCKS).unwrap(),
            Arc::new(ReportCodec::default()),
        );
        for vid in [0, 19, 20, 45, 59, 3] {
            let expected = &blocks[vid as usize / 20][vid as usize % 20];
            assert_eq!(
                reader.record(vid).unwrap().as_ref(),
                Some(expected),
                "{vid}"
            );
            assert_eq!(reader.header(vid).unwrap().map(|h| h.owner), Some(vid / 20));
        }
        assert_eq!(reader.record(60).unwrap(), None);
        assert_eq!(reader.header(u64::MAX).unwrap(), None);
    }
}
