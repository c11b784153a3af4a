//! The typed EVTX fast path: Sysmon events built straight from the BinXML, without rendering
//! each record to JSON or XML and parsing it back.
//!
//! The walk over the chunks (`evtx_chunks`: the `evtx` crate's order and damage reports) is cut
//! into batches of four chunks. The calling thread and one helper job per other rayon thread
//! claim batches in order from a shared counter, each reading its batch with one positional
//! read into a buffer it keeps and decoding it, so reading is spread over the threads and no
//! chunk is copied or handed over. The calling thread delivers the batches in walk order, so
//! record order is the file's (what the `evtx` crate gives), and it decodes a batch itself
//! whenever the next one to deliver is not ready, so it does not sleep while there is work.
//! Helpers stop when they get a bounded number of batches ahead of delivery (memory stays
//! flat) and are started again as delivery moves on; they never wait for the calling thread,
//! so a sink that itself uses the rayon pool cannot deadlock with them. Per chunk, each
//! template definition is compiled once into the places where the fields we need sit (the
//! `System` values and the `EventData/Data` elements); a record is then its substitution
//! values, rendered only for the fields wanted, and a record of another channel is counted
//! after reading just its `Channel` value.
//!
//! Whatever this decoder does not know (unusual tokens, arrays, ANSI strings, a damaged
//! record) sends the whole chunk down the `evtx` crate's own JSON path instead, so output and
//! warnings are those of the reference path (`evtx_file::read_evtx_json`); a test compares the
//! two over the corpus.

use crate::Location;
use crate::build::{Ctx, EventBuilder, Outcome};
use crate::evtx_chunks::{CHUNK_SIZE, ChunkPlan, chunk_offset, classify, read_at};
use crate::evtx_file::{error_chain, location_of, outcome_of_json};
use evtx::{EvtxChunkData, EvtxChunkHeader, ParserSettings};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const CHUNK_HEADER_SIZE: usize = 512;

/// Chunks decoded by the fast path and chunks left to the reference path, since start (for the
/// benchmark).
pub(crate) static FAST_CHUNKS: AtomicU64 = AtomicU64::new(0);
pub(crate) static FALLBACK_CHUNKS: AtomicU64 = AtomicU64::new(0);

/// What decoding produced, in record order.
enum Item {
    Outcome(Outcome, u64),
    Warning(Location, String),
}

/// Chunks per batch: a chunk is only ~50 records, a hand-off per chunk would cost about as much
/// as decoding it, and adjacent chunks are one read.
const CHUNKS_PER_BATCH: u64 = 4;

/// Batches decoded ahead of delivery, at most: enough for a helper to keep going through a
/// scheduler time slice in which the delivering thread does not run (about 60 µs a chunk, so
/// 16 chunks per thread is ~1 ms), capped so that many cores do not mean a large buffer (a
/// chunk's events take about 100 KB).
fn window_batches(threads: usize) -> u64 {
    (16 * threads as u64).min(256) / CHUNKS_PER_BATCH
}

/// What every thread decoding a file shares.
struct Walk {
    file: File,
    plan: ChunkPlan,
    settings: Arc<ParserSettings>,
    /// The name events carry.
    name: Arc<str>,
    batches: u64,
    /// The next batch nobody has claimed.
    next: AtomicU64,
    /// Batches delivered so far.
    delivered: AtomicU64,
    /// Batches decoded but not yet delivered, at most.
    window: u64,
    /// Helper jobs running.
    helpers: AtomicUsize,
}

impl Walk {
    /// The next batch to decode, unless all are claimed or the window is full.
    fn claim(&self) -> Option<u64> {
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let limit = self.delivered.load(Ordering::Acquire) + self.window;
            if next >= self.batches || next >= limit {
                return None;
            }
            match self.next.compare_exchange_weak(
                next,
                next + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(next),
                Err(actual) => next = actual,
            }
        }
    }

    /// Read and decode one batch; never panics.
    fn decode_batch(&self, batch: u64) -> Vec<Item> {
        // Events of a batch share their own copy of the file name, so that the reference
        // count the delivering thread drops is not one every decoding thread keeps touching.
        let name: Arc<str> = Arc::from(&*self.name);
        let first = batch * CHUNKS_PER_BATCH;
        let end = first.saturating_add(CHUNKS_PER_BATCH).min(self.plan.len());
        let mut items = Vec::with_capacity(256);
        with_batch_buffer(|buf| {
            // Each chunk of the batch and how many of its bytes could be read: adjacent
            // chunks (all of them, but where the walk wraps around) in one read.
            let mut chunks = [(0u64, 0usize); CHUNKS_PER_BATCH as usize];
            let mut position = first;
            while position < end {
                let number = self.plan.chunk_at(position);
                let mut run = 1;
                while position + run < end && self.plan.chunk_at(position + run) == number + run {
                    run += 1;
                }
                let slot = (position - first) as usize;
                let bytes = &mut buf[slot * CHUNK_SIZE..(slot + run as usize) * CHUNK_SIZE];
                let got = read_at(&self.file, bytes, chunk_offset(number));
                for i in 0..run as usize {
                    chunks[slot + i] = (number + i as u64, got.saturating_sub(i * CHUNK_SIZE));
                }
                position += run;
            }
            let buf: &[u8] = buf;
            // Reused by the batch's chunks.
            let mut reuse = (Templates::new(), Scratch::default());
            for (slot, &(number, got)) in chunks[..(end - first) as usize].iter().enumerate() {
                let at = slot * CHUNK_SIZE;
                let chunk = &buf[at..at + got.min(CHUNK_SIZE)];
                decode_chunk(number, chunk, &self.settings, &name, &mut reuse, &mut items);
            }
        });
        items
    }
}

thread_local! {
    /// One batch of chunks, kept per thread so that reading allocates nothing.
    static BATCH_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_batch_buffer(f: impl FnOnce(&mut [u8])) {
    let size = CHUNKS_PER_BATCH as usize * CHUNK_SIZE;
    BATCH_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.resize(size, 0);
            f(&mut buf);
        }
        // Re-entered on this thread (a sink reading another file): a buffer of its own.
        Err(_) => f(&mut vec![0u8; size]),
    });
}

/// Read every record of the EVTX file `file` (its header already accepted; it states
/// `header_block_size`).
pub(crate) fn read_evtx_fast(file: File, header_block_size: u16, ctx: &mut Ctx<'_>) {
    let plan = match ChunkPlan::new(&file, header_block_size) {
        Ok(plan) => plan,
        Err(e) => {
            ctx.warn(Location::File, format!("cannot read the chunks: {e}"));
            return;
        }
    };
    let threads = rayon::current_num_threads().max(1);
    let batches = plan.len().div_ceil(CHUNKS_PER_BATCH);
    // The calling thread takes the first batch: a log of one batch needs no helper.
    let max_helpers =
        (threads - 1).min(usize::try_from(batches.saturating_sub(1)).unwrap_or(usize::MAX));
    let walk = Arc::new(Walk {
        file,
        plan,
        settings: Arc::new(crate::evtx_file::settings()),
        name: ctx.file.clone(),
        batches,
        next: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        window: window_batches(threads),
        helpers: AtomicUsize::new(0),
    });
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Vec<Item>)>();
    let mut ready: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
    let mut next_out = 0u64;
    while next_out < walk.batches {
        // Top up the helpers: they stop when the window is full.
        while max_helpers > 0
            && walk.helpers.load(Ordering::Acquire) < max_helpers
            && walk.next.load(Ordering::Relaxed) < walk.batches.min(next_out + walk.window)
        {
            walk.helpers.fetch_add(1, Ordering::AcqRel);
            let (walk, tx) = (walk.clone(), tx.clone());
            rayon::spawn(move || {
                while let Some(batch) = walk.claim() {
                    // A batch a helper claimed is always sent: the delivering thread waits for it.
                    let items = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        walk.decode_batch(batch)
                    }))
                    .unwrap_or_else(|_| {
                        vec![Item::Warning(
                            Location::File,
                            "internal error while decoding chunks; they were skipped".into(),
                        )]
                    });
                    if tx.send((batch, items)).is_err() {
                        break;
                    }
                }
                walk.helpers.fetch_sub(1, Ordering::AcqRel);
            });
        }
        while let Ok((batch, items)) = rx.try_recv() {
            ready.insert(batch, items);
        }
        if let Some(items) = ready.remove(&next_out) {
            next_out += 1;
            walk.delivered.store(next_out, Ordering::Release);
            deliver(items, ctx);
            continue;
        }
        // The next batch is not ready: decode one rather than wait.
        if let Some(batch) = walk.claim() {
            ready.insert(batch, walk.decode_batch(batch));
            continue;
        }
        // The next batch is being decoded by a helper, which always sends it.
        match rx.recv() {
            Ok((batch, items)) => {
                ready.insert(batch, items);
            }
            Err(_) => return,
        }
    }
}

fn deliver(items: Vec<Item>, ctx: &mut Ctx<'_>) {
    for item in items {
        match item {
            Item::Outcome(outcome, id) => ctx.outcome(outcome, || Location::Record(id)),
            Item::Warning(location, message) => ctx.warn(location, message),
        }
    }
}

/// Decode the bytes read for chunk `number` into `items`; never panics (a panic in a decoder
/// becomes a warning for the chunk).
fn decode_chunk<'d>(
    number: u64,
    bytes: &'d [u8],
    settings: &Arc<ParserSettings>,
    file: &Arc<str>,
    reuse: &mut (Templates, Scratch<'d>),
    items: &mut Vec<Item>,
) {
    let header = match classify(number, bytes) {
        Ok(Some(header)) => header,
        Ok(None) => return,
        Err(err) => {
            items.push(Item::Warning(location_of(&err), error_chain(&err)));
            return;
        }
    };
    let mark = items.len();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (templates, scratch) = reuse;
        if fast_chunk(bytes, &header, file, templates, scratch, items).is_some() {
            FAST_CHUNKS.fetch_add(1, Ordering::Relaxed);
        } else {
            items.truncate(mark);
            FALLBACK_CHUNKS.fetch_add(1, Ordering::Relaxed);
            slow_chunk(number, bytes, settings, file, items);
        }
    }));
    if result.is_err() {
        items.truncate(mark);
        items.push(Item::Warning(
            Location::Chunk(number),
            "internal error while decoding this chunk; it was skipped".into(),
        ));
    }
}

/// The reference path for one chunk: the `evtx` crate's records rendered as JSON.
fn slow_chunk(
    number: u64,
    data: &[u8],
    settings: &Arc<ParserSettings>,
    file: &Arc<str>,
    items: &mut Vec<Item>,
) {
    let fail = |err: &dyn std::error::Error| {
        Item::Warning(
            Location::Chunk(number),
            format!(
                "Failed to parse chunk number {number}: {}",
                error_chain(err)
            ),
        )
    };
    let mut chunk = match EvtxChunkData::new(data.to_vec(), false) {
        Ok(chunk) => chunk,
        Err(err) => return items.push(fail(&err)),
    };
    chunk.number = Some(number);
    let mut parsed = match chunk.parse(settings.clone()) {
        Ok(parsed) => parsed,
        Err(err) => return items.push(fail(&err)),
    };
    for record in parsed.iter() {
        match record.and_then(|r| r.into_json_value()) {
            Ok(record) => {
                let id = record.event_record_id;
                items.push(Item::Outcome(outcome_of_json(&record, file), id));
            }
            Err(err) => items.push(Item::Warning(location_of(&err), error_chain(&err))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BinXML, as far as Sysmon (and most Windows event) templates need it (MS-EVEN6 §2.2).

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

/// A piece of an element's content or attribute value.
#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Substitution(u16),
}

#[derive(Debug, Default)]
struct Element {
    name: String,
    dependency: Option<u16>,
    attrs: Vec<(String, Vec<Part>)>,
    content: Vec<Part>,
    children: Vec<Element>,
}

/// Where, in a compiled template, the values an event needs are.
#[derive(Debug, Default)]
struct Slot {
    /// Dependency ids of the element and its ancestors: a NullType value at any of them leaves
    /// the element out (MS-EVEN6 §2.2.12).
    deps: Vec<u16>,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct DataField {
    name: String,
    slot: Slot,
    /// Whether the canonical rendering may rewrite this field's values (GUIDs and Sysmon's
    /// time fields); the others are used as rendered.
    canonical: bool,
}

#[derive(Debug, Default)]
struct Template {
    provider: Option<Slot>,
    event_id: Option<Slot>,
    record_id: Option<Slot>,
    time_created: Option<Slot>,
    channel: Option<Slot>,
    computer: Option<Slot>,
    /// `None` when the event data has a shape this decoder leaves to the reference path.
    data: Option<Vec<DataField>>,
    /// Substitutions in the `Event` element's content: Windows puts the `EventData` there, as
    /// an embedded BinXML fragment with a template instance of its own.
    embedded: Vec<u16>,
}

fn read_name(d: &[u8], offset: u32) -> Option<String> {
    let at = offset as usize;
    let len = u16_at(d, at + 6)? as usize;
    let bytes = d.get(at + 8..at + 8 + len * 2)?;
    Some(decode_utf16(bytes))
}

fn decode_utf16(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() / 2);
    push_utf16(&mut s, bytes);
    s
}

/// UTF-16LE up to the first NUL unit, lone surrogates as U+FFFD.
fn push_utf16(out: &mut String, mut bytes: &[u8]) {
    out.reserve(bytes.len() / 2);
    loop {
        // Values are mostly ASCII, with the odd `®` or accented letter: ASCII runs are copied
        // eight units at a time, anything else is decoded unit by unit.
        let ascii = push_ascii_run(out, bytes);
        bytes = &bytes[ascii * 2..];
        let Some(&[lo, hi]) = bytes.first_chunk::<2>() else {
            return;
        };
        let unit = u16::from_le_bytes([lo, hi]);
        let (c, used) = match unit {
            0 => return,
            0xd800..=0xdbff => match bytes.get(2..4) {
                Some(&[lo2, hi2]) if matches!(u16::from_le_bytes([lo2, hi2]), 0xdc00..=0xdfff) => {
                    let low = u16::from_le_bytes([lo2, hi2]);
                    let scalar =
                        0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                    (
                        char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER),
                        4,
                    )
                }
                _ => (char::REPLACEMENT_CHARACTER, 2),
            },
            _ => (
                char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
                2,
            ),
        };
        out.push(c);
        bytes = &bytes[used..];
    }
}

/// Append the leading run of UTF-16LE units of `bytes` that are ASCII other than NUL; how
/// many units that was.
fn push_ascii_run(out: &mut String, bytes: &[u8]) -> usize {
    // SAFETY: only bytes below 0x80 are appended, and ASCII is valid UTF-8, so the string
    // stays valid UTF-8.
    let vec = unsafe { out.as_mut_vec() };
    let mut units = 0;
    let (blocks, _) = bytes.as_chunks::<16>();
    for block in blocks {
        let mut ascii = [0u8; 8];
        if !ascii_block(block, &mut ascii) {
            break;
        }
        vec.extend_from_slice(&ascii);
        units += 8;
    }
    for unit in bytes[units * 2..].chunks_exact(2) {
        if unit[1] != 0 || unit[0] == 0 || unit[0] >= 0x80 {
            break;
        }
        vec.push(unit[0]);
        units += 1;
    }
    units
}

/// Whether the eight UTF-16LE units of `block` are all ASCII other than NUL; if so, their
/// bytes go to `ascii`.
#[cfg(target_arch = "x86_64")]
fn ascii_block(block: &[u8; 16], ascii: &mut [u8; 8]) -> bool {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpgt_epi16, _mm_cmplt_epi16, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_packus_epi16, _mm_set1_epi16, _mm_setzero_si128, _mm_storel_epi64,
    };
    // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of `block` and the store
    // writes the 8 bytes of `ascii`, both unaligned accesses.
    unsafe {
        let units = _mm_loadu_si128(block.as_ptr().cast());
        // As signed 16-bit lanes, a unit from 1 to 0x7f is above 0 and below 0x80 (units from
        // 0x8000 are negative).
        let ok = _mm_and_si128(
            _mm_cmpgt_epi16(units, _mm_setzero_si128()),
            _mm_cmplt_epi16(units, _mm_set1_epi16(0x80)),
        );
        if _mm_movemask_epi8(ok) != 0xffff {
            return false;
        }
        _mm_storel_epi64(ascii.as_mut_ptr().cast(), _mm_packus_epi16(units, units));
    }
    true
}

#[cfg(not(target_arch = "x86_64"))]
fn ascii_block(block: &[u8; 16], ascii: &mut [u8; 8]) -> bool {
    for (to, unit) in ascii.iter_mut().zip(block.chunks_exact(2)) {
        if unit[1] != 0 || unit[0] == 0 || unit[0] >= 0x80 {
            return false;
        }
        *to = unit[0];
    }
    true
}

fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i..]);
}

/// Append bytes this module only ever fills with ASCII digits and letters.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    debug_assert!(ascii.is_ascii());
    // SAFETY: callers pass ASCII only (digits and hex letters), which is valid UTF-8.
    unsafe { out.as_mut_vec() }.extend_from_slice(ascii);
}

fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, mut v: u64) {
    out.push_str("0x");
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i..]);
}

/// Skip a name reference at `*pos` (a chunk offset), and the name itself when it is stored
/// right there; the name's offset.
fn name_ref(d: &[u8], pos: &mut usize) -> Option<u32> {
    let offset = u32_at(d, *pos)?;
    *pos += 4;
    if offset as usize == *pos {
        let len = u16_at(d, *pos + 6)? as usize;
        *pos += 6 + 2 + len * 2 + 2;
    }
    Some(offset)
}

/// Parse a template definition's body (`d[start..end]`, chunk offsets) into its element tree.
fn parse_template_tree(d: &[u8], start: usize, end: usize) -> Option<Element> {
    let mut pos = start;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    // The attribute being read, if any (until the element's start tag closes).
    let mut in_attr = false;
    while pos < end {
        let token = *d.get(pos)?;
        match token {
            0x00 => break,
            0x0f => pos += 4,
            0x01 | 0x41 => {
                let dep = u16_at(d, pos + 1)?;
                pos += 1 + 2 + 4;
                let name = read_name(d, name_ref(d, &mut pos)?)?;
                if token & 0x40 != 0 {
                    pos += 4;
                }
                if stack.len() > 32 {
                    return None;
                }
                stack.push(Element {
                    name,
                    dependency: (dep != 0xffff).then_some(dep),
                    ..Default::default()
                });
                in_attr = false;
            }
            0x06 | 0x46 => {
                pos += 1;
                let name = read_name(d, name_ref(d, &mut pos)?)?;
                stack.last_mut()?.attrs.push((name, Vec::new()));
                in_attr = true;
            }
            0x02 => {
                pos += 1;
                in_attr = false;
            }
            0x03 | 0x04 => {
                pos += 1;
                in_attr = false;
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            0x05 | 0x45 => {
                let ty = *d.get(pos + 1)?;
                if ty != 0x01 {
                    return None;
                }
                let len = u16_at(d, pos + 2)? as usize;
                let text = decode_utf16(d.get(pos + 4..pos + 4 + len * 2)?);
                pos += 4 + len * 2;
                push_part(&mut stack, in_attr, Part::Literal(text))?;
            }
            0x0d | 0x0e => {
                let id = u16_at(d, pos + 1)?;
                pos += 4;
                // Normal and optional substitutions render alike here: an empty value is
                // an empty string either way.
                push_part(&mut stack, in_attr, Part::Substitution(id))?;
            }
            // CDATA, character/entity references, processing instructions, nested templates:
            // left to the reference path.
            _ => return None,
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root
}

fn push_part(stack: &mut [Element], in_attr: bool, part: Part) -> Option<()> {
    let element = stack.last_mut()?;
    if in_attr {
        element.attrs.last_mut()?.1.push(part);
    } else {
        element.content.push(part);
    }
    Some(())
}

fn compile(root: &Element) -> Option<Template> {
    let mut t = Template::default();
    if root.name == "EventData" {
        t.data = data_fields(root, &[]);
        return Some(t);
    }
    if root.name != "Event" || !root.attrs.iter().all(|(n, _)| n == "xmlns") {
        return None;
    }
    for part in &root.content {
        match part {
            Part::Substitution(id) => t.embedded.push(*id),
            Part::Literal(_) => return None,
        }
    }
    let slot = |deps: &[u16], el: &Element, parts: &[Part]| Slot {
        deps: deps.iter().copied().chain(el.dependency).collect(),
        parts: parts.to_vec(),
    };
    let attr = |el: &Element, name: &str| {
        el.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, parts)| parts.clone())
    };
    for section in &root.children {
        let deps: Vec<u16> = section.dependency.into_iter().collect();
        match section.name.as_str() {
            "System" => {
                for el in &section.children {
                    match el.name.as_str() {
                        "Provider" => {
                            t.provider = attr(el, "Name").map(|p| slot(&deps, el, &p));
                        }
                        "TimeCreated" => {
                            t.time_created = attr(el, "SystemTime").map(|p| slot(&deps, el, &p));
                        }
                        "EventID" => t.event_id = Some(slot(&deps, el, &el.content)),
                        "EventRecordID" => t.record_id = Some(slot(&deps, el, &el.content)),
                        "Channel" => t.channel = Some(slot(&deps, el, &el.content)),
                        "Computer" => t.computer = Some(slot(&deps, el, &el.content)),
                        _ => {}
                    }
                }
            }
            "EventData" => t.data = data_fields(section, &deps),
            _ => {}
        }
    }
    if !root.children.iter().any(|s| s.name == "EventData") {
        t.data = Some(Vec::new());
    }
    Some(t)
}

/// The `Data` fields of an `EventData` element; `None` for a shape left to the reference path.
fn data_fields(section: &Element, parent_deps: &[u16]) -> Option<Vec<DataField>> {
    if !section.content.is_empty() || !section.attrs.is_empty() {
        return None;
    }
    let deps: Vec<u16> = parent_deps
        .iter()
        .copied()
        .chain(section.dependency)
        .collect();
    let mut fields = Vec::with_capacity(section.children.len());
    for el in &section.children {
        let name = match el.attrs.as_slice() {
            [(attr, parts)] if attr == "Name" => match parts.as_slice() {
                // Trimmed as every reader trims field names (`canonical_field_name`).
                [Part::Literal(n)] => n.trim().to_string(),
                _ => return None,
            },
            _ => return None,
        };
        if el.name != "Data" || !el.children.is_empty() {
            return None;
        }
        let canonical = sandscope_event::is_guid_field(&name)
            || matches!(
                sandscope_event::canonical_value(&name, "2000-01-01T00:00:00Z"),
                Cow::Owned(_)
            );
        fields.push(DataField {
            canonical,
            name,
            slot: Slot {
                deps: deps.iter().copied().chain(el.dependency).collect(),
                parts: el.content.clone(),
            },
        });
    }
    Some(fields)
}

/// One substitution value: its type and bytes.
#[derive(Clone, Copy)]
struct Value<'d> {
    ty: u8,
    bytes: &'d [u8],
}

/// Why a value could not be rendered here: the chunk goes to the reference path.
struct Unsupported;

fn is_left_out(deps: &[u16], values: &[Value<'_>]) -> bool {
    deps.iter()
        .any(|&d| values.get(d as usize).is_some_and(|v| v.ty == 0x00))
}

/// Render `parts` into `out`. Optional substitutions of empty values render as nothing.
fn render(parts: &[Part], values: &[Value<'_>], out: &mut String) -> Result<(), Unsupported> {
    for part in parts {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::Substitution(id) => {
                if let Some(v) = values.get(*id as usize) {
                    render_value(*v, out)?;
                }
            }
        }
    }
    Ok(())
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Unsupported> {
    bytes.try_into().map_err(|_| Unsupported)
}

/// A value as the `evtx` crate renders it (see the canonical rendering in `sandscope_event`).
fn render_value(v: Value<'_>, out: &mut String) -> Result<(), Unsupported> {
    use std::fmt::Write;
    let b = v.bytes;
    match v.ty {
        0x00 => {}
        0x01 => push_utf16(out, b),
        0x03 => push_i64(out, i8::from_le_bytes(fixed(b)?).into()),
        0x04 => push_u64(out, u8::from_le_bytes(fixed(b)?).into()),
        0x05 => push_i64(out, i16::from_le_bytes(fixed(b)?).into()),
        0x06 => push_u64(out, u16::from_le_bytes(fixed(b)?).into()),
        0x07 => push_i64(out, i32::from_le_bytes(fixed(b)?).into()),
        0x08 => push_u64(out, u32::from_le_bytes(fixed(b)?).into()),
        0x09 => push_i64(out, i64::from_le_bytes(fixed(b)?)),
        0x0a => push_u64(out, u64::from_le_bytes(fixed(b)?)),
        0x0d => match i32::from_le_bytes(fixed(b)?) {
            0 => out.push_str("false"),
            1 => out.push_str("true"),
            n => push_i64(out, n.into()),
        },
        0x0e => {
            for byte in b {
                write!(out, "{byte:02X}").map_err(|_| Unsupported)?;
            }
        }
        0x0f => {
            // Windows' rendering: `{d1-d2-d3-d4[0..2]-d4[2..8]}`, d1–d3 little-endian.
            const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
            let g: [u8; 16] = fixed(b)?;
            let mut text = [b'-'; 38];
            text[0] = b'{';
            text[37] = b'}';
            let mut n = 1;
            for (i, &idx) in ORDER.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    n += 1;
                }
                text[n] = HEX[usize::from(g[idx] >> 4)];
                text[n + 1] = HEX[usize::from(g[idx] & 0xf)];
                n += 2;
            }
            out.push_str(std::str::from_utf8(&text).unwrap_or_default());
        }
        0x10 if b.len() == 4 => push_hex(out, u32::from_le_bytes(fixed(b)?).into()),
        0x10 => push_hex(out, u64::from_le_bytes(fixed(b)?)),
        0x11 => write_filetime(u64::from_le_bytes(fixed(b)?), out)?,
        0x13 => write_sid(b, out)?,
        0x14 => push_hex(out, u32::from_le_bytes(fixed(b)?).into()),
        0x15 => push_hex(out, u64::from_le_bytes(fixed(b)?)),
        0x21 if b.is_empty() => {}
        // ANSI strings (code page), floats, SYSTEMTIME, embedded BinXML, arrays.
        _ => return Err(Unsupported),
    }
    Ok(())
}

/// FILETIME as `YYYY-MM-DDTHH:MM:SS.fffffffZ` (seven digits, the 100 ns a FILETIME counts).
fn write_filetime(ft: u64, out: &mut String) -> Result<(), Unsupported> {
    use std::fmt::Write;
    const UNIX_EPOCH_AS_FILETIME: i128 = 116_444_736_000_000_000;
    let ticks = i128::from(ft) - UNIX_EPOCH_AS_FILETIME;
    let ts = jiff::Timestamp::from_nanosecond(ticks * 100).map_err(|_| Unsupported)?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        (ft % 10_000_000)
    )
    .map_err(|_| Unsupported)
}

fn write_sid(b: &[u8], out: &mut String) -> Result<(), Unsupported> {
    use std::fmt::Write;
    let &[revision, count, a0, a1, a2, a3, a4, a5, ref subs @ ..] = b else {
        out.push_str("S-?");
        return Ok(());
    };
    let authority = u64::from_be_bytes([0, 0, a0, a1, a2, a3, a4, a5]);
    write!(out, "S-{revision}-{authority}").map_err(|_| Unsupported)?;
    for chunk in subs.chunks_exact(4).take(count as usize) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        write!(out, "-{sub}").map_err(|_| Unsupported)?;
    }
    Ok(())
}

/// Sizes of the scalar value types by type (for checking descriptors); 0 for the others.
const FIXED_SIZES: [u8; 256] = {
    let mut sizes = [0u8; 256];
    sizes[0x03] = 1;
    sizes[0x04] = 1;
    sizes[0x05] = 2;
    sizes[0x06] = 2;
    sizes[0x07] = 4;
    sizes[0x08] = 4;
    sizes[0x0b] = 4;
    sizes[0x0d] = 4;
    sizes[0x14] = 4;
    sizes[0x09] = 8;
    sizes[0x0a] = 8;
    sizes[0x0c] = 8;
    sizes[0x11] = 8;
    sizes[0x15] = 8;
    sizes[0x0f] = 16;
    sizes[0x12] = 16;
    sizes
};

/// Decode a whole chunk, or `None` to leave it to the reference path.
fn fast_chunk<'d>(
    d: &'d [u8],
    header: &EvtxChunkHeader,
    file: &Arc<str>,
    templates: &mut Templates,
    scratch: &mut Scratch<'d>,
    items: &mut Vec<Item>,
) -> Option<()> {
    let live_end = (header.free_space_offset as usize).min(d.len());
    // Template offsets are the chunk's own.
    templates.clear();
    let mut off = CHUNK_HEADER_SIZE;
    while off < live_end {
        if d.get(off..off + 4)? != b"\x2a\x2a\x00\x00" {
            return None;
        }
        let size = u32_at(d, off + 4)? as usize;
        let record_id = u64_at(d, off + 8)?;
        let filetime = u64_at(d, off + 16)?;
        if size < 28 || off + size > d.len() {
            return None;
        }
        let timestamp = filetime_timestamp(filetime)?;
        let outcome = decode_record(
            d,
            off + 24,
            off + size - 4,
            templates,
            scratch,
            file,
            record_id,
            timestamp,
        )?;
        items.push(Item::Outcome(outcome, record_id));
        if record_id == header.last_event_record_id {
            break;
        }
        off += size;
    }
    Some(())
}

fn filetime_timestamp(ft: u64) -> Option<jiff::Timestamp> {
    const UNIX_EPOCH_AS_FILETIME: i128 = 116_444_736_000_000_000;
    jiff::Timestamp::from_nanosecond((i128::from(ft) - UNIX_EPOCH_AS_FILETIME) * 100).ok()
}

type Templates = Vec<(u32, Option<std::rc::Rc<Template>>)>;

/// Compiled templates by content, kept per worker thread across chunks: every chunk repeats
/// its templates' definitions, and compiling them is most of the allocation a chunk costs.
type TemplateKey = ([u8; 16], usize, u64);

thread_local! {
    static TEMPLATE_CACHE: std::cell::RefCell<std::collections::HashMap<TemplateKey, Option<std::rc::Rc<Template>>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

const MAX_CACHED_TEMPLATES: usize = 4096;

fn cached_template(
    d: &[u8],
    guid: [u8; 16],
    body: usize,
    body_end: usize,
) -> Option<std::rc::Rc<Template>> {
    let compile_now = || {
        parse_template_tree(d, body, body_end)
            .and_then(|root| compile(&root))
            .map(std::rc::Rc::new)
    };
    let Some(hash) = template_hash(d, body, body_end) else {
        return compile_now();
    };
    let key = (guid, body_end - body, hash);
    TEMPLATE_CACHE.with(|cache| {
        if let Some(t) = cache.borrow().get(&key) {
            return t.clone();
        }
        let t = compile_now();
        let mut cache = cache.borrow_mut();
        if cache.len() >= MAX_CACHED_TEMPLATES {
            cache.clear();
        }
        cache.insert(key, t.clone());
        t
    })
}

/// The Firefox/rustc multiply-rotate hash: fast, and plenty for a per-thread cache key that
/// also holds the template GUID and size.
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A hash of a template body's content that does not depend on where it sits in its chunk:
/// the token bytes, with each name reference replaced by the name it points to. `None` for a
/// body this walk does not follow (it is then compiled every time, or rejected).
fn template_hash(d: &[u8], start: usize, end: usize) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = FxHasher(0);
    let mut pos = start;
    let name = |pos: &mut usize, h: &mut FxHasher| -> Option<()> {
        let offset = name_ref(d, pos)? as usize;
        let len = u16_at(d, offset + 6)? as usize;
        d.get(offset + 8..offset + 8 + len * 2)?.hash(h);
        Some(())
    };
    while pos < end {
        let token = *d.get(pos)?;
        token.hash(&mut h);
        match token {
            0x00 => break,
            0x0f => pos += 4,
            0x01 | 0x41 => {
                d.get(pos + 1..pos + 3)?.hash(&mut h);
                pos += 1 + 2 + 4;
                name(&mut pos, &mut h)?;
                if token & 0x40 != 0 {
                    pos += 4;
                }
            }
            0x06 | 0x46 => {
                pos += 1;
                name(&mut pos, &mut h)?;
            }
            0x02..=0x04 => pos += 1,
            0x05 | 0x45 => {
                let ty = *d.get(pos + 1)?;
                if ty != 0x01 {
                    return None;
                }
                let len = u16_at(d, pos + 2)? as usize;
                d.get(pos + 4..pos + 4 + len * 2)?.hash(&mut h);
                pos += 4 + len * 2;
            }
            0x0d | 0x0e => {
                d.get(pos + 1..pos + 4)?.hash(&mut h);
                pos += 4;
            }
            _ => return None,
        }
    }
    Some(h.finish())
}

/// Parse the template instance at `d[pos..end]` (an optional fragment header, then the
/// instance): its template's index in `templates` (compiled on first use) and its values,
/// appended to `values` from `first`.
fn parse_instance<'d>(
    d: &'d [u8],
    mut pos: usize,
    end: usize,
    templates: &mut Templates,
    values: &mut Vec<Value<'d>>,
) -> Option<usize> {
    if d.get(pos) == Some(&0x0f) {
        pos += 4;
    }
    if d.get(pos) != Some(&0x0c) {
        return None;
    }
    let def_offset = u32_at(d, pos + 6)?;
    pos += 10;
    if def_offset as usize == pos {
        let data_size = u32_at(d, pos + 20)? as usize;
        pos += 24 + data_size;
    }
    let index = match templates.iter().position(|(o, _)| *o == def_offset) {
        Some(i) => i,
        None => {
            let at = def_offset as usize;
            let data_size = u32_at(d, at + 20)? as usize;
            let body = at + 24;
            let body_end = body.checked_add(data_size)?;
            let guid: [u8; 16] = d.get(at + 4..at + 20)?.try_into().ok()?;
            let compiled = cached_template(d, guid, body, body_end);
            templates.push((def_offset, compiled));
            templates.len() - 1
        }
    };
    let count = u32_at(d, pos)? as usize;
    pos += 4;
    let descriptors = d.get(pos..pos.checked_add(count.checked_mul(4)?)?)?;
    pos += count * 4;
    // The count is bounded by the descriptors actually present in the chunk.
    values.reserve(count);
    for desc in descriptors.as_chunks::<4>().0 {
        let size = u16::from_le_bytes([desc[0], desc[1]]) as usize;
        let ty = desc[2];
        let fixed = FIXED_SIZES[ty as usize];
        if fixed != 0 && usize::from(fixed) != size {
            return None;
        }
        let bytes = d.get(pos..pos + size)?;
        values.push(Value { ty, bytes });
        pos += size;
    }
    if pos > end || !(pos == end || d.get(pos) == Some(&0x00)) {
        return None;
    }
    Some(index)
}

/// Reused between the records of a chunk.
#[derive(Default)]
struct Scratch<'d> {
    values: Vec<Value<'d>>,
    nested: Vec<Value<'d>>,
    text: String,
    /// An event's fields, each its name then its value.
    rendered: String,
    /// Where each field's name and value end in `rendered`.
    field_ends: Vec<(usize, usize)>,
}

fn slot_text(
    slot: &Option<Slot>,
    values: &[Value<'_>],
    scratch: &mut String,
) -> Option<Option<String>> {
    let Some(slot) = slot else { return Some(None) };
    if is_left_out(&slot.deps, values) {
        return Some(None);
    }
    scratch.clear();
    render(&slot.parts, values, scratch).ok()?;
    Some(Some(scratch.clone()))
}

fn push_fields(
    fields: &[DataField],
    values: &[Value<'_>],
    scratch: &mut String,
    b: &mut EventBuilder,
) -> Option<()> {
    for field in fields {
        if is_left_out(&field.slot.deps, values) {
            continue;
        }
        scratch.clear();
        render(&field.slot.parts, values, scratch).ok()?;
        b.field(&field.name, scratch);
    }
    Some(())
}

#[allow(clippy::too_many_arguments)]
fn decode_record<'d>(
    d: &'d [u8],
    start: usize,
    end: usize,
    templates: &mut Templates,
    scratch: &mut Scratch<'d>,
    file: &Arc<str>,
    record_id: u64,
    timestamp: jiff::Timestamp,
) -> Option<Outcome> {
    scratch.values.clear();
    let index = parse_instance(d, start, end, templates, &mut scratch.values)?;
    let template = templates[index].1.clone()?;
    match typed_event(&template, d, templates, scratch, file, record_id, timestamp)? {
        Typed::Done(outcome) => Some(outcome),
        // Anything unusual: the general builder, which `finish`es like every other reader.
        Typed::General => {
            general_event(&template, d, templates, scratch, file, record_id, timestamp)
        }
    }
}

enum Typed {
    Done(Outcome),
    General,
}

/// The value of a slot that is a single unsigned integer substitution, read without rendering
/// it to text and parsing it back; `None` for any other slot (which is then rendered).
fn slot_integer(slot: &Option<Slot>, values: &[Value<'_>]) -> Option<u64> {
    let slot = slot.as_ref()?;
    let [Part::Substitution(id)] = slot.parts.as_slice() else {
        return None;
    };
    if is_left_out(&slot.deps, values) {
        return None;
    }
    let v = values.get(*id as usize)?;
    Some(match v.ty {
        0x04 => u8::from_le_bytes(fixed(v.bytes).ok()?).into(),
        0x06 => u16::from_le_bytes(fixed(v.bytes).ok()?).into(),
        0x08 => u32::from_le_bytes(fixed(v.bytes).ok()?).into(),
        0x0a => u64::from_le_bytes(fixed(v.bytes).ok()?),
        _ => return None,
    })
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

/// The common case built directly, with as few allocations as possible: a `Channel` present,
/// a numeric `EventID`, `TimeCreated` a FILETIME. It gives exactly what `general_event` would
/// (the equality test over the corpus checks); anything else returns `Typed::General`.
#[allow(clippy::too_many_arguments)]
fn typed_event<'d>(
    t: &Template,
    d: &'d [u8],
    templates: &mut Templates,
    scratch: &mut Scratch<'d>,
    file: &Arc<str>,
    header_record_id: u64,
    header_time: jiff::Timestamp,
) -> Option<Typed> {
    use sandscope_event::{
        EventSource, Fields, SysmonEvent, canonical_value, is_sysmon_channel, parse_time,
        truncate_to_micros,
    };
    let values = &scratch.values;
    let text = &mut scratch.text;
    // Channel: other channels are counted after reading only this.
    if !slot_into(&t.channel, values, text)? {
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
    let event_id = match slot_integer(&t.event_id, values) {
        Some(n) => u16::try_from(n).ok(),
        None => {
            slot_into(&t.event_id, values, text)?;
            text.trim().parse::<u16>().ok()
        }
    };
    let Some(event_id) = event_id else {
        return Some(Typed::General);
    };
    let mut record_id = header_record_id;
    if let Some(id) = slot_integer(&t.record_id, values) {
        record_id = id;
    } else if slot_into(&t.record_id, values, text)?
        && let Ok(id) = text.trim().parse()
    {
        record_id = id;
    }
    let computer = if slot_into(&t.computer, values, text)? {
        text.clone()
    } else {
        String::new()
    };
    let time_created = match &t.time_created {
        None => header_time,
        Some(slot) if is_left_out(&slot.deps, values) => header_time,
        Some(Slot { parts, .. }) => match parts.as_slice() {
            [Part::Substitution(id)] => match values.get(*id as usize) {
                Some(Value { ty: 0x11, bytes }) => {
                    filetime_timestamp(u64::from_le_bytes(fixed(bytes).ok()?))?
                }
                _ => return Some(Typed::General),
            },
            _ => return Some(Typed::General),
        },
    };
    let time_created = truncate_to_micros(time_created);
    let Some(direct) = t.data.as_ref() else {
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
            let guid_value = matches!(field.slot.parts.as_slice(),
                [Part::Substitution(id)] if values.get(*id as usize).is_some_and(|v| v.ty == 0x0f));
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
    for &id in &t.embedded {
        let Some(v) = scratch.values.get(id as usize).copied() else {
            continue;
        };
        match v.ty {
            0x00 => continue,
            0x21 if v.bytes.is_empty() => continue,
            0x21 => {}
            _ => return None,
        }
        let at = v.bytes.as_ptr() as usize - d.as_ptr() as usize;
        scratch.nested.clear();
        let nested = parse_instance(d, at, at + v.bytes.len(), templates, &mut scratch.nested)?;
        let nested = templates[nested].1.clone()?;
        push(nested.data.as_ref()?, &scratch.nested)?;
    }
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
#[allow(clippy::too_many_arguments)]
fn general_event<'d>(
    template: &Template,
    d: &'d [u8],
    templates: &mut Templates,
    scratch: &mut Scratch<'d>,
    file: &Arc<str>,
    record_id: u64,
    timestamp: jiff::Timestamp,
) -> Option<Outcome> {
    let values = &scratch.values;
    let text = &mut scratch.text;
    let mut b = EventBuilder {
        record_id: Some(record_id),
        fallback_time: Some(timestamp),
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
    push_fields(template.data.as_ref()?, values, text, &mut b)?;
    for &id in &template.embedded {
        let Some(v) = scratch.values.get(id as usize).copied() else {
            continue;
        };
        match v.ty {
            0x00 => continue,
            0x21 if v.bytes.is_empty() => continue,
            0x21 => {}
            _ => return None,
        }
        let at = v.bytes.as_ptr() as usize - d.as_ptr() as usize;
        scratch.nested.clear();
        let nested = parse_instance(d, at, at + v.bytes.len(), templates, &mut scratch.nested)?;
        let nested = templates[nested].1.clone()?;
        push_fields(
            nested.data.as_ref()?,
            &scratch.nested,
            &mut scratch.text,
            &mut b,
        )?;
    }
    Some(b.finish(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `push_utf16` must give: the standard decoder, up to the first NUL unit.
    fn reference(bytes: &[u8]) -> String {
        let units = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0);
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    fn utf16(units: &[u16]) -> Vec<u8> {
        units.iter().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn utf16_values_decode_as_the_standard_decoder_does() {
        let ascii: Vec<u16> = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
            .encode_utf16()
            .collect();
        let mut cases: Vec<Vec<u16>> = vec![
            vec![],
            ascii.clone(),
            "Microsoft® Windows® Operating System"
                .encode_utf16()
                .collect(),
            "Ünïcødé all the way: Привет, 世界".encode_utf16().collect(),
            "emoji 😀 in a path 😀".encode_utf16().collect(),
        ];
        // Lone and reversed surrogates, NUL, DEL and 0x80 at every place of a 16-unit block.
        for odd in [0xd800u16, 0xdc00, 0x0000, 0x007f, 0x0080, 0x0100, 0xffff] {
            for at in 0..20 {
                let mut units = ascii.clone();
                units[at] = odd;
                cases.push(units);
            }
        }
        cases.push(vec![0xd83d, 0x0041, 0xde00, 0xd83d]);
        for units in cases {
            let mut bytes = utf16(&units);
            for trailing in [false, true] {
                if trailing {
                    // An odd byte count: the last byte is not a unit.
                    bytes.push(0x41);
                }
                let mut out = String::from("x");
                push_utf16(&mut out, &bytes);
                assert_eq!(out, format!("x{}", reference(&bytes)), "{units:x?}");
            }
        }
    }
}
