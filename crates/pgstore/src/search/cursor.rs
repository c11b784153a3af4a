//! Result order in SQL and the cursor of a page: `<order code>.<date or n>.<sha256>`, the
//! last hit's sort key, stable across pages (ties broken by SHA-256, as the embedded store).

use super::translate::{Condition, Param};
use crate::{PgStoreError, Result};
use sandscope_model::is_sha256;
use sandscope_store::Order;

/// The sort key of a hit: its date in the order's column and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) date: Option<i64>,
    pub(crate) sha256: String,
}

fn code(order: Order) -> &'static str {
    match order {
        Order::FirstSeenDesc => "fd",
        Order::FirstSeenAsc => "fa",
        Order::LastSeenDesc => "ld",
        Order::LastSeenAsc => "la",
    }
}

fn desc(order: Order) -> bool {
    matches!(order, Order::FirstSeenDesc | Order::LastSeenDesc)
}

/// The date column `order` sorts by.
pub(crate) fn column(order: Order) -> &'static str {
    match order {
        Order::FirstSeenDesc | Order::FirstSeenAsc => "s.first_seen",
        Order::LastSeenDesc | Order::LastSeenAsc => "s.last_seen",
    }
}

/// `ORDER BY` for `order`: the embedded store's key (a missing date sorts as the oldest).
pub(crate) fn order_by(order: Order) -> String {
    let col = column(order);
    if desc(order) {
        format!("{col} DESC NULLS LAST, s.sha256")
    } else {
        format!("{col} ASC NULLS FIRST, s.sha256")
    }
}

/// The condition "sorts after `after`", added to `condition`'s parameters.
pub(crate) fn after_sql(order: Order, after: &Key, condition: &mut Condition) -> String {
    let col = column(order);
    let sha = condition.param(Param::Text(after.sha256.clone()));
    match (after.date, desc(order)) {
        (Some(d), true) => {
            let d = condition.param(Param::Int(d));
            format!("({col} < {d} OR ({col} = {d} AND s.sha256 > {sha}) OR {col} IS NULL)")
        }
        (Some(d), false) => {
            let d = condition.param(Param::Int(d));
            format!("({col} > {d} OR ({col} = {d} AND s.sha256 > {sha}))")
        }
        (None, true) => format!("({col} IS NULL AND s.sha256 > {sha})"),
        (None, false) => format!("({col} IS NOT NULL OR s.sha256 > {sha})"),
    }
}

/// Whether `key` sorts after `after` (the same rule as [`after_sql`], for verified pages).
pub(crate) fn sorts_after(order: Order, key: &Key, after: &Key) -> bool {
    compare(order, key, after).is_gt()
}

/// `a` against `b` in `order`: [`order_by`]'s rule (a missing date the oldest, ties by
/// SHA-256 byte-wise, as `COLLATE "C"` sorts it).
pub(crate) fn compare(order: Order, a: &Key, b: &Key) -> std::cmp::Ordering {
    fn rank(order: Order, k: &Key) -> (i128, &str) {
        let t = i128::from(k.date.unwrap_or(i64::MIN));
        (if desc(order) { -t } else { t }, k.sha256.as_str())
    }
    rank(order, a).cmp(&rank(order, b))
}

pub(crate) fn encode(order: Order, key: &Key) -> String {
    let date = key.date.map_or_else(|| "n".to_string(), |d| d.to_string());
    format!("{}.{date}.{}", code(order), key.sha256)
}

pub(crate) fn decode(order: Order, cursor: &str) -> Result<Key> {
    let mut parts = cursor.splitn(3, '.');
    let (Some(c), Some(date), Some(sha)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PgStoreError::InvalidCursor);
    };
    if c != code(order) || !is_sha256(sha) || sha.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(PgStoreError::InvalidCursor);
    }
    let date = match date {
        "n" => None,
        d => Some(d.parse().map_err(|_| PgStoreError::InvalidCursor)?),
    };
    Ok(Key {
        date,
        sha256: sha.to_string(),
    })
}
