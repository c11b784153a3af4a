//! How the value dictionary keeps a value's text: zstd with a dictionary trained on the data
//! directory's own values.
//!
//! Values are short (53 bytes on average on the benchmark's reports) and alike: the same
//! directory prefixes, extensions, registry hives and command-line switches recur in millions
//! of them, while each alone is too short for a compressor to find anything to reuse. A
//! dictionary trained once on the store's first values holds what they share, so a value costs
//! about what is its own (at 100k benchmark reports the value table's text fell from 119 to
//! 82 MiB; their random file and directory names are most of what is left). A value is kept
//! compressed only when that makes it smaller (the flag is in its record, see `values`); the
//! store has one value dictionary, never changed once written.
//!
//! A compressed value is one zstd frame without its four-byte magic number (every frame has
//! the same one): no checksum, no dictionary id, its size in the header.

use crate::{Result, StoreError};
use redb::{ReadableTable, TableDefinition};
use std::cell::RefCell;
use std::sync::Arc;
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe;

/// The value dictionary (one row, [`DICTIONARY_KEY`]).
pub(crate) const VALUE_DICTS: TableDefinition<u64, &[u8]> = TableDefinition::new("value_dicts");
const DICTIONARY_KEY: u64 = 1;

/// zstd's frame magic number, as the frame's first four bytes.
const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();
/// Levels above the default find little more in strings this short.
const LEVEL: i32 = 3;
/// A dictionary is trained once the store and the batch being written hold this many values.
pub(crate) const TRAIN_AT_VALUES: u64 = 5_000;
/// What it is trained on: up to this many values …
pub(crate) const TRAIN_VALUES: usize = 50_000;
/// … and this many bytes of them.
const TRAIN_BYTES: usize = 4 << 20;
const DICTIONARY_BYTES: usize = 64 << 10;
/// The largest text a value decompresses to: a value is at most 8,192 characters, and its
/// stored text at most a few spellings of it.
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// The store's value dictionary, ready to compress and decompress with.
pub(crate) struct ValueDictionary {
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

thread_local! {
    /// One decompression context per thread: a search decompresses values one at a time, and
    /// a context costs more to create than a short value costs to decompress.
    static DECOMPRESSOR: RefCell<Option<zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

impl ValueDictionary {
    pub(crate) fn new(dictionary: &[u8]) -> Result<ValueDictionary> {
        let bad = |e: std::io::Error| StoreError::Compression(format!("value dictionary: {e}"));
        Ok(ValueDictionary {
            encoder: EncoderDictionary::try_copy(dictionary, LEVEL).map_err(bad)?,
            decoder: DecoderDictionary::try_copy(dictionary).map_err(bad)?,
        })
    }

    /// The dictionary stored in `table`, if the store has one.
    pub(crate) fn load(
        table: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Option<Arc<ValueDictionary>>> {
        match table.get(DICTIONARY_KEY)? {
            Some(bytes) => Ok(Some(Arc::new(ValueDictionary::new(bytes.value())?))),
            None => Ok(None),
        }
    }

    /// Store `dictionary` as the store's value dictionary.
    pub(crate) fn save(txn: &redb::WriteTransaction, dictionary: &[u8]) -> Result<()> {
        txn.open_table(VALUE_DICTS)?
            .insert(DICTIONARY_KEY, dictionary)?;
        Ok(())
    }

    /// A compressor for the values of one batch.
    pub(crate) fn packer(&self) -> Result<Packer<'_>> {
        let failed = |e: std::io::Error| StoreError::Compression(format!("values: {e}"));
        let mut compressor =
            zstd::bulk::Compressor::with_prepared_dictionary(&self.encoder).map_err(failed)?;
        // There is one value dictionary: its id need not be in every value.
        compressor
            .set_parameter(zstd_safe::CParameter::DictIdFlag(false))
            .map_err(failed)?;
        Ok(Packer { compressor })
    }

    /// The bytes [`Packer::pack`] compressed; `None` when they are damaged.
    pub(crate) fn unpack(&self, packed: &[u8]) -> Option<Vec<u8>> {
        let mut frame = Vec::with_capacity(MAGIC.len() + packed.len());
        frame.extend_from_slice(&MAGIC);
        frame.extend_from_slice(packed);
        let size = zstd_safe::get_frame_content_size(&frame).ok()??;
        if size > MAX_TEXT_BYTES {
            return None;
        }
        let mut out = Vec::with_capacity(usize::try_from(size).ok()?);
        let written = DECOMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let dctx = cell.get_or_insert_with(zstd_safe::DCtx::create);
            dctx.decompress_using_ddict(&mut out, &frame, self.decoder.as_ddict())
                .ok()
        })?;
        (written as u64 == size).then_some(out)
    }
}

/// Compresses the values of one batch.
pub(crate) struct Packer<'d> {
    compressor: zstd::bulk::Compressor<'d>,
}

impl Packer<'_> {
    /// `bytes` compressed, when that makes them smaller.
    pub(crate) fn pack(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let frame = self.compressor.compress(bytes).ok()?;
        let packed = frame.strip_prefix(&MAGIC[..])?;
        (packed.len() < bytes.len()).then(|| packed.to_vec())
    }
}

/// A dictionary trained on `values`, or `None` when they are too few or too small (zstd
/// refuses).
pub(crate) fn train<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    crate::codec::train_dictionary(values, TRAIN_VALUES, TRAIN_BYTES, DICTIONARY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| match i % 3 {
                0 => format!(
                    r"C:\Users\bob{i}\AppData\Local\Temp\update_{:x}.exe",
                    i * 7919
                ),
                1 => format!(
                    r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\x{i}"
                ),
                _ => format!(r#""C:\Windows\System32\cmd.exe" /c del C:\ProgramData\{i}.bat"#),
            })
            .collect()
    }

    #[test]
    fn values_compress_to_a_fraction_and_read_back() {
        let all = values(6_000);
        let dictionary = train(all.iter().map(|v| v.as_bytes())).unwrap();
        let dict = ValueDictionary::new(&dictionary).unwrap();
        let mut packer = dict.packer().unwrap();
        let (mut plain, mut packed_total) = (0, 0);
        for v in &all {
            let packed = packer.pack(v.as_bytes()).unwrap();
            assert_eq!(dict.unpack(&packed).unwrap(), v.as_bytes());
            plain += v.len();
            packed_total += packed.len();
        }
        assert!(packed_total * 3 < plain, "{packed_total} of {plain} bytes");
        // Too short to gain: kept as is.
        assert!(packer.pack(b"ab").is_none());
    }

    #[test]
    fn damaged_values_are_none_not_a_panic() {
        let all = values(6_000);
        let dict = ValueDictionary::new(&train(all.iter().map(|v| v.as_bytes())).unwrap()).unwrap();
        let packed = dict.packer().unwrap().pack(all[0].as_bytes()).unwrap();
        for cut in 0..packed.len() {
            assert!(dict.unpack(&packed[..cut]).is_none(), "cut at {cut}");
        }
        assert!(dict.unpack(&[0xff; 40]).is_none());
    }

    #[test]
    fn too_few_values_train_no_dictionary() {
        assert!(train([b"C:\\Windows".as_slice()]).is_none());
        assert!(train(std::iter::empty()).is_none());
    }
}
