//! The one rendering of field values that every reader produces, so that the same event read
//! from EVTX, from an XML export, from a JSON export or from a shipper's JSON compares equal.
//!
//! | what | canonical form | why |
//! |---|---|---|
//! | GUIDs (fields named `…Guid`/`…GUID`) | `{a570a8c2-2e34-68ca-7600-000000006000}`: braces, lower case | Windows' own rendering (Event Viewer, `wevtutil`, `Get-WinEvent`, Winlogbeat, CAPE, Sysmon for Linux); only the `evtx` crate drops the braces and upper-cases |
//! | integers | decimal, as Windows renders them (`4`, `9112`) | the `evtx` crate's JSON numbers and the XML text agree |
//! | hex integers | `0x` and lower-case hex (`0x1fffff`, `0x3e7`) | as both renderers write them |
//! | booleans | `true` / `false` | |
//! | `UtcTime`, `CreationUtcTime`, `PreviousCreationUtcTime` | Sysmon's `YYYY-MM-DD HH:MM:SS.mmm` (UTC) | Log Analytics rewrites them as RFC 3339 |
//! | empty / absent value | `""` (`<Data Name="X"/>`, JSON `null`) | |
//! | `time_created` | truncated to the microsecond | the `evtx` crate renders `SystemTime` with 6 digits, Windows with 7 |
//!
//! Everything else is kept exactly as written.

use jiff::Timestamp;
use std::borrow::Cow;

/// The canonical rendering of the value of field `name` (see the module table).
pub fn canonical_value<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if is_guid_field(name) {
        if let Some(canonical) = canonical_guid_value(value) {
            return canonical;
        }
    } else if is_sysmon_time_field(name)
        && let Some(canonical) = canonical_sysmon_time(value)
    {
        return Cow::Owned(canonical);
    }
    Cow::Borrowed(value)
}

/// True for field names whose values are GUIDs (`ProcessGuid`, `SourceProcessGUID`, …).
pub fn is_guid_field(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 4 && b[b.len() - 4..].eq_ignore_ascii_case(b"guid")
}

fn is_sysmon_time_field(name: &str) -> bool {
    matches!(
        name,
        "UtcTime" | "CreationUtcTime" | "PreviousCreationUtcTime"
    )
}

/// `{lower-case}` for a GUID in any spelling; `None` when `value` is not a GUID. Borrowed when
/// it is already canonical.
pub fn canonical_guid_value(value: &str) -> Option<Cow<'_, str>> {
    let b = value.as_bytes();
    let inner = match b {
        [b'{', inner @ .., b'}'] => inner,
        _ => b,
    };
    if inner.len() != 36 {
        return None;
    }
    for (i, &c) in inner.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return None;
        }
    }
    if b.len() == 38 && !inner.iter().any(u8::is_ascii_uppercase) {
        return Some(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(38);
    out.push('{');
    for &c in inner {
        out.push(c.to_ascii_lowercase() as char);
    }
    out.push('}');
    Some(Cow::Owned(out))
}

/// Sysmon's `YYYY-MM-DD HH:MM:SS.mmm` for an RFC 3339 time; `None` when `value` is already in
/// Sysmon's form or is not a time.
fn canonical_sysmon_time(value: &str) -> Option<String> {
    let b = value.as_bytes();
    if b.len() == 23 && b.get(10) == Some(&b' ') {
        return None;
    }
    let ts: Timestamp = value.trim().parse().ok()?;
    Some(format_sysmon_time(ts))
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC, Sysmon's `UtcTime` form.
pub fn format_sysmon_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A timestamp cut to whole microseconds (see the module table).
pub fn truncate_to_micros(ts: Timestamp) -> Timestamp {
    let nanos = ts.subsec_nanosecond();
    let cut = nanos - nanos.rem_euclid(1000);
    Timestamp::new(ts.as_second(), cut).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert_eq!(
            canonical_value("ProcessGuid", "94F748D5-4A45-5A42-0000-0010D265F20F"),
            "{94f748d5-4a45-5a42-0000-0010d265f20f}"
        );
        assert!(matches!(
            canonical_value(
                "SourceProcessGUID",
                "{94f748d5-4a45-5a42-0000-0010d265f20f}"
            ),
            Cow::Borrowed(_)
        ));
        assert_eq!(canonical_value("ProcessGuid", "-"), "-");
        assert_eq!(
            canonical_value("Image", "94F748D5-4A45-5A42-0000-0010D265F20F"),
            "94F748D5-4A45-5A42-0000-0010D265F20F"
        );
    }

    #[test]
    fn times() {
        assert_eq!(
            canonical_value("UtcTime", "2022-05-13T08:54:05.1230000Z"),
            "2022-05-13 08:54:05.123"
        );
        assert_eq!(
            canonical_value("UtcTime", "2022-05-13 08:54:05.123"),
            "2022-05-13 08:54:05.123"
        );
        let t: Timestamp = "2025-11-21T15:40:01.2162716Z".parse().unwrap();
        assert_eq!(
            truncate_to_micros(t).to_string(),
            "2025-11-21T15:40:01.216271Z"
        );
    }
}
