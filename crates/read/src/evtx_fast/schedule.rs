//! Batches of chunks decoded by every rayon thread and delivered in file order by the calling
//! thread (see the module documentation of `evtx_fast`).

use super::Item;
use super::chunk::{Reuse, decode_chunk};
use crate::Location;
use crate::build::Ctx;
use crate::evtx_chunks::{CHUNK_SIZE, ChunkPlan, ChunkSource, chunk_offset};
use evtx::ParserSettings;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
struct Decoding {
    handle: ChunkSource,
    plan: ChunkPlan,
    settings: Arc<ParserSettings>,
    /// The file name events carry (`EventSource::file`).
    file: Arc<str>,
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

impl Decoding {
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
        let file: Arc<str> = Arc::from(&*self.file);
        let first = batch * CHUNKS_PER_BATCH;
        let end = first.saturating_add(CHUNKS_PER_BATCH).min(self.plan.len());
        let mut items = Vec::with_capacity(256);
        if let ChunkSource::Bytes(bytes) = &self.handle {
            // Whole in memory: each chunk decoded where it lies, no copy.
            let mut reuse = Reuse::default();
            for position in first..end {
                let number = self.plan.chunk_at(position);
                let at = usize::try_from(chunk_offset(number)).unwrap_or(usize::MAX);
                let rest = bytes.as_ref().get(at..).unwrap_or_default();
                let chunk = &rest[..rest.len().min(CHUNK_SIZE)];
                decode_chunk(number, chunk, &self.settings, &file, &mut reuse, &mut items);
            }
            return items;
        }
        with_batch_buffer(|buf| {
            // Each chunk of the batch and how many of its bytes could be read: adjacent
            // chunks (all of them, but where the plan wraps around) in one read.
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
                let got = self.handle.read_at(bytes, chunk_offset(number));
                for i in 0..run as usize {
                    chunks[slot + i] = (number + i as u64, got.saturating_sub(i * CHUNK_SIZE));
                }
                position += run;
            }
            let buf: &[u8] = buf;
            // Reused by the batch's chunks.
            let mut reuse = Reuse::default();
            for (slot, &(number, got)) in chunks[..(end - first) as usize].iter().enumerate() {
                let at = slot * CHUNK_SIZE;
                let chunk = &buf[at..at + got.min(CHUNK_SIZE)];
                decode_chunk(number, chunk, &self.settings, &file, &mut reuse, &mut items);
            }
        });
        items
    }
}

thread_local! {
    /// One batch of chunks, kept per thread so that reading allocates nothing.
    static BATCH_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
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

/// Read every record of the open EVTX file `handle` (its header already accepted; it states
/// `header_block_size`). With `helpers` false every batch is decoded on the calling thread: for
/// a caller that already reads one input per thread, where helper jobs would only queue behind
/// its other inputs.
pub(crate) fn read_evtx_fast(
    handle: ChunkSource,
    header_block_size: u16,
    helpers: bool,
    ctx: &mut Ctx<'_>,
) {
    let plan = match ChunkPlan::new(&handle, header_block_size) {
        Ok(plan) => plan,
        Err(e) => {
            ctx.warn(Location::File, format!("cannot read the chunks: {e}"));
            return;
        }
    };
    let threads = rayon::current_num_threads().max(1);
    let batches = plan.len().div_ceil(CHUNKS_PER_BATCH);
    // The calling thread takes the first batch: a log of one batch needs no helper.
    let max_helpers = if helpers {
        (threads - 1).min(usize::try_from(batches.saturating_sub(1)).unwrap_or(usize::MAX))
    } else {
        0
    };
    let decoding = Arc::new(Decoding {
        handle,
        plan,
        settings: Arc::new(crate::evtx_file::settings()),
        file: ctx.file.clone(),
        batches,
        next: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        window: window_batches(threads),
        helpers: AtomicUsize::new(0),
    });
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Vec<Item>)>();
    let mut ready: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
    let mut next_out = 0u64;
    while next_out < decoding.batches {
        // Top up the helpers: they stop when the window is full.
        while max_helpers > 0
            && decoding.helpers.load(Ordering::Acquire) < max_helpers
            && decoding.next.load(Ordering::Relaxed)
                < decoding.batches.min(next_out + decoding.window)
        {
            decoding.helpers.fetch_add(1, Ordering::AcqRel);
            let (decoding, tx) = (decoding.clone(), tx.clone());
            rayon::spawn(move || {
                while let Some(batch) = decoding.claim() {
                    // A batch a helper claimed is always sent: the delivering thread waits for it.
                    let items = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        decoding.decode_batch(batch)
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
                decoding.helpers.fetch_sub(1, Ordering::AcqRel);
            });
        }
        while let Ok((batch, items)) = rx.try_recv() {
            ready.insert(batch, items);
        }
        if let Some(items) = ready.remove(&next_out) {
            next_out += 1;
            decoding.delivered.store(next_out, Ordering::Release);
            deliver(items, ctx);
            continue;
        }
        // The next batch is not ready: decode one rather than wait.
        if let Some(batch) = decoding.claim() {
            ready.insert(batch, decoding.decode_batch(batch));
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
