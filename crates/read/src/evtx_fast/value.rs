//! Substitution values rendered as text, exactly as the `evtx` crate renders them (the
//! canonical rendering in `sandscope_event` then applies to both paths alike).

use super::binxml::value_type;
use super::utf16::push_utf16;
use std::fmt::Write;

/// One substitution value: its type and bytes.
#[derive(Clone, Copy)]
pub(super) struct Value<'c> {
    pub value_type: u8,
    pub bytes: &'c [u8],
}

impl Value<'_> {
    pub fn is_null(&self) -> bool {
        self.value_type == value_type::NULL
    }

    /// The value of an unsigned integer type, read without rendering it; `None` for the
    /// other types.
    pub fn unsigned(&self) -> Option<u64> {
        let bytes = self.bytes;
        Some(match self.value_type {
            value_type::UINT8 => u8::from_le_bytes(fixed(bytes).ok()?).into(),
            value_type::UINT16 => u16::from_le_bytes(fixed(bytes).ok()?).into(),
            value_type::UINT32 => u32::from_le_bytes(fixed(bytes).ok()?).into(),
            value_type::UINT64 => u64::from_le_bytes(fixed(bytes).ok()?),
            _ => return None,
        })
    }

    /// The time of a FILETIME value; `None` for the other types and for times out of range.
    pub fn filetime(&self) -> Option<jiff::Timestamp> {
        if self.value_type != value_type::FILETIME {
            return None;
        }
        filetime_timestamp(u64::from_le_bytes(fixed(self.bytes).ok()?))
    }
}

/// Why a value could not be rendered here: the chunk goes to the reference path.
pub(super) struct Unsupported;

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Unsupported> {
    bytes.try_into().map_err(|_| Unsupported)
}

/// Render `value` into `out`.
pub(super) fn render_value(value: Value<'_>, out: &mut String) -> Result<(), Unsupported> {
    let bytes = value.bytes;
    match value.value_type {
        value_type::NULL => {}
        value_type::STRING => push_utf16(out, bytes),
        value_type::INT8 => push_i64(out, i8::from_le_bytes(fixed(bytes)?).into()),
        value_type::UINT8 => push_u64(out, u8::from_le_bytes(fixed(bytes)?).into()),
        value_type::INT16 => push_i64(out, i16::from_le_bytes(fixed(bytes)?).into()),
        value_type::UINT16 => push_u64(out, u16::from_le_bytes(fixed(bytes)?).into()),
        value_type::INT32 => push_i64(out, i32::from_le_bytes(fixed(bytes)?).into()),
        value_type::UINT32 => push_u64(out, u32::from_le_bytes(fixed(bytes)?).into()),
        value_type::INT64 => push_i64(out, i64::from_le_bytes(fixed(bytes)?)),
        value_type::UINT64 => push_u64(out, u64::from_le_bytes(fixed(bytes)?)),
        value_type::BOOL => match i32::from_le_bytes(fixed(bytes)?) {
            0 => out.push_str("false"),
            1 => out.push_str("true"),
            n => push_i64(out, n.into()),
        },
        value_type::BINARY => {
            for byte in bytes {
                write!(out, "{byte:02X}").map_err(|_| Unsupported)?;
            }
        }
        value_type::GUID => push_guid(out, fixed(bytes)?),
        value_type::SIZE_T if bytes.len() == 4 => {
            push_hex(out, u32::from_le_bytes(fixed(bytes)?).into())
        }
        value_type::SIZE_T => push_hex(out, u64::from_le_bytes(fixed(bytes)?)),
        value_type::FILETIME => write_filetime(u64::from_le_bytes(fixed(bytes)?), out)?,
        value_type::SID => write_sid(bytes, out)?,
        value_type::HEX_INT32 => push_hex(out, u32::from_le_bytes(fixed(bytes)?).into()),
        value_type::HEX_INT64 => push_hex(out, u64::from_le_bytes(fixed(bytes)?)),
        value_type::BINXML if bytes.is_empty() => {}
        // ANSI strings (code page), floats, SYSTEMTIME, embedded BinXML, arrays.
        _ => return Err(Unsupported),
    }
    Ok(())
}

fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i..]);
}

/// Append bytes this module only ever fills with ASCII digits and letters.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    debug_assert!(ascii.is_ascii());
    // SAFETY: callers pass ASCII only (digits and hex letters), which is valid UTF-8.
    unsafe { out.as_mut_vec() }.extend_from_slice(ascii);
}

fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, mut v: u64) {
    out.push_str("0x");
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i..]);
}

/// Windows' rendering of a GUID: `{d1-d2-d3-d4[0..2]-d4[2..8]}`, d1–d3 little-endian.
fn push_guid(out: &mut String, guid: [u8; 16]) {
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut text = [b'-'; 38];
    text[0] = b'{';
    text[37] = b'}';
    let mut n = 1;
    for (i, &idx) in ORDER.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            n += 1;
        }
        text[n] = HEX[usize::from(guid[idx] >> 4)];
        text[n + 1] = HEX[usize::from(guid[idx] & 0xf)];
        n += 2;
    }
    push_ascii(out, &text);
}

/// FILETIMEs count 100 ns ticks from 1601-01-01; this many of them fall before 1970.
const UNIX_EPOCH_AS_FILETIME: i128 = 116_444_736_000_000_000;

/// The time a FILETIME stands for; `None` out of the range a timestamp holds.
pub(super) fn filetime_timestamp(filetime: u64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond((i128::from(filetime) - UNIX_EPOCH_AS_FILETIME) * 100).ok()
}

/// FILETIME as `YYYY-MM-DDTHH:MM:SS.fffffffZ` (seven digits, the 100 ns a FILETIME counts).
fn write_filetime(filetime: u64, out: &mut String) -> Result<(), Unsupported> {
    let time = filetime_timestamp(filetime).ok_or(Unsupported)?;
    let dt = time.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        (filetime % 10_000_000)
    )
    .map_err(|_| Unsupported)
}

fn write_sid(bytes: &[u8], out: &mut String) -> Result<(), Unsupported> {
    let &[revision, count, a0, a1, a2, a3, a4, a5, ref subs @ ..] = bytes else {
        out.push_str("S-?");
        return Ok(());
    };
    let authority = u64::from_be_bytes([0, 0, a0, a1, a2, a3, a4, a5]);
    write!(out, "S-{revision}-{authority}").map_err(|_| Unsupported)?;
    for chunk in subs.chunks_exact(4).take(count as usize) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        write!(out, "-{sub}").map_err(|_| Unsupported)?;
    }
    Ok(())
}
