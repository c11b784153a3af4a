//! EVTX files, through the `evtx` crate's multi-threaded chunk parser.

use crate::{EventSink, Location, ReadError, ReadStats, ReadWarning};
use evtx::{EvtxParser, ParserSettings};
use sandscope_event::{EventSource, Fields, SysmonEvent, is_sysmon_channel, parse_time};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

pub(crate) fn read_evtx(path: &Path, sink: &mut dyn EventSink) -> Result<ReadStats, ReadError> {
    let settings = ParserSettings::new().num_threads(0);
    let mut parser = EvtxParser::from_path(path)
        .map_err(|e| not_an_event_log(path, &e))?
        .with_configuration(settings);
    let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let mut stats = ReadStats::default();
    for record in parser.records_json_value() {
        match record {
            Ok(record) => {
                let Some(event) = event_from_json(
                    &file,
                    record.event_record_id,
                    record.timestamp,
                    &record.data,
                ) else {
                    continue;
                };
                if is_sysmon_channel(&event.channel) {
                    stats.sysmon_events += 1;
                    sink.event(event);
                } else {
                    *stats.skipped_by_channel.entry(event.channel).or_default() += 1;
                }
            }
            Err(err) => {
                stats.warnings += 1;
                sink.warning(ReadWarning {
                    file: path.to_path_buf(),
                    location: location_of(&err),
                    message: error_chain(&err),
                });
            }
        }
    }
    Ok(stats)
}

fn not_an_event_log(path: &Path, err: &evtx::err::EvtxError) -> ReadError {
    if let evtx::err::EvtxError::IoError(io) = err {
        return ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        };
    }
    ReadError::NotAnEventLog {
        path: path.to_path_buf(),
        reason: error_chain(err),
    }
}

fn location_of(err: &evtx::err::EvtxError) -> Location {
    use evtx::err::EvtxError as E;
    match err {
        E::FailedToParseChunk { chunk_id, .. } => Location::Chunk(*chunk_id),
        E::FailedToParseRecord { record_id, .. } => Location::Record(*record_id),
        E::FailedToReadRecordAt { chunk, offset, .. } => Location::RecordAt {
            chunk: *chunk,
            offset: *offset,
        },
        _ => Location::File,
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Build a [`SysmonEvent`] from the `evtx` crate's JSON rendering of one record.
fn event_from_json(
    file: &Arc<str>,
    record_id: u64,
    logged: jiff::Timestamp,
    value: &Value,
) -> Option<SysmonEvent> {
    let event = value.get("Event")?;
    let system = event.get("System")?;
    let event_id = match system.get("EventID")? {
        Value::Number(n) => n.as_u64()?,
        Value::Object(o) => o.get("#text")?.as_u64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let channel = system
        .get("Channel")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let computer = system
        .get("Computer")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut data = Fields::new();
    if let Some(Value::Object(fields)) = event.get("EventData") {
        for (name, value) in fields {
            if name.starts_with('#') {
                continue;
            }
            data.push(name, json_scalar(value));
        }
    }
    let time = data.get("UtcTime").and_then(parse_time).unwrap_or(logged);
    Some(SysmonEvent {
        source: EventSource {
            file: file.clone(),
            record_id: Some(record_id),
        },
        event_id: u16::try_from(event_id).ok()?,
        time,
        time_created: Some(logged),
        computer,
        channel,
        data,
    })
}

fn json_scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}
