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

/// Split a report id on the first underscore (a SHA-256 never contains one).
pub fn split_behaviour_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('_')
}
