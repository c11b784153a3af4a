//! The typed EVTX path finds its own chunks (positional reads, in batches, on several threads):
//! on logs laid out in every way the `evtx` crate's chunk walk knows about, it must give
//! exactly what the reference path gives — the same events in the same order, the same
//! warnings, the same counts.

mod common;

use sandscope_read::ReadOutput;
use std::path::Path;

const HEADER: usize = 4096;
const CHUNK: usize = 65536;

/// The vendored CAPE run's Sysmon log: 17 chunks of real Sysmon events.
fn sysmon_log() -> Vec<u8> {
    let path = common::workspace().join(
        "tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/\
         samples/9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788/Report/evtx/\
         Microsoft-Windows-Sysmon%4Operational.evtx",
    );
    std::fs::read(path).unwrap()
}

fn chunks(log: &[u8]) -> Vec<Vec<u8>> {
    log[HEADER..]
        .chunks_exact(CHUNK)
        .map(<[u8]>::to_vec)
        .collect()
}

fn assemble(header: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header[..HEADER].to_vec();
    for c in chunks {
        out.extend_from_slice(c);
    }
    out
}

/// Write `bytes` as a file, read it both ways and require the same outcome; returns the typed
/// path's.
fn same_both_ways(name: &str, bytes: &[u8], dir: &Path) -> ReadOutput {
    let path = dir.join(format!("{name}.evtx"));
    std::fs::write(&path, bytes).unwrap();
    common::read_same_both_ways(&path)
}

fn record_ids(out: &ReadOutput) -> Vec<u64> {
    out.events
        .iter()
        .map(|e| e.source.record_id.unwrap())
        .collect()
}

#[test]
fn every_chunk_layout_reads_as_the_reference_does() {
    let dir = tempfile::tempdir().unwrap();
    let log = sysmon_log();
    let header = &log[..HEADER];
    let original = chunks(&log);
    assert!(original.len() >= 10, "{} chunks", original.len());

    let plain = same_both_ways("plain", &log, dir.path());
    assert!(plain.events.len() > 300 && plain.warnings.is_empty());

    // A log that has wrapped around: its oldest chunk is in the middle of the file, and
    // reading starts there and comes back to the start.
    let mut wrapped = original[6..].to_vec();
    wrapped.extend_from_slice(&original[..6]);
    let out = same_both_ways("wrapped", &assemble(header, &wrapped), dir.path());
    assert_eq!(record_ids(&out), record_ids(&plain));

    // A zeroed chunk (passed over), a chunk with a broken header (one warning), a file cut in
    // its last chunk (one warning for the file: the chunk walk itself passes over a partial
    // last chunk without a word).
    let mut holes = original.clone();
    holes[3] = vec![0; CHUNK];
    holes[5][..8].copy_from_slice(b"NotChnk\0");
    let mut cut = assemble(header, &holes);
    cut.truncate(cut.len() - CHUNK / 2);
    let out = same_both_ways("holes", &cut, dir.path());
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    assert!(
        out.warnings[0].message.contains("cut short"),
        "{:?}",
        out.warnings
    );
    assert!(
        out.warnings[0].message.contains("32768 byte(s)"),
        "{:?}",
        out.warnings
    );
    assert!(out.events.len() < plain.events.len());

    // A copy cut after its first chunk and a few bytes of the second: the first chunk's events
    // are read, and the loss is reported even though no chunk header is damaged.
    let mut short = log.clone();
    short.truncate(HEADER + CHUNK + 368);
    let out = same_both_ways("short", &short, dir.path());
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].message.contains("cut short"),
        "{:?}",
        out.warnings
    );
    let first_chunk = same_both_ways("first", &log[..HEADER + CHUNK], dir.path());
    assert!(!first_chunk.events.is_empty());
    assert_eq!(record_ids(&out), record_ids(&first_chunk));

    // A header that states a block size other than 4 KiB: the chunk count it implies is one
    // more or one less than the chunks in the file.
    for block_size in [128u16, 8192, 65535] {
        let mut odd = log.clone();
        odd[40..42].copy_from_slice(&block_size.to_le_bytes());
        same_both_ways(&format!("block-size-{block_size}"), &odd, dir.path());
        // ... also with a broken chunk and an empty chunk past the implied count.
        let mut tail = original.clone();
        tail.push(vec![0; CHUNK]);
        tail.push(original[2].clone());
        tail.push(original[4].clone());
        let last = tail.len() - 2;
        tail[last][..8].copy_from_slice(b"NotChnk\0");
        let mut bytes = assemble(&odd, &tail);
        bytes[40..42].copy_from_slice(&block_size.to_le_bytes());
        same_both_ways(&format!("tail-{block_size}"), &bytes, dir.path());
    }

    // Many more chunks than the threads keep in flight, wrapped around, with damage spread
    // through: batches are read and delivered in order across the whole walk.
    let mut big: Vec<Vec<u8>> = (0..150)
        .map(|i| original[i % original.len()].clone())
        .collect();
    big.rotate_left(70);
    big[33] = vec![0; CHUNK];
    big[90][3000..3016].fill(0xa5);
    let out = same_both_ways("big", &assemble(header, &big), dir.path());
    assert!(out.events.len() > 5 * plain.events.len());
    assert!(!out.warnings.is_empty());
}
