//! Readers for Sysmon telemetry: each input format has one module, and every module produces the
//! same [`SysmonEvent`]s.
//!
//! Reading is streaming: events go to an [`EventSink`] as they are decoded, so memory does not
//! grow with the input. Damage never aborts a file: every readable record is delivered, and each
//! damaged chunk or record is reported once as a [`ReadWarning`] naming the file and where.
//! Only a file that cannot be read at all (missing, not an event log) is a [`ReadError`].
//!
//! This crate depends on the event model only; it knows nothing of reports, rules or storage.

mod evtx_file;

use sandscope_event::SysmonEvent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Read one file (format detected from its content) into `sink`.
pub fn read_path(path: &Path, sink: &mut dyn EventSink) -> Result<ReadStats, ReadError> {
    evtx_file::read_evtx(path, sink)
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
