//! The Sysmon event model: one [`SysmonEvent`] type that every reader produces and every later
//! stage (behaviour reports, Sigma, indexing, the API) consumes.
//!
//! Readers differ in how they spell things (GUIDs with or without braces, numbers as JSON numbers
//! or strings, `SourceProcessGUID` vs `SourceProcessGuid`); this crate is where those differences
//! stop. Field values are kept as the strings Sysmon wrote, in document order, and unknown fields
//! and unknown event ids are kept, never dropped. Typed accessors parse on demand.
//!
//! This crate depends on no reader, report or storage code.

mod accessors;
mod canonical;
mod fields;
mod guid;
mod hashes;
mod schema;

pub use accessors::{DnsAnswer, parse_query_results};
pub use canonical::{
    canonical_guid_value, canonical_value, format_sysmon_time, is_guid_field, truncate_to_micros,
};
pub use fields::Fields;
pub use guid::{ProcessGuid, canonical_guid};
pub use hashes::Hashes;
pub use schema::{is_sysmon_field, sysmon_fields};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The Windows Sysmon channel.
pub const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";
/// The Sysmon for Linux channel.
pub const LINUX_SYSMON_CHANNEL: &str = "Linux-Sysmon/Operational";

/// True when `channel` is one of the channels Sysmon writes to (compared case-insensitively,
/// since exports do not agree on case).
pub fn is_sysmon_channel(channel: &str) -> bool {
    channel.eq_ignore_ascii_case(SYSMON_CHANNEL)
        || channel.eq_ignore_ascii_case(LINUX_SYSMON_CHANNEL)
}

/// Where an event came from: the input file and the record's position in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSource {
    /// The file the event was read from (`-` for standard input). Shared between the events of
    /// one file, hence the `Arc`.
    pub file: Arc<str>,
    /// The EVTX `EventRecordID`, or the export's record number; `None` when the export has none.
    pub record_id: Option<u64>,
}

/// One Sysmon event, from any input format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysmonEvent {
    pub source: EventSource,
    /// The Sysmon event id (1–29, 255); other values are kept as they are.
    pub event_id: u16,
    /// When the activity happened: `UtcTime` where present, else the record's `TimeCreated`.
    pub time: Timestamp,
    /// When the event was logged (`TimeCreated`), if the input carried it. `UtcTime` and
    /// `TimeCreated` can disagree by hours on lab machines; both are kept.
    pub time_created: Option<Timestamp>,
    pub computer: String,
    pub channel: String,
    /// The `EventData` fields by their Sysmon names, values as strings, in document order.
    pub data: Fields,
}

impl SysmonEvent {
    /// The value of an `EventData` field, by its exact Sysmon name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.data.get(name)
    }

    /// The value of a field, treating Sysmon's "no value" spellings (`""`, `-`) as absent.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.data.get(name).filter(|v| !v.is_empty() && *v != "-")
    }

    /// True for Sysmon for Linux events.
    pub fn is_linux(&self) -> bool {
        self.channel.eq_ignore_ascii_case(LINUX_SYSMON_CHANNEL)
    }
}

/// Sysmon event ids by name, so code reads `event_id::PROCESS_CREATE`, not `1`.
pub mod event_id {
    pub const PROCESS_CREATE: u16 = 1;
    pub const FILE_CREATE_TIME: u16 = 2;
    pub const NETWORK_CONNECT: u16 = 3;
    pub const SERVICE_STATE_CHANGE: u16 = 4;
    pub const PROCESS_TERMINATE: u16 = 5;
    pub const DRIVER_LOAD: u16 = 6;
    pub const IMAGE_LOAD: u16 = 7;
    pub const CREATE_REMOTE_THREAD: u16 = 8;
    pub const RAW_ACCESS_READ: u16 = 9;
    pub const PROCESS_ACCESS: u16 = 10;
    pub const FILE_CREATE: u16 = 11;
    pub const REGISTRY_ADD_DELETE: u16 = 12;
    pub const REGISTRY_SET_VALUE: u16 = 13;
    pub const REGISTRY_RENAME: u16 = 14;
    pub const FILE_CREATE_STREAM_HASH: u16 = 15;
    pub const CONFIG_CHANGE: u16 = 16;
    pub const PIPE_CREATED: u16 = 17;
    pub const PIPE_CONNECTED: u16 = 18;
    pub const WMI_FILTER: u16 = 19;
    pub const WMI_CONSUMER: u16 = 20;
    pub const WMI_BINDING: u16 = 21;
    pub const DNS_QUERY: u16 = 22;
    pub const FILE_DELETE: u16 = 23;
    pub const CLIPBOARD_CHANGE: u16 = 24;
    pub const PROCESS_TAMPERING: u16 = 25;
    pub const FILE_DELETE_DETECTED: u16 = 26;
    pub const FILE_BLOCK_EXECUTABLE: u16 = 27;
    pub const FILE_BLOCK_SHREDDING: u16 = 28;
    pub const FILE_EXECUTABLE_DETECTED: u16 = 29;
    pub const ERROR: u16 = 255;
}

/// Parse Sysmon's `UtcTime` / `CreationUtcTime` (`YYYY-MM-DD HH:MM:SS.mmm`, always UTC) or an
/// RFC 3339 `SystemTime` (3, 6, 7 or 9 fractional digits).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    // The two forms readers meet millions of times, without a general parser.
    if let Some(ts) = parse_fixed_utc(text.as_bytes()) {
        return Some(ts);
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    // Sysmon's own form has a space and no zone; it is UTC by definition.
    let civil: jiff::civil::DateTime = text.replacen(' ', "T", 1).parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z]` in UTC; `None` for anything else (left to jiff).
fn parse_fixed_utc(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0i64;
    if let [b'.', frac @ ..] = rest {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(20..20 + digits)? * 10i64.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    match (b[10], rest) {
        (b' ', []) | (b'T', [b'Z']) => {}
        _ => return None,
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Timestamp::new(secs, nanos as i32).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysmon_and_system_times() {
        let a = parse_time("2019-05-21 15:32:57.123").unwrap();
        assert_eq!(a.to_string(), "2019-05-21T15:32:57.123Z");
        let b = parse_time("2025-11-21T15:40:01.2162716Z").unwrap();
        assert_eq!(b.to_string(), "2025-11-21T15:40:01.2162716Z");
        let c = parse_time("2022-11-24T08:30:01.467399000Z").unwrap();
        assert_eq!(c.as_microsecond(), 1669278601467399);
        assert!(parse_time("yesterday").is_none());
        // The fast forms agree with jiff.
        for t in [
            "2024-02-29 23:59:59.999",
            "1999-12-31T00:00:00Z",
            "2025-11-21T15:40:01.2162716Z",
            "2100-03-01 00:00:00.000",
            "1970-01-01 00:00:00.000",
        ] {
            let fast = parse_fixed_utc(t.as_bytes()).unwrap();
            let slow: Timestamp = t
                .replacen(' ', "T", 1)
                .trim_end_matches('Z')
                .parse::<jiff::civil::DateTime>()
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp();
            assert_eq!(fast, slow, "{t}");
        }
        assert!(parse_fixed_utc(b"2023-02-29 00:00:00.000").is_none());
        assert!(parse_time("").is_none());
    }
}
