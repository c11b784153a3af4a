//! One record: its template instance's values, then the event built from the compiled
//! template's slots.

use super::binxml::{token, u16_at, u32_at, value_type};
use super::template::{DataField, Part, Slot, Template};
use super::template_cache::{ChunkTemplates, DEFINITION_HEADER_SIZE};
use super::value::{Unsupported, Value, render_value};
use crate::build::{EventBuilder, Outcome};
use sandscope_event::{
    EventSource, Fields, SysmonEvent, canonical_value, is_sysmon_channel, parse_time,
    truncate_to_micros,
};
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

/// What a record's header says.
#[derive(Clone, Copy)]
pub(super) struct RecordHeader {
    pub id: u64,
    pub time: jiff::Timestamp,
}

/// Reused between the records of a chunk.
#[derive(Default)]
pub(super) struct Scratch<'c> {
    values: Vec<Value<'c>>,
    nested: Vec<Value<'c>>,
    text: String,
    /// An event's fields, each its name then its value.
    rendered: String,
    /// Where each field's name and value end in `rendered`.
    field_ends: Vec<(usize, usize)>,
}

/// Decode the record whose BinXML is `chunk[start..end]`; `None` to leave the chunk to the
/// reference path.
pub(super) fn decode_record<'c>(
    chunk: &'c [u8],
    start: usize,
    end: usize,
    header: RecordHeader,
    templates: &mut ChunkTemplates,
    scratch: &mut Scratch<'c>,
    file: &Arc<str>,
) -> Option<Outcome> {
    scratch.values.clear();
    let template = parse_instance(chunk, start, end, templates, &mut scratch.values)?;
    let mut record = Record {
        chunk,
        header,
        templates,
        scratch,
        file,
    };
    match typed_event(&template, &mut record)? {
        Typed::Done(outcome) => Some(outcome),
        // Anything unusual: the general builder, which `finish`es like every other reader.
        Typed::General => general_event(&template, &mut record),
    }
}

/// A record being built into an event, with what its chunk lends it.
struct Record<'r, 'c> {
    chunk: &'c [u8],
    header: RecordHeader,
    templates: &'r mut ChunkTemplates,
    /// Its values are the record's template instance's.
    scratch: &'r mut Scratch<'c>,
    file: &'r Arc<str>,
}

/// Parse the template instance at `chunk[pos..end]` (an optional fragment header, then the
/// instance): its template (compiled on first use), and its values appended to `values`.
fn parse_instance<'c>(
    chunk: &'c [u8],
    mut pos: usize,
    end: usize,
    templates: &mut ChunkTemplates,
    values: &mut Vec<Value<'c>>,
) -> Option<Rc<Template>> {
    if chunk.get(pos) == Some(&token::FRAGMENT_HEADER) {
        pos += 4;
    }
    if chunk.get(pos) != Some(&token::TEMPLATE_INSTANCE) {
        return None;
    }
    // Token, an unknown byte, the template id, the definition's offset.
    let definition = u32_at(chunk, pos + 6)?;
    pos += 10;
    if definition as usize == pos {
        // The definition itself follows (its first use in the chunk).
        let body_size = u32_at(chunk, pos + 20)? as usize;
        pos += DEFINITION_HEADER_SIZE + body_size;
    }
    let template = templates.at(chunk, definition);
    let count = u32_at(chunk, pos)? as usize;
    pos += 4;
    // Each value's descriptor: size (2), type (1), a zero byte.
    let descriptors = chunk.get(pos..pos.checked_add(count.checked_mul(4)?)?)?;
    pos += count * 4;
    // The count is bounded by the descriptors actually present in the chunk.
    values.reserve(count);
    for descriptor in descriptors.as_chunks::<4>().0 {
        let size = usize::from(u16_at(descriptor, 0)?);
        let value_type = descriptor[2];
        let fixed = value_type::FIXED_SIZES[usize::from(value_type)];
        if fixed != 0 && usize::from(fixed) != size {
            return None;
        }
        let bytes = chunk.get(pos..pos + size)?;
        values.push(Value { value_type, bytes });
        pos += size;
    }
    if pos > end || !(pos == end || chunk.get(pos) == Some(&token::END_OF_STREAM)) {
        return None;
    }
    template
}

/// Whether a NULL value at one of `deps` leaves the element out.
fn is_left_out(deps: &[u16], values: &[Value<'_>]) -> bool {
    deps.iter()
        .any(|&id| values.get(usize::from(id)).is_some_and(Value::is_null))
}

/// Render `parts` into `out`. Optional substitutions of empty values render as nothing.
fn render(parts: &[Part], values: &[Value<'_>], out: &mut String) -> Result<(), Unsupported> {
    for part in parts {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::Substitution(id) => {
                if let Some(value) = values.get(usize::from(*id)) {
                    render_value(*value, out)?;
                }
            }
        }
    }
    Ok(())
}

/// The value of a slot that is a single substitution.
fn single_value<'v, 'c>(slot: &Slot, values: &'v [Value<'c>]) -> Option<&'v Value<'c>> {
    match slot.parts.as_slice() {
        [Part::Substitution(id)] => values.get(usize::from(*id)),
        _ => None,
    }
}

/// The value of a slot that is a single unsigned integer substitution, read without rendering
/// it to text and parsing it back; `None` for any other slot (which is then rendered).
fn slot_integer(slot: &Option<Slot>, values: &[Value<'_>]) -> Option<u64> {
    let slot = slot.as_ref()?;
    if is_left_out(&slot.deps, values) {
        return None;
    }
    single_value(slot, values)?.unsigned()
}

/// Render a slot into `text` (cleared first); `false` when the element is absent or left out.
fn slot_into(slot: &Option<Slot>, values: &[Value<'_>], text: &mut String) -> Option<bool> {
    text.clear();
    let Some(slot) = slot else { return Some(false) };
    if is_left_out(&slot.deps, values) {
        return Some(false);
    }
    render(&slot.parts, values, text).ok()?;
    Some(true)
}

/// A slot's text, `None` inside when the element is absent or left out.
fn slot_text(
    slot: &Option<Slot>,
    values: &[Value<'_>],
    scratch: &mut String,
) -> Option<Option<String>> {
    Some(slot_into(slot, values, scratch)?.then(|| scratch.clone()))
}

/// Hand the data fields of each `EventData` fragment embedded in the record's values, with the
/// fragment's own values, to `each`.
fn for_each_embedded<'c>(
    template: &Template,
    chunk: &'c [u8],
    values: &[Value<'c>],
    nested: &mut Vec<Value<'c>>,
    templates: &mut ChunkTemplates,
    mut each: impl FnMut(&[DataField], &[Value<'c>]) -> Option<()>,
) -> Option<()> {
    for &id in &template.embedded {
        let Some(value) = values.get(usize::from(id)).copied() else {
            continue;
        };
        match value.value_type {
            value_type::NULL => continue,
            value_type::BINXML if value.bytes.is_empty() => continue,
            value_type::BINXML => {}
            _ => return None,
        }
        let at = value.bytes.as_ptr() as usize - chunk.as_ptr() as usize;
        nested.clear();
        let inner = parse_instance(chunk, at, at + value.bytes.len(), templates, nested)?;
        each(inner.data.as_ref()?, nested)?;
    }
    Some(())
}

enum Typed {
    Done(Outcome),
    General,
}

/// The common case built directly, with as few allocations as possible: a `Channel` present,
/// a numeric `EventID`, `TimeCreated` a FILETIME. It gives exactly what `general_event` would
/// (the equality test over the corpus checks); anything else returns `Typed::General`.
fn typed_event(template: &Template, record: &mut Record<'_, '_>) -> Option<Typed> {
    let Record {
        chunk,
        header,
        templates,
        scratch,
        file,
    } = record;
    let values = &scratch.values;
    let text = &mut scratch.text;
    // Channel: other channels are counted after reading only this.
    if !slot_into(&template.channel, values, text)? {
        return Some(Typed::General);
    }
    let channel = text.trim();
    if channel.is_empty() {
        return Some(Typed::General);
    }
    if !is_sysmon_channel(channel) {
        return Some(Typed::Done(Outcome::Skipped(channel.to_string())));
    }
    let channel = channel.to_string();
    let event_id = match slot_integer(&template.event_id, values) {
        Some(n) => u16::try_from(n).ok(),
        None => {
            slot_into(&template.event_id, values, text)?;
            text.trim().parse::<u16>().ok()
        }
    };
    let Some(event_id) = event_id else {
        return Some(Typed::General);
    };
    let mut record_id = header.id;
    if let Some(id) = slot_integer(&template.record_id, values) {
        record_id = id;
    } else if slot_into(&template.record_id, values, text)?
        && let Ok(id) = text.trim().parse()
    {
        record_id = id;
    }
    let computer = if slot_into(&template.computer, values, text)? {
        text.clone()
    } else {
        String::new()
    };
    let time_created = match &template.time_created {
        None => header.time,
        Some(slot) if is_left_out(&slot.deps, values) => header.time,
        Some(slot) => match single_value(slot, values) {
            Some(value) if value.value_type == value_type::FILETIME => value.filetime()?,
            _ => return Some(Typed::General),
        },
    };
    let time_created = truncate_to_micros(time_created);
    let Some(direct) = template.data.as_ref() else {
        return Some(Typed::General);
    };
    // Every field is rendered into the scratch buffer first, so that the event's own buffers
    // are allocated once at their final size (no regrowth, and small ones come from the
    // allocator's per-thread cache).
    let rendered = &mut scratch.rendered;
    rendered.clear();
    let ends = &mut scratch.field_ends;
    ends.clear();
    let mut push = |fields: &[DataField], values: &[Value<'_>]| -> Option<()> {
        for field in fields {
            if is_left_out(&field.slot.deps, values) {
                continue;
            }
            rendered.push_str(&field.name);
            let name_end = rendered.len();
            render(&field.slot.parts, values, rendered).ok()?;
            // A GUID value renders in canonical form already.
            let guid_value = single_value(&field.slot, values)
                .is_some_and(|value| value.value_type == value_type::GUID);
            if field.canonical
                && !guid_value
                && let Cow::Owned(canonical) = canonical_value(&field.name, &rendered[name_end..])
            {
                rendered.truncate(name_end);
                rendered.push_str(&canonical);
            }
            ends.push((name_end, rendered.len()));
        }
        Some(())
    };
    push(direct, values)?;
    for_each_embedded(
        template,
        chunk,
        values,
        &mut scratch.nested,
        templates,
        &mut push,
    )?;
    // `Fields` sizes its text as 48 bytes a field.
    let mut data = Fields::with_capacity(ends.len().max(rendered.len().div_ceil(48)));
    let mut start = 0;
    for &(name_end, end) in ends.iter() {
        data.push_str(&rendered[start..name_end], &rendered[name_end..end]);
        start = end;
    }
    let time = data
        .get("UtcTime")
        .and_then(parse_time)
        .unwrap_or(time_created);
    Some(Typed::Done(Outcome::Event(SysmonEvent {
        source: EventSource {
            file: file.clone(),
            record_id: Some(record_id),
        },
        event_id,
        time,
        time_created: Some(time_created),
        computer,
        channel,
        data,
    })))
}

/// Any record, through the general [`EventBuilder`].
fn general_event(template: &Template, record: &mut Record<'_, '_>) -> Option<Outcome> {
    let Record {
        chunk,
        header,
        templates,
        scratch,
        file,
    } = record;
    let values = &scratch.values;
    let text = &mut scratch.text;
    let mut b = EventBuilder {
        record_id: Some(header.id),
        fallback_time: Some(header.time),
        channel: slot_text(&template.channel, values, text)?,
        provider: slot_text(&template.provider, values, text)?,
        ..Default::default()
    };
    if let Some(skipped) = b.skipped_outcome() {
        return Some(skipped);
    }
    b.event_id = slot_text(&template.event_id, values, text)?;
    if let Some(id) = slot_text(&template.record_id, values, text)? {
        b.record_id = id.trim().parse().ok().or(b.record_id);
    }
    b.computer = slot_text(&template.computer, values, text)?;
    b.time_created = slot_text(&template.time_created, values, text)?;
    let mut push = |fields: &[DataField], values: &[Value<'_>]| -> Option<()> {
        for field in fields {
            if is_left_out(&field.slot.deps, values) {
                continue;
            }
            text.clear();
            render(&field.slot.parts, values, text).ok()?;
            b.field(&field.name, text);
        }
        Some(())
    };
    push(template.data.as_ref()?, values)?;
    for_each_embedded(
        template,
        chunk,
        values,
        &mut scratch.nested,
        templates,
        &mut push,
    )?;
    Some(b.finish(file))
}
