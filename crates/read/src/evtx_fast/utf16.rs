//! UTF-16LE text as it sits in a chunk (names, literals, string values), decoded to UTF-8.

pub(super) fn decode_utf16(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() / 2);
    push_utf16(&mut s, bytes);
    s
}

/// UTF-16LE up to the first NUL unit, lone surrogates as U+FFFD.
pub(super) fn push_utf16(out: &mut String, mut bytes: &[u8]) {
    out.reserve(bytes.len() / 2);
    loop {
        // Values are mostly ASCII, with the odd `®` or accented letter: ASCII runs are copied
        // eight units at a time, anything else is decoded unit by unit.
        let ascii = push_ascii_run(out, bytes);
        bytes = &bytes[ascii * 2..];
        let Some(&[lo, hi]) = bytes.first_chunk::<2>() else {
            return;
        };
        let unit = u16::from_le_bytes([lo, hi]);
        let (c, used) = match unit {
            0 => return,
            0xd800..=0xdbff => match bytes.get(2..4) {
                Some(&[lo2, hi2]) if matches!(u16::from_le_bytes([lo2, hi2]), 0xdc00..=0xdfff) => {
                    let low = u16::from_le_bytes([lo2, hi2]);
                    let scalar =
                        0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                    (
                        char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER),
                        4,
                    )
                }
                _ => (char::REPLACEMENT_CHARACTER, 2),
            },
            _ => (
                char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
                2,
            ),
        };
        out.push(c);
        bytes = &bytes[used..];
    }
}

/// Append the leading run of UTF-16LE units of `bytes` that are ASCII other than NUL; how
/// many units that was.
fn push_ascii_run(out: &mut String, bytes: &[u8]) -> usize {
    // SAFETY: only bytes below 0x80 are appended, and ASCII is valid UTF-8, so the string
    // stays valid UTF-8.
    let vec = unsafe { out.as_mut_vec() };
    let mut units = 0;
    let (blocks, _) = bytes.as_chunks::<16>();
    for block in blocks {
        let mut ascii = [0u8; 8];
        if !ascii_block(block, &mut ascii) {
            break;
        }
        vec.extend_from_slice(&ascii);
        units += 8;
    }
    for unit in bytes[units * 2..].chunks_exact(2) {
        if unit[1] != 0 || unit[0] == 0 || unit[0] >= 0x80 {
            break;
        }
        vec.push(unit[0]);
        units += 1;
    }
    units
}

/// Whether the eight UTF-16LE units of `block` are all ASCII other than NUL; if so, their
/// bytes go to `ascii`.
#[cfg(target_arch = "x86_64")]
fn ascii_block(block: &[u8; 16], ascii: &mut [u8; 8]) -> bool {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpgt_epi16, _mm_cmplt_epi16, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_packus_epi16, _mm_set1_epi16, _mm_setzero_si128, _mm_storel_epi64,
    };
    // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of `block` and the store
    // writes the 8 bytes of `ascii`, both unaligned accesses.
    unsafe {
        let units = _mm_loadu_si128(block.as_ptr().cast());
        // As signed 16-bit lanes, a unit from 1 to 0x7f is above 0 and below 0x80 (units from
        // 0x8000 are negative).
        let ok = _mm_and_si128(
            _mm_cmpgt_epi16(units, _mm_setzero_si128()),
            _mm_cmplt_epi16(units, _mm_set1_epi16(0x80)),
        );
        if _mm_movemask_epi8(ok) != 0xffff {
            return false;
        }
        _mm_storel_epi64(ascii.as_mut_ptr().cast(), _mm_packus_epi16(units, units));
    }
    true
}

#[cfg(not(target_arch = "x86_64"))]
fn ascii_block(block: &[u8; 16], ascii: &mut [u8; 8]) -> bool {
    for (to, unit) in ascii.iter_mut().zip(block.chunks_exact(2)) {
        if unit[1] != 0 || unit[0] == 0 || unit[0] >= 0x80 {
            return false;
        }
        *to = unit[0];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `push_utf16` must give: the standard decoder, up to the first NUL unit.
    fn reference(bytes: &[u8]) -> String {
        let units = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0);
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    fn utf16(units: &[u16]) -> Vec<u8> {
        units.iter().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn utf16_values_decode_as_the_standard_decoder_does() {
        let ascii: Vec<u16> = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
            .encode_utf16()
            .collect();
        let mut cases: Vec<Vec<u16>> = vec![
            vec![],
            ascii.clone(),
            "Microsoft® Windows® Operating System"
                .encode_utf16()
                .collect(),
            "Ünïcødé all the way: Привет, 世界".encode_utf16().collect(),
            "emoji 😀 in a path 😀".encode_utf16().collect(),
        ];
        // Lone and reversed surrogates, NUL, DEL and 0x80 at every place of a 16-unit block.
        for odd in [0xd800u16, 0xdc00, 0x0000, 0x007f, 0x0080, 0x0100, 0xffff] {
            for at in 0..20 {
                let mut units = ascii.clone();
                units[at] = odd;
                cases.push(units);
            }
        }
        cases.push(vec![0xd83d, 0x0041, 0xde00, 0xd83d]);
        for units in cases {
            let mut bytes = utf16(&units);
            for trailing in [false, true] {
                if trailing {
                    // An odd byte count: the last byte is not a unit.
                    bytes.push(0x41);
                }
                let mut out = String::from("x");
                push_utf16(&mut out, &bytes);
                assert_eq!(out, format!("x{}", reference(&bytes)), "{units:x?}");
            }
        }
    }
}
