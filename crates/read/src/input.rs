//! Opening inputs: files, standard input and in-memory bytes; transparent gzip and zip (with a
//! bound on the decompressed size, against zip bombs); UTF-16 text; and the dispatch to the
//! reader that the content calls for.

use crate::build::Ctx;
use crate::detect::{Format, SNIFF_BYTES, detect};
use crate::evtx_chunks::{ChunkSource, InMemory};
use crate::{ReadError, ReadOptions};
use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Archives inside archives deeper than this are not opened.
pub(crate) const MAX_NESTING: u8 = 3;

pub(crate) struct Opener<'o> {
    pub opts: &'o ReadOptions,
    /// Decompressed bytes still allowed for this input.
    pub budget: Rc<Cell<u64>>,
    /// Bytes drawn from the shared pool, given back when the read ends.
    pub drawn: Rc<Cell<u64>>,
    /// Set when the sink wants no more events (see `Ctx::stop`).
    pub stop: Rc<Cell<bool>>,
}

impl<'o> Opener<'o> {
    pub fn new(opts: &'o ReadOptions, stop: Rc<Cell<bool>>) -> Self {
        Opener {
            opts,
            budget: Rc::new(Cell::new(opts.max_decompressed_bytes)),
            drawn: Rc::new(Cell::new(0)),
            stop,
        }
    }
}

impl Drop for Opener<'_> {
    fn drop(&mut self) {
        if let Some(pool) = &self.opts.shared_decompression {
            pool.give_back(self.drawn.replace(0));
        }
    }
}

/// Decompressed bytes shared by concurrent reads (a server's uploads): each read draws from
/// it as it decompresses, on top of its own per-input budget, and gives back what it drew
/// when it ends, so many uploads at once cannot together expand past the pool.
#[derive(Debug)]
pub struct DecompressionPool {
    left: AtomicU64,
    total: u64,
}

impl DecompressionPool {
    pub fn new(total: u64) -> Arc<Self> {
        Arc::new(DecompressionPool {
            left: AtomicU64::new(total),
            total,
        })
    }

    /// Bytes no read holds now.
    pub fn available(&self) -> u64 {
        self.left.load(Ordering::Acquire)
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Take `n` bytes, or nothing when fewer are left.
    fn draw(&self, n: u64) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }

    fn give_back(&self, n: u64) {
        self.left.fetch_add(n, Ordering::AcqRel);
    }
}

/// A decompression budget was spent: the `io::Error` payload [`is_decompression_budget`]
/// recognises.
#[derive(Debug)]
struct DecompressionLimit {
    limit: u64,
    /// The pool shared by concurrent reads, rather than this input's own budget.
    shared: bool,
}

impl std::fmt::Display for DecompressionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.shared {
            write!(
                f,
                "the decompression budget shared by concurrent inputs ({} bytes) is spent; try again later",
                self.limit
            )
        } else {
            write!(
                f,
                "decompressed size exceeds the limit of {} bytes (zip bomb?)",
                self.limit
            )
        }
    }
}

impl std::error::Error for DecompressionLimit {}

/// The sink wanted no more events: the `io::Error` payload [`is_stopped_by_sink`] recognises.
#[derive(Debug)]
struct StoppedBySink;

impl std::fmt::Display for StoppedBySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reading stopped: the consumer takes no more events")
    }
}

impl std::error::Error for StoppedBySink {}

/// Whether a read ended because its sink wanted no more events.
pub fn is_stopped_by_sink(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|e| e.downcast_ref::<StoppedBySink>().is_some())
}

/// A stream that ends with [`StoppedBySink`] once the sink wants no more events.
struct Stoppable<R> {
    inner: R,
    stop: Rc<Cell<bool>>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.get() {
            return Err(io::Error::other(StoppedBySink));
        }
        self.inner.read(buf)
    }
}

fn limit_payload(error: &io::Error) -> Option<&DecompressionLimit> {
    error.get_ref()?.downcast_ref::<DecompressionLimit>()
}

/// Whether a read failed because compressed input expanded past a decompression budget (its
/// own or the shared pool's).
pub fn is_decompression_budget(error: &io::Error) -> bool {
    limit_payload(error).is_some()
}

/// Whether it was the pool shared by concurrent reads that ran out (the machine is busy; the
/// same input may pass later).
pub fn is_shared_decompression_budget(error: &io::Error) -> bool {
    limit_payload(error).is_some_and(|l| l.shared)
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
        reader: Box<dyn Read + '_>,
        path: &Path,
        ctx: &mut Ctx<'_>,
        depth: u8,
    ) -> Result<(), ReadError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = Stoppable {
            inner: reader,
            stop: self.stop.clone(),
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
        crate::evtx_file::read_evtx(ChunkSource::File(src), path, ctx, self.opts)
    }

    /// Read an input whole in memory: EVTX and zip are read in place, without the temporary
    /// file a stream is spooled to; anything else is read as a stream over the bytes.
    pub fn bytes(&self, bytes: InMemory, path: &Path, ctx: &mut Ctx<'_>) -> Result<(), ReadError> {
        let all = bytes.as_ref();
        match detect(all.get(..SNIFF_BYTES).unwrap_or(all)) {
            Format::Evtx => {
                crate::evtx_file::read_evtx(ChunkSource::Bytes(bytes), path, ctx, self.opts)
            }
            Format::Zip => self.zip(Cursor::new(bytes), path, ctx, 0),
            _ => self.stream(Box::new(Cursor::new(bytes)), path, ctx, 0),
        }
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
        let members = zip_members(&archive);
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
            pool: self.opts.shared_decompression.clone(),
            drawn: self.drawn.clone(),
        }
    }

    /// Copy a stream to an anonymous temporary file, for the readers that need to seek (EVTX,
    /// zip). Memory stays flat whatever the size.
    ///
    /// The copy goes through a buffer of our own, filled by plain `read`s: `io::copy` into a
    /// `BufWriter` hands the reader the writer's uninitialised spare capacity, which readers
    /// without `read_buf` (ours) zero whole on every call, a megabyte per read.
    fn spool(&self, mut reader: impl Read) -> io::Result<File> {
        let mut file = tempfile::tempfile()?;
        let mut buf = vec![0u8; SPOOL_BUFFER];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            file.write_all(buf.get(..n).unwrap_or_default())?;
        }
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }
}

/// Bytes moved per read and write while spooling.
const SPOOL_BUFFER: usize = 256 << 10;

/// The members of a zip archive that are files, by name (sorted), with their indexes.
pub(crate) fn zip_members<R: Read + Seek>(archive: &zip::ZipArchive<R>) -> Vec<(String, usize)> {
    let mut members: Vec<(String, usize)> = (0..archive.len())
        .filter_map(|i| {
            let name = archive.name_for_index(i)?.to_string();
            (!name.ends_with('/')).then_some((name, i))
        })
        .collect();
    members.sort();
    members
}

/// A decompressor that stops with an error once the input's decompressed-size budget, or the
/// shared pool, is spent.
pub(crate) struct Limited<R> {
    inner: R,
    budget: Rc<Cell<u64>>,
    limit: u64,
    pool: Option<Arc<DecompressionPool>>,
    drawn: Rc<Cell<u64>>,
}

impl<R> Limited<R> {
    /// `inner` under a budget of `limit` bytes of its own, drawing on no shared pool.
    pub fn alone(inner: R, limit: u64) -> Self {
        Limited {
            inner,
            budget: Rc::new(Cell::new(limit)),
            limit,
            pool: None,
            drawn: Rc::new(Cell::new(0)),
        }
    }
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
            return Err(io::Error::other(DecompressionLimit {
                limit: self.limit,
                shared: false,
            }));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if let Some(pool) = &self.pool
            && n > 0
        {
            if !pool.draw(n as u64) {
                return Err(io::Error::other(DecompressionLimit {
                    limit: pool.total(),
                    shared: true,
                }));
            }
            self.drawn.set(self.drawn.get() + n as u64);
        }
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
