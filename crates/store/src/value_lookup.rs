//! Finding the id of a known value from its field and indexed text, what registering a
//! sample's values asks for each of them: a 32-bit hash narrows the search to a candidate or
//! two, and their stored texts decide.
//!
//! A 96-bit digest → id map, unique in practice, cost 16 bytes a value (a fifth of the report
//! database at 1M benchmark reports). Its key is now the 32-bit hash and the id, with no value:
//! eight bytes. Among millions of values some hashes collide, so a candidate is taken only once
//! its stored text is the one looked for; the texts a batch has checked are kept for the rest
//! of the batch, since common values (system DLLs, registry keys) recur in most reports and
//! would otherwise be decompressed again for each.

use crate::codec::ReportCodec;
use crate::value_blocks::Block;
use crate::value_codec::Packer;
use crate::values::ValueRecord;
use crate::{Result, StoreError};
use redb::{ReadableTable, TableDefinition};
use sandscope_query::TextField;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// (32-bit hash of field and indexed text) << 32 | value id, for every value.
pub(crate) const VALUE_IDS: TableDefinition<u64, ()> = TableDefinition::new("value_hash_ids");

/// How many checked texts a batch keeps before it starts over (a bound on its memory).
const MAX_CHECKED: usize = 200_000;

/// The hash [`VALUE_IDS`] is keyed by.
pub(crate) fn value_hash(field: TextField, text: &str) -> u32 {
    let mut h = Sha256::new();
    h.update([field as u8]);
    h.update(text.as_bytes());
    let digest = h.finalize();
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The key of value `id` whose text hashes to `hash`.
pub(crate) fn key(hash: u32, id: u32) -> u64 {
    u64::from(hash) << 32 | u64::from(id)
}

/// What registering one batch's values keeps: the compressor of new values, the texts of known
/// values already checked.
pub(crate) struct Registrar<'c> {
    codec: &'c ReportCodec,
    packer: Option<Packer<'c>>,
    checked: HashMap<u64, (TextField, String)>,
}

impl<'c> Registrar<'c> {
    /// A registrar compressing new values with `codec`'s value dictionary, if it has one.
    pub(crate) fn new(codec: &'c ReportCodec) -> Result<Registrar<'c>> {
        Ok(Registrar {
            codec,
            packer: codec.value_dictionary().map(|d| d.packer()).transpose()?,
            checked: HashMap::new(),
        })
    }

    pub(crate) fn packer(&mut self) -> Option<&mut Packer<'c>> {
        self.packer.as_mut()
    }

    /// The id of the value of `field` with indexed `text` whose hash is `hash`: among those
    /// `ids` lists, in `blocks` or in `unwritten` (the first id of values not in `blocks` yet,
    /// and their records).
    pub(crate) fn find(
        &mut self,
        (ids, blocks): (
            &impl ReadableTable<u64, ()>,
            &impl ReadableTable<u32, &'static [u8]>,
        ),
        hash: u32,
        field: TextField,
        text: &str,
        (first_unwritten, unwritten): (u64, &[ValueRecord]),
    ) -> Result<Option<u64>> {
        for entry in ids.range(key(hash, 0)..=key(hash, u32::MAX))? {
            let vid = entry?.0.value() & u64::from(u32::MAX);
            let same = match vid.checked_sub(first_unwritten) {
                Some(i) => unwritten
                    .get(i as usize)
                    .is_some_and(|r| r.field == field && r.text == text),
                None => {
                    let (stored_field, stored_text) = self.checked_text(blocks, vid)?;
                    *stored_field == field && stored_text == text
                }
            };
            if same {
                return Ok(Some(vid));
            }
        }
        Ok(None)
    }

    /// Field and indexed text of stored value `vid`.
    fn checked_text(
        &mut self,
        blocks: &impl ReadableTable<u32, &'static [u8]>,
        vid: u64,
    ) -> Result<&(TextField, String)> {
        if !self.checked.contains_key(&vid) {
            if self.checked.len() >= MAX_CHECKED {
                self.checked.clear();
            }
            let record = Block::containing(blocks, vid)?
                .map(|block| block.record(vid, self.codec))
                .transpose()?
                .flatten()
                .ok_or(StoreError::CorruptValue(vid))?;
            self.checked.insert(vid, (record.field, record.text));
        }
        self.checked.get(&vid).ok_or(StoreError::CorruptValue(vid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value_blocks::{VALUE_BLOCKS, ValueReader};
    use crate::values::{SAMPLE_VALUES, decode_ids, indexed_text, register_sample};
    use sandscope_model::{BehaviourAttributes, FileBehaviour};
    use sandscope_query::{SampleDoc, TextValue};
    use std::sync::Arc;

    fn path(dir: &str, i: u32) -> String {
        format!(r"C:\ProgramData\{dir}\{i}.exe")
    }

    fn doc(sample: u64, files: &[String]) -> SampleDoc {
        let sha = format!("{sample:064x}");
        let report = FileBehaviour::new(
            &sha,
            BehaviourAttributes {
                files_written: files.to_vec(),
                ..Default::default()
            },
        );
        SampleDoc::from_reports(&sha, &[report])
    }

    /// Two paths whose 32-bit hashes are equal (the birthday bound: about 80,000 tries).
    fn colliding_paths(dir: &str) -> (String, String) {
        let mut seen = HashMap::new();
        for i in 0.. {
            let raw = path(dir, i);
            let value = TextValue {
                variants: sandscope_query::text::variants(&raw),
                raw,
            };
            let hash = value_hash(TextField::Files, &indexed_text(&value));
            if let Some(j) = seen.insert(hash, i) {
                return (path(dir, j), path(dir, i));
            }
        }
        unreachable!()
    }

    #[test]
    fn values_whose_hashes_collide_stay_two_values() {
        let (a, b) = colliding_paths("drop");
        let docs = [
            doc(1, std::slice::from_ref(&a)),
            doc(2, std::slice::from_ref(&b)),
            doc(3, &[b.clone(), a.clone()]),
        ];
        let text = |d: &SampleDoc| indexed_text(&d.text(TextField::Files)[0]);
        assert_ne!(text(&docs[0]), text(&docs[1]));
        assert_eq!(
            value_hash(TextField::Files, &text(&docs[0])),
            value_hash(TextField::Files, &text(&docs[1]))
        );

        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("v.redb")).unwrap();
        let codec = ReportCodec::default();
        let txn = db.begin_write().unwrap();
        crate::values::create_tables(&txn).unwrap();
        let mut registrar = Registrar::new(&codec).unwrap();
        // B arrives while A is stored, then both in one sample: each finds its own id.
        register_sample(&txn, &docs[0], &mut registrar).unwrap();
        register_sample(&txn, &docs[1], &mut registrar).unwrap();
        register_sample(&txn, &docs[2], &mut registrar).unwrap();
        // And two colliding values new in one sample.
        let (c, d) = colliding_paths("new");
        register_sample(&txn, &doc(4, &[c.clone(), d.clone()]), &mut registrar).unwrap();
        txn.commit().unwrap();

        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        assert_eq!(
            redb::ReadableTableMetadata::len(&txn.open_table(VALUE_IDS).unwrap()).unwrap(),
            4
        );
        let samples = txn.open_table(SAMPLE_VALUES).unwrap();
        let ids = |no: u64| decode_ids(samples.get(no).unwrap().unwrap().value());
        let reader = ValueReader::new(
            txn.open_table(VALUE_BLOCKS).unwrap(),
            Arc::new(ReportCodec::default()),
        );
        let raw = |vid: u64| reader.record(vid).unwrap().unwrap().stored().to_string();
        let (first, second, both) = (ids(0), ids(1), ids(2));
        assert_eq!(first.iter().map(|v| raw(*v)).collect::<Vec<_>>(), [a]);
        assert_eq!(second.iter().map(|v| raw(*v)).collect::<Vec<_>>(), [b]);
        let mut expected = [first[0], second[0]];
        expected.sort();
        assert_eq!(both, expected);
        let mut new_pair: Vec<String> = ids(3).iter().map(|v| raw(*v)).collect();
        new_pair.sort();
        let mut expected = [c, d];
        expected.sort();
        assert_eq!(new_pair, expected);
    }
}
