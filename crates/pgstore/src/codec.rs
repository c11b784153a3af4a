//! Reports on disk: JSON, deflated. Measured against `jsonb` on the vendored corpus (see the
//! crate documentation): deflated JSON is about half the size, and no query reads inside a
//! report (everything searched lives in the sample tables), so `jsonb`'s operators buy nothing.

use crate::{PgStoreError, Result};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use sandscope_model::FileBehaviour;
use std::io::{Read, Write};

/// Largest report accepted when reading back (a hostile row cannot exhaust memory).
const MAX_REPORT_BYTES: u64 = 512 << 20;

pub(crate) fn encode(report: &FileBehaviour) -> Result<Vec<u8>> {
    let corrupt = |detail: String| PgStoreError::InvalidReport(format!("{}: {detail}", report.id));
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    serde_json::to_writer(&mut encoder, report).map_err(|e| corrupt(e.to_string()))?;
    encoder.flush().map_err(|e| corrupt(e.to_string()))?;
    encoder.finish().map_err(|e| corrupt(e.to_string()))
}

pub(crate) fn decode(id: &str, body: &[u8]) -> Result<FileBehaviour> {
    let corrupt = |detail: String| PgStoreError::Corrupt {
        id: id.to_string(),
        detail,
    };
    let mut json = Vec::new();
    DeflateDecoder::new(body)
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| corrupt(e.to_string()))?;
    if json.len() as u64 > MAX_REPORT_BYTES {
        return Err(corrupt("larger than the largest report read".into()));
    }
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}
