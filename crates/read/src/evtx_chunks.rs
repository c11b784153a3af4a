//! The chunks of an EVTX file in record order, read by position so that any thread can read
//! any batch of them without a shared file cursor.
//!
//! The order and the damage reported are those of the `evtx` crate's own chunk walk
//! (`EvtxParser::chunks`), which the JSON reference path uses: from the chunk holding the lowest
//! record id to the end of the file, then from the start of the file up to it (a log that has
//! wrapped around); all-zero chunks are passed over; a chunk that is cut short or whose header
//! is not a chunk header is one warning. Only the chunk numbers to visit are planned up front
//! (from the chunk headers); the chunks themselves are read when a batch is decoded, several
//! adjacent chunks in one read into a buffer the thread keeps. The file is on disk or whole in
//! memory (a stored log), both read by position through [`ChunkSource`].

use evtx::EvtxChunkHeader;
use evtx::err::{ChunkError, EvtxError};
use std::fs::File;

/// An EVTX file read by position: open on disk, or whole in memory (a log a store handed over
/// whole, read without a temporary file).
pub(crate) enum ChunkSource {
    File(File),
    Bytes(InMemory),
}

/// Bytes held whole in memory by whoever handed them over (a `Vec`, a store's page), read in
/// place.
pub(crate) struct InMemory(Box<dyn AsRef<[u8]> + Send + Sync>);

impl InMemory {
    pub fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> InMemory {
        InMemory(Box::new(bytes))
    }
}

impl AsRef<[u8]> for InMemory {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl ChunkSource {
    /// The file's size in bytes.
    pub fn len(&self) -> std::io::Result<u64> {
        match self {
            ChunkSource::File(file) => file.metadata().map(|m| m.len()),
            ChunkSource::Bytes(bytes) => Ok(bytes.as_ref().len() as u64),
        }
    }

    /// Read up to `buf.len()` bytes at `offset`; fewer only at the end of the file or on an
    /// error (both of which make the chunks concerned incomplete, as the `evtx` crate reports
    /// them).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> usize {
        match self {
            ChunkSource::File(file) => read_file_at(file, buf, offset),
            ChunkSource::Bytes(bytes) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let available = bytes.as_ref().get(start..).unwrap_or_default();
                let n = available.len().min(buf.len());
                buf[..n].copy_from_slice(&available[..n]);
                n
            }
        }
    }
}

pub(crate) const FILE_HEADER_SIZE: u64 = 4096;
pub(crate) const CHUNK_SIZE: usize = 65536;
pub(crate) const CHUNK_HEADER_SIZE: usize = 512;

/// Which chunks to visit, in which order: positions `0..len` map to chunk numbers
/// `oldest..forward_end`, then `0..oldest`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkPlan {
    oldest: u64,
    forward_end: u64,
}

impl ChunkPlan {
    /// Plan the walk over `file`, whose header the `evtx` crate has accepted; it states
    /// `header_block_size`.
    pub fn new(file: &ChunkSource, header_block_size: u16) -> std::io::Result<ChunkPlan> {
        let size = file.len()?;
        // The `evtx` crate counts chunks after the header block size the file header states,
        // but finds them after a fixed 4 KiB header; past that count it keeps going while it
        // finds whole chunks that are empty or have a valid header.
        let counted = size.saturating_sub(u64::from(header_block_size)) / CHUNK_SIZE as u64;
        let whole = size.saturating_sub(FILE_HEADER_SIZE) / CHUNK_SIZE as u64;
        let oldest = oldest_chunk(file, counted);
        let mut forward_end = counted.max(oldest);
        if whole > counted {
            let mut chunk = vec![0u8; CHUNK_SIZE];
            while forward_end < whole {
                if file.read_at(&mut chunk, chunk_offset(forward_end)) != CHUNK_SIZE {
                    break;
                }
                let empty = chunk.iter().all(|&b| b == 0);
                if !empty && EvtxChunkHeader::from_bytes(&chunk).is_err() {
                    break;
                }
                forward_end += 1;
            }
        }
        Ok(ChunkPlan {
            oldest,
            forward_end,
        })
    }

    /// Positions in the walk.
    pub fn len(&self) -> u64 {
        self.forward_end
    }

    /// The chunk number at `position` of the walk.
    pub fn chunk_at(&self, position: u64) -> u64 {
        let forward = self.forward_end - self.oldest;
        if position < forward {
            self.oldest + position
        } else {
            position - forward
        }
    }
}

/// The chunk whose header names the lowest first record id (a header with a reversed range
/// says nothing); 0 when none does. Headers are read until one cannot be.
fn oldest_chunk(file: &ChunkSource, counted: u64) -> u64 {
    let mut header = [0u8; CHUNK_HEADER_SIZE];
    let mut oldest = (u64::MAX, 0);
    for number in 0..counted {
        if file.read_at(&mut header, chunk_offset(number)) != CHUNK_HEADER_SIZE {
            break;
        }
        if let Ok(h) = EvtxChunkHeader::from_bytes(&header)
            && h.first_event_record_id <= h.last_event_record_id
            && h.first_event_record_id < oldest.0
        {
            oldest = (h.first_event_record_id, number);
        }
    }
    oldest.1
}

pub(crate) fn chunk_offset(number: u64) -> u64 {
    FILE_HEADER_SIZE.saturating_add(number.saturating_mul(CHUNK_SIZE as u64))
}

/// [`ChunkSource::read_at`] on a file.
fn read_file_at(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match positional_read(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}

#[cfg(unix)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// What the bytes read for chunk `number` hold (`bytes` shorter than a chunk when the file
/// ended early): its header, nothing (an all-zero chunk, passed over silently) or damage.
pub(crate) fn classify(number: u64, bytes: &[u8]) -> Result<Option<EvtxChunkHeader>, EvtxError> {
    if bytes.len() != CHUNK_SIZE {
        return Err(chunk_error(number, ChunkError::IncompleteChunk));
    }
    if bytes.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    EvtxChunkHeader::from_bytes(bytes)
        .map(Some)
        .map_err(|e| chunk_error(number, ChunkError::FailedToParseChunkHeader(e)))
}

fn chunk_error(number: u64, e: ChunkError) -> EvtxError {
    EvtxError::FailedToParseChunk {
        chunk_id: number,
        source: Box::new(e),
    }
}
