//! The sort key of a result and its cursor (`order.value.sha`), stable across pages.

use super::*;

/// Sort key: smaller comes first. `(order value, sha hi, sha lo)`.
pub(super) type Key = (i128, u64, u64);

pub(super) fn sort_value(order: Order, t: Option<i64>) -> i128 {
    let t = i128::from(t.unwrap_or(i64::MIN));
    if order.desc() { -t } else { t }
}

pub(super) fn encode_cursor(order: Order, key: Key) -> String {
    format!("{}.{}.{:016x}{:016x}", order.code(), key.0, key.1, key.2)
}

pub(super) fn decode_cursor(order: Order, cursor: &str) -> Result<Key> {
    let mut parts = cursor.splitn(3, '.');
    let (Some(code), Some(value), Some(sha)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    if code != order.code() || sha.len() != 32 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::InvalidCursor);
    }
    let value: i128 = value.parse().map_err(|_| StoreError::InvalidCursor)?;
    let hi = u64::from_str_radix(&sha[..16], 16).map_err(|_| StoreError::InvalidCursor)?;
    let lo = u64::from_str_radix(&sha[16..], 16).map_err(|_| StoreError::InvalidCursor)?;
    Ok((value, hi, lo))
}
