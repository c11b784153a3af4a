//! Getting the report's JSON text out of a file or a buffer — plain, gzip or zip, detected by
//! content, never past [`MAX_REPORT_BYTES`] of decompressed text, through `sandscope-read`'s
//! input layer — and parsing it with the JSON path of the first problem.

use crate::CapeError;
use sandscope_read::{Document, DocumentError, read_document};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::Path;

/// The most decompressed JSON one report may hold. CAPE's full `report.json` with API calls
/// runs to a few hundred MB; anything beyond this is refused rather than read.
pub const MAX_REPORT_BYTES: u64 = 1 << 30;

/// Where a report comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A file on disk (plain, gzip or zip).
    Path(&'a Path),
    /// A buffer (plain, gzip or zip); `name` is used in error messages.
    Bytes { name: &'a str, bytes: &'a [u8] },
}

impl<'a> From<&'a Path> for Source<'a> {
    fn from(path: &'a Path) -> Self {
        Source::Path(path)
    }
}

impl<'a> From<&'a std::path::PathBuf> for Source<'a> {
    fn from(path: &'a std::path::PathBuf) -> Self {
        Source::Path(path.as_path())
    }
}

impl Source<'_> {
    pub(crate) fn display_name(&self) -> String {
        match self {
            Source::Path(path) => path.display().to_string(),
            Source::Bytes { name, .. } => (*name).to_string(),
        }
    }
}

/// Parse the report in `source` as `T`.
pub(crate) fn parse_source<T: DeserializeOwned>(source: Source<'_>) -> Result<T, CapeError> {
    parse_source_capped(source, MAX_REPORT_BYTES)
}

pub(crate) fn parse_source_capped<T: DeserializeOwned>(
    source: Source<'_>,
    limit: u64,
) -> Result<T, CapeError> {
    let file = source.display_name();
    let parse = |doc: &mut Document<'_>| parse_json(&file, doc, limit);
    let parsed = match source {
        Source::Path(path) => {
            let handle = File::open(path).map_err(|source| CapeError::Io {
                file: file.clone(),
                source,
            })?;
            read_document(handle, limit, report_member, parse)
        }
        Source::Bytes { bytes, .. } => {
            read_document(Cursor::new(bytes), limit, report_member, parse)
        }
    };
    parsed.map_err(|error| match error {
        DocumentError::Io(source) => CapeError::Io { file, source },
        DocumentError::Zip(message) => CapeError::Zip { file, message },
        DocumentError::NoMember => CapeError::NoReportInZip { file },
    })?
}

/// The archive member holding the report: `report.json` or `lite.json` wherever they sit
/// (CAPE's download zips put them under `reports/`), else the first `.json` member.
fn report_member(names: &[String]) -> Option<usize> {
    let names: Vec<String> = names.iter().map(|name| name.to_ascii_lowercase()).collect();
    ["report.json", "lite.json"]
        .iter()
        .find_map(|wanted| {
            names
                .iter()
                .position(|name| name.rsplit('/').next() == Some(*wanted))
        })
        .or_else(|| names.iter().position(|name| name.ends_with(".json")))
}

fn parse_json<T: DeserializeOwned>(
    file: &str,
    doc: &mut Document<'_>,
    limit: u64,
) -> Result<T, CapeError> {
    let file = match doc.member() {
        Some(member) => format!("{file}!{member}"),
        None => file.to_string(),
    };
    let mut deserializer = serde_json::Deserializer::from_reader(BufReader::new(&mut *doc));
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut deserializer);
    let (path, error) = match parsed {
        Ok(value) => match deserializer.end() {
            Ok(()) => return Ok(value),
            Err(e) => (String::new(), e),
        },
        Err(e) => (e.path().to_string(), e.into_inner()),
    };
    drop(deserializer);
    Err(json_error(&file, path, &error, doc.over_budget(), limit))
}

fn json_error(
    file: &str,
    path: String,
    error: &serde_json::Error,
    exceeded: bool,
    limit: u64,
) -> CapeError {
    if exceeded {
        return CapeError::TooLarge {
            file: file.to_string(),
            limit,
        };
    }
    // serde_path_to_error writes `?` for a map key it never got to read (input cut inside
    // an object); the object's own path says where that was.
    let mut path = path;
    while let Some(stripped) = path.strip_suffix(".?") {
        path = stripped.to_string();
    }
    let path = if path.is_empty() || path == "." || path == "?" {
        "(top level)".to_string()
    } else {
        path
    };
    if error.is_io() {
        return CapeError::Io {
            file: file.to_string(),
            source: io::Error::new(
                error.io_error_kind().unwrap_or(io::ErrorKind::Other),
                error.to_string(),
            ),
        };
    }
    CapeError::Json {
        file: file.to_string(),
        path,
        line: error.line(),
        column: error.column(),
        truncated: error.is_eof(),
        message: strip_position(&error.to_string()),
    }
}

/// serde_json appends " at line L column C"; the error prints them itself.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The first `want` bytes of the report in a buffer (plain or gzip; a zip archive cut short
/// cannot be opened), for content sniffing.
pub(crate) fn decompressed_head(bytes: &[u8], want: usize) -> Vec<u8> {
    head(Cursor::new(bytes), want)
}

/// The first `want` bytes of the report in a file (plain, gzip or a zip member).
pub(crate) fn file_head(path: &Path, want: usize) -> Vec<u8> {
    File::open(path)
        .map(|handle| head(handle, want))
        .unwrap_or_default()
}

fn head(input: impl Read + Seek, want: usize) -> Vec<u8> {
    read_document(input, MAX_REPORT_BYTES, report_member, |doc| {
        let mut out = Vec::new();
        // A stream cut short or a damaged member ends with an error; what came out before it
        // is all sniffing needs (the importer reports the damage).
        let _ = doc.take(want as u64).read_to_end(&mut out);
        out
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompression_stops_at_the_cap() {
        // 4 MB of JSON whitespace compresses to a few KB: a small zip bomb.
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &vec![b' '; 4 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        let err = parse_source_capped::<serde_json::Value>(
            Source::Bytes {
                name: "bomb.json.gz",
                bytes: &bomb,
            },
            1 << 20,
        )
        .unwrap_err();
        assert!(
            matches!(err, CapeError::TooLarge { limit, .. } if limit == 1 << 20),
            "{err}"
        );
        assert!(err.to_string().starts_with("bomb.json.gz: "));
    }
}
