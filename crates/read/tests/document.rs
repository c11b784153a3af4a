//! One document read through the input layer (what the CAPE importer uses): gzip layers and
//! zip members undone as the `flate2` and `zip` crates read them, under a budget.

mod common;

use flate2::Compression;
use flate2::write::GzEncoder;
use sandscope_read::{DocumentError, is_decompression_budget, read_document};
use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

const ARCHIVE: &str = "tests/data/archives/evtx.zip";
const GZIP_REPORT: &str = "tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples/9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788/Report/reports/lite.json.gz";

fn data(path: &str) -> PathBuf {
    common::workspace().join(path)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// What reading a whole document gave.
#[derive(Debug)]
struct DocumentRead {
    bytes: std::io::Result<Vec<u8>>,
    member: Option<String>,
    over_budget: bool,
}

fn read_all(
    input: impl Read + std::io::Seek,
    limit: u64,
    pick: impl FnOnce(&[String]) -> Option<usize>,
) -> Result<DocumentRead, DocumentError> {
    read_document(input, limit, pick, |doc| {
        let mut out = Vec::new();
        DocumentRead {
            bytes: doc.read_to_end(&mut out).map(|_| out),
            member: doc.member().map(str::to_string),
            over_budget: doc.over_budget(),
        }
    })
}

#[test]
fn gzip_layers_are_undone() {
    let compressed = std::fs::read(data(GZIP_REPORT)).unwrap();
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed.as_slice())
        .read_to_end(&mut plain)
        .unwrap();
    assert!(plain.starts_with(b"{"), "a JSON report");
    for input in [plain.clone(), compressed.clone(), gzip(&compressed)] {
        let read = read_all(Cursor::new(input), u64::MAX, |_| None).unwrap();
        assert_eq!(read.bytes.unwrap(), plain);
        assert_eq!(read.member, None);
        assert!(!read.over_budget);
    }
}

#[test]
fn the_picked_zip_member_is_read() {
    let path = data(ARCHIVE);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut expected = Vec::new();
    archive
        .by_name("notes/README.txt")
        .unwrap()
        .read_to_end(&mut expected)
        .unwrap();
    let mut offered = Vec::new();
    let read = read_all(std::fs::File::open(&path).unwrap(), u64::MAX, |names| {
        offered = names.to_vec();
        names.iter().position(|n| n.ends_with(".txt"))
    })
    .unwrap();
    // Sorted by name, folders left out.
    assert_eq!(
        offered,
        [
            "Microsoft-Windows-DNSServer%4Analytical.evtx",
            "Microsoft-Windows-Sysmon%4Operational.evtx",
            "notes/README.txt",
        ]
    );
    assert_eq!(read.bytes.unwrap(), expected);
    assert_eq!(read.member.as_deref(), Some("notes/README.txt"));

    let nothing = read_all(std::fs::File::open(&path).unwrap(), u64::MAX, |_| None);
    assert!(matches!(nothing, Err(DocumentError::NoMember)));

    let mut cut = std::fs::read(&path).unwrap();
    cut.truncate(cut.len() / 2);
    let damaged = read_all(Cursor::new(cut), u64::MAX, |_| Some(0));
    assert!(matches!(damaged, Err(DocumentError::Zip(_))), "{damaged:?}");
}

#[test]
fn the_budget_counts_what_comes_out() {
    let compressed = std::fs::read(data(GZIP_REPORT)).unwrap();
    let plain = read_all(Cursor::new(&compressed), u64::MAX, |_| None)
        .unwrap()
        .bytes
        .unwrap();
    let size = plain.len() as u64;
    // Exactly the budget passes; a byte less stops with the budget's error, plain or not.
    let read = read_all(Cursor::new(&compressed), size, |_| None).unwrap();
    assert_eq!(read.bytes.unwrap().len() as u64, size);
    assert!(!read.over_budget);
    for input in [plain.clone(), compressed.clone(), gzip(&compressed)] {
        let read = read_all(Cursor::new(input), size - 1, |_| None).unwrap();
        let error = read.bytes.unwrap_err();
        assert!(is_decompression_budget(&error), "{error}");
        assert!(read.over_budget);
    }
}
