//! BinXML as far as Sysmon (and most Windows event) templates need it (MS-EVEN6 §2.2): the
//! token and value-type bytes, little-endian reads that fail instead of panicking, and the one
//! walk over a template body's tokens, which template compiling and template hashing both
//! drive with a visitor of their own.

/// Token bytes (MS-EVEN6 §2.2.12).
pub(super) mod token {
    pub const END_OF_STREAM: u8 = 0x00;
    pub const OPEN_START_ELEMENT: u8 = 0x01;
    pub const CLOSE_START_ELEMENT: u8 = 0x02;
    pub const CLOSE_EMPTY_ELEMENT: u8 = 0x03;
    pub const END_ELEMENT: u8 = 0x04;
    pub const VALUE: u8 = 0x05;
    pub const ATTRIBUTE: u8 = 0x06;
    pub const TEMPLATE_INSTANCE: u8 = 0x0c;
    pub const NORMAL_SUBSTITUTION: u8 = 0x0d;
    pub const OPTIONAL_SUBSTITUTION: u8 = 0x0e;
    pub const FRAGMENT_HEADER: u8 = 0x0f;
    /// Flag on a token: an element with attributes, or a value or attribute followed by more.
    pub const HAS_MORE: u8 = 0x40;
    pub const OPEN_START_ELEMENT_WITH_ATTRIBUTES: u8 = OPEN_START_ELEMENT | HAS_MORE;
    pub const VALUE_MORE: u8 = VALUE | HAS_MORE;
    pub const ATTRIBUTE_MORE: u8 = ATTRIBUTE | HAS_MORE;
}

/// Value types of substitution values and value tokens (MS-EVEN6 §2.2.18).
pub(super) mod value_type {
    pub const NULL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const INT8: u8 = 0x03;
    pub const UINT8: u8 = 0x04;
    pub const INT16: u8 = 0x05;
    pub const UINT16: u8 = 0x06;
    pub const INT32: u8 = 0x07;
    pub const UINT32: u8 = 0x08;
    pub const INT64: u8 = 0x09;
    pub const UINT64: u8 = 0x0a;
    pub const REAL32: u8 = 0x0b;
    pub const REAL64: u8 = 0x0c;
    pub const BOOL: u8 = 0x0d;
    pub const BINARY: u8 = 0x0e;
    pub const GUID: u8 = 0x0f;
    pub const SIZE_T: u8 = 0x10;
    pub const FILETIME: u8 = 0x11;
    pub const SYSTEMTIME: u8 = 0x12;
    pub const SID: u8 = 0x13;
    pub const HEX_INT32: u8 = 0x14;
    pub const HEX_INT64: u8 = 0x15;
    /// An embedded BinXML fragment (Windows puts the `EventData` of an event there).
    pub const BINXML: u8 = 0x21;

    /// Byte sizes of the fixed-size types, by type (for checking value descriptors); 0 for
    /// the others.
    pub const FIXED_SIZES: [u8; 256] = {
        let mut sizes = [0u8; 256];
        sizes[INT8 as usize] = 1;
        sizes[UINT8 as usize] = 1;
        sizes[INT16 as usize] = 2;
        sizes[UINT16 as usize] = 2;
        sizes[INT32 as usize] = 4;
        sizes[UINT32 as usize] = 4;
        sizes[REAL32 as usize] = 4;
        sizes[BOOL as usize] = 4;
        sizes[HEX_INT32 as usize] = 4;
        sizes[INT64 as usize] = 8;
        sizes[UINT64 as usize] = 8;
        sizes[REAL64 as usize] = 8;
        sizes[FILETIME as usize] = 8;
        sizes[HEX_INT64 as usize] = 8;
        sizes[GUID as usize] = 16;
        sizes[SYSTEMTIME as usize] = 16;
        sizes
    };
}

pub(super) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}
pub(super) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}
pub(super) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(*bytes.get(at..)?.first_chunk()?))
}

/// One token of a template body, as the walk hands it to its visitor. Names and text are
/// UTF-16LE bytes as stored in the chunk.
#[derive(Debug, Clone, Copy, Hash)]
pub(super) enum Token<'c> {
    /// An element's start tag opens; `dependency` is the substitution whose NULL value leaves
    /// the element out (`0xffff`: none).
    OpenElement { dependency: u16, name: &'c [u8] },
    /// An attribute of the element being opened; its value follows as text and substitutions.
    Attribute { name: &'c [u8] },
    /// The start tag closes; content follows.
    CloseStart,
    /// The start tag closes an element with no content.
    CloseEmpty,
    /// The element's end tag.
    EndElement,
    /// A literal string.
    Text(&'c [u8]),
    /// A substitution of the template instance's value `id`, declared of `value_type`.
    Substitution {
        id: u16,
        value_type: u8,
        optional: bool,
    },
}

/// Walk the tokens of a template body (`chunk[start..end]`, chunk offsets) up to its end of
/// stream, handing each to `visit`. `None` when the body is cut short, holds a token this
/// decoder leaves to the reference path (CDATA, character and entity references, processing
/// instructions, nested templates, non-string literals), or `visit` gives up.
pub(super) fn walk_tokens<'c>(
    chunk: &'c [u8],
    start: usize,
    end: usize,
    mut visit: impl FnMut(Token<'c>) -> Option<()>,
) -> Option<()> {
    let mut pos = start;
    while pos < end {
        let byte = *chunk.get(pos)?;
        let next = match byte {
            token::END_OF_STREAM => break,
            token::FRAGMENT_HEADER => {
                pos += 4;
                continue;
            }
            token::OPEN_START_ELEMENT | token::OPEN_START_ELEMENT_WITH_ATTRIBUTES => {
                let dependency = u16_at(chunk, pos + 1)?;
                // Token, dependency, data size.
                pos += 1 + 2 + 4;
                let name = name_at(chunk, &mut pos)?;
                if byte & token::HAS_MORE != 0 {
                    // The attribute list's size.
                    pos += 4;
                }
                Token::OpenElement { dependency, name }
            }
            token::ATTRIBUTE | token::ATTRIBUTE_MORE => {
                pos += 1;
                Token::Attribute {
                    name: name_at(chunk, &mut pos)?,
                }
            }
            token::CLOSE_START_ELEMENT => {
                pos += 1;
                Token::CloseStart
            }
            token::CLOSE_EMPTY_ELEMENT => {
                pos += 1;
                Token::CloseEmpty
            }
            token::END_ELEMENT => {
                pos += 1;
                Token::EndElement
            }
            token::VALUE | token::VALUE_MORE => {
                if *chunk.get(pos + 1)? != value_type::STRING {
                    return None;
                }
                let units = usize::from(u16_at(chunk, pos + 2)?);
                let text = chunk.get(pos + 4..pos + 4 + units * 2)?;
                pos += 4 + units * 2;
                Token::Text(text)
            }
            token::NORMAL_SUBSTITUTION | token::OPTIONAL_SUBSTITUTION => {
                let id = u16_at(chunk, pos + 1)?;
                let value_type = *chunk.get(pos + 3)?;
                pos += 4;
                Token::Substitution {
                    id,
                    value_type,
                    optional: byte == token::OPTIONAL_SUBSTITUTION,
                }
            }
            _ => return None,
        };
        visit(next)?;
    }
    Some(())
}

/// The name a name reference at `*pos` points to (UTF-16LE bytes), moving `*pos` past the
/// reference and past the name itself when it is stored right there.
fn name_at<'c>(chunk: &'c [u8], pos: &mut usize) -> Option<&'c [u8]> {
    let offset = u32_at(chunk, *pos)? as usize;
    *pos += 4;
    // A name: next-name offset (4), hash (2), length in units (2), the units, a NUL unit.
    let units = usize::from(u16_at(chunk, offset + 6)?);
    if offset == *pos {
        *pos += 6 + 2 + units * 2 + 2;
    }
    chunk.get(offset + 8..offset + 8 + units * 2)
}
