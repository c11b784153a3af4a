//! The behaviour report as VirusTotal's API v3 shapes it: the `file_behaviour` object (one
//! sandbox run), plus the envelopes the API and the CLI print.
//!
//! Every producer (the Sysmon report builder, the CAPE/Cuckoo importer) fills these types and
//! every consumer (store, index, server, UI) reads them, so field names here are VirusTotal's,
//! verbatim (see `shared/docs/behaviour-report-schema.md`). Extensions VirusTotal has no field
//! for are named as such and documented on the field.
//!
//! This crate is plain data: it depends on no reader, no engine and no storage.

mod attribute_table;
mod diff;
mod report;
mod summary;

pub use attribute_table::*;
pub use diff::*;
pub use report::*;
pub use summary::*;

/// The `sandbox_name` of reports built from Sysmon logs, as VirusTotal names its Sysmon sandbox.
pub const SYSINTERNALS_SANDBOX: &str = "Microsoft Sysinternals";
/// The `sandbox_name` of reports imported from CAPE.
pub const CAPE_SANDBOX: &str = "CAPE Sandbox";
/// The `sandbox_name` of reports imported from Cuckoo 2.x.
pub const CUCKOO_SANDBOX: &str = "Cuckoo Sandbox";

/// A report id: `<sha256>_<sandbox name>`, the sandbox name verbatim with its spaces.
pub fn behaviour_id(sha256: &str, sandbox_name: &str) -> String {
    format!("{sha256}_{sandbox_name}")
}

/// True for a SHA-256 in hex: 64 hex digits, either case. The one check of that shape every
/// crate uses; callers that key by it lower-case it.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Split a report id on the first underscore (a SHA-256 never contains one).
pub fn split_behaviour_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_64_hex_digits_of_either_case() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert!(is_sha256(digest));
        assert!(is_sha256(&digest.to_ascii_uppercase()));
        assert!(!is_sha256(&digest[1..]), "63 digits");
        assert!(!is_sha256(&format!("{digest}0")), "65 digits");
        assert!(!is_sha256(&digest.replace('9', "g")), "not hex");
        assert!(!is_sha256(&format!(" {}", &digest[1..])), "a space");
        // 64 bytes but fewer characters: é is two bytes.
        assert!(!is_sha256(&format!("é{}", &digest[2..])));
    }
}
