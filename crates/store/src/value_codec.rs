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
//! A compressed value is the one compressed block of a zstd frame, after its size (LEB128):
//! every such frame has the same magic number and header flags (one segment, no checksum, no
//! dictionary id) and one block, whose size is what remains of the record, so the five to six
//! bytes of frame and block header are rebuilt on reading instead of kept with each of
//! millions of values.

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
/// The frame header descriptor of a rebuilt frame: one segment, a four-byte content size, no
/// checksum, no dictionary id.
const SINGLE_SEGMENT_FCS4: u8 = 0b1010_0000;
/// Block type of a compressed block (the other types are never kept compressed).
const COMPRESSED_BLOCK: u32 = 2;
/// zstd's largest block.
const MAX_BLOCK_BYTES: usize = 128 << 10;
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
        let (size, block) = crate::leb128::read(packed)?;
        if size > MAX_TEXT_BYTES || block.is_empty() || block.len() > MAX_BLOCK_BYTES {
            return None;
        }
        let frame = rebuild_frame(u32::try_from(size).ok()?, block)?;
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

/// The zstd frame of one compressed `block` of `size` bytes (see the module docs).
fn rebuild_frame(size: u32, block: &[u8]) -> Option<Vec<u8>> {
    let block_len = u32::try_from(block.len()).ok()?;
    let block_header = 1 | COMPRESSED_BLOCK << 1 | block_len << 3;
    let mut frame = Vec::with_capacity(MAGIC.len() + 8 + block.len());
    frame.extend_from_slice(&MAGIC);
    frame.push(SINGLE_SEGMENT_FCS4);
    frame.extend_from_slice(&size.to_le_bytes());
    frame.extend_from_slice(&block_header.to_le_bytes()[..3]);
    frame.extend_from_slice(block);
    Some(frame)
}

/// The content size and the one compressed block of `frame` (without its magic number), when
/// it has the shape [`rebuild_frame`] restores: one segment, no checksum, no dictionary id, one
/// compressed block. `None` for any other frame (the value is then kept uncompressed).
fn single_block(frame: &[u8]) -> Option<(u64, &[u8])> {
    let (&descriptor, rest) = frame.split_first()?;
    let single_segment = descriptor & 0b0010_0000 != 0;
    let checksum = descriptor & 0b0000_0100 != 0;
    let dictionary_id = descriptor & 0b0000_0011 != 0;
    if !single_segment || checksum || dictionary_id {
        return None;
    }
    let size_bytes = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let (size, rest) = rest.split_at_checked(size_bytes)?;
    let mut le = [0u8; 8];
    le[..size_bytes].copy_from_slice(size);
    let size = u64::from_le_bytes(le) + if size_bytes == 2 { 256 } else { 0 };
    let (header, block) = rest.split_at_checked(3)?;
    let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
    let last = header & 1 == 1;
    let compressed = (header >> 1) & 3 == COMPRESSED_BLOCK;
    (last && compressed && (header >> 3) as usize == block.len()).then_some((size, block))
}

/// Compresses the values of one batch.
pub(crate) struct Packer<'d> {
    compressor: zstd::bulk::Compressor<'d>,
}

impl Packer<'_> {
    /// `bytes` compressed, when that makes them smaller.
    pub(crate) fn pack(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let frame = self.compressor.compress(bytes).ok()?;
        let (size, block) = single_block(frame.strip_prefix(&MAGIC[..])?)?;
        if size != bytes.len() as u64 {
            return None;
        }
        let mut packed = Vec::with_capacity(3 + block.len());
        crate::leb128::push(&mut packed, size);
        packed.extend_from_slice(block);
        (packed.len() < bytes.len()).then_some(packed)
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
