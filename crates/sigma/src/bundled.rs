//! The SigmaHQ Windows rules compiled into the binary (packed by `build.rs`), so analysts get
//! detections without hunting for rule files. Kept compressed: plain rule YAML carries malware
//! strings that antivirus products quarantine binaries for.

use crate::rules::{LoadError, RuleOrigin, RuleText};
use std::io::Read;

static ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sigmahq-rules.bin.gz"));

/// Upper bound on the unpacked archive, so a damaged build artefact cannot exhaust memory.
const MAX_UNPACKED: u64 = 256 * 1024 * 1024;

/// The bundled rule files (`rules/windows/...`), in path order.
pub fn bundled_rule_texts() -> Result<Vec<RuleText>, LoadError> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(ARCHIVE)
        .take(MAX_UNPACKED)
        .read_to_end(&mut raw)
        .map_err(|e| LoadError::Bundle(e.to_string()))?;
    let mut rest = raw.as_slice();
    let mut texts = Vec::new();
    while !rest.is_empty() {
        let name = take_chunk(&mut rest)?;
        let content = take_chunk(&mut rest)?;
        texts.push(RuleText {
            file: String::from_utf8_lossy(name).into_owned(),
            origin: RuleOrigin::Bundled,
            text: String::from_utf8_lossy(content).into_owned(),
        });
    }
    Ok(texts)
}

fn take_chunk<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], LoadError> {
    let damaged = || LoadError::Bundle("truncated record".to_string());
    let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(damaged)?;
    let len = u32::from_le_bytes(*len) as usize;
    if tail.len() < len {
        return Err(damaged());
    }
    let (chunk, tail) = tail.split_at(len);
    *rest = tail;
    Ok(chunk)
}

/// The DRL 1.1 licence text the bundled rules are distributed under.
pub const BUNDLED_LICENSE_TEXT: &str = include_str!("../rules/LICENSE.Detection.Rules.md");
