//! Format detection by content: the first bytes of an input decide how it is read, whatever
//! its name says.

/// What an input holds, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Windows event log (`ElfFile\0`).
    Evtx,
    /// Gzip-compressed data (any of the other formats inside).
    Gzip,
    /// A zip archive (each member read as an input of its own).
    Zip,
    /// Text with `<Event>` elements: an XML export or syslog lines.
    Xml,
    /// JSON: lines, a pretty-printed document, or a CAPE report.
    Json,
    /// UTF-16 text (with a byte-order mark), read after transcoding.
    Utf16Le,
    Utf16Be,
    /// None of the above.
    Unknown,
}

/// How many bytes [`detect`] wants to see (it works with fewer).
pub const SNIFF_BYTES: usize = 64 << 10;

/// Judge `prefix`, the first bytes of an input (all of it when shorter).
pub fn detect(prefix: &[u8]) -> Format {
    if prefix.starts_with(b"ElfFile\0") {
        return Format::Evtx;
    }
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Format::Gzip;
    }
    if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    if prefix.starts_with(&[0xff, 0xfe]) {
        return Format::Utf16Le;
    }
    if prefix.starts_with(&[0xfe, 0xff]) {
        return Format::Utf16Be;
    }
    let text = prefix.strip_prefix(b"\xef\xbb\xbf").unwrap_or(prefix);
    let first = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Format::Unknown;
    };
    match text[first] {
        b'{' | b'[' => Format::Json,
        _ if memchr::memmem::find(text, b"<Event").is_some()
            || memchr::memmem::find(text, b":Event").is_some() =>
        {
            Format::Xml
        }
        // An XML document whose first event is further in than the sniffed prefix.
        b'<' if text[first..].starts_with(b"<?xml") || text[first..].starts_with(b"<Events") => {
            Format::Xml
        }
        _ => Format::Unknown,
    }
}

/// The format of the file at `path`, looking through gzip layers (a stream cut short still
/// shows its first bytes, which is all detection needs): what the readers would take it for,
/// without reading it. Zip archives are not opened (their members are inputs of their own).
pub fn detect_file(path: &std::path::Path) -> std::io::Result<Format> {
    use std::io::Read;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    let mut format = detect(&head);
    // As deep as the readers go.
    for _ in 0..crate::input::MAX_NESTING {
        if format != Format::Gzip {
            break;
        }
        let mut inner = Vec::with_capacity(SNIFF_BYTES);
        let _ = flate2::read::MultiGzDecoder::new(head.as_slice())
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut inner);
        head = inner;
        format = detect(&head);
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_through_gzip_layers() {
        use std::io::Write;
        let gzip = |bytes: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let evtx = b"ElfFile\0rest of a header".repeat(100);
        assert_eq!(detect_file(&file("a", &evtx)).unwrap(), Format::Evtx);
        assert_eq!(detect_file(&file("b", &gzip(&evtx))).unwrap(), Format::Evtx);
        assert_eq!(
            detect_file(&file("c", &gzip(&gzip(&evtx)))).unwrap(),
            Format::Evtx
        );
        // Cut short: the first bytes still tell.
        let mut cut = gzip(b"<Events><Event><System/></Event>");
        cut.truncate(cut.len() - 8);
        assert_eq!(detect_file(&file("d", &cut)).unwrap(), Format::Xml);
        assert_eq!(
            detect_file(&file("e", &gzip(b"{\"info\": {}}"))).unwrap(),
            Format::Json
        );
        assert!(detect_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn by_content() {
        assert_eq!(detect(b"ElfFile\0rest"), Format::Evtx);
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Format::Gzip);
        assert_eq!(detect(b"PK\x03\x04...."), Format::Zip);
        assert_eq!(detect(b"\xef\xbb\xbf  {\"a\":1}"), Format::Json);
        assert_eq!(detect(b"\n[{}]"), Format::Json);
        assert_eq!(detect(b"<Events><Event xmlns=\"x\">"), Format::Xml);
        assert_eq!(detect(b"<?xml version=\"1.0\"?>\n"), Format::Xml);
        assert_eq!(
            detect(b"Nov 24 08:30:01 h sysmon: <Event><System>"),
            Format::Xml
        );
        assert_eq!(
            detect(b"<134>1 2025-12-10T22:27:58+09:00 h sysmon - - - <Event>"),
            Format::Xml
        );
        assert_eq!(detect(b"hello world"), Format::Unknown);
        assert_eq!(detect(b""), Format::Unknown);
        assert_eq!(detect(b"\xff\xfe<\0"), Format::Utf16Le);
    }
}
