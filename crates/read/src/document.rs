//! One document inside an input, for callers that read a single file of their own format (a
//! sandbox report) rather than event logs: gzip layers undone and, in a zip archive, the member
//! the caller picks, read under a decompressed-size budget, through the same decompression
//! and budget as the log readers.

use crate::detect::{Format, detect};
use crate::input::{Limited, MAX_NESTING, is_decompression_budget, zip_members};
use std::io::{self, Cursor, Read, Seek};

/// Why a document could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("unreadable zip archive: {0}")]
    Zip(String),
    /// The archive holds no member the caller wanted.
    #[error("the zip archive holds no member wanted")]
    NoMember,
}

/// The document's bytes as they were before compression.
pub struct Document<'r> {
    reader: Limited<Box<dyn Read + 'r>>,
    member: Option<String>,
    over_budget: bool,
}

impl Document<'_> {
    /// The zip member read, when the input is an archive.
    pub fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// Whether reading stopped because the document expanded past its budget (a caller
    /// whose parser hides the I/O error behind its own can still tell).
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }
}

impl Read for Document<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.reader.read(buf);
        if let Err(error) = &result
            && is_decompression_budget(error)
        {
            self.over_budget = true;
        }
        result
    }
}

/// Open the document in `input` (plain, gzip — in layers — or zip, judged by content) and hand
/// it to `read`. Past `limit` decompressed bytes (plain input counts too) the document's
/// reads fail with an error [`is_decompression_budget`] recognises. In a zip archive, `pick`
/// chooses among the member names (sorted, folders left out) the index of the one to read.
pub fn read_document<T>(
    mut input: impl Read + Seek,
    limit: u64,
    pick: impl FnOnce(&[String]) -> Option<usize>,
    read: impl FnOnce(&mut Document<'_>) -> T,
) -> Result<T, DocumentError> {
    let mut magic = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut magic)?;
    input.rewind()?;
    if detect(&magic) != Format::Zip {
        let mut document = Document {
            reader: Limited::alone(ungzip(Box::new(input))?, limit),
            member: None,
            over_budget: false,
        };
        return Ok(read(&mut document));
    }
    let zip_error = |e: zip::result::ZipError| DocumentError::Zip(e.to_string());
    let mut archive = zip::ZipArchive::new(input).map_err(zip_error)?;
    let members = zip_members(&archive);
    let names: Vec<String> = members.iter().map(|(name, _)| name.clone()).collect();
    let chosen = pick(&names).ok_or(DocumentError::NoMember)?;
    let (name, index) = members
        .into_iter()
        .nth(chosen)
        .ok_or(DocumentError::NoMember)?;
    let member = archive.by_index(index).map_err(zip_error)?;
    let mut document = Document {
        reader: Limited::alone(ungzip(Box::new(member))?, limit),
        member: Some(name),
        over_budget: false,
    };
    Ok(read(&mut document))
}

/// `stream` with its gzip layers undone, as deep as the log readers go.
fn ungzip<'r>(mut stream: Box<dyn Read + 'r>) -> io::Result<Box<dyn Read + 'r>> {
    for _ in 0..MAX_NESTING {
        let mut magic = Vec::with_capacity(4);
        (&mut stream).take(4).read_to_end(&mut magic)?;
        let gzip = detect(&magic) == Format::Gzip;
        stream = Box::new(Cursor::new(magic).chain(stream));
        if !gzip {
            break;
        }
        stream = Box::new(flate2::read::MultiGzDecoder::new(stream));
    }
    Ok(stream)
}
