//! Rule files in, parsed rules and a per-rule load report out.
//!
//! Loading never stops at a bad rule: every rule document ends up in the [`LoadReport`] as
//! loaded, rejected (with file, line and reason) or not applicable to Sysmon.

use crate::routing::{Applicability, applicability};
use rayon::prelude::*;
use rsigma_parser::{CorrelationRule, SigmaRule, parse_sigma_yaml};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Licence of the bundled SigmaHQ rules.
pub const SIGMAHQ_LICENSE: &str = "DRL-1.1";
/// `rule_source` of bundled rules in behaviour reports (VirusTotal's name for this rule set).
pub const SIGMAHQ_SOURCE: &str = "Sigma Integrated Rule Set (GitHub)";

/// Severity of a rule, ordered so that `--level high+` is `>= High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        match text.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Some(Level::Informational),
            "low" => Some(Level::Low),
            "medium" => Some(Level::Medium),
            "high" => Some(Level::High),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    fn from_parser(level: rsigma_parser::Level) -> Level {
        match level {
            rsigma_parser::Level::Informational => Level::Informational,
            rsigma_parser::Level::Low => Level::Low,
            rsigma_parser::Level::Medium => Level::Medium,
            rsigma_parser::Level::High => Level::High,
            rsigma_parser::Level::Critical => Level::Critical,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOrigin {
    /// The SigmaHQ rules compiled into the binary.
    Bundled,
    /// A file given with `--rules`.
    File,
}

/// What is known about one loaded rule, kept for output (author attribution is always kept, as
/// the DRL 1.1 licence of the SigmaHQ rules asks).
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub title: String,
    pub id: Option<String>,
    pub level: Option<Level>,
    pub status: Option<String>,
    pub author: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// The rule's `license` field, else the licence of its rule set (DRL-1.1 for SigmaHQ).
    pub license: Option<String>,
    pub origin: RuleOrigin,
    /// Path of the rule file (`rules/windows/...` for bundled rules).
    pub file: String,
    /// Rendered logsource, e.g. `windows/process_creation`.
    pub logsource: String,
    /// The Sysmon event ids the rule is evaluated on.
    pub event_ids: Vec<u16>,
}

impl RuleInfo {
    /// `rule_source` for behaviour reports.
    pub fn source_name(&self) -> String {
        match self.origin {
            RuleOrigin::Bundled => SIGMAHQ_SOURCE.to_string(),
            RuleOrigin::File => format!("Local rules ({})", self.file),
        }
    }

    /// ATT&CK technique ids from `attack.tXXXX[.YYY]` tags, upper-cased (`T1059.001`).
    pub fn attack_techniques(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|tag| {
                let rest = tag.strip_prefix("attack.")?;
                let bytes = rest.as_bytes();
                let is_technique = bytes.len() >= 5
                    && (bytes[0] == b't' || bytes[0] == b'T')
                    && bytes[1..5].iter().all(u8::is_ascii_digit);
                is_technique.then(|| rest.to_ascii_uppercase())
            })
            .collect()
    }
}

/// The outcome for one rule document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RuleStatus {
    Loaded,
    Rejected { line: Option<usize>, reason: String },
    NotApplicable { reason: String },
}

/// One line of `sandscope rules check`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub file: String,
    pub title: Option<String>,
    pub id: Option<String>,
    #[serde(flatten)]
    pub status: RuleStatus,
    /// Parser remarks on a rule that still loaded (bad `related` entries, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Every rule document seen, in load order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub rules: Vec<RuleReport>,
}

impl LoadReport {
    pub fn loaded(&self) -> usize {
        self.count(|s| matches!(s, RuleStatus::Loaded))
    }
    pub fn rejected(&self) -> usize {
        self.count(|s| matches!(s, RuleStatus::Rejected { .. }))
    }
    pub fn not_applicable(&self) -> usize {
        self.count(|s| matches!(s, RuleStatus::NotApplicable { .. }))
    }
    fn count(&self, pred: impl Fn(&RuleStatus) -> bool) -> usize {
        self.rules.iter().filter(|r| pred(&r.status)).count()
    }
}

/// A file that could not be read at all (the rules in other files still load).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bundled rule archive is damaged: {0}")]
    Bundle(String),
}

/// One rule file's text, before parsing.
#[derive(Debug, Clone)]
pub struct RuleText {
    pub file: String,
    pub origin: RuleOrigin,
    pub text: String,
}

/// Rule files found under `path` (a file, or a folder walked recursively for `.yml`/`.yaml`),
/// in sorted order so reports are stable.
pub fn read_rule_path(path: &Path) -> Result<Vec<RuleText>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if meta.is_dir() {
        collect_yaml(path, &mut files)?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    files
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(&file).map_err(|source| LoadError::Io {
                path: file.clone(),
                source,
            })?;
            Ok(RuleText {
                file: file.display().to_string(),
                origin: RuleOrigin::File,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
        .collect()
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        if file_type.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// A rule ready for the engine, with its metadata.
pub(crate) struct ParsedRule {
    pub info: RuleInfo,
    pub rule: ParsedBody,
    /// The rule's `name` (what correlations may call it by, besides its id).
    pub name: Option<String>,
    /// Index of this rule's entry in the report.
    pub report: usize,
}

/// A detection rule (evaluated per event) or a correlation rule (over a stream of matches).
pub(crate) enum ParsedBody {
    Detection(Box<SigmaRule>),
    Correlation(Box<CorrelationRule>),
}

/// Parse rule texts (in parallel) into applicable rules plus the report of every document.
/// Rules with an id already seen are rejected as duplicates, so `--rules` pointing at the
/// bundled set again does not double every hit.
pub(crate) fn parse_rule_texts(texts: &[RuleText]) -> (Vec<ParsedRule>, Vec<RuleReport>) {
    let per_file: Vec<Vec<(RuleReport, Option<ParsedRule>)>> =
        texts.par_iter().map(parse_one_file).collect();
    let mut rules = Vec::new();
    let mut reports = Vec::new();
    let mut seen_ids = std::collections::HashMap::<String, String>::new();
    for (mut report, parsed) in per_file.into_iter().flatten() {
        if let Some(parsed) = parsed {
            if let Some(id) = &parsed.info.id
                && let Some(first) = seen_ids.get(id)
            {
                report.status = RuleStatus::Rejected {
                    line: line_of_key(&texts_text(texts, &report.file), "id:"),
                    reason: format!("duplicate rule id {id}, already loaded from {first}"),
                };
                reports.push(report);
                continue;
            }
            if let Some(id) = &parsed.info.id {
                seen_ids.insert(id.clone(), parsed.info.file.clone());
            }
            rules.push(ParsedRule {
                report: reports.len(),
                ..parsed
            });
        }
        reports.push(report);
    }
    (rules, reports)
}

fn texts_text(texts: &[RuleText], file: &str) -> String {
    texts
        .iter()
        .find(|t| t.file == file)
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

fn parse_one_file(text: &RuleText) -> Vec<(RuleReport, Option<ParsedRule>)> {
    let collection = match parse_sigma_yaml(&text.text) {
        Ok(c) => c,
        Err(err) => {
            let reason = err.to_string();
            return vec![(rejected(text, None, None, &reason), None)];
        }
    };
    let mut out = Vec::new();
    let documents =
        collection.rules.len() + collection.correlations.len() + collection.filters.len();
    if documents == 0 {
        let reason = if collection.errors.is_empty() {
            "no Sigma rule in this file".to_string()
        } else {
            collection.errors.join("; ")
        };
        out.push((rejected(text, None, None, &reason), None));
        return out;
    }
    // The parser puts per-document warnings and failed-document errors in one list; with at
    // least one document parsed they are remarks, otherwise the reason of the rejection above.
    let remarks = collection.errors;
    for rule in collection.rules {
        let info = rule_info(text, &rule);
        match applicability(&rule.logsource) {
            Applicability::Sysmon(_) => {
                let report = RuleReport {
                    file: text.file.clone(),
                    title: Some(info.title.clone()),
                    id: info.id.clone(),
                    status: RuleStatus::Loaded,
                    warnings: remarks.clone(),
                };
                let name = rule.name.clone();
                out.push((
                    report,
                    Some(ParsedRule {
                        info,
                        rule: ParsedBody::Detection(Box::new(rule)),
                        name,
                        report: 0,
                    }),
                ));
            }
            Applicability::NotSysmon(reason) => out.push((
                RuleReport {
                    file: text.file.clone(),
                    title: Some(info.title),
                    id: info.id,
                    status: RuleStatus::NotApplicable { reason },
                    warnings: remarks.clone(),
                },
                None,
            )),
        }
    }
    for corr in collection.correlations {
        let info = correlation_info(text, &corr);
        let name = corr.name.clone();
        out.push((
            RuleReport {
                file: text.file.clone(),
                title: Some(info.title.clone()),
                id: info.id.clone(),
                status: RuleStatus::Loaded,
                warnings: remarks.clone(),
            },
            Some(ParsedRule {
                info,
                rule: ParsedBody::Correlation(Box::new(corr)),
                name,
                report: 0,
            }),
        ));
    }
    for filter in collection.filters {
        out.push((
            RuleReport {
                file: text.file.clone(),
                title: Some(filter.title.clone()),
                id: filter.id.clone(),
                status: RuleStatus::NotApplicable {
                    reason: "filter rule: not supported yet".to_string(),
                },
                warnings: Vec::new(),
            },
            None,
        ));
    }
    out
}

fn rejected(
    text: &RuleText,
    title: Option<String>,
    id: Option<String>,
    reason: &str,
) -> RuleReport {
    RuleReport {
        file: text.file.clone(),
        title: title.or_else(|| scalar_of_key(&text.text, "title:")),
        id: id.or_else(|| scalar_of_key(&text.text, "id:")),
        status: RuleStatus::Rejected {
            line: guess_line(&text.text, reason),
            reason: reason.to_string(),
        },
        warnings: Vec::new(),
    }
}

pub(crate) fn rejected_report(info: &RuleInfo, text: &str, reason: &str) -> RuleReport {
    RuleReport {
        file: info.file.clone(),
        title: Some(info.title.clone()),
        id: info.id.clone(),
        status: RuleStatus::Rejected {
            line: guess_line(text, reason),
            reason: reason.to_string(),
        },
        warnings: Vec::new(),
    }
}

/// The [`RuleInfo`] of a detection or correlation rule: the parser's two rule types spell the
/// shared metadata the same way, so one expansion serves both.
macro_rules! rule_info_of {
    ($text:expr, $rule:expr, $logsource:expr, $event_ids:expr) => {
        RuleInfo {
            title: $rule.title.clone(),
            id: $rule.id.clone(),
            level: $rule.level.map(Level::from_parser),
            status: $rule.status.map(|s| format!("{s:?}").to_ascii_lowercase()),
            author: $rule.author.clone(),
            description: $rule.description.clone(),
            tags: $rule.tags.clone(),
            license: license_of($rule.license.as_ref(), &$text.origin),
            origin: $text.origin.clone(),
            file: $text.file.clone(),
            logsource: $logsource,
            event_ids: $event_ids,
        }
    };
}

fn rule_info(text: &RuleText, rule: &SigmaRule) -> RuleInfo {
    let event_ids = match applicability(&rule.logsource) {
        Applicability::Sysmon(ids) => ids,
        Applicability::NotSysmon(_) => Vec::new(),
    };
    let logsource = [
        rule.logsource.product.as_deref(),
        rule.logsource.category.as_deref(),
        rule.logsource.service.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/");
    rule_info_of!(text, rule, logsource, event_ids)
}

/// A rule's own `license`, else that of its rule set (DRL-1.1 for the bundled SigmaHQ rules).
fn license_of(own: Option<&String>, origin: &RuleOrigin) -> Option<String> {
    own.cloned().or_else(|| match origin {
        RuleOrigin::Bundled => Some(SIGMAHQ_LICENSE.to_string()),
        RuleOrigin::File => None,
    })
}

fn correlation_info(text: &RuleText, rule: &CorrelationRule) -> RuleInfo {
    let logsource = format!("correlation/{}", rule.correlation_type.as_str());
    rule_info_of!(text, rule, logsource, Vec::new())
}

/// The value of the first top-level `key: value` line.
fn scalar_of_key(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
        .filter(|v| !v.is_empty())
}

fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| i + 1)
}

/// The line a parse error points at: the YAML parser's own `line N`, else the first line that
/// holds a quoted token of the message (a modifier or field name), else the `condition:` or
/// `detection:` line the message speaks of.
fn guess_line(text: &str, reason: &str) -> Option<usize> {
    if let Some(pos) = reason.find("line ") {
        let digits: String = reason[pos + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
    }
    for quote in ['\'', '`', '"'] {
        let mut parts = reason.split(quote);
        parts.next();
        while let Some(token) = parts.next() {
            if token.len() >= 2
                && let Some(i) = text.lines().position(|l| l.contains(token))
            {
                return Some(i + 1);
            }
            parts.next();
        }
    }
    let lower = reason.to_ascii_lowercase();
    if lower.contains("condition") {
        return line_of_key(text, "condition:");
    }
    if lower.contains("detection") || lower.contains("selection") {
        return line_of_key(text, "detection:");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> RuleText {
        RuleText {
            file: "t.yml".into(),
            origin: RuleOrigin::File,
            text: text.into(),
        }
    }

    #[test]
    fn bad_modifier_is_rejected_with_its_line() {
        let text = "title: Bad\nid: 1\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    Image|nosuchmod: x\n  condition: sel\n";
        let (rules, reports) = parse_rule_texts(&[file(text)]);
        assert!(rules.is_empty());
        match &reports[0].status {
            RuleStatus::Rejected { line, reason } => {
                assert!(reason.contains("nosuchmod"), "{reason}");
                assert_eq!(*line, Some(8));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_sysmon_logsource_is_reported_not_loaded() {
        let text = "title: Sec\nlogsource:\n  product: windows\n  service: security\ndetection:\n  sel:\n    EventID: 4624\n  condition: sel\n";
        let (rules, reports) = parse_rule_texts(&[file(text)]);
        assert!(rules.is_empty());
        assert!(matches!(
            reports[0].status,
            RuleStatus::NotApplicable { .. }
        ));
    }

    #[test]
    fn attack_tags_become_technique_ids() {
        let text = "title: T\nlogsource:\n  category: process_creation\n  product: windows\ntags:\n  - attack.execution\n  - attack.t1059.001\n  - attack.t1218\n  - cve.2021-1\ndetection:\n  sel:\n    Image: x\n  condition: sel\n";
        let (rules, _) = parse_rule_texts(&[file(text)]);
        assert_eq!(rules[0].info.attack_techniques(), ["T1059.001", "T1218"]);
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = "title: A\nid: 5b1f\nlogsource:\n  category: process_creation\ndetection:\n  sel:\n    Image: x\n  condition: sel\n";
        let (rules, reports) = parse_rule_texts(&[file(text), file(text)]);
        assert_eq!(rules.len(), 1);
        assert!(matches!(reports[1].status, RuleStatus::Rejected { .. }));
    }
}
