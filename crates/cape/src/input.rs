//! Getting the report's JSON text out of a file or a buffer: plain, gzip or zip, detected by
//! content, never past [`MAX_REPORT_BYTES`] of decompressed text, and parsed with the JSON path
//! of the first problem.

use crate::CapeError;
use serde::de::DeserializeOwned;
use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::Path;
use std::rc::Rc;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Plain,
    Gzip,
    Zip,
}

fn container_of(head: &[u8]) -> Container {
    if head.starts_with(&[0x1f, 0x8b]) {
        Container::Gzip
    } else if head.starts_with(b"PK\x03\x04") {
        Container::Zip
    } else {
        Container::Plain
    }
}

/// Counts decompressed bytes and fails the read once the cap is passed, so a zip bomb ends as
/// an error instead of filling memory.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            self.exceeded.set(true);
            return Err(io::Error::other("report exceeds the size limit"));
        }
        Ok(n)
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
    match source {
        Source::Path(path) => {
            let io_error = |source| CapeError::Io {
                file: file.clone(),
                source,
            };
            let mut handle = File::open(path).map_err(io_error)?;
            let mut head = [0u8; 4];
            let got = read_head(&mut handle, &mut head).map_err(io_error)?;
            handle.rewind().map_err(io_error)?;
            parse_container(&file, container_of(&head[..got]), handle, limit)
        }
        Source::Bytes { bytes, .. } => {
            parse_container(&file, container_of(bytes), Cursor::new(bytes), limit)
        }
    }
}

fn read_head(reader: &mut impl Read, head: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn parse_container<T: DeserializeOwned, R: Read + Seek>(
    file: &str,
    container: Container,
    reader: R,
    limit: u64,
) -> Result<T, CapeError> {
    match container {
        Container::Plain => parse_json(file, reader, limit),
        Container::Gzip => parse_json(file, flate2::read::MultiGzDecoder::new(reader), limit),
        Container::Zip => {
            let zip_error = |e: zip::result::ZipError| CapeError::Zip {
                file: file.to_string(),
                message: e.to_string(),
            };
            let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
            let index = report_entry(&mut archive).ok_or_else(|| CapeError::NoReportInZip {
                file: file.to_string(),
            })?;
            let entry = archive.by_index(index).map_err(zip_error)?;
            let entry_name = format!("{file}!{}", entry.name());
            parse_json(&entry_name, entry, limit)
        }
    }
}

/// The archive member holding the report: `report.json` or `lite.json` wherever they sit
/// (CAPE's download zips put them under `reports/`), else the first `.json` member.
fn report_entry<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Option<usize> {
    let names: Vec<(usize, String)> = (0..archive.len())
        .filter_map(|i| {
            archive
                .name_for_index(i)
                .map(|name| (i, name.to_ascii_lowercase()))
        })
        .collect();
    let preferred = ["report.json", "lite.json"];
    preferred
        .iter()
        .find_map(|wanted| {
            names
                .iter()
                .find(|(_, name)| name.rsplit('/').next() == Some(*wanted))
                .map(|(i, _)| *i)
        })
        .or_else(|| {
            names
                .iter()
                .find(|(_, name)| name.ends_with(".json"))
                .map(|(i, _)| *i)
        })
}

fn parse_json<T: DeserializeOwned>(
    file: &str,
    reader: impl Read,
    limit: u64,
) -> Result<T, CapeError> {
    let exceeded = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: reader,
        read: 0,
        limit,
        exceeded: Rc::clone(&exceeded),
    };
    let mut deserializer = serde_json::Deserializer::from_reader(BufReader::new(capped));
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut deserializer);
    match parsed {
        Ok(value) => deserializer
            .end()
            .map(|()| value)
            .map_err(|e| json_error(file, String::new(), &e, exceeded.get(), limit)),
        Err(e) => {
            let path = e.path().to_string();
            Err(json_error(file, path, e.inner(), exceeded.get(), limit))
        }
    }
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

/// Decompress the start of a buffer (plain or gzip) for content sniffing.
pub(crate) fn decompressed_head(bytes: &[u8], want: usize) -> Vec<u8> {
    match container_of(bytes) {
        Container::Gzip => {
            let mut out = Vec::with_capacity(want.min(1 << 20));
            let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(want as u64);
            // A head cut inside the stream ends the decoder with an error; what came out
            // before it is all sniffing needs.
            let mut buf = [0u8; 8192];
            loop {
                match decoder.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            out
        }
        Container::Zip => Vec::new(),
        Container::Plain => bytes[..bytes.len().min(want)].to_vec(),
    }
}

/// Read the first report-bearing bytes of a file, decompressing gzip and zip members.
pub(crate) fn file_head(path: &Path, want: usize) -> io::Result<Vec<u8>> {
    let mut handle = File::open(path)?;
    let mut magic = [0u8; 4];
    let got = read_head(&mut handle, &mut magic)?;
    handle.rewind()?;
    match container_of(&magic[..got]) {
        Container::Plain => {
            let mut out = Vec::new();
            handle.take(want as u64).read_to_end(&mut out)?;
            Ok(out)
        }
        Container::Gzip => {
            let mut out = Vec::new();
            let mut decoder = flate2::read::MultiGzDecoder::new(handle).take(want as u64);
            let mut buf = [0u8; 8192];
            loop {
                match decoder.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            Ok(out)
        }
        Container::Zip => {
            let Ok(mut archive) = zip::ZipArchive::new(handle) else {
                return Ok(Vec::new());
            };
            let Some(index) = report_entry(&mut archive) else {
                return Ok(Vec::new());
            };
            let Ok(entry) = archive.by_index(index) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            // A damaged member is the importer's to report; sniffing only says "not sure".
            let _ = entry.take(want as u64).read_to_end(&mut out);
            Ok(out)
        }
    }
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
