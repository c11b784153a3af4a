use serde::{Deserialize, Serialize};
use std::fmt;

/// A GUID in one spelling: lower case, no braces (`94f748d5-4a45-5a42-0000-0010d265f20f`).
///
/// Windows renders `{a570a8c2-…}`, the `evtx` crate `94F748D5-…`; they name the same process, so
/// every comparison goes through this type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessGuid(String);

impl ProcessGuid {
    /// Canonicalise `text`; `None` for empty, `-` or all-zero GUIDs (Sysmon's "unknown").
    pub fn parse(text: &str) -> Option<Self> {
        let canonical = canonical_guid(text);
        if canonical.is_empty()
            || canonical == "-"
            || canonical.bytes().all(|b| b == b'0' || b == b'-')
        {
            return None;
        }
        Some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The process start time embedded in a Sysmon ProcessGuid (groups 2–3 read as `0xCCCCDDDD`
    /// are the Unix start second). `None` when the GUID does not have that shape.
    pub fn embedded_start_unix(&self) -> Option<u32> {
        let mut groups = self.0.split('-');
        let _host = groups.next()?;
        let lo = groups.next()?;
        let hi = groups.next()?;
        if lo.len() != 4 || hi.len() != 4 {
            return None;
        }
        u32::from_str_radix(&format!("{hi}{lo}"), 16).ok()
    }
}

impl fmt::Display for ProcessGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Strip braces and surrounding whitespace, lower-case.
pub fn canonical_guid(text: &str) -> String {
    text.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_compare_equal() {
        let a = ProcessGuid::parse("{A570A8C2-2E34-68CA-7600-000000006000}").unwrap();
        let b = ProcessGuid::parse("a570a8c2-2e34-68ca-7600-000000006000").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "a570a8c2-2e34-68ca-7600-000000006000");
        assert!(ProcessGuid::parse("{00000000-0000-0000-0000-000000000000}").is_none());
        assert!(ProcessGuid::parse("-").is_none());
    }

    #[test]
    fn embedded_start_time() {
        // 68ca2e34 = 2025-09-17T03:40:36Z
        let g = ProcessGuid::parse("{a570a8c2-2e34-68ca-7600-000000006000}").unwrap();
        assert_eq!(g.embedded_start_unix(), Some(0x68ca2e34));
    }
}
