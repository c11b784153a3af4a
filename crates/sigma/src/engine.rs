//! The seam between our rule handling and a Sigma evaluator.
//!
//! [`RuleEngine`] is all the rest of the crate knows of the evaluator, so it can be swapped.
//! [`RsigmaEngine`] implements it with `rsigma-eval`: every rule added in one batch (one index
//! build; adding rule by rule rebuilds the index each time), the bloom prefilter left off (over
//! every ../shared/corpus log it gave the same matches as without it, but the engine took ~20%
//! longer), and each event evaluated only under its own logsources from [`crate::routing`].

use crate::event::SigmaEvent;
use crate::routing::LogsourceTable;
use rsigma_eval::{Engine, MatchDetailLevel};
use rsigma_parser::SigmaRule;
use sandscope_event::SysmonEvent;

/// One rule that matched one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Index of the rule in the engine's rule list.
    pub rule: usize,
    /// The named detections (selections) that matched.
    pub selections: Vec<String>,
    /// The event fields that matched, with their values.
    pub fields: Vec<(String, String)>,
}

/// A compiled, immutable rule set that can be shared between threads and reports.
pub trait RuleEngine: Send + Sync {
    /// Append to `out` the rules of the event's logsource that match it, each once.
    fn evaluate(&self, event: &SysmonEvent, out: &mut Vec<RuleMatch>);
    /// Number of compiled rules.
    fn rule_count(&self) -> usize;
}

/// A rule with its index in the engine's rule list.
type IndexedRule = (usize, SigmaRule);

/// [`RuleEngine`] over `rsigma-eval`.
///
/// Rules are partitioned by logsource category, one evaluator per category (each filled in one
/// batch) plus one for channel-wide rules (`service: sysmon`, or no category). An event is
/// evaluated by the evaluators of its own categories only, so a registry event that belongs to
/// three categories is indexed against each rule once, and per-category candidate indexes stay
/// small.
pub struct RsigmaEngine {
    /// (category, evaluator); `None` holds the rules without a category.
    partitions: Vec<(Option<String>, Engine)>,
    logsources: LogsourceTable,
}

impl RsigmaEngine {
    /// Compile `rules` (index `i` of the input is rule `i` of the matches), each partition in
    /// one batch. Returns the engine and the rules that failed to compile, by input index.
    pub fn compile(rules: Vec<SigmaRule>) -> (Self, Vec<(usize, String)>) {
        // The evaluator reports matches by rule id; ids are replaced by our own rule index so
        // a match maps back to its rule even for rules without (or with duplicate) ids.
        let mut by_category: Vec<(Option<String>, Vec<IndexedRule>)> = Vec::new();
        for (i, mut rule) in rules.into_iter().enumerate() {
            rule.id = Some(i.to_string());
            crate::base64offset::rewrite_rule(&mut rule);
            let category = rule
                .logsource
                .category
                .as_ref()
                .map(|c| c.to_ascii_lowercase());
            match by_category.iter_mut().find(|(c, _)| *c == category) {
                Some((_, list)) => list.push((i, rule)),
                None => by_category.push((category, vec![(i, rule)])),
            }
        }
        let mut errors = Vec::new();
        let mut partitions = Vec::with_capacity(by_category.len());
        for (category, list) in by_category {
            let mut engine = Engine::new();
            engine.set_bloom_prefilter(false);
            engine.set_match_detail(MatchDetailLevel::Summary);
            for (at, err) in engine.add_rules(list.iter().map(|(_, rule)| rule)) {
                if let Some((index, _)) = list.get(at) {
                    errors.push((*index, err.to_string()));
                }
            }
            partitions.push((category, engine));
        }
        errors.sort_by_key(|(i, _)| *i);
        (
            Self {
                partitions,
                logsources: LogsourceTable::new(),
            },
            errors,
        )
    }

    fn partition(&self, category: Option<&str>) -> Option<&Engine> {
        self.partitions
            .iter()
            .find(|(c, _)| c.as_deref() == category)
            .map(|(_, engine)| engine)
    }
}

impl RuleEngine for RsigmaEngine {
    fn evaluate(&self, event: &SysmonEvent, out: &mut Vec<RuleMatch>) {
        let sigma_event = SigmaEvent::new(event);
        let start = out.len();
        let logsources = self.logsources.of(event);
        // Channel-wide rules once, under the logsource that carries `service: sysmon`; then
        // each category's rules under that category.
        let channel_wide = logsources
            .first()
            .and_then(|ls| Some((self.partition(None)?, ls)));
        let by_category = logsources.iter().filter_map(|ls| {
            let category = ls.category.as_deref()?;
            Some((self.partition(Some(category))?, ls))
        });
        for (engine, logsource) in channel_wide.into_iter().chain(by_category) {
            for result in engine.evaluate_with_logsource(&sigma_event, logsource) {
                let Some(rule) = result
                    .header
                    .rule_id
                    .as_deref()
                    .and_then(|id| id.parse().ok())
                else {
                    continue;
                };
                if out[start..].iter().any(|m| m.rule == rule) {
                    continue;
                }
                let (selections, fields) = match result.as_detection() {
                    Some(detection) => (
                        detection.matched_selections.clone(),
                        detection
                            .matched_fields
                            .iter()
                            .map(|f| {
                                let value = match &f.value {
                                    serde_json::Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                };
                                (f.field.clone(), value)
                            })
                            .collect(),
                    ),
                    None => (Vec::new(), Vec::new()),
                };
                out.push(RuleMatch {
                    rule,
                    selections,
                    fields,
                });
            }
        }
    }

    fn rule_count(&self) -> usize {
        self.partitions.iter().map(|(_, e)| e.rule_count()).sum()
    }
}
