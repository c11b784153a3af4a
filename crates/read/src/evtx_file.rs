//! EVTX files, through the `evtx` crate's multi-threaded chunk parser.

use crate::build::{Ctx, Outcome};
use crate::evtx_chunks::ChunkSource;
use crate::{Location, ReadError};
use evtx::{EvtxParser, ParserSettings};
use std::io::Cursor;
use std::path::Path;

/// Open an EVTX parser over a seekable source; a header that cannot be read is not an event log.
pub(crate) fn parser<T: std::io::Read + std::io::Seek>(
    src: T,
    path: &Path,
) -> Result<EvtxParser<T>, ReadError> {
    EvtxParser::from_read_seek(src)
        .map(|p| p.with_configuration(settings()))
        .map_err(|e| not_an_event_log(path, &e))
}

pub(crate) fn settings() -> ParserSettings {
    ParserSettings::new().num_threads(0)
}

/// Read every record of an EVTX file, on disk or whole in memory.
pub(crate) fn read_evtx(
    source: ChunkSource,
    path: &Path,
    ctx: &mut Ctx<'_>,
    opts: &crate::ReadOptions,
) -> Result<(), ReadError> {
    let size = source.len().ok();
    let header_block_size = match &source {
        ChunkSource::File(file) => open_then(parser(file, path)?, size, ctx, opts),
        ChunkSource::Bytes(bytes) => {
            open_then(parser(Cursor::new(bytes.as_ref()), path)?, size, ctx, opts)
        }
    };
    if let Some(header_block_size) = header_block_size {
        crate::evtx_fast::read_evtx_fast(source, header_block_size, !opts.sequential, ctx);
    }
    Ok(())
}

/// What follows an accepted header: the cut-short check, then the reference path (`None`
/// returned) or the header block size the fast path reads with.
fn open_then<T: std::io::Read + std::io::Seek>(
    parser: EvtxParser<T>,
    size: Option<u64>,
    ctx: &mut Ctx<'_>,
    opts: &crate::ReadOptions,
) -> Option<u16> {
    ctx.empty_ok = true;
    if let Some(size) = size {
        warn_if_cut_short(size, parser.header(), ctx);
    }
    if opts.evtx_via_json {
        read_evtx_json(parser, ctx);
        return None;
    }
    Some(parser.header().header_block_size)
}

/// The chunk walk (ours and the `evtx` crate's) stops silently at the last whole chunk, so a
/// file cut short, as a copy interrupted mid-way or a sandbox that grabbed the log while it was
/// written, would otherwise lose its tail without a word. The header says how many chunks there
/// should be; a file with fewer, or with a partial chunk at its end, is reported once.
fn warn_if_cut_short(size: u64, header: &evtx::EvtxFileHeader, ctx: &mut Ctx<'_>) {
    let body = size.saturating_sub(crate::evtx_chunks::FILE_HEADER_SIZE);
    let chunk = crate::evtx_chunks::CHUNK_SIZE as u64;
    let whole = body / chunk;
    let partial = !body.is_multiple_of(chunk);
    let declared = u64::from(header.chunk_count);
    if partial || whole < declared {
        ctx.warn(
            Location::File,
            format!(
                "file cut short: its header declares {declared} chunk(s), it holds {whole} whole \
                 chunk(s){}; records past them are lost",
                if partial {
                    format!(" and {} byte(s) of another", body % chunk)
                } else {
                    String::new()
                }
            ),
        );
    }
}

/// Read every record through the `evtx` crate's JSON rendering (the reference path, used for
/// records the fast path does not handle and to test it).
pub(crate) fn read_evtx_json<T: std::io::Read + std::io::Seek>(
    mut parser: EvtxParser<T>,
    ctx: &mut Ctx<'_>,
) {
    for record in parser.records_json_value() {
        match record {
            Ok(record) => {
                let outcome = outcome_of_json(&record, &ctx.file);
                let id = record.event_record_id;
                ctx.outcome(outcome, || Location::Record(id));
            }
            Err(err) => ctx.warn(location_of(&err), error_chain(&err)),
        }
    }
}

pub(crate) fn outcome_of_json(
    record: &evtx::SerializedEvtxRecord<serde_json::Value>,
    file: &std::sync::Arc<str>,
) -> Outcome {
    let built = record
        .data
        .as_object()
        .and_then(crate::json::builder_from_object);
    match built {
        Some(Ok(mut b)) => {
            // `System/EventRecordID` is what Windows and every export show; a log re-saved by
            // a tool renumbers the record headers but keeps it.
            b.record_id = b.record_id.or(Some(record.event_record_id));
            b.fallback_time = Some(record.timestamp);
            b.finish(file)
        }
        Some(Err(e)) => Outcome::Invalid(e),
        None => Outcome::Invalid("record without Event/System".into()),
    }
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

pub(crate) fn location_of(err: &evtx::err::EvtxError) -> Location {
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

pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
