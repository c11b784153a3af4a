//! Reports on disk: JSON compressed with zstd and a dictionary trained on the store's own
//! first reports, at the level and with the training the embedded store uses
//! (`sandscope_store::report_compression`); the embedded store's codec itself is tied to its
//! own tables, so this crate keeps the framing and the dictionary table of its database.
//!
//! Reports resemble each other far more than any one resembles itself (field names, paths,
//! Sysmon spellings, command lines): a dictionary trained once holds what they share, so each
//! report costs about what is its own. No query reads inside a report (everything searched is
//! in `samples`), so neither `jsonb` nor PostgreSQL's own compression buys anything here.
//!
//! A stored body says how it was written by its first byte:
//! * [`ZSTD`] — zstd without a dictionary (until the store has enough reports to train one);
//! * [`ZSTD_DICT`] — zstd with the dictionary whose id follows (4 bytes, big-endian), a row
//!   of `report_dicts` (a reference table under Citus). A dictionary is never changed or
//!   removed once written;
//! * anything else — a raw deflate stream, schema versions 1 to 3. The two bytes above can
//!   never start one: their block type bits (`11`) are reserved in deflate.

use crate::{PgStoreError, Result};
use flate2::read::DeflateDecoder;
use postgres::GenericClient;
use sandscope_model::FileBehaviour;
use sandscope_store::report_compression;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, RwLock};
use zstd::dict::DecoderDictionary;

const ZSTD: u8 = 0x06;
const ZSTD_DICT: u8 = 0x07;

/// Stored reports are compressed as the embedded store compresses its own.
const LEVEL: i32 = report_compression::LEVEL;
/// A dictionary is trained once this many reports can be read for it.
pub(crate) const TRAIN_AT_REPORTS: usize = report_compression::TRAIN_AT_REPORTS as usize;
/// What a dictionary is trained on: up to this many reports.
pub(crate) const TRAIN_REPORTS: usize = report_compression::TRAIN_REPORTS;
/// Largest report accepted when reading back (a hostile row cannot exhaust memory).
const MAX_REPORT_BYTES: u64 = 512 << 20;

/// The id of the only dictionary this version trains (the format allows more).
pub(crate) const FIRST_DICTIONARY: i32 = 1;

/// The store's dictionaries as this process knows them: every one read so far for decoding,
/// and the one new reports are written with. Filled from `report_dicts` on demand, so a
/// dictionary another process trained is found the first time one of its reports is read.
#[derive(Default)]
pub(crate) struct Codec {
    known: RwLock<Dictionaries>,
}

#[derive(Default, Clone)]
struct Dictionaries {
    decoders: HashMap<i32, Arc<DecoderDictionary<'static>>>,
    /// The dictionary's bytes: a batch's compressor loads its own copy.
    current: Option<(i32, Arc<[u8]>)>,
}

/// Compresses one batch's reports.
pub(crate) struct Encoder {
    prefix: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
}

impl Codec {
    fn read(&self) -> Dictionaries {
        // A poisoned lock still holds a consistent map (every write replaces it whole).
        match self.known.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, dictionaries: Dictionaries) {
        match self.known.write() {
            Ok(mut d) => *d = dictionaries,
            Err(poisoned) => *poisoned.into_inner() = dictionaries,
        }
    }

    /// Read every dictionary of `report_dicts`; the newest becomes the one written with.
    pub(crate) fn load(&self, client: &mut impl GenericClient) -> Result<()> {
        let rows = client.query("SELECT id, dict FROM report_dicts ORDER BY id", &[])?;
        let mut known = self.read();
        for row in rows {
            let (id, bytes): (i32, &[u8]) = (row.get(0), row.get(1));
            let bad = |e: std::io::Error| PgStoreError::Corrupt {
                id: format!("report dictionary {id}"),
                detail: e.to_string(),
            };
            known.decoders.insert(
                id,
                Arc::new(DecoderDictionary::try_copy(bytes).map_err(bad)?),
            );
            known.current = Some((id, Arc::from(bytes)));
        }
        self.replace(known);
        Ok(())
    }

    /// Whether new reports are written with a dictionary.
    pub(crate) fn has_dictionary(&self) -> bool {
        self.read().current.is_some()
    }

    /// A compressor for a batch, with the current dictionary if there is one.
    pub(crate) fn encoder(&self) -> Result<Encoder> {
        let failed = |e: std::io::Error| PgStoreError::InvalidReport(format!("zstd: {e}"));
        let current = self.read().current;
        let (prefix, mut compressor) = match current {
            Some((id, dictionary)) => {
                let mut prefix = vec![ZSTD_DICT];
                prefix.extend_from_slice(&id.to_be_bytes());
                let compressor =
                    zstd::bulk::Compressor::with_dictionary(LEVEL, &dictionary).map_err(failed)?;
                (prefix, compressor)
            }
            None => (
                vec![ZSTD],
                zstd::bulk::Compressor::new(LEVEL).map_err(failed)?,
            ),
        };
        // The dictionary is named by the prefix already.
        compressor
            .set_parameter(zstd::zstd_safe::CParameter::DictIdFlag(false))
            .map_err(failed)?;
        Ok(Encoder { prefix, compressor })
    }

    /// A stored body in any of the formats of the module docs; a dictionary this process
    /// does not know yet is read from `client`.
    pub(crate) fn decode(
        &self,
        client: &mut impl GenericClient,
        id: &str,
        body: &[u8],
    ) -> Result<FileBehaviour> {
        let corrupt = |detail: String| PgStoreError::Corrupt {
            id: id.to_string(),
            detail,
        };
        let mut json = Vec::new();
        let limit = MAX_REPORT_BYTES + 1;
        match body.split_first() {
            Some((&ZSTD, compressed)) => {
                zstd::stream::read::Decoder::with_buffer(compressed)
                    .and_then(|d| d.take(limit).read_to_end(&mut json))
                    .map_err(|e| corrupt(e.to_string()))?;
            }
            Some((&ZSTD_DICT, rest)) => {
                let (dict, compressed) = rest
                    .split_first_chunk::<4>()
                    .map(|(id, c)| (i32::from_be_bytes(*id), c))
                    .ok_or_else(|| corrupt("truncated dictionary id".into()))?;
                let dictionary = match self.read().decoders.get(&dict) {
                    Some(d) => d.clone(),
                    None => {
                        self.load(client)?;
                        self.read().decoders.get(&dict).cloned().ok_or_else(|| {
                            corrupt(format!(
                                "written with dictionary {dict}, which the store does not have"
                            ))
                        })?
                    }
                };
                zstd::stream::read::Decoder::with_prepared_dictionary(compressed, &dictionary)
                    .and_then(|d| d.take(limit).read_to_end(&mut json))
                    .map_err(|e| corrupt(e.to_string()))?;
            }
            _ => {
                DeflateDecoder::new(body)
                    .take(limit)
                    .read_to_end(&mut json)
                    .map_err(|e| corrupt(e.to_string()))?;
            }
        }
        if json.len() as u64 > MAX_REPORT_BYTES {
            return Err(corrupt("larger than the largest report read".into()));
        }
        serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
    }
}

impl Encoder {
    /// `report` as a stored body.
    pub(crate) fn encode(&mut self, report: &FileBehaviour) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(report)
            .map_err(|e| PgStoreError::InvalidReport(format!("{}: {e}", report.id)))?;
        let mut out = self.prefix.clone();
        let compressed = self
            .compressor
            .compress(&json)
            .map_err(|e| PgStoreError::InvalidReport(format!("{}: zstd: {e}", report.id)))?;
        out.extend_from_slice(&compressed);
        Ok(out)
    }
}

/// A dictionary trained on `reports`' JSON (serialised only as far as training takes them), or
/// `None` when they are too small for zstd to train one.
pub(crate) fn train<'a>(reports: impl IntoIterator<Item = &'a FileBehaviour>) -> Option<Vec<u8>> {
    report_compression::train(
        reports
            .into_iter()
            .filter_map(|report| serde_json::to_vec(report).ok()),
    )
}
