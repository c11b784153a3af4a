//! LEB128, the variable-length integers of the store's own records: seven bits a byte, low
//! bits first, the top bit set on every byte but the last. Small numbers cost one byte.

/// Append `n`.
pub(crate) fn push(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// The number at the start of `bytes` and what follows it; `None` when it is truncated or
/// longer than a `u64` takes.
pub(crate) fn read(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_round_trip_and_damage_is_none() {
        for n in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            super::push(&mut out, n);
            out.push(0xaa);
            assert_eq!(super::read(&out), Some((n, &[0xaa][..])));
        }
        let mut one = Vec::new();
        super::push(&mut one, 5);
        assert_eq!(one, [5]);
        assert_eq!(super::read(&[0x80]), None);
        assert_eq!(super::read(&[0xff; 12]), None);
        assert_eq!(super::read(&[]), None);
    }
}
