//! JSON inputs, one module for every shape Sysmon events arrive in as JSON:
//!
//! * the `evtx` crate's JSON (`{"Event":{"System":…,"EventData":{…}}}`), one per line
//!   (`evtx_dump -o jsonl`) or pretty-printed (the Sigma regression samples), and xmltodict's
//!   rendering of the same XML (`@Name`/`#text`);
//! * Winlogbeat without the Sysmon module (`winlog.event_data.*`, `winlog.channel`, …), nested
//!   or with dotted keys;
//! * flat exports (Mordor/OTRF via nxlog, Log Analytics): `Channel`, `EventID` and the fields at
//!   the top level, mixed with the shipper's envelope. Which keys are `EventData` is decided by
//!   the Sysmon manifest's field list for the event id (`sysmon_fields`), so envelope keys
//!   such as nxlog's `EventType: "INFO"` or `Hostname` are not mistaken for fields;
//! * Log Analytics rows whose `EventData` is a string (JSON or XML), and `SyslogMessage` rows that
//!   carry Sysmon for Linux's XML;
//! * CAPE's `report.json`/`lite.json`, whose `sysmon` array holds the events (xmltodict shape).
//!
//! Lines are read one by one (a bad line costs one warning); a document that does not fit on
//! one line (pretty JSON, a CAPE report) is read as a stream of JSON values.

use crate::Location;
use crate::build::{Ctx, EventBuilder};
use sandscope_event::{is_sysmon_field, sysmon_fields};
use serde_json::{Map, Value};
use std::io::{BufRead, Read};

/// Longer lines are damage (skipped with a warning).
pub(crate) const MAX_LINE_BYTES: usize = 64 << 20;

const NOT_AN_EVENT: &str = "(not an event)";

pub(crate) fn read_json(mut reader: impl BufRead, ctx: &mut Ctx<'_>) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut n = 0u64;
    let mut first = true;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            ctx.warn(
                Location::Line(n),
                format!("line longer than {} MiB skipped", MAX_LINE_BYTES >> 20),
            );
            // Skip the rest of the line.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let r = (&mut reader).take(1 << 20).read_until(b'\n', &mut sink)?;
                if r == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
            continue;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(trimmed) {
            Ok(value) => {
                first = false;
                value_events(value, ctx, Location::Line(n));
            }
            Err(e) if first && e.is_eof() => {
                // A document spread over lines: read the rest as a stream of values.
                let rest = std::io::Cursor::new(std::mem::take(&mut line)).chain(reader);
                return read_documents(rest, ctx, n);
            }
            Err(e) => {
                first = false;
                ctx.warn(Location::Line(n), format!("invalid JSON: {e}"));
            }
        }
    }
}

fn read_documents(reader: impl Read, ctx: &mut Ctx<'_>, first_line: u64) -> std::io::Result<()> {
    let mut stream = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
    let mut line = first_line;
    loop {
        match stream.next() {
            None => return Ok(()),
            Some(Ok(value)) => value_events(value, ctx, Location::Line(line)),
            Some(Err(e)) => {
                if e.is_io() {
                    return Err(std::io::Error::other(e));
                }
                line = first_line + e.line() as u64 - 1;
                ctx.warn(Location::Line(line), format!("invalid JSON: {e}"));
                return Ok(());
            }
        }
        line = first_line;
    }
}

/// The events in one JSON value (an event, an array of events, or a CAPE report).
fn value_events(value: Value, ctx: &mut Ctx<'_>, location: Location) {
    match value {
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(obj) => object_events(&obj, ctx, &location),
                    _ => ctx.skipped(NOT_AN_EVENT.into()),
                }
            }
        }
        Value::Object(obj) => object_events(&obj, ctx, &location),
        _ => ctx.skipped(NOT_AN_EVENT.into()),
    }
}

fn object_events(obj: &Map<String, Value>, ctx: &mut Ctx<'_>, location: &Location) {
    if let Some(Value::Array(events)) = obj.get("sysmon")
        && (obj.contains_key("info") || obj.contains_key("behavior") || obj.contains_key("target"))
    {
        // A CAPE report: its Sysmon events, numbered by their place in the array.
        for (i, ev) in events.iter().enumerate() {
            let built = ev.as_object().and_then(builder_from_object);
            match built {
                Some(Ok(b)) => ctx.builder_outcome(b, || Location::Record(i as u64)),
                Some(Err(e)) => ctx.warn(Location::Record(i as u64), format!("sysmon[{i}]: {e}")),
                None => ctx.skipped(NOT_AN_EVENT.into()),
            }
        }
        return;
    }
    match builder_from_object(obj) {
        Some(Ok(b)) => ctx.builder_outcome(b, || location.clone()),
        Some(Err(e)) => ctx.warn(location.clone(), e),
        None => ctx.skipped(NOT_AN_EVENT.into()),
    }
}

/// An event from one JSON object of any known shape; `None` when it is not an event.
pub(crate) fn builder_from_object(
    obj: &Map<String, Value>,
) -> Option<Result<EventBuilder, String>> {
    if let Some(Value::Object(event)) = obj.get("Event") {
        let system = event.get("System")?.as_object()?;
        return Some(Ok(from_system(system, event.get("EventData"))));
    }
    if let Some(Value::Object(system)) = obj.get("System") {
        return Some(Ok(from_system(system, obj.get("EventData"))));
    }
    if obj.contains_key("winlog") || obj.contains_key("winlog.channel") {
        return Some(Ok(from_winlogbeat(obj)));
    }
    if let Some(Value::String(message)) = obj.get("SyslogMessage") {
        let xml = crate::xml::event_in(message.as_bytes())?;
        return Some(crate::xml::parse_event(xml).map(|mut b| {
            if b.computer.is_none() {
                b.computer = str_of(obj, &["Computer", "HostName"]);
            }
            b
        }));
    }
    if obj.contains_key("EventID")
        && [
            "Channel",
            "channel",
            "Provider",
            "SourceName",
            "ProviderName",
        ]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Some(from_flat(obj));
    }
    None
}

/// A JSON value as Sysmon's text: strings as they are, numbers and booleans as the EVTX
/// renderer writes them, `null` as empty.
pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// `EventID` in any spelling: `1`, `"1"`, `{"#text": 1}`, `{"#text": "1", "@Qualifiers": ""}`.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Object(o) => o.get("#text").or_else(|| o.get("$")).map(scalar),
        Value::Null => None,
        v => Some(scalar(v)),
    }
}

/// An attribute of an element in the evtx crate's (`#attributes`) or xmltodict's (`@Name`)
/// rendering.
fn xml_attr<'a>(element: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    let element = element?;
    if let Some(v) = element.get("#attributes").and_then(|a| a.get(name)) {
        return Some(v);
    }
    if let Value::Object(o) = element {
        if let Some(v) = o.get(&format!("@{name}")) {
            return Some(v);
        }
        if let Some(v) = o.get(name) {
            return Some(v);
        }
    }
    None
}

fn from_system(system: &Map<String, Value>, event_data: Option<&Value>) -> EventBuilder {
    let mut b = EventBuilder {
        event_id: system.get("EventID").and_then(id_text),
        record_id: system
            .get("EventRecordID")
            .and_then(id_text)
            .and_then(|r| r.trim().parse().ok()),
        channel: system.get("Channel").map(scalar),
        computer: system.get("Computer").map(scalar),
        provider: match system.get("Provider") {
            Some(Value::String(s)) => Some(s.clone()),
            p => xml_attr(p, "Name").map(scalar),
        },
        time_created: match system.get("TimeCreated") {
            Some(Value::String(s)) => Some(s.clone()),
            t => xml_attr(t, "SystemTime").map(scalar),
        },
        ..Default::default()
    };
    if let Some(data) = event_data {
        event_data_fields(data, &mut b);
    }
    b
}

/// `EventData` as the evtx crate renders it (`{"Name": value}`) or as xmltodict does
/// (`{"Data": [{"@Name": …, "#text": …}]}`).
fn event_data_fields(data: &Value, b: &mut EventBuilder) {
    let Value::Object(map) = data else { return };
    if let Some(items) = map.get("Data")
        && (items.is_array() || items.get("@Name").is_some())
    {
        let items = match items {
            Value::Array(a) => a.as_slice(),
            one => std::slice::from_ref(one),
        };
        for item in items {
            match item {
                Value::Object(o) => {
                    let name = o.get("@Name").map(scalar).unwrap_or_else(|| "Data".into());
                    let value = o.get("#text").map(scalar).unwrap_or_default();
                    b.field(&name, &value);
                }
                other => b.field("Data", &scalar(other)),
            }
        }
        return;
    }
    for (name, value) in map {
        if name.starts_with('#') || name.starts_with('@') {
            continue;
        }
        b.field(name, &scalar(value));
    }
}

/// Look `path` up nested (`{"winlog":{"channel":…}}`) or dotted (`{"winlog.channel":…}`).
fn path<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = obj.get(parts.next()?)?;
    for part in parts {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn from_winlogbeat(obj: &Map<String, Value>) -> EventBuilder {
    let mut b = EventBuilder {
        event_id: path(obj, "winlog.event_id")
            .or_else(|| path(obj, "event.code"))
            .and_then(id_text),
        record_id: path(obj, "winlog.record_id")
            .map(scalar)
            .and_then(|r| r.trim().parse().ok()),
        channel: path(obj, "winlog.channel").map(scalar),
        computer: path(obj, "winlog.computer_name")
            .or_else(|| path(obj, "host.name"))
            .map(scalar),
        provider: path(obj, "winlog.provider_name").map(scalar),
        time_created: path(obj, "@timestamp").map(scalar),
        ..Default::default()
    };
    if let Some(Value::Object(data)) = path(obj, "winlog.event_data") {
        for (name, value) in data {
            b.field(name, &scalar(value));
        }
    } else {
        for (key, value) in obj {
            if let Some(name) = key.strip_prefix("winlog.event_data.") {
                b.field(name, &scalar(value));
            }
        }
    }
    b
}

fn str_of(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
        .map(scalar)
}

fn from_flat(obj: &Map<String, Value>) -> Result<EventBuilder, String> {
    let mut b = EventBuilder {
        event_id: obj.get("EventID").and_then(id_text),
        record_id: str_of(obj, &["EventRecordID", "RecordNumber"])
            .and_then(|r| r.trim().parse().ok()),
        channel: str_of(obj, &["Channel", "channel"]),
        computer: str_of(obj, &["Computer", "Hostname", "HostName", "host"]),
        provider: str_of(obj, &["Provider", "ProviderName", "SourceName"]),
        time_created: str_of(obj, &["TimeCreated", "@timestamp", "TimeGenerated"]),
        ..Default::default()
    };
    match obj.get("EventData") {
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.starts_with('{') {
                let data: Value =
                    serde_json::from_str(s).map_err(|e| format!("EventData is not JSON: {e}"))?;
                event_data_fields(&data, &mut b);
            } else if s.starts_with('<') {
                crate::xml::data_fields(s, &mut b)
                    .map_err(|e| format!("EventData is not XML: {e}"))?;
            }
        }
        Some(data @ Value::Object(_)) => event_data_fields(data, &mut b),
        _ => {
            let id = b
                .event_id
                .as_deref()
                .and_then(|e| e.trim().parse::<u16>().ok());
            match id.and_then(sysmon_fields) {
                Some(names) => {
                    for name in names {
                        if let Some(v) = obj.get(*name) {
                            b.field(name, &scalar(v));
                        }
                    }
                }
                None => {
                    for (name, v) in obj {
                        if is_sysmon_field(name) {
                            b.field(name, &scalar(v));
                        }
                    }
                }
            }
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadOutput;
    use std::sync::Arc;

    fn read(text: &str) -> ReadOutput {
        let mut out = ReadOutput::default();
        let mut ctx = Ctx::new(Arc::from("t.json"), "t.json".into(), &mut out);
        read_json(text.as_bytes(), &mut ctx).unwrap();
        out.stats = ctx.stats;
        out
    }

    #[test]
    fn winlogbeat_nested_and_dotted() {
        let nested = r#"{"@timestamp":"2019-03-18T16:57:38.636Z","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","computer_name":"vagrant","event_id":1,"record_id":"42","event_data":{"UtcTime":"2019-03-18 16:57:38.636","ProcessGuid":"{42F11C3B-CE01-5C8F-0000-0010C73E2A00}","ProcessId":"2548"}}}"#;
        let dotted = r#"{"@timestamp":"2019-03-18T16:57:38.636Z","winlog.channel":"Microsoft-Windows-Sysmon/Operational","winlog.computer_name":"vagrant","winlog.event_id":"1","winlog.record_id":42,"winlog.event_data.UtcTime":"2019-03-18 16:57:38.636","winlog.event_data.ProcessGuid":"{42f11c3b-ce01-5c8f-0000-0010c73e2a00}","winlog.event_data.ProcessId":"2548"}"#;
        let out = read(&format!("{nested}\n{dotted}\n"));
        assert_eq!(out.events.len(), 2, "{:?}", out.warnings);
        assert_eq!(out.events[0].source.record_id, Some(42));
        assert_eq!(out.events[0].data, out.events[1].data);
        assert_eq!(out.events[0].computer, "vagrant");
    }

    #[test]
    fn flat_envelope_is_not_data() {
        let row = r#"{"EventType":"INFO","Hostname":"DC","Channel":"Microsoft-Windows-Sysmon/Operational","EventID":3,"ProcessId":"3484","UtcTime":"2020-07-22 04:18:46.905","Protocol":"udp","Severity":"INFO","RecordNumber":1482061}"#;
        let out = read(row);
        let e = &out.events[0];
        assert_eq!(e.get("EventType"), None);
        assert_eq!(e.get("Severity"), None);
        assert_eq!(e.get("Protocol"), Some("udp"));
        assert_eq!(e.computer, "DC");
        assert_eq!(e.source.record_id, Some(1482061));
        let names: Vec<_> = e.data.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["UtcTime", "ProcessId", "Protocol"]);
    }

    #[test]
    fn other_channels_counted() {
        let out = read("{\"Channel\":\"Security\",\"EventID\":4688}\n{\"x\":1}\n");
        assert_eq!(out.events.len(), 0);
        assert_eq!(out.stats.skipped_by_channel["Security"], 1);
        assert_eq!(out.stats.skipped_by_channel[NOT_AN_EVENT], 1);
    }

    #[test]
    fn bad_lines_are_local() {
        let ok = r#"{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":5,"UtcTime":"2020-07-22 04:18:46.905"}"#;
        let out = read(&format!("{ok}\n{{\"a\":\n{ok}\n"));
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(out.warnings[0].location, Location::Line(2));
    }
}
