//! The seam between our rule handling and a Sigma evaluator.
//!
//! [`RuleEngine`] is all the rest of the crate knows of the evaluator, so it can be swapped.
//! [`RsigmaEngine`] implements it with `rsigma-eval`: every rule added in one batch (one index
//! build; adding rule by rule rebuilds the index each time), the bloom prefilter left off (it
//! changed results in a peer measurement), and each event evaluated only under its own
//! logsources from [`crate::routing`].

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

/// [`RuleEngine`] over `rsigma-eval`.
pub struct RsigmaEngine {
    engine: Engine,
    logsources: LogsourceTable,
}

impl RsigmaEngine {
    /// Compile `rules` (index `i` of the input is rule `i` of the matches) in one batch.
    /// Returns the engine and the rules that failed to compile, by input index.
    pub fn compile(rules: Vec<SigmaRule>) -> (Self, Vec<(usize, String)>) {
        let mut engine = Engine::new();
        engine.set_bloom_prefilter(false);
        engine.set_match_detail(MatchDetailLevel::Summary);
        // The evaluator reports matches by rule id; ids are replaced by our own rule index so
        // a match maps back to its rule even for rules without (or with duplicate) ids.
        let rules: Vec<SigmaRule> = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut rule)| {
                rule.id = Some(i.to_string());
                crate::base64offset::rewrite_rule(&mut rule);
                rule
            })
            .collect();
        let errors = engine
            .add_rules(rules.iter())
            .into_iter()
            .map(|(i, err)| (i, err.to_string()))
            .collect();
        (
            Self {
                engine,
                logsources: LogsourceTable::new(),
            },
            errors,
        )
    }
}

impl RuleEngine for RsigmaEngine {
    fn evaluate(&self, event: &SysmonEvent, out: &mut Vec<RuleMatch>) {
        let sigma_event = SigmaEvent::new(event);
        let start = out.len();
        for logsource in self.logsources.of(event).iter() {
            for result in self.engine.evaluate_with_logsource(&sigma_event, logsource) {
                let Some(rule) = result
                    .header
                    .rule_id
                    .as_deref()
                    .and_then(|id| id.parse().ok())
                else {
                    continue;
                };
                // A channel-wide rule matches under every logsource of a multi-category event.
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
        self.engine.rule_count()
    }
}
