//! CAPE and Cuckoo 2.x sandbox reports as behaviour reports.
//!
//! [`import`] reads a CAPE `report.json` / `lite.json` or a Cuckoo 2.x `report.json` — plain,
//! gzip or zip, recognised by content — into the same VirusTotal-shaped `file_behaviour` the
//! Sysmon report builder produces, with `sandbox_name` `CAPE Sandbox` or `Cuckoo Sandbox` and
//! the target's SHA-256 as the sample id. Paths, registry keys and the image of command lines
//! go through `sandscope-normalise`, as in the Sysmon report builder, so the same behaviour
//! compares equal across sandboxes; every raw spelling normalisation replaced is kept in the
//! report's `raw_forms`.
//!
//! What comes from where:
//! * `processes_tree` ← `behavior.processtree` (else `behavior.processes` nested by
//!   `parent_id`), node names are command lines (`environ.CommandLine` in CAPE,
//!   `command_line` in Cuckoo) with the image path normalised;
//! * `processes_created`, `command_executions` ← the processes of the tree holding the sample,
//!   plus `behavior.summary.executed_commands`;
//! * files, registry keys, mutexes, services ← `behavior.summary` (CAPE keys, or Cuckoo 2.x's
//!   verb keys); mutexes only opened and registry value data come from the API calls, which
//!   are filtered while parsing and never held whole;
//! * `dns_lookups` ← `network.dns` (A/AAAA answers → `resolved_ips`, others → `cnames`),
//!   `ip_traffic` ← `network.tcp`/`udp`/`hosts`, `http_conversations` ← `network.http`;
//! * `files_dropped` ← `dropped`, and for a report read from a CAPE analysis folder
//!   (`<analysis>/reports/*.json`) the folder's `files.json` entries of category `files` —
//!   CAPE's lite report has no `dropped` section;
//! * `signature_matches`, `mitre_attack_techniques` ← `signatures` with their `ttp`/`ttps`
//!   and the top-level `ttps` section (a small table of CAPE community signatures' ATT&CK ids
//!   covers lite reports that carry neither).
//!
//! The embedded `sysmon` array of CAPE reports is not parsed here: `sandscope-read` yields
//! those events; [`inspect`] tells whether a report carries them and whose sample they are.
//!
//! Errors name the file and the JSON path of the first problem
//! (`behavior.processes[3].environ`); nothing is returned from a report that failed.

mod convert;
mod input;
mod raw;

pub use input::{MAX_REPORT_BYTES, Source};

use sandscope_model::{CAPE_SANDBOX, CUCKOO_SANDBOX, FileBehaviour};
use std::path::{Path, PathBuf};

/// Which product wrote the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    Cape,
    Cuckoo,
}

impl Flavour {
    /// The `sandbox_name` of the reports built from this product.
    pub fn sandbox_name(self) -> &'static str {
        match self {
            Flavour::Cape => CAPE_SANDBOX,
            Flavour::Cuckoo => CUCKOO_SANDBOX,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CapeError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: the decompressed report is larger than {limit} bytes")]
    TooLarge { file: String, limit: u64 },
    #[error("{file}: unreadable zip archive: {message}")]
    Zip { file: String, message: String },
    #[error("{file}: the zip archive holds no .json report")]
    NoReportInZip { file: String },
    #[error(
        "{file}: {kind} at JSON path `{path}` (line {line}, column {column}): {message}",
        kind = if *truncated { "truncated report" } else { "malformed report" }
    )]
    Json {
        file: String,
        /// Where the problem is, e.g. `behavior.processes[3].environ`.
        path: String,
        line: usize,
        column: usize,
        /// The input ended before the JSON did.
        truncated: bool,
        message: String,
    },
    #[error("{file}: {path}:{line}: {message}")]
    UploadList {
        file: String,
        path: String,
        line: usize,
        message: String,
    },
    #[error("not a CAPE or Cuckoo file report: {reason}")]
    NotAReport { reason: String },
}

impl CapeError {
    fn in_file(self, name: &str) -> Self {
        match self {
            CapeError::Json {
                file,
                path,
                line,
                column,
                truncated,
                message,
            } if file.is_empty() => CapeError::Json {
                file: name.to_string(),
                path,
                line,
                column,
                truncated,
                message,
            },
            CapeError::NotAReport { reason } => CapeError::NotAReport {
                reason: format!("{name}: {reason}"),
            },
            other => other,
        }
    }
}

/// What [`inspect`] learns without building the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportInfo {
    pub flavour: Flavour,
    /// `target.file.sha256` (lower case), when the report is a file analysis.
    pub sample_sha256: Option<String>,
    /// Number of events in the embedded `sysmon` array, `None` when there is none.
    pub sysmon_events: Option<usize>,
}

/// Import one CAPE or Cuckoo 2.x report.
pub fn import<'a>(source: impl Into<Source<'a>>) -> Result<FileBehaviour, CapeError> {
    let source = source.into();
    let name = source.display_name();
    let report: raw::RawReport = input::parse_source(source)?;
    let uploaded = match source {
        Source::Path(path) => uploaded_files(path)?,
        Source::Bytes { .. } => Vec::new(),
    };
    let flavour = flavour_of(&report.info, &report.behavior);
    let (sha256, attributes) =
        convert::convert(flavour, report, &uploaded).map_err(|e| e.in_file(&name))?;
    Ok(FileBehaviour::new(&sha256, attributes))
}

/// Import one report held in memory; `name` is used in error messages.
pub fn import_bytes(name: &str, bytes: &[u8]) -> Result<FileBehaviour, CapeError> {
    import(Source::Bytes { name, bytes })
}

/// The product, the sample's SHA-256 and the size of the embedded Sysmon array, reading the
/// whole file but keeping none of the behaviour (for ingest, which hands the Sysmon events
/// to `sandscope-read` and the report to [`import`]).
pub fn inspect<'a>(source: impl Into<Source<'a>>) -> Result<ReportInfo, CapeError> {
    let probe: raw::RawProbe = input::parse_source(source.into())?;
    let sample_sha256 = probe
        .target
        .file
        .and_then(|f| f.sha256)
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| sandscope_model::is_sha256(s));
    let flavour = match probe.info.version.as_deref() {
        Some(v) if !v.to_ascii_uppercase().contains("CAPE") && is_cuckoo_version(v) => {
            Flavour::Cuckoo
        }
        _ => Flavour::Cape,
    };
    Ok(ReportInfo {
        flavour,
        sample_sha256,
        sysmon_events: probe.sysmon.0,
    })
}

/// Top-level keys of CAPE and Cuckoo reports; a JSON object opening with one of them is
/// taken for a sandbox report.
const REPORT_KEYS: &[&str] = &[
    "info",
    "target",
    "behavior",
    "signatures",
    "network",
    "debug",
    "dropped",
    "static",
    "strings",
    "CAPE",
    "curtain",
    "sysmon",
    "procmemory",
    "procdump",
    "suricata",
    "ttps",
    "malscore",
    "malfamily",
    "statistics",
    "buffer",
    "metadata",
    "shots",
    "screenshots",
    "virustotal",
    "memory",
    "extracted",
];

/// Whether these first bytes of a file (plain or gzip) look like a CAPE / Cuckoo report: a
/// JSON object whose first key is a report section. A cheap pre-check for content detection;
/// [`import`] does the real validation.
pub fn looks_like_report(head: &[u8]) -> bool {
    let text = input::decompressed_head(head, 4096);
    first_key(&text).is_some_and(|key| REPORT_KEYS.contains(&key.as_str()))
}

/// [`looks_like_report`] for a file (plain, gzip or zip).
pub fn looks_like_report_file(path: &Path) -> bool {
    let head = input::file_head(path, 4096);
    first_key(&head).is_some_and(|key| REPORT_KEYS.contains(&key.as_str()))
}

/// The first key of a JSON object, from its opening bytes.
fn first_key(text: &[u8]) -> Option<String> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut rest = text.iter().skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b'{') {
        return None;
    }
    let mut rest = rest.skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b'"') {
        return None;
    }
    let key: Vec<u8> = rest.take_while(|b| **b != b'"').copied().take(64).collect();
    String::from_utf8(key).ok()
}

fn is_cuckoo_version(version: &str) -> bool {
    version.trim().starts_with(|c: char| c.is_ascii_digit())
}

/// CAPE writes `info.version` as `2.4-CAPE`; Cuckoo as `2.0.7`. Without a version the process
/// shape decides: CAPE processes carry `environ`, Cuckoo's carry `command_line`.
fn flavour_of(info: &raw::RawInfo, behavior: &raw::RawBehavior) -> Flavour {
    match info.version.as_deref() {
        Some(v) if v.to_ascii_uppercase().contains("CAPE") => Flavour::Cape,
        Some(v) if is_cuckoo_version(v) => Flavour::Cuckoo,
        _ => {
            let cuckoo_shaped = behavior
                .processes
                .iter()
                .any(|p| p.command_line.is_some() && p.environ.command_line.is_none());
            if cuckoo_shaped {
                Flavour::Cuckoo
            } else {
                Flavour::Cape
            }
        }
    }
}

/// The most `files.json` this importer reads: it lists one line per uploaded file.
const MAX_UPLOAD_LIST_BYTES: u64 = 64 << 20;

/// `<analysis>/files.json` for a report at `<analysis>/reports/<name>.json`.
fn upload_list_path(report: &Path) -> Option<PathBuf> {
    let reports_dir = report.parent()?;
    let dir_name = reports_dir.file_name()?.to_str()?;
    if !dir_name.eq_ignore_ascii_case("reports") {
        return None;
    }
    let candidate = reports_dir.parent()?.join("files.json");
    candidate.is_file().then_some(candidate)
}

fn uploaded_files(report: &Path) -> Result<Vec<raw::RawUploadedFile>, CapeError> {
    use std::io::Read;
    let Some(path) = upload_list_path(report) else {
        return Ok(Vec::new());
    };
    let file = path.display().to_string();
    let handle = std::fs::File::open(&path).map_err(|source| CapeError::Io {
        file: file.clone(),
        source,
    })?;
    let mut text = String::new();
    handle
        .take(MAX_UPLOAD_LIST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| CapeError::Io {
            file: file.clone(),
            source,
        })?;
    if text.len() as u64 > MAX_UPLOAD_LIST_BYTES {
        return Err(CapeError::TooLarge {
            file,
            limit: MAX_UPLOAD_LIST_BYTES,
        });
    }
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut deserializer = serde_json::Deserializer::from_str(line);
        let entry: raw::RawUploadedFile = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| CapeError::UploadList {
                file: file.clone(),
                path: e.path().to_string(),
                line: index + 1,
                message: e.inner().to_string(),
            })?;
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_keys_decide_what_looks_like_a_report() {
        assert!(looks_like_report(b"{\n  \"target\": {\n"));
        assert!(looks_like_report(b"{\"signatures\": ["));
        assert!(!looks_like_report(b"{\"data\": {\"id\": \"x\"}}"));
        assert!(!looks_like_report(b"[1, 2]"));
        assert!(!looks_like_report(b"<Event xmlns="));
    }
}
