//! The searchable view of one sample (all its reports) and the matching semantics on it.
//!
//! The store indexes exactly this view, so the index and [`Query::matches`] agree by
//! construction; the store uses `matches` to verify candidates when a pattern is not exact in
//! the index (a `*` inside a text value) and to pick snippets.
//!
//! # What each text modifier covers
//!
//! Each `file_behaviour` attribute's entry in the model's attribute table
//! (`sandscope_model::ATTRIBUTES`) names the modifiers that cover it and which of its values are
//! text; its values go to the one atomic [`TextField`] those modifiers cover
//! ([`TextField::of_attribute`]). In short:
//!
//! | modifier (both spellings) | report fields (`file_behaviour` attributes) |
//! |---|---|
//! | `behaviour:` | every field below, plus mutexes, modules loaded, calls highlighted, hosts file, scheduled tasks (name, command, trigger), named pipes, WMI subscriptions, MITRE technique ids and descriptions, Sigma rule titles, tags, verdicts |
//! | `behaviour_files:` | `files_opened`, `files_written`, `files_deleted`, `files_attribute_changed`, `files_dropped[].path` and `.sha256`, `files_copied[].source` and `.destination` |
//! | `behaviour_processes:` | `processes_created`, `processes_injected`, `processes_terminated`, `processes_killed`, `command_executions`, `processes_tree[].name` (recursively) |
//! | `behaviour_created_processes:` | `processes_created` |
//! | `behaviour_injected_processes:` | `processes_injected` |
//! | `behaviour_command_executions:` | `command_executions` |
//! | `behaviour_network:` | `dns_lookups[].hostname`, `.resolved_ips`, `.cnames`; `ip_traffic[].destination_ip` and `ip:port`; `http_conversations[].url` |
//! | `behaviour_registry:` | `registry_keys_opened`, `registry_keys_set[].key` and `.value`, `registry_keys_deleted` |
//! | `behaviour_services:` | `services_opened`, `_created`, `_started`, `_stopped`, `_deleted`, `service_details[].name` and `.image_path` |
//! | `behaviour_signature:` | `signature_matches[].name` and `.description` |
//!
//! Token modifiers: `behaviour_tags:` = `tags`; `behash:` = `behash`; `sandbox_name:` =
//! `sandbox_name` (whole name as a slug, e.g. `cape_sandbox`, or any one word of it);
//! `sigma_rule:` = `sigma_analysis_results[].rule_id`; `attack_technique:` =
//! `mitre_attack_techniques[].id`; `attack_tactic:` = any `TA####` id found in
//! `mitre_attack_techniques[].refs` (reports carry no tactic field, so this is empty unless a
//! producer puts one there); `tag:` = `tags` (VirusTotal's file tags are not available; the
//! behaviour tags stand in). Counts: `sigma_critical/high/medium/low:` = number of distinct
//! matched Sigma rules of that level over all the sample's reports (or the largest
//! `sigma_analysis_stats` when a report has stats but no results). Dates: `fs:` = earliest
//! `analysis_date` of the sample's reports, `ls:` = latest.
//!
//! Every text value is matched in its [`text::variants`] (raw, `%PLACEHOLDER%` and expanded
//! forms) and in those of every raw spelling its report keeps behind it in `raw_forms` (the
//! path, key or command line as the sandbox logged it, before normalisation; at most
//! [`MAX_RAW_FORMS_MATCHED`] per value), so `C:\Users\bob\Downloads\x.exe` finds the
//! `%SAMPLEPATH%\x.exe` it became. Values are matched across all reports of a sample, like
//! VirusTotal: two terms may be satisfied by two different sandboxes.

use crate::ast::*;
use crate::modifiers::MODIFIERS;
use crate::text;
use sandscope_model::{ATTRIBUTES, Attribute, FileBehaviour};
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

/// Most raw spellings of one value that are matched (and indexed).
pub const MAX_RAW_FORMS_MATCHED: usize = 8;

/// The atomic text fields the index holds; modifiers cover unions of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextField {
    Files,
    ProcessesCreated,
    ProcessesInjected,
    ProcessesOther,
    CommandExecutions,
    Network,
    Registry,
    Services,
    Signature,
    Other,
}

impl TextField {
    pub const ALL: [TextField; 10] = [
        TextField::Files,
        TextField::ProcessesCreated,
        TextField::ProcessesInjected,
        TextField::ProcessesOther,
        TextField::CommandExecutions,
        TextField::Network,
        TextField::Registry,
        TextField::Services,
        TextField::Signature,
        TextField::Other,
    ];

    /// Stable name (used as the index field name).
    pub fn name(self) -> &'static str {
        match self {
            TextField::Files => "files",
            TextField::ProcessesCreated => "processes_created",
            TextField::ProcessesInjected => "processes_injected",
            TextField::ProcessesOther => "processes_other",
            TextField::CommandExecutions => "command_executions",
            TextField::Network => "network",
            TextField::Registry => "registry",
            TextField::Services => "services",
            TextField::Signature => "signature",
            TextField::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The token fields the index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenField {
    Tags,
    Behash,
    SandboxName,
    SigmaRule,
    AttackTechnique,
    AttackTactic,
    Sha256,
}

impl TokenField {
    pub const ALL: [TokenField; 7] = [
        TokenField::Tags,
        TokenField::Behash,
        TokenField::SandboxName,
        TokenField::SigmaRule,
        TokenField::AttackTechnique,
        TokenField::AttackTactic,
        TokenField::Sha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TokenField::Tags => "tok_tags",
            TokenField::Behash => "tok_behash",
            TokenField::SandboxName => "tok_sandbox_name",
            TokenField::SigmaRule => "tok_sigma_rule",
            TokenField::AttackTechnique => "tok_attack_technique",
            TokenField::AttackTactic => "tok_attack_tactic",
            TokenField::Sha256 => "tok_sha256",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The Sigma levels that have a count modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigmaLevel {
    Critical,
    High,
    Medium,
    Low,
}

impl Modifier {
    /// The atomic text fields a text modifier searches (empty for other kinds).
    pub fn text_fields(self) -> &'static [TextField] {
        use TextField as F;
        match self {
            Modifier::Behaviour => &TextField::ALL,
            Modifier::Files => &[F::Files],
            Modifier::Processes => &[
                F::ProcessesCreated,
                F::ProcessesInjected,
                F::ProcessesOther,
                F::CommandExecutions,
            ],
            Modifier::CreatedProcesses => &[F::ProcessesCreated],
            Modifier::InjectedProcesses => &[F::ProcessesInjected],
            Modifier::CommandExecutions => &[F::CommandExecutions],
            Modifier::Network => &[F::Network],
            Modifier::Registry => &[F::Registry],
            Modifier::Services => &[F::Services],
            Modifier::Signature => &[F::Signature],
            _ => &[],
        }
    }

    pub fn token_field(self) -> Option<TokenField> {
        Some(match self {
            Modifier::BehaviourTags | Modifier::Tag => TokenField::Tags,
            Modifier::Behash => TokenField::Behash,
            Modifier::SandboxName => TokenField::SandboxName,
            Modifier::SigmaRule => TokenField::SigmaRule,
            Modifier::AttackTechnique => TokenField::AttackTechnique,
            Modifier::AttackTactic => TokenField::AttackTactic,
            Modifier::Sha256 => TokenField::Sha256,
            _ => return None,
        })
    }

    pub fn sigma_level(self) -> Option<SigmaLevel> {
        Some(match self {
            Modifier::SigmaCritical => SigmaLevel::Critical,
            Modifier::SigmaHigh => SigmaLevel::High,
            Modifier::SigmaMedium => SigmaLevel::Medium,
            Modifier::SigmaLow => SigmaLevel::Low,
            _ => return None,
        })
    }
}

/// One text value: as reported, and its indexed spellings in padded normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextValue {
    pub raw: String,
    pub variants: Vec<String>,
}

/// Everything searchable about one sample, from all its reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleDoc {
    pub sha256: String,
    pub texts: [Vec<TextValue>; 10],
    pub tokens: [Vec<String>; 7],
    /// Distinct matched Sigma rules per level: critical, high, medium, low.
    pub sigma: [u64; 4],
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// Sandbox names of the reports, in report order.
    pub sandboxes: Vec<String>,
}

impl SampleDoc {
    /// Build the view of `sha256` from its reports (any order).
    pub fn from_reports(sha256: &str, reports: &[FileBehaviour]) -> SampleDoc {
        Self::with_texts_of(sha256, reports, [true; 10])
    }

    /// The view [`SampleDoc::from_reports`] builds, with the text values of only the fields
    /// `query` reads (its negated terms' too); the other text fields stay empty. `query`'s
    /// [`Query::matches`] and [`Query::snippets`] answer on it exactly as on the whole view,
    /// for a fraction of the work when the query names a few fields: spelling every value
    /// in its normal forms is most of the cost, and a search page builds one view per hit.
    pub fn for_query(sha256: &str, reports: &[FileBehaviour], query: &Query) -> SampleDoc {
        let mut wanted = [false; 10];
        query.mark_text_fields(&mut wanted);
        Self::with_texts_of(sha256, reports, wanted)
    }

    /// The view with the text values of the fields `wanted` marks (by [`TextField::index`]).
    fn with_texts_of(sha256: &str, reports: &[FileBehaviour], wanted: [bool; 10]) -> SampleDoc {
        let mut doc = SampleDoc {
            sha256: sha256.to_ascii_lowercase(),
            ..Default::default()
        };
        // Per field: value → its position in `doc.texts`, so a value seen again in another
        // report only adds that report's raw spellings.
        let mut seen: [HashMap<String, usize>; 10] = Default::default();
        let mut tokens: [BTreeSet<String>; 7] = Default::default();
        let mut rules: [BTreeSet<&str>; 4] = Default::default();
        let mut stats_max = [0u64; 4];
        tokens[TokenField::Sha256.index()].insert(doc.sha256.clone());
        for report in reports {
            let a = &report.attributes;
            doc.sandboxes.push(a.sandbox_name.clone());
            if let Some(t) = a.analysis_date {
                doc.first_seen = Some(doc.first_seen.map_or(t, |f| f.min(t)));
                doc.last_seen = Some(doc.last_seen.map_or(t, |l| l.max(t)));
            }
            let mut add = |field: TextField, value: &str| {
                let texts = &mut doc.texts[field.index()];
                let at = *seen[field.index()]
                    .entry(value.to_string())
                    .or_insert_with(|| {
                        texts.push(TextValue {
                            raw: value.to_string(),
                            variants: text::variants(value),
                        });
                        texts.len() - 1
                    });
                let variants = &mut texts[at].variants;
                let raws = a.raw_forms.get(value).into_iter().flatten();
                for raw in raws.take(MAX_RAW_FORMS_MATCHED) {
                    for variant in text::variants(raw) {
                        if !variants.contains(&variant) {
                            variants.push(variant);
                        }
                    }
                }
            };
            for (attribute, field) in text_attributes() {
                if wanted[field.index()] {
                    attribute.visit_text(a, &mut |value| add(*field, value));
                }
            }
            let mut tok = |field: TokenField, value: &str| {
                let t = text::token(value);
                if !t.is_empty() && t != "_" {
                    tokens[field.index()].insert(t);
                }
            };
            for t in &a.tags {
                tok(TokenField::Tags, t);
            }
            if let Some(b) = &a.behash {
                tok(TokenField::Behash, b);
            }
            tok(TokenField::SandboxName, &a.sandbox_name);
            for word in a.sandbox_name.split(|c: char| !c.is_alphanumeric()) {
                tok(TokenField::SandboxName, word);
            }
            for m in &a.mitre_attack_techniques {
                tok(TokenField::AttackTechnique, &m.id);
                for r in &m.refs {
                    for word in r.value.split(|c: char| !c.is_alphanumeric()) {
                        if is_tactic_id(word) {
                            tok(TokenField::AttackTactic, word);
                        }
                    }
                }
            }
            for s in &a.sigma_analysis_results {
                tok(TokenField::SigmaRule, &s.rule_id);
                if let Some(level) = level_index(&s.rule_level) {
                    rules[level].insert(s.rule_id.as_str());
                }
            }
            if let Some(stats) = &a.sigma_analysis_stats {
                for (i, n) in [stats.critical, stats.high, stats.medium, stats.low]
                    .into_iter()
                    .enumerate()
                {
                    stats_max[i] = stats_max[i].max(u64::from(n));
                }
            }
        }
        for i in 0..4 {
            doc.sigma[i] = (rules[i].len() as u64).max(stats_max[i]);
        }
        for (i, set) in tokens.into_iter().enumerate() {
            doc.tokens[i] = set.into_iter().collect();
        }
        doc
    }

    pub fn text(&self, field: TextField) -> &[TextValue] {
        &self.texts[field.index()]
    }

    pub fn tokens(&self, field: TokenField) -> &[String] {
        &self.tokens[field.index()]
    }

    pub fn sigma_count(&self, level: SigmaLevel) -> u64 {
        self.sigma[level as usize]
    }
}

fn is_tactic_id(word: &str) -> bool {
    word.len() == 6
        && word[..2].eq_ignore_ascii_case("ta")
        && word[2..].chars().all(|c| c.is_ascii_digit())
}

fn level_index(level: &str) -> Option<usize> {
    match level.to_ascii_lowercase().as_str() {
        "critical" => Some(0),
        "high" => Some(1),
        "medium" => Some(2),
        "low" => Some(3),
        _ => None,
    }
}

/// The atomic text field of each attribute with searchable text: the field whose covering
/// text modifiers are exactly the ones the attribute table names for it.
fn text_attributes() -> &'static [(&'static Attribute, TextField)] {
    static FIELDS: OnceLock<Vec<(&'static Attribute, TextField)>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        ATTRIBUTES
            .iter()
            .filter_map(|attribute| Some((attribute, TextField::of_attribute(attribute)?)))
            .collect()
    })
}

impl TextField {
    /// The field holding `attribute`'s text values, `None` when no text modifier covers it.
    pub fn of_attribute(attribute: &Attribute) -> Option<TextField> {
        let wanted: BTreeSet<Modifier> = attribute
            .modifiers
            .iter()
            .filter_map(|name| Modifier::from_name(name))
            .filter(|m| m.kind() == ValueKind::Text)
            .collect();
        if wanted.is_empty() {
            return None;
        }
        TextField::ALL.into_iter().find(|field| {
            let covering: BTreeSet<Modifier> = MODIFIERS
                .iter()
                .map(|spec| spec.modifier)
                .filter(|m| m.text_fields().contains(field))
                .collect();
            covering == wanted
        })
    }
}

impl TextPattern {
    /// Does one value (any of its spellings) match?
    pub fn matches_value(&self, value: &TextValue) -> bool {
        value
            .variants
            .iter()
            .any(|v| text::contains_segments(v, &self.segments))
    }
}

impl Query {
    /// Does the sample match? `now` (Unix seconds) resolves relative dates (`fs:3d+`).
    pub fn matches(&self, doc: &SampleDoc, now: i64) -> bool {
        match self {
            Query::And(items) => items.iter().all(|q| q.matches(doc, now)),
            Query::Or(items) => items.iter().any(|q| q.matches(doc, now)),
            Query::Not(q) => !q.matches(doc, now),
            Query::Term(t) => t.matches(doc, now),
        }
    }

    /// Mark, by [`TextField::index`], the text fields the query's text terms read.
    fn mark_text_fields(&self, wanted: &mut [bool; 10]) {
        match self {
            Query::And(items) | Query::Or(items) => {
                for q in items {
                    q.mark_text_fields(wanted);
                }
            }
            Query::Not(q) => q.mark_text_fields(wanted),
            Query::Term(t) => {
                if matches!(t.value, Value::Text(_)) {
                    for field in t.modifier.text_fields() {
                        wanted[field.index()] = true;
                    }
                }
            }
        }
    }

    /// Values of the sample that positive text terms matched (for result snippets), at most
    /// `limit`, as reported (raw).
    pub fn snippets(&self, doc: &SampleDoc, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_snippets(doc, limit, &mut out);
        out
    }

    fn collect_snippets(&self, doc: &SampleDoc, limit: usize, out: &mut Vec<String>) {
        match self {
            Query::And(items) | Query::Or(items) => {
                for q in items {
                    q.collect_snippets(doc, limit, out);
                }
            }
            Query::Not(_) => {}
            Query::Term(t) => {
                let Value::Text(p) = &t.value else { return };
                for field in t.modifier.text_fields() {
                    for v in doc.text(*field) {
                        if out.len() >= limit {
                            return;
                        }
                        if p.matches_value(v) && !out.contains(&v.raw) {
                            out.push(v.raw.clone());
                        }
                    }
                }
            }
        }
    }
}

impl Term {
    pub fn matches(&self, doc: &SampleDoc, now: i64) -> bool {
        match &self.value {
            Value::Text(p) => self
                .modifier
                .text_fields()
                .iter()
                .any(|f| doc.text(*f).iter().any(|v| p.matches_value(v))),
            Value::Token(pattern) => self
                .modifier
                .token_field()
                .is_some_and(|f| doc.tokens(f).iter().any(|t| text::glob_match(pattern, t))),
            Value::Count(c) => self
                .modifier
                .sigma_level()
                .is_some_and(|l| c.matches(doc.sigma_count(l))),
            Value::Date(d) => {
                let t = match self.modifier {
                    Modifier::FirstSeen => doc.first_seen,
                    _ => doc.last_seen,
                };
                t.is_some_and(|t| d.matches(t, now))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use sandscope_model::BehaviourAttributes;

    fn report(sandbox: &str, command: &str, raw: &str) -> FileBehaviour {
        let mut attributes = BehaviourAttributes {
            sandbox_name: sandbox.into(),
            command_executions: vec![command.into()],
            ..Default::default()
        };
        attributes
            .raw_forms
            .insert(command.into(), vec![raw.into()]);
        FileBehaviour::new(&"a".repeat(64), attributes)
    }

    fn hits(doc: &SampleDoc, query: &str) -> bool {
        parse(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .matches(doc, 0)
    }

    #[test]
    fn values_match_by_every_raw_spelling_of_every_report() {
        let normalised = r#""%SAMPLEPATH%\etw-dns-app.exe" "#;
        let doc = SampleDoc::from_reports(
            &"a".repeat(64),
            &[
                report(
                    "CAPE Sandbox",
                    normalised,
                    r#""C:\Users\buddy\AppData\Local\Temp\etw-dns-app.exe" "#,
                ),
                report(
                    "Microsoft Sysinternals",
                    normalised,
                    r#""C:\Users\buddy\Desktop\etw-dns-app.exe" "#,
                ),
            ],
        );
        // One value, shown as reported, matched by its normalised and both raw spellings.
        assert_eq!(doc.text(TextField::CommandExecutions).len(), 1);
        assert_eq!(doc.text(TextField::CommandExecutions)[0].raw, normalised);
        for query in [
            r"behaviour_command_executions:%SAMPLEPATH%\etw-dns-app.exe",
            r"behaviour_command_executions:buddy\AppData\Local\Temp\etw-dns-app.exe",
            r"behaviour_command_executions:Desktop\etw-dns-app.exe",
            r"behaviour_processes:Temp\etw-dns-app",
        ] {
            assert!(hits(&doc, query), "{query}");
        }
        assert!(!hits(
            &doc,
            r"behaviour_command_executions:Downloads\etw-dns-app.exe"
        ));
        // Raw spellings belong to the field of their value only.
        assert!(!hits(&doc, r"behaviour_files:Temp\etw-dns-app.exe"));
    }

    #[test]
    fn attribute_table_and_modifier_table_name_the_same_modifiers() {
        let named: BTreeSet<&str> = ATTRIBUTES
            .iter()
            .flat_map(|a| a.modifiers.iter().copied())
            .collect();
        for name in &named {
            let modifier = Modifier::from_name(name)
                .unwrap_or_else(|| panic!("the attribute table names `{name}`, unknown here"));
            assert_eq!(
                modifier.name(),
                *name,
                "canonical names in the attribute table"
            );
        }
        for spec in MODIFIERS.iter().filter(|s| s.written) {
            assert!(
                named.contains(spec.name),
                "no attribute says it is covered by `{}`",
                spec.name
            );
        }
    }

    #[test]
    fn every_attribute_with_text_has_one_text_field_and_every_field_is_fed() {
        let mut fed = BTreeSet::new();
        for attribute in ATTRIBUTES {
            let has_text = attribute.visit_text(&BehaviourAttributes::default(), &mut |_| {});
            let field = TextField::of_attribute(attribute);
            assert_eq!(has_text, field.is_some(), "{}", attribute.name);
            fed.extend(field);
        }
        assert_eq!(fed.into_iter().collect::<Vec<_>>(), TextField::ALL.to_vec());
    }
}
