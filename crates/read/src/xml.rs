//! Windows XML event exports (`wevtutil qe … /f:xml`, `Get-WinEvent | % ToXml`, with or without
//! an `<Events>` wrapper, namespaced or not) and Sysmon for Linux's syslog lines, which carry
//! the same `<Event>` element after a syslog prefix (RFC 3164, RFC 5424, or none).
//!
//! The input is cut into `<Event>…</Event>` segments by a byte scanner, and each segment is
//! parsed on its own with `quick-xml`: a damaged or truncated event costs that event only (one
//! warning naming its line), and memory is bounded by the largest event, not by the input.

use crate::Location;
use crate::build::{Ctx, EventBuilder};
use quick_xml::events::{BytesStart, Event};
use std::io::Read;

/// Events larger than this are treated as damage (real events are a few KiB).
pub(crate) const MAX_EVENT_BYTES: usize = 16 << 20;
const READ_SIZE: usize = 256 << 10;
const MAX_DEPTH: usize = 64;
/// Bytes kept from the end of a scanned buffer: enough for a split `<prefix:Event ` tag.
const OVERLAP: usize = 64;

/// Read every `<Event>` in `reader`.
pub(crate) fn read_xml(reader: impl Read, ctx: &mut Ctx<'_>) -> std::io::Result<()> {
    let mut seg = Segmenter::new(reader);
    while let Some(segment) = seg.next_segment()? {
        let line = segment.line;
        match segment.state {
            SegmentState::Oversized => ctx.warn(
                Location::Line(line),
                format!("event larger than {} MiB skipped", MAX_EVENT_BYTES >> 20),
            ),
            SegmentState::Truncated | SegmentState::Complete => {
                match parse_event(seg.bytes(&segment)) {
                    Ok(b) => ctx.builder_outcome(b, || Location::Line(line)),
                    Err(e) => ctx.warn(Location::Line(line), format!("unreadable event: {e}")),
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegmentState {
    Complete,
    Truncated,
    Oversized,
}

struct Segment {
    end: usize,
    line: u64,
    state: SegmentState,
}

/// Cuts a byte stream into event segments. After `next_segment`, the segment is `buf[..end]`.
struct Segmenter<R> {
    reader: R,
    buf: Vec<u8>,
    /// Where scanning for the next event resumes.
    pos: usize,
    eof: bool,
    /// Line number (1-based) of `buf[0]`.
    line: u64,
}

enum Scan {
    Found(usize),
    /// A `<` too close to the end of the buffer to tell whether it starts an event.
    NeedMore,
    NotFound,
}

impl<R: Read> Segmenter<R> {
    fn new(reader: R) -> Self {
        Segmenter {
            reader,
            buf: Vec::with_capacity(READ_SIZE * 2),
            pos: 0,
            eof: false,
            line: 1,
        }
    }

    fn bytes(&self, segment: &Segment) -> &[u8] {
        &self.buf[..segment.end]
    }

    /// Drop `buf[..n]`, keeping the line count.
    fn consume(&mut self, n: usize) {
        self.line += memchr::memchr_iter(b'\n', &self.buf[..n]).count() as u64;
        self.buf.drain(..n);
        self.pos = self.pos.saturating_sub(n);
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let old = self.buf.len();
        self.buf.resize(old + READ_SIZE, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        Ok(())
    }

    fn next_segment(&mut self) -> std::io::Result<Option<Segment>> {
        // Find the start of the next event and move it to the buffer's start.
        loop {
            match find_event_start(&self.buf, self.pos, self.eof) {
                Scan::Found(s) => {
                    self.consume(s);
                    break;
                }
                Scan::NeedMore | Scan::NotFound if !self.eof => {
                    let keep = self.buf.len().saturating_sub(OVERLAP).max(self.pos);
                    self.consume(keep.min(self.buf.len()));
                    self.fill()?;
                }
                _ => {
                    let n = self.buf.len();
                    self.consume(n);
                    return Ok(None);
                }
            }
        }
        // Find its end, or another event's start before it (then this one is truncated).
        let mut scanned = 1usize;
        loop {
            let next = match find_event_start(&self.buf, scanned.max(1), self.eof) {
                Scan::Found(s) => Some(s),
                _ => None,
            };
            let limit = next.unwrap_or(self.buf.len());
            if let Some(end) = find_event_end(&self.buf, scanned.saturating_sub(OVERLAP), limit) {
                self.pos = end;
                return Ok(Some(self.segment(end, SegmentState::Complete)));
            }
            if let Some(next) = next {
                self.pos = next;
                return Ok(Some(self.segment(next, SegmentState::Truncated)));
            }
            let len = self.buf.len();
            if self.eof {
                self.pos = len;
                return Ok(Some(self.segment(len, SegmentState::Truncated)));
            }
            if len > MAX_EVENT_BYTES {
                self.pos = len;
                return Ok(Some(self.segment(len, SegmentState::Oversized)));
            }
            scanned = len.saturating_sub(OVERLAP).max(1);
            self.fill()?;
        }
    }

    fn segment(&self, end: usize, state: SegmentState) -> Segment {
        Segment {
            end,
            line: self.line,
            state,
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Does `rest` (what follows a `<` or `</`) name the element `Event` (any prefix)? `None`
/// when `rest` is too short to tell.
fn names_event(rest: &[u8], closing: bool) -> Option<bool> {
    let mut i = 0;
    while i < rest.len() && is_name_byte(rest[i]) {
        i += 1;
        if i > OVERLAP / 2 {
            return Some(false);
        }
    }
    if i == rest.len() {
        return None;
    }
    let (name, after) = if rest[i] == b':' {
        let mut j = i + 1;
        while j < rest.len() && is_name_byte(rest[j]) {
            j += 1;
        }
        if j == rest.len() {
            return None;
        }
        (&rest[i + 1..j], rest[j])
    } else {
        (&rest[..i], rest[i])
    };
    let delimited = if closing {
        matches!(after, b'>' | b' ' | b'\t' | b'\r' | b'\n')
    } else {
        matches!(after, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
    };
    Some(name == b"Event" && delimited)
}

fn find_event_start(buf: &[u8], from: usize, eof: bool) -> Scan {
    let from = from.min(buf.len());
    for i in memchr::memchr_iter(b'<', &buf[from..]) {
        let at = from + i;
        match names_event(&buf[at + 1..], false) {
            Some(true) => return Scan::Found(at),
            Some(false) => continue,
            None if eof => continue,
            None => return Scan::NeedMore,
        }
    }
    Scan::NotFound
}

/// The offset just past the first `</Event>` (any prefix) that starts in `buf[from..limit]`.
fn find_event_end(buf: &[u8], from: usize, limit: usize) -> Option<usize> {
    let limit = limit.min(buf.len());
    let from = from.min(limit);
    for i in memchr::memmem::find_iter(&buf[from..limit], b"</") {
        let at = from + i;
        if names_event(&buf[at + 2..], true) == Some(true) {
            let gt = memchr::memchr(b'>', &buf[at..])?;
            return Some(at + gt + 1);
        }
    }
    None
}

/// Where a value being read goes.
enum Target {
    None,
    EventId,
    RecordId,
    Channel,
    Computer,
    Data(String),
}

#[derive(PartialEq)]
enum Section {
    None,
    System,
    EventData,
    Other,
}

/// Parse one `<Event>` element. A truncated one (a syslog line cut at its length limit) whose
/// `<System>` part is complete is recovered with the fields read so far, and says so in
/// `damage`.
pub(crate) fn parse_event(xml: &[u8]) -> Result<EventBuilder, String> {
    let repaired = repair_entities(xml);
    let xml: &[u8] = &repaired;
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let mut b = EventBuilder::default();
    let mut depth = 0usize;
    let mut section = Section::None;
    let mut target = Target::None;
    let mut text = String::new();
    let mut seen_event = false;
    let mut system_done = false;
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                let message = format!("{e} at byte {}", reader.error_position());
                if system_done && reader.buffer_position() as usize >= xml.len() {
                    // Cut inside a tag at the very end: keep what was read.
                    finish_target(&mut target, &mut text, &mut b);
                    b.damage = Some(truncated(&b));
                    return Ok(b);
                }
                return Err(message);
            }
        };
        match ev {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                seen_event |= depth == 1 && e.local_name().as_ref() == b"Event";
                start_element(&e, depth, &mut section, &mut target, &mut text, &mut b)?;
            }
            Event::Empty(e) => {
                start_element(&e, depth + 1, &mut section, &mut target, &mut text, &mut b)?;
                finish_target(&mut target, &mut text, &mut b);
                if depth + 1 == 2 {
                    section = Section::None;
                }
            }
            Event::End(_) => {
                finish_target(&mut target, &mut text, &mut b);
                if depth == 2 {
                    system_done |= section == Section::System;
                    section = Section::None;
                }
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            ev @ (Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)) => {
                append_text(&ev, &target, &mut text)?
            }
            Event::Eof if system_done => {
                finish_target(&mut target, &mut text, &mut b);
                b.damage = Some(truncated(&b));
                return Ok(b);
            }
            Event::Eof => return Err("truncated event".into()),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !seen_event {
        return Err("not an <Event> element".into());
    }
    Ok(b)
}

/// Append character data (text, CDATA, an entity or character reference) to `text` when a
/// value is being read.
fn append_text(ev: &Event<'_>, target: &Target, text: &mut String) -> Result<(), String> {
    if matches!(target, Target::None) {
        return Ok(());
    }
    match ev {
        Event::Text(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
        Event::CData(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
        Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| e.to_string())? {
            Some(c) => text.push(c),
            None => match r.decode().map_err(|e| e.to_string())?.as_ref() {
                "lt" => text.push('<'),
                "gt" => text.push('>'),
                "amp" => text.push('&'),
                "apos" => text.push('\''),
                "quot" => text.push('"'),
                other => {
                    text.push('&');
                    text.push_str(other);
                    text.push(';');
                }
            },
        },
        _ => {}
    }
    Ok(())
}

fn truncated(b: &EventBuilder) -> String {
    format!(
        "truncated event (no closing </Event>) recovered with {} fields",
        b.data.len()
    )
}

/// Sysmon for Linux writes `&lt ` and `&quot ` with a space for the `;`, and some exports leave a bare
/// `&`: make such text well-formed (only when it is not already).
fn repair_entities(xml: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    fn reference_len(rest: &[u8]) -> Option<usize> {
        // `rest` starts after `&`; the length of a well-formed reference up to and with `;`.
        let end = rest.iter().take(12).position(|&b| b == b';')?;
        let body = &rest[..end];
        let ok = match body {
            [b'#', b'x', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
            [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
            name => !name.is_empty() && name.iter().all(u8::is_ascii_alphanumeric),
        };
        ok.then_some(end + 1)
    }
    let needs = memchr::memchr_iter(b'&', xml).any(|i| reference_len(&xml[i + 1..]).is_none());
    if !needs {
        return std::borrow::Cow::Borrowed(xml);
    }
    let mut out = Vec::with_capacity(xml.len() + 64);
    let mut i = 0;
    while i < xml.len() {
        if xml[i] != b'&' {
            out.push(xml[i]);
            i += 1;
            continue;
        }
        let rest = &xml[i + 1..];
        if let Some(n) = reference_len(rest) {
            out.extend_from_slice(&xml[i..i + 1 + n]);
            i += 1 + n;
            continue;
        }
        let named = [
            (&b"lt"[..], &b"&lt;"[..]),
            (b"gt", b"&gt;"),
            (b"quot", b"&quot;"),
            (b"apos", b"&apos;"),
            (b"amp", b"&amp;"),
        ];
        match named.iter().find(|(name, _)| {
            rest.starts_with(name) && !rest.get(name.len()).is_some_and(u8::is_ascii_alphanumeric)
        }) {
            Some((name, escaped)) => {
                // Sysmon for Linux ends these with a space instead of `;`: `&lt unknown&gt `.
                out.extend_from_slice(escaped);
                i += 1 + name.len();
                if xml.get(i) == Some(&b' ') {
                    i += 1;
                }
            }
            None => {
                out.extend_from_slice(b"&amp;");
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.local_name().as_ref() == name {
            return Ok(Some(
                a.unescape_value().map_err(|e| e.to_string())?.into_owned(),
            ));
        }
    }
    Ok(None)
}

fn start_element(
    e: &BytesStart<'_>,
    depth: usize,
    section: &mut Section,
    target: &mut Target,
    text: &mut String,
    b: &mut EventBuilder,
) -> Result<(), String> {
    let name = e.local_name();
    let name = name.as_ref();
    if depth == 2 {
        *section = match name {
            b"System" => Section::System,
            b"EventData" => Section::EventData,
            _ => Section::Other,
        };
        return Ok(());
    }
    if depth != 3 {
        return Ok(());
    }
    text.clear();
    match section {
        Section::System => match name {
            b"Provider" => b.provider = attr(e, b"Name")?,
            b"TimeCreated" => b.time_created = attr(e, b"SystemTime")?,
            b"EventID" => *target = Target::EventId,
            b"EventRecordID" => *target = Target::RecordId,
            b"Channel" => *target = Target::Channel,
            b"Computer" => *target = Target::Computer,
            _ => {}
        },
        Section::EventData if name == b"Data" => {
            let field = attr(e, b"Name")?.unwrap_or_else(|| "Data".into());
            *target = Target::Data(field);
        }
        _ => {}
    }
    Ok(())
}

fn finish_target(target: &mut Target, text: &mut String, b: &mut EventBuilder) {
    match std::mem::replace(target, Target::None) {
        Target::None => return,
        Target::EventId => b.event_id = Some(text.trim().to_string()),
        Target::RecordId => b.record_id = text.trim().parse().ok(),
        Target::Channel => b.channel = Some(text.trim().to_string()),
        Target::Computer => b.computer = Some(text.trim().to_string()),
        Target::Data(name) => b.field(&name, text),
    }
    text.clear();
}

/// The `<Data Name="…">` fields of an XML fragment such as Log Analytics' `EventData` string
/// (`<DataItem …><EventData …><Data Name="RuleName">-</Data>…`).
pub(crate) fn data_fields(xml: &str, b: &mut EventBuilder) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut depth = 0usize;
    let mut target = Target::None;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                if e.local_name().as_ref() == b"Data" {
                    text.clear();
                    target = Target::Data(attr(&e, b"Name")?.unwrap_or_else(|| "Data".into()));
                }
            }
            Event::Empty(e) if e.local_name().as_ref() == b"Data" => {
                let name = attr(&e, b"Name")?.unwrap_or_else(|| "Data".into());
                b.field(&name, "");
            }
            Event::End(_) => {
                finish_target(&mut target, &mut text, b);
                depth = depth.saturating_sub(1);
            }
            ev @ (Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)) => {
                append_text(&ev, &target, &mut text)?
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// The first `<Event>…</Event>` in `text` (a syslog message), if any; to the end of `text`
/// when it was cut before its closing tag.
pub(crate) fn event_in(text: &[u8]) -> Option<&[u8]> {
    let Scan::Found(start) = find_event_start(text, 0, true) else {
        return None;
    };
    let limit = match find_event_start(text, start + 1, true) {
        Scan::Found(n) => n,
        _ => text.len(),
    };
    let end = find_event_end(text, start, limit).unwrap_or(limit);
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadOutput;
    use std::sync::Arc;

    fn read(text: &str) -> ReadOutput {
        let mut out = ReadOutput::default();
        let mut ctx = Ctx::new(Arc::from("t.xml"), "t.xml".into(), &mut out);
        read_xml(text.as_bytes(), &mut ctx).unwrap();
        let stats = ctx.stats;
        out.stats = stats;
        out
    }

    const EV: &str = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><Provider Name="Microsoft-Windows-Sysmon" Guid="{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"/><EventID>1</EventID><TimeCreated SystemTime="2025-11-21T15:40:01.2162716Z"/><EventRecordID>7</EventRecordID><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>PC</Computer></System><EventData><Data Name="RuleName"/><Data Name="UtcTime">2025-11-21 15:40:01.123</Data><Data Name="ProcessGuid">{A570A8C2-2E34-68CA-7600-000000006000}</Data><Data Name="CommandLine">a &amp; b &#x41;</Data></EventData></Event>"#;

    #[test]
    fn wrapped_bare_and_namespaced() {
        let wrapped = format!("<?xml version=\"1.0\"?>\n<Events>\n{EV}\n{EV}\n</Events>\n");
        let out = read(&wrapped);
        assert_eq!(out.events.len(), 2, "{:?}", out.warnings);
        let e = &out.events[0];
        assert_eq!(e.event_id, 1);
        assert_eq!(e.source.record_id, Some(7));
        assert_eq!(e.get("RuleName"), Some(""));
        assert_eq!(e.get("CommandLine"), Some("a & b A"));
        assert_eq!(
            e.get("ProcessGuid"),
            Some("{a570a8c2-2e34-68ca-7600-000000006000}")
        );
        assert_eq!(e.time.to_string(), "2025-11-21T15:40:01.123Z");
        assert_eq!(
            e.time_created.unwrap().to_string(),
            "2025-11-21T15:40:01.216271Z"
        );
        let bare = format!("{EV}{EV}{EV}");
        assert_eq!(read(&bare).events.len(), 3);
        let ns = EV
            .replace("<Event ", "<e:Event xmlns:e=\"x\" ")
            .replace("</Event>", "</e:Event>");
        assert_eq!(read(&ns).events.len(), 1);
    }

    #[test]
    fn syslog_lines() {
        let line = EV.replace(
            " xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"",
            "",
        );
        let text = format!(
            "Nov 24 08:30:01 host sysmon: {line}\n<134>1 2025-12-10T22:27:58+09:00 host sysmon - - - {line}\nnoise\n"
        );
        let out = read(&text);
        assert_eq!(out.events.len(), 2);
    }

    #[test]
    fn damage_is_local() {
        let cut = &EV[..EV.len() - 40];
        let text = format!("{EV}\n{cut}\n{EV}\n<Event><System><EventID>1</Sys></Event>\n{EV}");
        let out = read(&text);
        // The cut event keeps its System part, so it is recovered (with a warning).
        assert_eq!(out.events.len(), 4, "{:?}", out.warnings);
        assert_eq!(out.warnings.len(), 2);
        assert_eq!(out.warnings[0].location, Location::Line(2));
        assert_eq!(out.warnings[1].location, Location::Line(4));
    }

    #[test]
    fn linux_entities_without_semicolons() {
        let ev = EV.replace(
            "a &amp; b &#x41;",
            "&lt unknown process&gt  &quot x&quot  && y",
        );
        let out = read(&ev);
        assert_eq!(
            out.events[0].get("CommandLine"),
            Some("<unknown process> \"x\" && y")
        );
    }

    #[test]
    fn split_reads() {
        // Events that straddle the read buffer boundary.
        let many: String = std::iter::repeat_n(EV, 2000).collect::<Vec<_>>().join("\n");
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(7777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = ReadOutput::default();
        let mut ctx = Ctx::new(Arc::from("t"), "t".into(), &mut out);
        read_xml(Slow(many.as_bytes()), &mut ctx).unwrap();
        assert_eq!(ctx.stats.warnings, 0);
        assert_eq!(out.events.len(), 2000);
    }
}
