//! Sandscope's reports in the formats other tools import: a MISP event per sample (`misp`,
//! PyMISP's feed layout), a STIX 2.1 bundle per sample (`stix`) and a Timesketch timeline of
//! events and Sigma hits (`timeline`).
//!
//! Exports are pure functions of the stored reports: every id is derived from the data
//! (UUIDv5, or name-derived UUIDs of version 4 where STIX requires that version) and every date
//! comes from the reports, never from the clock, so the same store gives byte-identical output.
//! Depends on `sandscope-model` (reports) and `sandscope-event` (timeline lines) only: callers
//! read the store and the logs and hand the data over.

mod dates;
mod ids;
pub mod misp;
mod process_tree;
pub mod stix;
pub mod timeline;

pub use ids::{STIX_SCO_NAMESPACE, canonical_json};
pub use misp::misp_event;
pub use stix::stix_bundle;

/// What can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no reports to export")]
    NoReports,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

/// The export formats of one sample, with the file extension and media type each is served
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Misp,
    Stix,
}

impl SampleFormat {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "misp" => Some(Self::Misp),
            "stix" => Some(Self::Stix),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Misp => "misp",
            Self::Stix => "stix",
        }
    }

    /// The download's file name for a sample: `<sha256>.misp.json`, `<sha256>.stix.json`.
    pub fn file_name(self, sha256: &str) -> String {
        format!("{sha256}.{}.json", self.name())
    }

    /// `application/json` for MISP; STIX's registered media type for bundles.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Misp => "application/json",
            Self::Stix => "application/stix+json;version=2.1",
        }
    }

    /// The export of one sample's reports, as pretty-printed JSON ending in a newline.
    pub fn render(
        self,
        sha256: &str,
        reports: &[sandscope_model::FileBehaviour],
    ) -> Result<Vec<u8>, ExportError> {
        if reports.is_empty() {
            return Err(ExportError::NoReports);
        }
        let value = match self {
            Self::Misp => misp_event(sha256, reports),
            Self::Stix => stix_bundle(sha256, reports),
        };
        let mut text = escape_line_separators(serde_json::to_string_pretty(&value)?);
        text.push('\n');
        Ok(text.into_bytes())
    }
}

/// JSON text with U+2028 and U+2029 written as `\u2028`/`\u2029`: JSON allows them raw, but
/// JavaScript before ES2019 and line splitters that follow Unicode (Python's `splitlines`)
/// break a line there. In JSON text they can only occur inside strings, so the replacement
/// keeps the document's meaning.
pub(crate) fn escape_line_separators(text: String) -> String {
    if text.contains(['\u{2028}', '\u{2029}']) {
        text.replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_separators_are_escaped_and_parse_back() {
        let value = serde_json::json!({"a": "x\u{2028}y\u{2029}z"});
        let text = super::escape_line_separators(value.to_string());
        assert_eq!(text, r#"{"a":"x\u2028y\u2029z"}"#);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
