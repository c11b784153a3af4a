//! One chunk: its records decoded by the typed path, or, when that path meets anything it does
//! not know, the whole chunk rendered by the `evtx` crate as JSON instead.

use super::binxml::{u32_at, u64_at};
use super::record::{RecordHeader, Scratch, decode_record};
use super::template_cache::ChunkTemplates;
use super::value::filetime_timestamp;
use super::{FALLBACK_CHUNKS, FAST_CHUNKS, Item};
use crate::Location;
use crate::evtx_chunks::{CHUNK_HEADER_SIZE, classify};
use crate::evtx_file::{error_chain, location_of, outcome_of_json};
use evtx::{EvtxChunkData, EvtxChunkHeader, ParserSettings};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A record's header: magic `**\0\0` (4), size (4), record id (8), FILETIME (8); its BinXML
/// follows and a copy of the size (4) ends it.
const RECORD_MAGIC: &[u8; 4] = b"\x2a\x2a\x00\x00";
const RECORD_HEADER_SIZE: usize = 24;
const RECORD_TRAILER_SIZE: usize = 4;

/// What decoding one chunk reuses from the previous chunk of its batch.
#[derive(Default)]
pub(super) struct Reuse<'c> {
    templates: ChunkTemplates,
    scratch: Scratch<'c>,
}

/// Decode the bytes read for chunk `number` into `items`; never panics (a panic in a decoder
/// becomes a warning for the chunk).
pub(super) fn decode_chunk<'c>(
    number: u64,
    bytes: &'c [u8],
    settings: &Arc<ParserSettings>,
    file: &Arc<str>,
    reuse: &mut Reuse<'c>,
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
        if typed_chunk(bytes, &header, file, reuse, items).is_some() {
            FAST_CHUNKS.fetch_add(1, Ordering::Relaxed);
        } else {
            items.truncate(mark);
            FALLBACK_CHUNKS.fetch_add(1, Ordering::Relaxed);
            reference_chunk(number, bytes, settings, file, items);
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
fn reference_chunk(
    number: u64,
    bytes: &[u8],
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
    let mut chunk = match EvtxChunkData::new(bytes.to_vec(), false) {
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

/// Decode every record of a chunk by the typed path, or `None` to leave the chunk to the
/// reference path.
fn typed_chunk<'c>(
    chunk: &'c [u8],
    header: &EvtxChunkHeader,
    file: &Arc<str>,
    reuse: &mut Reuse<'c>,
    items: &mut Vec<Item>,
) -> Option<()> {
    let live_end = (header.free_space_offset as usize).min(chunk.len());
    reuse.templates.clear();
    let mut offset = CHUNK_HEADER_SIZE;
    while offset < live_end {
        if chunk.get(offset..offset + 4)? != RECORD_MAGIC {
            return None;
        }
        let size = u32_at(chunk, offset + 4)? as usize;
        let id = u64_at(chunk, offset + 8)?;
        let filetime = u64_at(chunk, offset + 16)?;
        if size < RECORD_HEADER_SIZE + RECORD_TRAILER_SIZE || offset + size > chunk.len() {
            return None;
        }
        let record = RecordHeader {
            id,
            time: filetime_timestamp(filetime)?,
        };
        let outcome = decode_record(
            chunk,
            offset + RECORD_HEADER_SIZE,
            offset + size - RECORD_TRAILER_SIZE,
            record,
            &mut reuse.templates,
            &mut reuse.scratch,
            file,
        )?;
        items.push(Item::Outcome(outcome, id));
        if id == header.last_event_record_id {
            break;
        }
        offset += size;
    }
    Some(())
}
