//! The decompression budget shared by concurrent reads: while one read holds part of the pool,
//! another cannot expand past what is left; every read gives back what it drew when it ends.

use flate2::Compression;
use flate2::write::GzEncoder;
use sandscope_read::{
    DecompressionPool, ReadError, ReadOptions, ReadOutput, is_decompression_budget,
    is_shared_decompression_budget, read_reader_with,
};
use std::io::{Read, Write};
use std::sync::mpsc;

/// A gzip'd JSON-lines log of `lines` Sysmon events, about 230 bytes each once expanded; the
/// file names are pseudo-random, so the compressed stream is long enough to pause halfway.
fn gzip_log(lines: usize) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        writeln!(
            gz,
            r#"{{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":11,"UtcTime":"2020-07-22 04:18:46.905","Image":"C:\\x.exe","TargetFilename":"C:\\Temp\\{x:016x}.tmp","ProcessGuid":"{{39e4a257-d62d-5f90-8710-000000000700}}"}}"#
        )
        .unwrap();
    }
    gz.finish().unwrap()
}

fn options(per_input: u64, pool: &std::sync::Arc<DecompressionPool>) -> ReadOptions {
    ReadOptions {
        max_decompressed_bytes: per_input,
        shared_decompression: Some(pool.clone()),
        ..ReadOptions::default()
    }
}

fn io_source(result: Result<sandscope_read::ReadStats, ReadError>) -> std::io::Error {
    match result {
        Err(ReadError::Io { source, .. }) => source,
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Hands out its bytes in two halves and waits for a signal between them, so the test knows
/// the read holds part of the pool.
struct PausingReader {
    data: Vec<u8>,
    at: usize,
    half_done: Option<mpsc::Sender<()>>,
    resume: mpsc::Receiver<()>,
}

impl Read for PausingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let half = self.data.len() / 2;
        if self.at == half
            && let Some(done) = self.half_done.take()
        {
            done.send(()).unwrap();
            self.resume.recv().unwrap();
        }
        let end = if self.at < half {
            half
        } else {
            self.data.len()
        };
        let n = buf.len().min(end - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn concurrent_reads_share_the_pool_and_give_it_back() {
    let big = gzip_log(40_000); // about 9 MB expanded
    let small = gzip_log(2_000); // about 0.45 MB expanded
    let pool = DecompressionPool::new(4 << 20);

    // Alone, a read within the pool passes and gives everything back.
    let mut out = ReadOutput::default();
    read_reader_with("small.gz", &small[..], &options(64 << 20, &pool), &mut out).unwrap();
    assert_eq!(out.events.len(), 2_000);
    assert_eq!(pool.available(), pool.total());

    // A read larger than the whole pool fails with the shared budget's error, whatever its
    // own budget allows, and gives back what it drew.
    let mut out = ReadOutput::default();
    let error = io_source(read_reader_with(
        "big.gz",
        &big[..],
        &options(64 << 20, &pool),
        &mut out,
    ));
    assert!(is_shared_decompression_budget(&error), "{error}");
    assert!(error.to_string().contains("shared by concurrent inputs"));
    assert_eq!(pool.available(), pool.total());

    // One read holds about half of a 3.8 MB expansion; another of 2.9 MB cannot fit beside
    // it in the 4 MiB pool, but fits once the first has ended.
    let medium = gzip_log(17_000);
    let (half_done, half_reached) = mpsc::channel();
    let (resume, resumed) = mpsc::channel();
    let holder = {
        let pool = pool.clone();
        let medium = medium.clone();
        std::thread::spawn(move || {
            let reader = PausingReader {
                data: medium,
                at: 0,
                half_done: Some(half_done),
                resume: resumed,
            };
            let mut out = ReadOutput::default();
            read_reader_with("medium.gz", reader, &options(64 << 20, &pool), &mut out).map(|_| out)
        })
    };
    half_reached.recv().unwrap();
    let held = pool.total() - pool.available();
    assert!(
        held > 1_500_000,
        "the paused read holds {held} bytes of the pool"
    );
    let second = gzip_log(13_000);
    let mut out = ReadOutput::default();
    let error = io_source(read_reader_with(
        "second.gz",
        &second[..],
        &options(64 << 20, &pool),
        &mut out,
    ));
    assert!(is_shared_decompression_budget(&error), "{error}");
    assert_eq!(
        pool.total() - pool.available(),
        held,
        "the failed read gave back its share"
    );
    resume.send(()).unwrap();
    let first = holder.join().unwrap().unwrap();
    assert_eq!(first.events.len(), 17_000, "the holder read everything");
    assert_eq!(pool.available(), pool.total());
    let mut out = ReadOutput::default();
    read_reader_with(
        "second.gz",
        &second[..],
        &options(64 << 20, &pool),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.events.len(), 13_000);

    // The per-input budget is still the input's own: not the shared one.
    let mut out = ReadOutput::default();
    let error = io_source(read_reader_with(
        "small.gz",
        &small[..],
        &options(100_000, &pool),
        &mut out,
    ));
    assert!(is_decompression_budget(&error) && !is_shared_decompression_budget(&error));
    assert_eq!(pool.available(), pool.total());
}
