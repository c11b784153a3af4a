//! Hostile and damaged input: errors and warnings, never a panic, never unbounded memory.

mod common;

use sandscope_read::{ReadError, ReadOptions, ReadOutput, read_bytes, read_reader_with};
use std::io::Write;

fn read(bytes: &[u8]) -> (ReadOutput, Result<sandscope_read::ReadStats, ReadError>) {
    let mut out = ReadOutput::default();
    let r = read_bytes("hostile", bytes, &mut out);
    (out, r)
}

const EVENT: &str = r#"<Event><System><Provider Name="Microsoft-Windows-Sysmon"/><EventID>1</EventID><TimeCreated SystemTime="2025-11-21T15:40:01.2162716Z"/><EventRecordID>7</EventRecordID><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>PC</Computer></System><EventData><Data Name="UtcTime">2025-11-21 15:40:01.123</Data><Data Name="Image">a.exe</Data></EventData></Event>"#;

#[test]
fn truncated_xml() {
    for cut in [10, 60, 150, EVENT.len() - 30] {
        let (out, r) = read(&EVENT.as_bytes()[..cut]);
        // Either recovered with a warning, or nothing readable: never silent, never a panic.
        assert!(
            r.is_err() || !out.warnings.is_empty(),
            "cut at {cut}: {r:?} {:?}",
            out.events
        );
    }
}

#[test]
fn huge_attribute_is_skipped_with_a_warning() {
    let huge = format!(
        "<Events>{}<Event><System><Provider Name=\"{}\"/></System></Event>{}</Events>",
        EVENT,
        "A".repeat(20 << 20),
        EVENT
    );
    let (out, r) = read(huge.as_bytes());
    assert!(r.is_ok());
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
}

#[test]
fn invalid_utf8_in_xml() {
    let mut bytes = EVENT.as_bytes().to_vec();
    let at = EVENT.find("a.exe").unwrap();
    bytes[at] = 0xff;
    bytes[at + 1] = 0xfe;
    let mut twice = bytes.clone();
    twice.extend_from_slice(EVENT.as_bytes());
    let (out, r) = read(&twice);
    assert!(r.is_ok());
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.warnings.len(), 1);
}

#[test]
fn invalid_utf16() {
    let mut bytes = vec![0xff, 0xfe];
    for u in EVENT.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    // A lone surrogate in the middle and an odd byte at the end.
    let at = (bytes.len() / 2) & !1;
    bytes[at..at + 2].copy_from_slice(&0xdc00u16.to_le_bytes());
    bytes.push(0x41);
    let (_out, _r) = read(&bytes);
    let (_out, _r) = read(&[0xff, 0xfe, 0x00]);
    let (_out, r) = read(&[0xfe, 0xff]);
    assert!(r.is_err());
}

#[test]
fn deeply_nested_json() {
    let deep_array = "[".repeat(200_000);
    let (_, r) = read(deep_array.as_bytes());
    assert!(r.is_err());
    let deep_object = format!("{}1{}\n", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let (out, r) = read(deep_object.as_bytes());
    assert!(r.is_err() || !out.warnings.is_empty());
}

#[test]
fn garbage_bytes() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for len in [0usize, 1, 7, 100, 5000, 70_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (_, r) = read(&bytes);
        assert!(r.is_err(), "{len} random bytes read as an event log");
    }
    // Garbage behind each magic.
    for magic in [
        &b"ElfFile\0"[..],
        b"PK\x03\x04",
        &[0x1f, 0x8b],
        b"{",
        b"<Event",
    ] {
        let mut bytes = magic.to_vec();
        bytes.extend(std::iter::repeat_n(0xa5u8, 9000));
        let _ = read(&bytes);
    }
}

#[test]
fn damaged_evtx_never_panics() {
    let root = common::workspace().join("tests/data/mdecrevoisier_EVTX-to-MITRE-Attack");
    let file = sandscope_read::walk(&root)
        .unwrap()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("PSexec"))
        .unwrap();
    let good = std::fs::read(file).unwrap();
    // Truncations.
    for cut in [10, 4096, 4096 + 600, 30_000, good.len() - 1] {
        let _ = read(&good[..cut]);
    }
    // Corruption at many places in the chunk, both EVTX paths.
    let mut x: u32 = 12345;
    for i in 0..300 {
        let mut bad = good.clone();
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let at = 4096 + (x as usize % 65536);
        let len = 1 + i % 16;
        for b in bad.iter_mut().skip(at).take(len) {
            *b ^= (x >> 8) as u8;
        }
        let _ = read(&bad);
        let mut out = ReadOutput::default();
        let opts = ReadOptions {
            evtx_via_json: true,
            ..ReadOptions::default()
        };
        let _ = read_reader_with("bad", &bad[..], &opts, &mut out);
    }
}

#[test]
fn compression_bombs_stop_at_the_limit() {
    let opts = ReadOptions {
        max_decompressed_bytes: 1 << 20,
        ..ReadOptions::default()
    };
    // gzip of 50 MB of a JSON-lines event repeated.
    let line = format!(
        "{{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":5,\"UtcTime\":\"2020-07-22 04:18:46.905\",\"Image\":\"{}\"}}\n",
        "x".repeat(200)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..(50 << 20) / line.len() {
        gz.write_all(line.as_bytes()).unwrap();
    }
    let gz = gz.finish().unwrap();
    let mut out = ReadOutput::default();
    let r = read_reader_with("bomb.gz", &gz[..], &opts, &mut out);
    assert!(r.is_err() || !out.warnings.is_empty());
    assert!(out.events.len() < 10_000);

    // zip with a 50 MB member of zeros.
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("a.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..50 {
            z.write_all(&zeros).unwrap();
        }
        z.finish().unwrap();
    }
    let mut out = ReadOutput::default();
    let r = read_reader_with("bomb.zip", &buf.get_ref()[..], &opts, &mut out);
    assert!(r.is_err() || !out.warnings.is_empty(), "{r:?}");
}

#[test]
fn archives_and_compression_are_transparent() {
    let root = common::workspace().join("tests/data/archives");
    let zip = sandscope_read::read_all(&root.join("evtx.zip")).unwrap();
    assert_eq!(zip.stats.sysmon_events, 78);
    assert_eq!(zip.stats.skipped_by_channel.values().sum::<u64>(), 5);
    assert!(
        zip.events[0]
            .source
            .file
            .ends_with("evtx.zip!Microsoft-Windows-Sysmon%4Operational.evtx")
    );
    let gz = sandscope_read::read_all(&root.join("syslog_sysmon_log4shell.json.gz")).unwrap();
    assert_eq!(gz.stats.sysmon_events, 93);
    // The same bytes from a stream (as from standard input).
    let bytes = std::fs::read(root.join("evtx.zip")).unwrap();
    let mut out = ReadOutput::default();
    read_bytes("-", &bytes, &mut out).unwrap();
    assert_eq!(out.events.len(), 78);
}
