//! Report times (Unix seconds) in the spellings the formats want.

use jiff::Timestamp;

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `2024-03-11` (UTC).
pub fn date(seconds: i64) -> String {
    timestamp(seconds).strftime("%Y-%m-%d").to_string()
}

/// `2024-03-11T09:00:01+00:00`: ISO 8601 with an explicit offset (MISP datetimes, Timesketch).
pub fn iso_offset(seconds: i64) -> String {
    timestamp(seconds)
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// `2024-03-11T09:00:01.000Z`: STIX timestamps with millisecond precision.
pub fn stix(seconds: i64) -> String {
    timestamp(seconds)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn spellings() {
        assert_eq!(super::date(1_710_147_601), "2024-03-11");
        assert_eq!(
            super::iso_offset(1_710_147_601),
            "2024-03-11T09:00:01+00:00"
        );
        assert_eq!(super::stix(1_710_147_601), "2024-03-11T09:00:01.000Z");
        // Out of jiff's range: the epoch, never a panic.
        assert_eq!(super::date(i64::MAX), "1970-01-01");
    }
}
