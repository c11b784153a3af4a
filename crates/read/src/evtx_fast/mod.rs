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
//!
//! One file a job: `schedule` (batches and their delivery), `chunk` (a chunk's records, or the
//! reference path), `record` (a template instance's values to an event), `template` (template
//! definitions compiled into value places), `template_cache` (compiled templates per chunk and
//! per thread), `binxml` (token and value-type bytes, the token walk), `value` (value
//! rendering) and `utf16` (text decoding).

mod binxml;
mod chunk;
mod record;
mod schedule;
mod template;
mod template_cache;
mod utf16;
mod value;

pub(crate) use schedule::read_evtx_fast;

use crate::Location;
use crate::build::Outcome;
use std::sync::atomic::AtomicU64;

/// Chunks decoded by the fast path and chunks left to the reference path, since start (for the
/// benchmark).
pub(crate) static FAST_CHUNKS: AtomicU64 = AtomicU64::new(0);
pub(crate) static FALLBACK_CHUNKS: AtomicU64 = AtomicU64::new(0);

/// What decoding produced, in record order.
enum Item {
    Outcome(Outcome, u64),
    Warning(Location, String),
}
