//! Timelines for Timesketch (`jsonl` or `csv`), or plain JSON lines: one line per event and
//! one per Sigma hit, sorted by time, in bounded memory.
//!
//! Every line has Timesketch's three required fields — `message`, `datetime` (ISO 8601 with
//! an explicit `+00:00` offset, microseconds) and `timestamp_desc` — then the event's own
//! fields (`event_id`, `computer`, `channel`, `record_id`, `source_file` and every
//! `EventData` field); a hit line adds `rule_title`, `rule_id`, `rule_level` and the matched
//! fields, and its `message` is the rule title (as Hayabusa's Timesketch profiles do).
//!
//! Sorting: logs are mostly in time order but not quite (EVTX chunks wrap, Sysmon's `UtcTime`
//! is the activity's time, not the record's). [`TimelineSorter`] keeps up to
//! `lines_in_memory` lines, writes each full batch sorted to a temporary file and merges the
//! files at the end (an external merge sort), so the output is exactly sorted and memory is
//! bounded whatever the log's size. Ties keep input order.

use crate::ExportError;
use sandscope_event::{SysmonEvent, sysmon_fields};
use serde_json::{Map, Value};
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

/// The output layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineFormat {
    /// JSON lines, as Timesketch imports them (`.jsonl`).
    Timesketch,
    /// CSV with a header line (`.csv`); fixed columns, see [`csv_columns`].
    Csv,
    /// The same JSON lines (for other tools).
    Jsonl,
}

/// One timeline line: its time in microseconds (the sort key) and its fields in output order.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineLine {
    pub micros: i64,
    pub fields: Map<String, Value>,
}

/// A Sigma hit on one event, as the caller's engine reports it.
#[derive(Debug, Clone, Copy)]
pub struct SigmaHitInfo<'a> {
    pub rule_title: &'a str,
    pub rule_id: &'a str,
    pub rule_level: &'a str,
    /// The event fields that made the rule match.
    pub matched: &'a [(String, String)],
}

/// The Sysmon event names (the manifest's task names).
fn event_name(event_id: u16) -> &'static str {
    const NAMES: [&str; 30] = [
        "",
        "Process Create",
        "File creation time changed",
        "Network connection detected",
        "Sysmon service state changed",
        "Process terminated",
        "Driver loaded",
        "Image loaded",
        "CreateRemoteThread detected",
        "RawAccessRead detected",
        "Process accessed",
        "File created",
        "Registry object added or deleted",
        "Registry value set",
        "Registry object renamed",
        "File stream created",
        "Sysmon config state changed",
        "Pipe Created",
        "Pipe Connected",
        "WmiEventFilter activity detected",
        "WmiEventConsumer activity detected",
        "WmiEventConsumerToFilter activity detected",
        "Dns query",
        "File Delete archived",
        "Clipboard changed",
        "Process Tampering",
        "File Delete logged",
        "File Block Executable",
        "File Block Shredding",
        "File Executable Detected",
    ];
    match event_id {
        255 => "Error",
        id => NAMES
            .get(usize::from(id))
            .copied()
            .unwrap_or("Sysmon event"),
    }
}

/// What the event did, in one field: the first present of these.
const WHAT_FIELDS: &[&str] = &[
    "CommandLine",
    "TargetFilename",
    "TargetObject",
    "QueryName",
    "DestinationIp",
    "ImageLoaded",
    "PipeName",
    "TargetImage",
    "Destination",
    "Query",
];

fn datetime(micros: i64) -> String {
    let time = jiff::Timestamp::from_microsecond(micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    time.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn micros(event: &SysmonEvent) -> i64 {
    event.time.as_microsecond()
}

/// The fields every line of an event carries, after the three required ones.
fn event_fields(event: &SysmonEvent, fields: &mut Map<String, Value>) {
    fields.insert("event_id".into(), Value::from(event.event_id));
    fields.insert("computer".into(), Value::from(event.computer.as_str()));
    fields.insert("channel".into(), Value::from(event.channel.as_str()));
    if let Some(record) = event.source.record_id {
        fields.insert("record_id".into(), Value::from(record));
    }
    fields.insert("source_file".into(), Value::from(&*event.source.file));
}

/// The line of one event.
pub fn event_line(event: &SysmonEvent) -> TimelineLine {
    let micros = micros(event);
    let mut fields = Map::new();
    let image = event.value("Image").unwrap_or("");
    let what = WHAT_FIELDS
        .iter()
        .find_map(|name| event.value(name))
        .filter(|what| *what != image)
        .unwrap_or("");
    let mut message = format!("Sysmon {} ({})", event.event_id, event_name(event.event_id));
    for part in [image, what] {
        if !part.is_empty() {
            message.push_str(": ");
            message.push_str(part);
        }
    }
    fields.insert("message".into(), Value::from(message));
    fields.insert("datetime".into(), Value::from(datetime(micros)));
    fields.insert("timestamp_desc".into(), Value::from("Event Time"));
    event_fields(event, &mut fields);
    for (name, value) in event.data.iter() {
        if !fields.contains_key(name) {
            fields.insert(name.to_string(), Value::from(value));
        }
    }
    TimelineLine { micros, fields }
}

/// The line of one Sigma hit on `event`.
pub fn hit_line(event: &SysmonEvent, hit: SigmaHitInfo<'_>) -> TimelineLine {
    let micros = micros(event);
    let mut fields = Map::new();
    fields.insert("message".into(), Value::from(hit.rule_title));
    fields.insert("datetime".into(), Value::from(datetime(micros)));
    fields.insert("timestamp_desc".into(), Value::from("Sigma Hit"));
    fields.insert("rule_title".into(), Value::from(hit.rule_title));
    fields.insert("rule_id".into(), Value::from(hit.rule_id));
    fields.insert("rule_level".into(), Value::from(hit.rule_level));
    let matched: Vec<String> = hit
        .matched
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    fields.insert("matched".into(), Value::from(matched.join("; ")));
    event_fields(event, &mut fields);
    TimelineLine { micros, fields }
}

/// The CSV header: the required fields, the hit and event fields, then every field Sysmon's
/// manifest names (first-seen order over event ids 1–29); a field outside the manifest goes
/// into `extra_fields` as `name=value` pairs.
pub fn csv_columns() -> Vec<&'static str> {
    let mut columns = vec![
        "message",
        "datetime",
        "timestamp_desc",
        "rule_title",
        "rule_id",
        "rule_level",
        "matched",
        "event_id",
        "computer",
        "channel",
        "record_id",
        "source_file",
    ];
    for id in (1..=29).chain([255]) {
        for name in sysmon_fields(id).unwrap_or(&[]) {
            if !columns.contains(name) {
                columns.push(name);
            }
        }
    }
    columns.push("extra_fields");
    columns
}

/// Writes lines in the chosen format (the CSV header first).
pub struct TimelineWriter<W: Write> {
    out: W,
    format: TimelineFormat,
    columns: Vec<&'static str>,
}

impl<W: Write> TimelineWriter<W> {
    pub fn new(mut out: W, format: TimelineFormat) -> Result<Self, ExportError> {
        let columns = if format == TimelineFormat::Csv {
            let columns = csv_columns();
            let header: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
            writeln!(out, "{}", header.join(","))?;
            columns
        } else {
            Vec::new()
        };
        Ok(Self {
            out,
            format,
            columns,
        })
    }

    pub fn write(&mut self, line: &TimelineLine) -> Result<(), ExportError> {
        match self.format {
            TimelineFormat::Timesketch | TimelineFormat::Jsonl => {
                let text = serde_json::to_string(&line.fields)?;
                self.out
                    .write_all(crate::escape_line_separators(text).as_bytes())?;
                self.out.write_all(b"\n")?;
            }
            TimelineFormat::Csv => {
                let mut row = Vec::with_capacity(self.columns.len());
                for column in &self.columns[..self.columns.len() - 1] {
                    row.push(match line.fields.get(*column) {
                        Some(Value::String(text)) => csv_field(text),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => csv_field(&other.to_string()),
                    });
                }
                let extra: Vec<String> = line
                    .fields
                    .iter()
                    .filter(|(name, _)| !self.columns.contains(&name.as_str()))
                    .map(|(name, value)| match value {
                        Value::String(text) => format!("{name}={text}"),
                        other => format!("{name}={other}"),
                    })
                    .collect();
                row.push(csv_field(&extra.join("; ")));
                writeln!(self.out, "{}", row.join(","))?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<W, ExportError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. Other control
/// characters are written as `\u00XX` so no reader mistakes them for structure.
fn csv_field(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' && c != '\n' && c != '\r' {
            clean.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            clean.push(c);
        }
    }
    if clean.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", clean.replace('"', "\"\""))
    } else {
        clean
    }
}

/// Lines kept in memory before a sorted run is written to disk, by default.
pub const DEFAULT_LINES_IN_MEMORY: usize = 100_000;

/// An external merge sort of timeline lines by time (ties in input order); see the module
/// documentation.
pub struct TimelineSorter {
    lines_in_memory: usize,
    batch: Vec<(i64, u64, TimelineLine)>,
    runs: Vec<std::fs::File>,
    next_seq: u64,
}

impl TimelineSorter {
    pub fn new(lines_in_memory: usize) -> Self {
        Self {
            lines_in_memory: lines_in_memory.max(1),
            batch: Vec::new(),
            runs: Vec::new(),
            next_seq: 0,
        }
    }

    pub fn push(&mut self, line: TimelineLine) -> Result<(), ExportError> {
        self.batch.push((line.micros, self.next_seq, line));
        self.next_seq += 1;
        if self.batch.len() >= self.lines_in_memory {
            self.spill()?;
        }
        Ok(())
    }

    /// How many sorted runs went to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> Result<(), ExportError> {
        self.batch.sort_by_key(|(micros, seq, _)| (*micros, *seq));
        let mut file = BufWriter::new(tempfile::tempfile()?);
        for (micros, seq, line) in self.batch.drain(..) {
            serde_json::to_writer(&mut file, &(micros, seq, &line.fields))?;
            file.write_all(b"\n")?;
        }
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        Ok(())
    }

    /// Write every line, sorted, to `writer`.
    pub fn finish<W: Write>(mut self, writer: &mut TimelineWriter<W>) -> Result<(), ExportError> {
        if self.runs.is_empty() {
            self.batch.sort_by_key(|(micros, seq, _)| (*micros, *seq));
            for (_, _, line) in &self.batch {
                writer.write(line)?;
            }
            return Ok(());
        }
        if !self.batch.is_empty() {
            self.spill()?;
        }
        let mut readers: Vec<std::io::Lines<BufReader<std::fs::File>>> = self
            .runs
            .drain(..)
            .map(|f| BufReader::new(f).lines())
            .collect();
        // Min-heap on (time, input order, run).
        let mut heap = BinaryHeap::new();
        let mut heads: Vec<Option<TimelineLine>> = Vec::with_capacity(readers.len());
        for (run, reader) in readers.iter_mut().enumerate() {
            let head = next_line(reader)?;
            if let Some((micros, seq, line)) = head {
                heap.push(std::cmp::Reverse((micros, seq, run)));
                heads.push(Some(line));
            } else {
                heads.push(None);
            }
        }
        while let Some(std::cmp::Reverse((_, _, run))) = heap.pop() {
            if let Some(line) = heads[run].take() {
                writer.write(&line)?;
            }
            if let Some((micros, seq, line)) = next_line(&mut readers[run])? {
                heap.push(std::cmp::Reverse((micros, seq, run)));
                heads[run] = Some(line);
            }
        }
        Ok(())
    }
}

fn next_line(
    reader: &mut std::io::Lines<BufReader<std::fs::File>>,
) -> Result<Option<(i64, u64, TimelineLine)>, ExportError> {
    let Some(text) = reader.next().transpose()? else {
        return Ok(None);
    };
    let (micros, seq, fields): (i64, u64, Map<String, Value>) = serde_json::from_str(&text)?;
    Ok(Some((micros, seq, TimelineLine { micros, fields })))
}
