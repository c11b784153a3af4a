//! A ruleset's `rules` text to what evaluates it: Sigma (one or more YAML documents, detection
//! and correlation rules, compiled by `sandscope-sigma` exactly as `hunt` and reports compile
//! theirs) or Intelligence queries (one per line, `#` comments, parsed by `sandscope-query`).
//!
//! Every problem names its rule and line; a ruleset with any problem is refused whole. The work
//! is bounded before it starts: at most [`MAX_RULES_BYTES`] of text and [`MAX_RULES`] rules;
//! Sigma's regular expressions run on a linear-time engine and a query's cost is bounded at
//! parse time.

use crate::error::{HuntingError, Result};
use sandscope_query::{Query, SampleDoc};
use sandscope_sigma::{RuleOrigin, RuleStatus, RuleText, SigmaEngine, SigmaEngineBuilder};
use serde::{Deserialize, Serialize};

/// Largest `rules` text accepted.
pub const MAX_RULES_BYTES: usize = 1 << 20;
/// Most rules (Sigma documents or query lines) in one ruleset.
pub const MAX_RULES: usize = 1_000;
/// Longest rule name kept (a query's own text names it when no comment does).
const MAX_RULE_NAME_CHARS: usize = 120;

/// Which language a ruleset's `rules` are written in (the `rule_language` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleLanguage {
    #[default]
    Sigma,
    Query,
}

impl RuleLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleLanguage::Sigma => "sigma",
            RuleLanguage::Query => "query",
        }
    }

    pub fn parse(text: &str) -> Option<RuleLanguage> {
        match text {
            "sigma" => Some(RuleLanguage::Sigma),
            "query" => Some(RuleLanguage::Query),
            _ => None,
        }
    }
}

/// Why one rule of a ruleset is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleProblem {
    /// The rule's title (Sigma) or text (query), else `document N`.
    pub rule: String,
    /// 1-based line in the ruleset's `rules` text.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule {:?}, line {}: {}",
            self.rule, self.line, self.reason
        )
    }
}

/// One query of a query ruleset.
pub struct NamedQuery {
    pub name: String,
    pub query: Query,
}

/// A ruleset's rules, ready to evaluate. Immutable; shared by every ingest thread.
pub enum CompiledRules {
    Sigma(SigmaEngine),
    Queries(Vec<NamedQuery>),
}

/// One rule that matched one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    pub rule_name: String,
    pub rule_tags: Vec<String>,
    /// What matched, for the notification's `snippet`.
    pub snippet: String,
}

impl CompiledRules {
    /// Parse and check `text`; every problem is in the error.
    pub fn compile(language: RuleLanguage, text: &str) -> Result<CompiledRules> {
        if text.len() > MAX_RULES_BYTES {
            return Err(HuntingError::Invalid(format!(
                "rules: {} bytes, more than the limit of {MAX_RULES_BYTES}",
                text.len()
            )));
        }
        match language {
            RuleLanguage::Sigma => compile_sigma(text).map(CompiledRules::Sigma),
            RuleLanguage::Query => compile_queries(text).map(CompiledRules::Queries),
        }
    }

    /// The rules' names, in order (`rule_names`).
    pub fn rule_names(&self) -> Vec<String> {
        match self {
            CompiledRules::Sigma(engine) => engine.rules().map(|r| r.title.clone()).collect(),
            CompiledRules::Queries(queries) => queries.iter().map(|q| q.name.clone()).collect(),
        }
    }

    /// Sigma rules over one sample's attributed events: the report's own analysis, one hit per
    /// rule that matched (quoting the first event it matched). Nothing for a query ruleset.
    pub fn sigma_hits(&self, events: &[sandscope_event::SysmonEvent]) -> Vec<RuleHit> {
        let CompiledRules::Sigma(engine) = self else {
            return Vec::new();
        };
        sigma_rule_hits(engine, events)
            .into_iter()
            .map(|(_, hit)| hit)
            .collect()
    }

    /// Queries over one sample's searchable view, with the search's own semantics
    /// (`Query::matches`). Nothing for a Sigma ruleset.
    pub fn query_hits(&self, doc: &SampleDoc, now: i64) -> Vec<RuleHit> {
        let CompiledRules::Queries(queries) = self else {
            return Vec::new();
        };
        queries
            .iter()
            .filter(|q| q.query.matches(doc, now))
            .map(|q| RuleHit {
                rule_name: q.name.clone(),
                rule_tags: Vec::new(),
                snippet: q.query.snippets(doc, 5).join(" | "),
            })
            .collect()
    }
}

/// `engine` over one sample's events, as its report's own analysis: one hit per rule that
/// matched (quoting the first event it matched), with the rule's engine index.
pub(crate) fn sigma_rule_hits(
    engine: &SigmaEngine,
    events: &[sandscope_event::SysmonEvent],
) -> Vec<(usize, RuleHit)> {
    if events.is_empty() {
        return Vec::new();
    }
    let analysis = engine.analyse(events);
    analysis
        .rules
        .into_iter()
        .zip(analysis.results)
        .map(|(index, result)| {
            let rule_tags = engine
                .rule(index)
                .map(|r| r.tags.clone())
                .unwrap_or_default();
            let snippet = result
                .match_context
                .first()
                .map(|c| {
                    c.values
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let hit = RuleHit {
                rule_name: result.rule_title,
                rule_tags,
                snippet,
            };
            (index, hit)
        })
        .collect()
}

/// A Sigma ruleset's documents as rule texts named `{label}document N` (what its problems and
/// a merged engine's rules are traced back by).
pub(crate) fn sigma_rule_texts(text: &str, label: &str) -> Vec<RuleText> {
    documents(text)
        .iter()
        .enumerate()
        .map(|(i, d)| RuleText {
            file: format!("{label}document {}", i + 1),
            origin: RuleOrigin::File,
            text: d.text.to_string(),
        })
        .collect()
}

/// A YAML document of the rules text: its text and its first line.
struct Document<'a> {
    text: &'a str,
    first_line: usize,
}

/// Split at `---` lines, keeping each document's place (the Sigma loader numbers lines from
/// the start of the text it is given).
fn documents(text: &str) -> Vec<Document<'_>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" {
            out.push(Document {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    out.push(Document {
        text: &text[start..],
        first_line: start_line,
    });
    out.retain(|d| {
        d.text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    out
}

fn compile_sigma(text: &str) -> Result<SigmaEngine> {
    let docs = documents(text);
    if docs.is_empty() {
        return Err(HuntingError::Invalid("rules: no Sigma rule".into()));
    }
    if docs.len() > MAX_RULES {
        return Err(HuntingError::Invalid(format!(
            "rules: {} Sigma documents, more than the limit of {MAX_RULES}",
            docs.len()
        )));
    }
    let mut builder = SigmaEngineBuilder::new();
    builder.add_texts(sigma_rule_texts(text, ""));
    let (engine, report) = builder.build();
    let mut problems = Vec::new();
    for rule in &report.rules {
        let first_line = rule
            .file
            .strip_prefix("document ")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| docs.get(n.checked_sub(1)?))
            .map(|d| d.first_line)
            .unwrap_or(1);
        let name = rule.title.clone().unwrap_or_else(|| rule.file.clone());
        match &rule.status {
            RuleStatus::Loaded => {}
            RuleStatus::Rejected { line, reason } => problems.push(RuleProblem {
                rule: name,
                line: first_line + line.unwrap_or(1) - 1,
                reason: reason.clone(),
            }),
            RuleStatus::NotApplicable { reason } => problems.push(RuleProblem {
                rule: name,
                line: first_line,
                reason: format!("cannot match Sysmon events: {reason}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(engine)
    } else {
        Err(HuntingError::Rules(problems))
    }
}

fn compile_queries(text: &str) -> Result<Vec<NamedQuery>> {
    let mut queries = Vec::new();
    let mut problems = Vec::new();
    let mut comment: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            comment = None;
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            // A comment right above a query names it.
            comment = Some(c.trim().to_string()).filter(|c| !c.is_empty());
            continue;
        }
        let name: String = comment
            .take()
            .unwrap_or_else(|| line.to_string())
            .chars()
            .take(MAX_RULE_NAME_CHARS)
            .collect();
        if queries.len() + problems.len() >= MAX_RULES {
            return Err(HuntingError::Invalid(format!(
                "rules: more than the limit of {MAX_RULES} queries"
            )));
        }
        match sandscope_query::parse(line) {
            Ok(query) => queries.push(NamedQuery { name, query }),
            Err(e) => problems.push(RuleProblem {
                rule: name,
                line: index + 1,
                reason: format!("column {}: {}", e.column, e.message),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(HuntingError::Rules(problems));
    }
    if queries.is_empty() {
        return Err(HuntingError::Invalid("rules: no query".into()));
    }
    Ok(queries)
}
