//! Opening inputs: files, standard input and in-memory bytes; transparent gzip and zip (with a
//! bound on the decompressed size, against zip bombs); UTF-16 text; and the dispatch to the
//! reader that the content calls for.

use crate::build::Ctx;
use crate::detect::{Format, SNIFF_BYTES, detect};
use crate::{ReadError, ReadOptions};
use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// Archives inside archives deeper than this are not opened.
pub(crate) const MAX_NESTING: u8 = 3;

pub(crate) struct Opener<'o> {
    pub opts: &'o ReadOptions,
    /// Decompressed bytes still allowed for this input.
    pub budget: Rc<Cell<u64>>,
}

impl Opener<'_> {
    /// Read a file on disk.
    pub fn file(&self, path: &Path, ctx: &mut Ctx<'_>) -> Result<(), ReadError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        if file.metadata().map_err(io_err)?.is_dir() {
            return Err(ReadError::NotAnEventLog {
                path: path.to_path_buf(),
                reason: "is a directory".into(),
            });
        }
        let mut prefix = Vec::with_capacity(SNIFF_BYTES);
        (&mut file)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        let format = detect(&prefix);
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        match format {
            Format::Evtx => self.evtx(file, path, ctx),
            Format::Zip => self.zip(file, path, ctx, 0),
            _ => self.stream(Box::new(file), path, ctx, 0),
        }
    }

    /// Read any input from a stream (standard input, a decompressor, an archive member).
    pub fn stream(
        &self,
        mut reader: Box<dyn Read + '_>,
        path: &Path,
        ctx: &mut Ctx<'_>,
        depth: u8,
    ) -> Result<(), ReadError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut prefix = Vec::with_capacity(SNIFF_BYTES);
        (&mut reader)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        let format = detect(&prefix);
        let reader = Cursor::new(prefix).chain(reader);
        let nested = |what: &str| -> Result<(), ReadError> {
            if depth >= MAX_NESTING {
                return Err(ReadError::NotAnEventLog {
                    path: path.to_path_buf(),
                    reason: format!("{what} nested more than {MAX_NESTING} deep"),
                });
            }
            Ok(())
        };
        match format {
            Format::Gzip => {
                nested("compressed data")?;
                let inner = flate2::read::MultiGzDecoder::new(reader);
                self.stream(Box::new(self.limited(inner)), path, ctx, depth + 1)
            }
            Format::Zip => {
                nested("archive")?;
                let spooled = self.spool(reader).map_err(io_err)?;
                self.zip(spooled, path, ctx, depth + 1)
            }
            Format::Evtx => {
                let spooled = self.spool(reader).map_err(io_err)?;
                self.evtx(spooled, path, ctx)
            }
            Format::Xml => crate::xml::read_xml(reader, ctx).map_err(io_err),
            Format::Json => crate::json::read_json(BufReader::new(reader), ctx).map_err(io_err),
            Format::Utf16Le | Format::Utf16Be => {
                nested("UTF-16 text")?;
                let big_endian = format == Format::Utf16Be;
                self.stream(
                    Box::new(Utf16Reader::new(reader, big_endian)),
                    path,
                    ctx,
                    depth + 1,
                )
            }
            Format::Unknown => Err(ReadError::NotAnEventLog {
                path: path.to_path_buf(),
                reason: "not EVTX, XML, JSON, syslog, gzip or zip content".into(),
            }),
        }
    }

    fn evtx(&self, src: File, path: &Path, ctx: &mut Ctx<'_>) -> Result<(), ReadError> {
        crate::evtx_file::read_evtx(src, path, ctx, self.opts)
    }

    /// Each member of a zip archive, in name order, as an input of its own.
    fn zip<T: Read + Seek>(
        &self,
        src: T,
        path: &Path,
        ctx: &mut Ctx<'_>,
        depth: u8,
    ) -> Result<(), ReadError> {
        let mut archive = zip::ZipArchive::new(src).map_err(|e| ReadError::NotAnEventLog {
            path: path.to_path_buf(),
            reason: format!("unreadable zip archive: {e}"),
        })?;
        let mut members: Vec<(String, usize)> = (0..archive.len())
            .filter_map(|i| {
                let name = archive.name_for_index(i)?.to_string();
                (!name.ends_with('/')).then_some((name, i))
            })
            .collect();
        members.sort();
        let outer_file = ctx.file.clone();
        let outer_path = ctx.path.clone();
        let mut any = false;
        for (name, index) in members {
            let member_path = PathBuf::from(format!("{}!{name}", outer_path.display()));
            ctx.file = Arc::from(format!("{outer_file}!{name}"));
            ctx.path = member_path.clone();
            let before = ctx.records;
            let result = match archive.by_index(index) {
                Ok(member) => {
                    self.stream(Box::new(self.limited(member)), &member_path, ctx, depth + 1)
                }
                Err(e) => Err(ReadError::Io {
                    path: member_path.clone(),
                    source: io::Error::other(e),
                }),
            };
            match result {
                Ok(()) => any |= ctx.records > before,
                // A member that is not an event log (a README, a screenshot) is passed over.
                Err(ReadError::NotAnEventLog { .. }) if ctx.records == before => {}
                Err(e) => {
                    any |= ctx.records > before;
                    ctx.warn(crate::Location::File, e.to_string());
                }
            }
        }
        ctx.file = outer_file;
        ctx.path = outer_path;
        if !any && ctx.stats.warnings == 0 {
            return Err(ReadError::NotAnEventLog {
                path: path.to_path_buf(),
                reason: "zip archive holds no event log".into(),
            });
        }
        Ok(())
    }

    fn limited<R: Read>(&self, inner: R) -> Limited<R> {
        Limited {
            inner,
            budget: self.budget.clone(),
            limit: self.opts.max_decompressed_bytes,
        }
    }

    /// Copy a stream to an anonymous temporary file, for the readers that need to seek (EVTX,
    /// zip). Memory stays flat whatever the size.
    fn spool(&self, mut reader: impl Read) -> io::Result<File> {
        let mut file = tempfile::tempfile()?;
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, &mut file);
            io::copy(&mut reader, &mut w)?;
            w.flush()?;
        }
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }
}

/// A decompressor that stops with an error once the input's decompressed-size budget is spent.
struct Limited<R> {
    inner: R,
    budget: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.get();
        if left == 0 {
            // Is there really more?
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            return Err(io::Error::other(format!(
                "decompressed size exceeds the limit of {} bytes (zip bomb?)",
                self.limit
            )));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.set(left - n as u64);
        Ok(n)
    }
}

/// UTF-16 text (after its byte-order mark) as UTF-8. Unpaired surrogates become U+FFFD.
struct Utf16Reader<R> {
    inner: R,
    big_endian: bool,
    raw: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    started: bool,
    eof: bool,
}

impl<R: Read> Utf16Reader<R> {
    fn new(inner: R, big_endian: bool) -> Self {
        Utf16Reader {
            inner,
            big_endian,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            started: false,
            eof: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 << 10];
        let n = loop {
            match self.inner.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.raw.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        if !self.started && self.raw.len() >= 2 {
            start = 2; // the byte-order mark
            self.started = true;
        }
        let usable = start + (self.raw.len() - start) / 2 * 2;
        let units: Vec<u16> = self.raw[start..usable]
            .chunks_exact(2)
            .map(|c| {
                if self.big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        // Keep a trailing high surrogate for the next read.
        let keep_surrogate =
            !self.eof && matches!(units.last(), Some(u) if (0xD800..0xDC00).contains(u));
        let take = units.len() - usize::from(keep_surrogate);
        self.out.clear();
        self.out_pos = 0;
        for c in char::decode_utf16(units[..take].iter().copied()) {
            let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut b = [0u8; 4];
            self.out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        let consumed = start + take * 2;
        self.raw.drain(..consumed);
        if self.eof && !self.raw.is_empty() {
            // An odd trailing byte.
            self.raw.clear();
            self.out.extend_from_slice("\u{FFFD}".as_bytes());
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            if self.eof {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_transcodes() {
        let text = "<Event>é😀</Event>";
        let mut bytes = vec![0xff, 0xfe];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let mut out = String::new();
        Utf16Reader::new(&bytes[..], false)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        // Broken: lone surrogate and an odd byte.
        let broken = [0xff, 0xfe, 0x00, 0xd8, 0x41, 0x00, 0x42];
        let mut out = String::new();
        Utf16Reader::new(&broken[..], false)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "\u{FFFD}A\u{FFFD}");
    }
}
