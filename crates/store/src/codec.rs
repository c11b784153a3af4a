//! How a report is kept in `reports.redb`: its JSON, compressed with zstd and a dictionary
//! trained on the data directory's own reports.
//!
//! Reports resemble each other far more than any one resembles itself: the same field names,
//! path prefixes, Sysmon spellings and command lines recur in every report, and a report
//! compressed alone describes them again each time. A dictionary trained once on the store's
//! first reports holds them, so each report costs about what is its own (on the benchmark's
//! reports at 100k: 1,420 bytes per report deflated, about 440 with a dictionary).
//!
//! Every stored report says how it was written (its first byte), so reports from before the
//! dictionary, or from an older version of the store, read as they are:
//! * `{` — plain JSON (the first format);
//! * [`DEFLATED`] — deflate (before zstd);
//! * [`ZSTD`] — zstd without a dictionary (until the store has enough reports to train one);
//! * [`ZSTD_DICT`] — zstd with the dictionary whose id follows (LEB128), a row of
//!   [`REPORT_DICTS`]. A dictionary is never changed or removed once written.

use crate::value_codec::ValueDictionary;
use crate::{Result, StoreError};
use redb::{ReadableTable, TableDefinition};
use sandscope_model::FileBehaviour;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// Dictionary id → the zstd dictionary.
pub(crate) const REPORT_DICTS: TableDefinition<u64, &[u8]> = TableDefinition::new("report_dicts");

const DEFLATED: u8 = 1;
const ZSTD: u8 = 2;
const ZSTD_DICT: u8 = 3;

/// zstd's default level, for reports as they are ingested: faster than the deflate it
/// replaced, and cheap beside building the report.
pub const LEVEL: i32 = 3;
/// The level [`Store::compact`](crate::Store::compact) rewrites every report at. With the
/// dictionary it still finds longer matches: on the benchmark's reports, 16% fewer bytes than
/// [`LEVEL`] (level 12: 19%, at nearly twice the time of 9). Compaction is rare and explicit,
/// so ingest keeps the fast level and the store pays the slow one once.
pub const COMPACT_LEVEL: i32 = 9;
/// A dictionary is trained once the store has this many reports (fewer say too little about
/// the ones to come).
pub const TRAIN_AT_REPORTS: u64 = 200;
/// What a dictionary is trained on: up to this many reports …
pub const TRAIN_REPORTS: usize = 2_000;
/// … and this many bytes of their JSON (training time grows with it).
const TRAIN_BYTES: usize = 16 << 20;
/// zstd's own default dictionary size.
const DICTIONARY_BYTES: usize = 112 << 10;

/// The dictionary new reports are written with.
struct Current {
    id: u64,
    encoder: EncoderDictionary<'static>,
    /// The dictionary itself, for an encoder at another level than [`LEVEL`].
    dictionary: Vec<u8>,
}

/// The dictionaries of one data directory: every report dictionary for reading, the newest
/// for writing, and the value dictionary (see `value_codec`). Immutable; a store swaps in a
/// new codec once a new dictionary has been committed.
#[derive(Default, Clone)]
pub(crate) struct ReportCodec {
    decoders: HashMap<u64, Arc<DecoderDictionary<'static>>>,
    current: Option<Arc<Current>>,
    values: Option<Arc<ValueDictionary>>,
}

impl ReportCodec {
    /// The codec of the dictionaries in `table`.
    pub(crate) fn load(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<ReportCodec> {
        let mut codec = ReportCodec::default();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            codec = codec.with_dictionary(id.value(), bytes.value())?;
        }
        Ok(codec)
    }

    /// This codec and dictionary `id`, which becomes the one new reports are written with.
    pub(crate) fn with_dictionary(&self, id: u64, dictionary: &[u8]) -> Result<ReportCodec> {
        let bad = |e: std::io::Error| StoreError::Compression(format!("dictionary {id}: {e}"));
        let mut codec = self.clone();
        codec.decoders.insert(
            id,
            Arc::new(DecoderDictionary::try_copy(dictionary).map_err(bad)?),
        );
        codec.current = Some(Arc::new(Current {
            id,
            encoder: EncoderDictionary::try_copy(dictionary, LEVEL).map_err(bad)?,
            dictionary: dictionary.to_vec(),
        }));
        Ok(codec)
    }

    /// The store's value dictionary, if it has one.
    pub(crate) fn value_dictionary(&self) -> Option<&ValueDictionary> {
        self.values.as_deref()
    }

    /// This codec and `values`, the store's value dictionary.
    pub(crate) fn with_value_dictionary(
        &self,
        values: Option<Arc<ValueDictionary>>,
    ) -> ReportCodec {
        ReportCodec {
            values,
            ..self.clone()
        }
    }

    /// Whether new reports are written with a dictionary.
    pub(crate) fn has_dictionary(&self) -> bool {
        self.current.is_some()
    }

    /// The id the next dictionary gets.
    pub(crate) fn next_id(&self) -> u64 {
        self.decoders.keys().max().map_or(1, |id| id + 1)
    }

    /// A compressor for a batch of reports.
    pub(crate) fn encoder(&self) -> Result<Encoder<'_>> {
        self.encoder_with(
            |current| zstd::bulk::Compressor::with_prepared_dictionary(&current.encoder),
            LEVEL,
        )
    }

    /// A compressor for every report of the store at [`COMPACT_LEVEL`].
    pub(crate) fn compaction_encoder(&self) -> Result<Encoder<'_>> {
        self.encoder_with(
            |current| zstd::bulk::Compressor::with_dictionary(COMPACT_LEVEL, &current.dictionary),
            COMPACT_LEVEL,
        )
    }

    /// An encoder with the current dictionary's compressor made by `with_dictionary`, or
    /// without a dictionary at `level` when the store has none yet.
    fn encoder_with<'c>(
        &'c self,
        with_dictionary: impl FnOnce(&'c Current) -> std::io::Result<zstd::bulk::Compressor<'c>>,
        level: i32,
    ) -> Result<Encoder<'c>> {
        let failed = |e: std::io::Error| StoreError::Compression(e.to_string());
        let (prefix, mut compressor) = match self.current.as_deref() {
            Some(current) => {
                let mut prefix = vec![ZSTD_DICT];
                crate::leb128::push(&mut prefix, current.id);
                (prefix, with_dictionary(current).map_err(failed)?)
            }
            None => (
                vec![ZSTD],
                zstd::bulk::Compressor::new(level).map_err(failed)?,
            ),
        };
        // The dictionary is named by the prefix already.
        compressor
            .set_parameter(zstd::zstd_safe::CParameter::DictIdFlag(false))
            .map_err(failed)?;
        Ok(Encoder { prefix, compressor })
    }

    /// A stored report, in any of the formats of the module docs.
    pub(crate) fn decode(&self, id: &str, bytes: &[u8]) -> Result<FileBehaviour> {
        let json = self.json(id, bytes)?;
        serde_json::from_slice(&json).map_err(|source| StoreError::Corrupt {
            id: id.to_string(),
            source,
        })
    }

    /// A stored report's JSON, decompressed but not parsed.
    pub(crate) fn json<'b>(&self, id: &str, bytes: &'b [u8]) -> Result<Cow<'b, [u8]>> {
        let corrupt = |source| StoreError::Corrupt {
            id: id.to_string(),
            source,
        };
        let unreadable = |e: std::io::Error| corrupt(serde_json::Error::io(e));
        Ok(Cow::Owned(match bytes.split_first() {
            Some((&DEFLATED, deflated)) => {
                let mut json = Vec::with_capacity(deflated.len() * 4);
                flate2::read::DeflateDecoder::new(deflated)
                    .read_to_end(&mut json)
                    .map_err(unreadable)?;
                json
            }
            Some((&ZSTD, compressed)) => {
                let mut json = Vec::with_capacity(compressed.len() * 4);
                zstd::stream::read::Decoder::with_buffer(compressed)
                    .and_then(|mut d| d.read_to_end(&mut json))
                    .map_err(unreadable)?;
                json
            }
            Some((&ZSTD_DICT, rest)) => {
                let (dict, compressed) = crate::leb128::read(rest)
                    .ok_or_else(|| unreadable(std::io::Error::other("truncated dictionary id")))?;
                let dictionary = self.decoders.get(&dict).ok_or_else(|| {
                    unreadable(std::io::Error::other(format!(
                        "written with dictionary {dict}, which the store does not have"
                    )))
                })?;
                let mut json = Vec::with_capacity(compressed.len() * 8);
                zstd::stream::read::Decoder::with_prepared_dictionary(compressed, dictionary)
                    .and_then(|mut d| d.read_to_end(&mut json))
                    .map_err(unreadable)?;
                json
            }
            _ => return Ok(Cow::Borrowed(bytes)),
        }))
    }
}

/// Compresses the reports of one batch with the codec's current dictionary.
pub(crate) struct Encoder<'c> {
    prefix: Vec<u8>,
    compressor: zstd::bulk::Compressor<'c>,
}

impl Encoder<'_> {
    pub(crate) fn encode(&mut self, json: &[u8]) -> Result<Vec<u8>> {
        let mut out =
            Vec::with_capacity(self.prefix.len() + zstd::zstd_safe::compress_bound(json.len()));
        out.extend_from_slice(&self.prefix);
        let start = out.len();
        out.resize(out.capacity(), 0);
        let written = self
            .compressor
            .compress_to_buffer(json, &mut out[start..])
            .map_err(|e| StoreError::Compression(e.to_string()))?;
        out.truncate(start + written);
        Ok(out)
    }
}

/// A dictionary trained on `samples` (reports' JSON, taken only as far as the training limits
/// go, so a lazy iterator serialises no more than is used), or `None` when they are too few or
/// too small to train one (zstd refuses).
pub fn train(samples: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Option<Vec<u8>> {
    train_dictionary(samples, TRAIN_REPORTS, TRAIN_BYTES, DICTIONARY_BYTES)
}

/// A zstd dictionary of at most `dictionary_bytes` trained on the first `max_samples` of
/// `samples` (at most `max_bytes` of them), or `None` when zstd refuses them. Shared by the
/// report and value dictionaries.
pub(crate) fn train_dictionary(
    samples: impl IntoIterator<Item = impl AsRef<[u8]>>,
    max_samples: usize,
    max_bytes: usize,
    dictionary_bytes: usize,
) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut sizes = Vec::new();
    for sample in samples {
        let sample = sample.as_ref();
        if sizes.len() == max_samples || data.len() + sample.len() > max_bytes {
            break;
        }
        data.extend_from_slice(sample);
        sizes.push(sample.len());
    }
    // zstd wants a hundred times the dictionary's size of samples at best, and fails on far
    // less than ten times.
    let size = (data.len() / 16).min(dictionary_bytes);
    if size < 1024 {
        return None;
    }
    zstd::dict::from_continuous(&data, &sizes, size).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(i: usize) -> (FileBehaviour, Vec<u8>) {
        let report = FileBehaviour::new(
            &format!("{i:064x}"),
            sandscope_model::BehaviourAttributes {
                sandbox_name: "Microsoft Sysinternals".into(),
                files_written: (0..20)
                    .map(|f| format!(r"C:\Users\bob{i}\AppData\Roaming\Microsoft\x{f}_{i}.exe"))
                    .collect(),
                command_executions: vec![format!(
                    r#""C:\Windows\System32\cmd.exe" /c del C:\Users\bob{i}\Temp\{i}.bat"#
                )],
                ..Default::default()
            },
        );
        let json = serde_json::to_vec(&report).unwrap();
        (report, json)
    }

    #[test]
    fn reports_read_back_in_every_format_and_a_dictionary_makes_them_smaller() {
        let reports: Vec<_> = (0..300).map(report).collect();
        let (report0, json0) = &reports[0];

        // Formats of earlier versions: plain JSON, deflate.
        let mut deflated = vec![DEFLATED];
        {
            use std::io::Write;
            let mut e = flate2::write::DeflateEncoder::new(&mut deflated, Default::default());
            e.write_all(json0).unwrap();
            e.finish().unwrap();
        }
        let none = ReportCodec::default();
        assert_eq!(&none.decode("x", json0).unwrap(), report0);
        assert_eq!(&none.decode("x", &deflated).unwrap(), report0);

        // Without a dictionary.
        let plain = none.encoder().unwrap().encode(json0).unwrap();
        assert_eq!(plain[0], ZSTD);
        assert_eq!(&none.decode("x", &plain).unwrap(), report0);

        // With one trained on the others; the earlier formats still read.
        let dictionary = train(reports[1..].iter().map(|(_, j)| j.as_slice())).unwrap();
        let codec = none.with_dictionary(7, &dictionary).unwrap();
        assert_eq!(codec.next_id(), 8);
        let small = codec.encoder().unwrap().encode(json0).unwrap();
        assert_eq!(small[..2], [ZSTD_DICT, 7]);
        assert!(
            small.len() * 2 < plain.len(),
            "{} vs {}",
            small.len(),
            plain.len()
        );
        assert_eq!(&codec.decode("x", &small).unwrap(), report0);
        assert_eq!(&codec.decode("x", &plain).unwrap(), report0);
        assert_eq!(&codec.decode("x", &deflated).unwrap(), report0);

        // A report whose dictionary is missing, or whose bytes are damaged, is an error
        // naming it, not a panic.
        for bad in [
            &small[..],
            &small[..small.len() / 2],
            &small[..1],
            &plain[..9],
        ] {
            let codec = if bad == &small[..] { &none } else { &codec };
            let err = codec.decode("the-id", bad).unwrap_err().to_string();
            assert!(err.contains("the-id"), "{err}");
        }
    }

    #[test]
    fn too_little_to_train_on_gives_no_dictionary() {
        let (_, json) = report(1);
        assert!(train([json.as_slice()]).is_none());
        assert!(train(std::iter::empty::<&[u8]>()).is_none());
    }
}
