//! Sigma hits in VirusTotal's behaviour-report shape: `sigma_analysis_results`,
//! `sigma_analysis_stats` and the ATT&CK techniques the rules' tags name.

use crate::SigmaEngine;
use crate::engine::RuleMatch;
use crate::rules::{Level, RuleInfo};
use sandscope_event::SysmonEvent;
use sandscope_model::{
    MatchContext, MitreAttackTechnique, SigmaAnalysisResult, SigmaAnalysisStats,
};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Events quoted per rule in `match_context`; a noisy rule over a long run would otherwise
/// repeat thousands of near-identical events in one report.
pub const MAX_MATCH_CONTEXTS: usize = 100;

/// The Sigma sections of one behaviour report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SigmaAnalysis {
    /// One entry per rule that matched, highest level first, then by title.
    pub results: Vec<SigmaAnalysisResult>,
    /// The engine index of each result's rule (`rules[i]` is `results[i]`'s), so a caller
    /// that merged several rule sets in one engine knows which set each hit belongs to.
    pub rules: Vec<usize>,
    /// Matched rules per level (`informational` rules are not counted, as on VirusTotal).
    pub stats: SigmaAnalysisStats,
    /// ATT&CK techniques from the matched rules' `attack.tXXXX` tags, by id.
    pub techniques: Vec<MitreAttackTechnique>,
}

pub(crate) fn analyse(
    engine: &SigmaEngine,
    events: &[SysmonEvent],
    matches: &[(usize, RuleMatch)],
) -> SigmaAnalysis {
    // Correlations over the same events, oldest first; each firing quotes the events it
    // counted (declared first: the quotes below borrow its events).
    let correlated = engine.has_correlations().then(|| {
        let mut correlator = engine.correlator();
        correlator.feed(events, matches);
        correlator.finish()
    });
    let mut by_rule: HashMap<usize, Vec<&SysmonEvent>> = HashMap::new();
    for (event, m) in matches {
        if !engine.reports_matches_of(m.rule) {
            continue;
        }
        if let Some(event) = events.get(*event) {
            by_rule.entry(m.rule).or_default().push(event);
        }
    }
    if let Some(outcome) = &correlated {
        // A rule's firings may count the same event; each is quoted once.
        let mut quoted: HashSet<(usize, usize)> = HashSet::new();
        for hit in &outcome.hits {
            let list = by_rule.entry(hit.rule).or_default();
            for &i in &hit.events {
                if let Some(event) = outcome.events.get(i)
                    && quoted.insert((hit.rule, i))
                {
                    list.push(event);
                }
            }
        }
    }
    let mut matched: Vec<(usize, &RuleInfo, Vec<&SysmonEvent>)> = by_rule
        .into_iter()
        .filter_map(|(rule, events)| Some((rule, engine.rule(rule)?, events)))
        .collect();
    matched.sort_by(|(_, a, _), (_, b, _)| {
        b.level
            .cmp(&a.level)
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.id.cmp(&b.id))
    });

    let mut stats = SigmaAnalysisStats::default();
    let mut techniques: BTreeMap<String, (Option<Level>, String)> = BTreeMap::new();
    let mut results = Vec::with_capacity(matched.len());
    let rules = matched.iter().map(|(index, _, _)| *index).collect();
    for (_, rule, rule_events) in &matched {
        match rule.level {
            Some(Level::Critical) => stats.critical += 1,
            Some(Level::High) => stats.high += 1,
            Some(Level::Medium) => stats.medium += 1,
            Some(Level::Low) => stats.low += 1,
            Some(Level::Informational) | None => {}
        }
        for technique in rule.attack_techniques() {
            let entry = techniques
                .entry(technique)
                .or_insert_with(|| (rule.level, rule.title.clone()));
            // The most severe rule names the technique (rules are sorted most severe first).
            if rule.level > entry.0 {
                *entry = (rule.level, rule.title.clone());
            }
        }
        let match_context = rule_events
            .iter()
            .take(MAX_MATCH_CONTEXTS)
            .map(|event| match_context(event))
            .collect();
        results.push(SigmaAnalysisResult {
            rule_title: rule.title.clone(),
            rule_source: rule.source_name(),
            rule_level: rule
                .level
                .map(Level::as_str)
                .unwrap_or("unknown")
                .to_string(),
            rule_id: rule.id.clone().unwrap_or_default(),
            rule_author: rule.author.clone().unwrap_or_default(),
            rule_description: rule.description.clone().unwrap_or_default(),
            match_context,
        });
    }
    let techniques = techniques
        .into_iter()
        .map(|(id, (level, title))| MitreAttackTechnique {
            id,
            signature_description: title,
            severity: severity(level).to_string(),
            refs: Vec::new(),
        })
        .collect();
    SigmaAnalysis {
        results,
        rules,
        stats,
        techniques,
    }
}

/// The event as VirusTotal quotes it: `EventID` plus every `EventData` field, as strings.
fn match_context(event: &SysmonEvent) -> MatchContext {
    let mut values = BTreeMap::new();
    values.insert("EventID".to_string(), event.event_id.to_string());
    for (name, value) in event.data.iter() {
        values
            .entry(name.to_string())
            .or_insert_with(|| value.to_string());
    }
    MatchContext { values }
}

/// VirusTotal's `IMPACT_SEVERITY_*` for a rule level.
fn severity(level: Option<Level>) -> &'static str {
    match level {
        Some(Level::Critical | Level::High) => "IMPACT_SEVERITY_HIGH",
        Some(Level::Medium) => "IMPACT_SEVERITY_MEDIUM",
        Some(Level::Low) => "IMPACT_SEVERITY_LOW",
        Some(Level::Informational) => "IMPACT_SEVERITY_INFO",
        None => "IMPACT_SEVERITY_UNKNOWN",
    }
}
