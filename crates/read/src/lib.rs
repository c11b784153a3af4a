//! Readers for Sysmon telemetry: each input format has one module, and every module produces the
//! same [`SysmonEvent`]s.
//!
//! Reading is streaming: events go to an [`EventSink`] as they are decoded, so memory does not
//! grow with the input. Damage never aborts a file: every readable record is delivered, and each
//! damaged chunk or record is reported once as a [`ReadWarning`] naming the file and where.
//! Only a file that cannot be read at all (missing, not an event log) is a [`ReadError`].
//!
//! Modules, in the order an input meets them:
//! * `detect` judges content, never the name (EVTX, gzip, zip, UTF-16, XML/syslog, JSON);
//!   [`detect_file`] looks through gzip layers for callers that must know what a file is
//!   without reading it;
//! * `input` opens files, standard input (`-`) and bytes, undoes gzip and zip (members sorted
//!   by name) under a decompressed-size budget per input and, for a server, a shared
//!   [`DecompressionPool`]; spools to a temporary file only what must seek. `document` opens
//!   one document (a CAPE report) through the same layer;
//! * `evtx_chunks` plans an EVTX file's chunks in the order and with the damage reports of the
//!   `evtx` crate's own walk, so any thread reads any batch by position;
//! * `evtx_fast/` is the typed EVTX path (batches of chunks decoded on the rayon pool and
//!   delivered in file order; BinXML templates compiled once per chunk; one token walker;
//!   named token and value-type constants); a chunk it does not understand goes to
//!   `evtx_file`, the `evtx` crate's JSON rendering, which is also its test reference;
//! * `xml` (Windows XML exports, Sysmon for Linux syslog lines) and `json` (evtx JSON,
//!   xmltodict, Winlogbeat, flat Mordor/nxlog/Log Analytics rows, CAPE's `sysmon` array);
//! * `build` is the one place where channel filtering, canonical values and `time` are applied;
//! * [`walk`] lists directories recursively in sorted order (the one walker of the workspace);
//!   `bench` is `sandscope bench read`; `fuzz/` holds the cargo-fuzz targets.
//!
//! This crate depends on the event model only; it knows nothing of reports, rules or storage.

#[doc(hidden)]
pub mod bench;

/// Entry points for the fuzz targets (`crates/read/fuzz`): one reader each, on bytes, with
/// a small decompression limit. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{ReadOptions, ReadOutput, build::Ctx};
    use std::sync::Arc;

    fn ctx_run(f: impl FnOnce(&mut Ctx<'_>)) {
        let mut out = ReadOutput::default();
        let mut ctx = Ctx::new(Arc::from("fuzz"), "fuzz".into(), &mut out);
        f(&mut ctx);
    }

    /// The XML / syslog reader.
    pub fn xml(data: &[u8]) {
        ctx_run(|ctx| {
            let _ = crate::xml::read_xml(data, ctx);
        });
    }

    /// The JSON reader (lines, documents, CAPE reports).
    pub fn json_lines(data: &[u8]) {
        ctx_run(|ctx| {
            let _ = crate::json::read_json(data, ctx);
        });
    }

    /// Detection and every reader.
    pub fn any(data: &[u8]) {
        let opts = ReadOptions {
            max_decompressed_bytes: 8 << 20,
            ..ReadOptions::default()
        };
        let mut out = ReadOutput::default();
        let _ = crate::read_reader_with("fuzz", data, &opts, &mut out);
    }
}
mod build;
mod detect;
mod document;
mod evtx_chunks;
mod evtx_fast;
mod evtx_file;
mod input;
mod json;
mod xml;

pub use detect::{Format, SNIFF_BYTES, detect, detect_file};
pub use document::{Document, DocumentError, read_document};
pub use input::{
    DecompressionPool, is_decompression_budget, is_shared_decompression_budget, is_stopped_by_sink,
};

use sandscope_event::SysmonEvent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where damaged input was found, for warnings an analyst can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The whole file.
    File,
    /// An EVTX chunk (0-based number in the file).
    Chunk(u64),
    /// An EVTX record, by its record id.
    Record(u64),
    /// A record `offset` bytes into an EVTX chunk.
    RecordAt { chunk: Option<u64>, offset: u64 },
    /// A line of a text input (1-based).
    Line(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File => f.write_str("file"),
            Location::Chunk(n) => write!(f, "chunk {n}"),
            Location::Record(n) => write!(f, "record {n}"),
            Location::RecordAt {
                chunk: Some(c),
                offset,
            } => write!(f, "chunk {c}, record at offset {offset}"),
            Location::RecordAt {
                chunk: None,
                offset,
            } => write!(f, "record at offset {offset}"),
            Location::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// Damaged input that was skipped while the rest of the file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadWarning {
    pub file: PathBuf,
    pub location: Location,
    pub message: String,
}

impl std::fmt::Display for ReadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.location,
            self.message
        )
    }
}

/// A file that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a Sysmon event log: {reason}", path.display())]
    NotAnEventLog { path: PathBuf, reason: String },
}

/// Where decoded events and warnings go.
pub trait EventSink {
    fn event(&mut self, event: SysmonEvent);
    fn warning(&mut self, warning: ReadWarning);
    /// False once the sink will take no more events (its memory budget is spent): a streamed
    /// input then stops at its next buffer with an I/O error ([`is_stopped_by_sink`]).
    fn wants_more(&self) -> bool {
        true
    }
}

/// Counts of what one read saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Sysmon events delivered to the sink.
    pub sysmon_events: u64,
    /// Events of other channels, counted and skipped, by channel.
    pub skipped_by_channel: BTreeMap<String, u64>,
    /// Damaged chunks/records/lines reported as warnings.
    pub warnings: u64,
}

impl ReadStats {
    pub fn merge(&mut self, other: &ReadStats) {
        self.sysmon_events += other.sysmon_events;
        self.warnings += other.warnings;
        for (channel, n) in &other.skipped_by_channel {
            *self.skipped_by_channel.entry(channel.clone()).or_default() += n;
        }
    }
}

/// Limits that keep hostile input from exhausting the machine.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Decompressed bytes allowed per input, over all its gzip layers and zip members
    /// (a zip bomb stops with a warning when it is spent). Default 4 GiB.
    pub max_decompressed_bytes: u64,
    /// Read EVTX through the `evtx` crate's JSON rendering instead of the typed fast path
    /// (slower; the reference the fast path is tested against).
    pub evtx_via_json: bool,
    /// A decompression budget shared with other reads running at the same time (a server's
    /// concurrent uploads), drawn from on top of `max_decompressed_bytes`.
    pub shared_decompression: Option<Arc<DecompressionPool>>,
    /// Decode an EVTX file on the calling thread alone, without helper jobs on the rayon pool:
    /// for a caller that already reads one input per thread (a retrohunt over many small logs).
    pub sequential: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_decompressed_bytes: 4 << 30,
            evtx_via_json: false,
            shared_decompression: None,
            sequential: false,
        }
    }
}

/// Read one file (format detected from its content) into `sink`. `-` reads standard input.
pub fn read_path(path: &Path, sink: &mut dyn EventSink) -> Result<ReadStats, ReadError> {
    read_path_with(path, &ReadOptions::default(), sink)
}

/// [`read_path`] with explicit limits.
pub fn read_path_with(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn EventSink,
) -> Result<ReadStats, ReadError> {
    if path.as_os_str() == "-" {
        return read_reader_with("-", std::io::stdin().lock(), opts, sink);
    }
    let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let mut ctx = build::Ctx::new(file, path.to_path_buf(), sink);
    let opener = input::Opener::new(opts, ctx.stop.clone());
    let result = opener.file(path, &mut ctx);
    finish(result, ctx, path)
}

/// Read standard input (any format, detected from its content).
pub fn read_stdin(sink: &mut dyn EventSink) -> Result<ReadStats, ReadError> {
    read_reader_with("-", std::io::stdin().lock(), &ReadOptions::default(), sink)
}

/// Read in-memory bytes; `name` is the source the events carry.
pub fn read_bytes(
    name: &str,
    bytes: &[u8],
    sink: &mut dyn EventSink,
) -> Result<ReadStats, ReadError> {
    read_reader_with(name, bytes, &ReadOptions::default(), sink)
}

/// Read any stream (format detected from its content); `name` is the source the events carry.
/// EVTX and zip content is spooled to an anonymous temporary file, since both need to seek.
pub fn read_reader_with(
    name: &str,
    reader: impl std::io::Read,
    opts: &ReadOptions,
    sink: &mut dyn EventSink,
) -> Result<ReadStats, ReadError> {
    let path = PathBuf::from(name);
    let mut ctx = build::Ctx::new(Arc::from(name), path.clone(), sink);
    let opener = input::Opener::new(opts, ctx.stop.clone());
    let result = opener.stream(Box::new(reader), &path, &mut ctx, 0);
    finish(result, ctx, &path)
}

/// Read an input held whole in memory (a stored log); `name` is the source the events carry.
/// EVTX and zip content is read in place, with no temporary file and no copy.
pub fn read_owned_bytes(
    name: &str,
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    opts: &ReadOptions,
    sink: &mut dyn EventSink,
) -> Result<ReadStats, ReadError> {
    let path = PathBuf::from(name);
    let mut ctx = build::Ctx::new(Arc::from(name), path.clone(), sink);
    let opener = input::Opener::new(opts, ctx.stop.clone());
    let result = opener.bytes(evtx_chunks::InMemory::new(bytes), &path, &mut ctx);
    finish(result, ctx, &path)
}

/// An input with no record at all, of any channel, is not an event log — unless it is an EVTX
/// file, which can be empty.
fn finish(
    result: Result<(), ReadError>,
    ctx: build::Ctx<'_>,
    path: &Path,
) -> Result<ReadStats, ReadError> {
    result?;
    if ctx.records == 0 && (!ctx.empty_ok || ctx.stats.warnings > 0) {
        let reason = if ctx.stats.warnings > 0 {
            "no readable record (every part is damaged)"
        } else {
            "no event records"
        };
        return Err(ReadError::NotAnEventLog {
            path: path.to_path_buf(),
            reason: reason.into(),
        });
    }
    Ok(ctx.stats)
}

/// The files under `path`, recursively, in sorted (byte-wise by name) order: `path` itself
/// when it is not a directory. Hidden entries (`.name`) and symbolic links to directories are
/// skipped.
pub fn walk(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(out);
    }
    walk_into(path, &mut out)?;
    Ok(out)
}

fn walk_into(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk_into(&entry.path(), out)?;
        } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Everything one file held, collected in memory. For tests and small inputs; large inputs
/// should stream through [`read_path`].
#[derive(Debug, Default)]
pub struct ReadOutput {
    pub events: Vec<SysmonEvent>,
    pub warnings: Vec<ReadWarning>,
    pub stats: ReadStats,
}

impl EventSink for ReadOutput {
    fn event(&mut self, event: SysmonEvent) {
        self.events.push(event);
    }
    fn warning(&mut self, warning: ReadWarning) {
        self.warnings.push(warning);
    }
}

/// Read one file into memory.
pub fn read_all(path: &Path) -> Result<ReadOutput, ReadError> {
    let mut out = ReadOutput::default();
    out.stats = read_path(path, &mut out)?;
    Ok(out)
}
