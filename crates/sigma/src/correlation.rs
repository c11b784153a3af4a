//! Sigma correlation rules (`event_count`, `value_count`, `temporal`, `temporal_ordered`) over
//! one stream of events: one log file in `hunt`, one sample's attributed events in a report.
//!
//! The detection rules a correlation names are evaluated as every other rule, by the resident
//! [`crate::RuleEngine`] under their own logsources; their matches are then fed, in time order,
//! to a fresh `rsigma-eval` `CorrelationEngine` per stream (its state is per stream and
//! mutable; the compiled rule set stays shared and immutable). References are resolved at load
//! time to our own rule indexes, so a correlation finds its rules whether it names them by
//! `id` or by `name`, and one that names a rule that is not loaded is rejected then, with the
//! name, instead of never firing.
//!
//! After a correlation fires for a group, that group's window starts again (`Reset`): each
//! firing stands for a fresh set of events, so a long log does not repeat one alert per event.
//! The events a firing quotes are the matches of its rules inside its time span and group
//! (at most [`crate::MAX_MATCH_CONTEXTS`]). Memory is bounded: a stream keeps at most
//! [`MAX_CORRELATED_EVENTS`] matching events; past that, later ones are counted, not kept.

use crate::engine::RuleMatch;
use crate::event::SigmaEvent;
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, DetectionBody, EvaluationResult,
    ResultBody, RuleHeader, TimestampFallback,
};
use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType};
use sandscope_event::SysmonEvent;
use std::collections::{HashMap, HashSet};

/// Matching events one stream keeps for correlation; more are counted in
/// [`CorrelationOutcome::dropped`].
pub const MAX_CORRELATED_EVENTS: usize = 200_000;

/// Correlation state kept per stream (groups × windows), as `rsigma-eval` bounds it.
const MAX_STATE_ENTRIES: usize = 100_000;
/// Entries kept inside one group's window.
const MAX_GROUP_ENTRIES: usize = 10_000;

/// The loaded correlation rules, resolved against the engine's rule list.
#[derive(Default)]
pub(crate) struct Correlations {
    /// Each correlation with every `rules:` reference (and its own id) replaced by the engine
    /// index of the rule, as text (the form detections are fed under).
    rules: Vec<ResolvedCorrelation>,
    /// Detection rules some correlation names: their matches are fed to the correlator.
    referenced: HashSet<usize>,
    /// Detection rules named only by correlations with `generate: false` (Sigma's default):
    /// their matches are not reported on their own.
    silent: HashSet<usize>,
}

struct ResolvedCorrelation {
    /// Engine index of the correlation rule.
    index: usize,
    rule: CorrelationRule,
    /// Detection rules (engine indexes) whose matches this correlation counts.
    detection_refs: Vec<usize>,
}

/// A correlation rule as parsed, with its engine index.
pub(crate) struct PendingCorrelation {
    pub index: usize,
    pub rule: CorrelationRule,
}

impl Correlations {
    /// Resolve every correlation's references through `names` (rule `id` and `name` → engine
    /// index; detection rules and correlations alike). Returns the resolved set and the
    /// correlations rejected, by engine index, with the reason.
    pub(crate) fn resolve(
        pending: Vec<PendingCorrelation>,
        names: &HashMap<String, usize>,
        is_detection: impl Fn(usize) -> bool,
    ) -> (Correlations, Vec<(usize, String)>) {
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let mut resolved: Vec<ResolvedCorrelation> = Vec::new();
        for PendingCorrelation { index, mut rule } in pending {
            let mut refs = Vec::with_capacity(rule.rules.len());
            let mut missing = None;
            for name in &rule.rules {
                match names.get(name) {
                    Some(&target) if target != index => refs.push(target),
                    Some(_) => {
                        missing = Some(format!("correlation rule names itself ({name})"));
                        break;
                    }
                    None => {
                        missing = Some(format!(
                            "correlation names rule '{name}', which is not loaded (load the rules a correlation names with it)"
                        ));
                        break;
                    }
                }
            }
            if let Some(reason) = missing {
                rejected.push((index, reason));
                continue;
            }
            require_every_rule_for_temporal(&mut rule);
            rule.rules = refs.iter().map(usize::to_string).collect();
            rule.id = Some(index.to_string());
            rule.name = None;
            let detection_refs = refs.iter().copied().filter(|&r| is_detection(r)).collect();
            resolved.push(ResolvedCorrelation {
                index,
                rule,
                detection_refs,
            });
        }
        // A correlation naming a rejected correlation cannot fire either: drop until stable.
        loop {
            let gone: HashSet<String> = rejected.iter().map(|(i, _)| i.to_string()).collect();
            let before = resolved.len();
            resolved.retain(|c| {
                let dangling = c.rule.rules.iter().find(|r| gone.contains(*r));
                if let Some(r) = dangling {
                    rejected.push((
                        c.index,
                        format!("correlation names rule #{r}, which was rejected"),
                    ));
                }
                dangling.is_none()
            });
            if resolved.len() == before {
                break;
            }
        }
        // What rsigma-eval itself refuses (bad condition, unsupported type, bad timespan).
        let mut check = new_engine();
        resolved.retain(|c| match check.add_correlation(&c.rule) {
            Ok(()) => true,
            Err(err) => {
                rejected.push((c.index, err.to_string()));
                false
            }
        });
        let referenced: HashSet<usize> = resolved
            .iter()
            .flat_map(|c| c.detection_refs.iter().copied())
            .collect();
        let generating: HashSet<usize> = resolved
            .iter()
            .filter(|c| c.rule.generate)
            .flat_map(|c| c.detection_refs.iter().copied())
            .collect();
        let silent = referenced.difference(&generating).copied().collect();
        rejected.sort_by_key(|(i, _)| *i);
        (
            Correlations {
                rules: resolved,
                referenced,
                silent,
            },
            rejected,
        )
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.rules.len()
    }

    /// True for a detection rule whose matches are only input to correlations.
    pub(crate) fn is_silent(&self, rule: usize) -> bool {
        self.silent.contains(&rule)
    }
}

/// Sigma's `temporal` fires when *every* named rule matched inside the span. `rsigma-eval` 0.23
/// parses a temporal rule without `condition` as "at least one rule" (`gte: 1`), which fires on
/// any single match; such a rule gets the specification's meaning here (an explicit `gte: 1`
/// reads the same, and would only repeat its rules' own matches). Other conditions are kept.
fn require_every_rule_for_temporal(rule: &mut CorrelationRule) {
    if rule.correlation_type != CorrelationType::Temporal {
        return;
    }
    if let CorrelationCondition::Threshold {
        predicates,
        field: None,
        ..
    } = &mut rule.condition
        && predicates.as_slice() == [(ConditionOperator::Gte, 1)]
    {
        let every = u64::try_from(rule.rules.len()).unwrap_or(u64::MAX);
        *predicates = vec![(ConditionOperator::Gte, every)];
    }
}

fn new_engine() -> CorrelationEngine {
    CorrelationEngine::new(CorrelationConfig {
        // Times come from the events themselves (`process_with_detections`), never the clock.
        timestamp_fallback: TimestampFallback::Skip,
        max_state_entries: MAX_STATE_ENTRIES,
        max_group_entries: Some(MAX_GROUP_ENTRIES),
        action_on_match: CorrelationAction::Reset,
        ..CorrelationConfig::default()
    })
}

/// One firing of a correlation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Engine index of the correlation rule.
    pub rule: usize,
    /// The event that completed the condition (index into [`CorrelationOutcome::events`]).
    pub event: usize,
    /// The matches it counted: its rules' events inside its time span and group, oldest
    /// first, at most [`crate::MAX_MATCH_CONTEXTS`] (indexes into the outcome's events).
    pub events: Vec<usize>,
    /// The `group-by` fields and their values.
    pub group: Vec<(String, String)>,
    /// Sigma's name of the correlation type (`event_count`, `value_count`, `temporal`,
    /// `temporal_ordered`, or one of the numeric aggregations).
    pub correlation_type: &'static str,
    /// The aggregated value the condition was met with (a count).
    pub value: f64,
    pub timespan_secs: u64,
}

impl CorrelationHit {
    /// The hit as a rule match on its completing event: the aggregate and the group as fields.
    pub fn as_rule_match(&self) -> RuleMatch {
        let mut fields = vec![(self.correlation_type.to_string(), format!("{}", self.value))];
        fields.extend(self.group.iter().cloned());
        RuleMatch {
            rule: self.rule,
            selections: vec![format!(
                "{} within {} s",
                self.correlation_type, self.timespan_secs
            )],
            fields,
        }
    }
}

/// What correlating one stream found.
#[derive(Debug, Default)]
pub struct CorrelationOutcome {
    /// The events the correlator kept (those that matched a rule some correlation names).
    pub events: Vec<SysmonEvent>,
    pub hits: Vec<CorrelationHit>,
    /// Matching events past [`MAX_CORRELATED_EVENTS`], not correlated.
    pub dropped: usize,
}

/// Collects one stream's matches of the rules correlations name, then correlates them in time
/// order ([`Correlator::finish`]). Made by [`crate::SigmaEngine::correlator`].
pub struct Correlator<'e> {
    correlations: &'e Correlations,
    /// Kept events, each with the referenced rules it matched.
    events: Vec<(SysmonEvent, Vec<RuleMatch>)>,
    dropped: usize,
}

impl<'e> Correlator<'e> {
    pub(crate) fn new(correlations: &'e Correlations) -> Self {
        Correlator {
            correlations,
            events: Vec::new(),
            dropped: 0,
        }
    }

    /// Take one batch's matches (`(event index, match)` as [`crate::SigmaEngine::evaluate_all`]
    /// gives them).
    pub fn feed(&mut self, events: &[SysmonEvent], matches: &[(usize, RuleMatch)]) {
        if self.correlations.is_empty() {
            return;
        }
        let mut last: Option<usize> = None;
        for (at, m) in matches {
            if !self.correlations.referenced.contains(&m.rule) {
                continue;
            }
            if last == Some(*at) {
                if let Some((_, kept)) = self.events.last_mut() {
                    kept.push(m.clone());
                }
                continue;
            }
            let Some(event) = events.get(*at) else {
                continue;
            };
            if self.events.len() >= MAX_CORRELATED_EVENTS {
                self.dropped += 1;
                last = None;
                continue;
            }
            self.events.push((event.clone(), vec![m.clone()]));
            last = Some(*at);
        }
    }

    /// Correlate everything fed, oldest event first (ties in arrival order).
    pub fn finish(self) -> CorrelationOutcome {
        let Correlator {
            correlations,
            events,
            dropped,
        } = self;
        if events.is_empty() {
            return CorrelationOutcome {
                dropped,
                ..CorrelationOutcome::default()
            };
        }
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].0.time, i));
        let mut engine = new_engine();
        for c in &correlations.rules {
            // Checked at load time; a failure here would only mean this rule never fires.
            let _ = engine.add_correlation(&c.rule);
        }
        let by_index: HashMap<usize, &ResolvedCorrelation> =
            correlations.rules.iter().map(|c| (c.index, c)).collect();
        let mut hits = Vec::new();
        for (position, &i) in order.iter().enumerate() {
            let (event, matches) = &events[i];
            let detections = matches.iter().map(detection).collect();
            let ts = event.time.as_second();
            let results = engine.process_with_detections(&SigmaEvent::new(event), detections, ts);
            for result in results {
                let Some(body) = result.as_correlation() else {
                    continue;
                };
                let Some(rule) = result
                    .header
                    .rule_id
                    .as_deref()
                    .and_then(|id| id.parse::<usize>().ok())
                else {
                    continue;
                };
                let counted = by_index
                    .get(&rule)
                    .map(|c| {
                        counted_events(
                            &events,
                            &order[..=position],
                            &c.detection_refs,
                            &body.group_key,
                            ts.saturating_sub(
                                i64::try_from(body.timespan_secs).unwrap_or(i64::MAX),
                            ),
                        )
                    })
                    .unwrap_or_default();
                hits.push(CorrelationHit {
                    rule,
                    event: i,
                    events: counted,
                    group: body.group_key.clone(),
                    correlation_type: body.correlation_type.as_str(),
                    value: body.aggregated_value,
                    timespan_secs: body.timespan_secs,
                });
            }
        }
        CorrelationOutcome {
            events: events.into_iter().map(|(event, _)| event).collect(),
            hits,
            dropped,
        }
    }
}

/// A match of ours in the shape `rsigma-eval` correlates (rule id = our engine index).
fn detection(m: &RuleMatch) -> EvaluationResult {
    EvaluationResult {
        header: RuleHeader {
            rule_title: String::new(),
            rule_id: Some(m.rule.to_string()),
            level: None,
            tags: Vec::new(),
            custom_attributes: Default::default(),
            enrichments: None,
        },
        // The correlator keys on the rule id alone; selections and fields stay with our match.
        body: ResultBody::Detection(DetectionBody {
            matched_selections: Vec::new(),
            matched_fields: Vec::new(),
            event: None,
        }),
    }
}

/// The events a firing counted: matches of `refs` from `since` on, in the firing's group,
/// oldest first, capped. A group field an event does not carry under that name (an alias)
/// does not exclude it.
fn counted_events(
    events: &[(SysmonEvent, Vec<RuleMatch>)],
    seen: &[usize],
    refs: &[usize],
    group: &[(String, String)],
    since: i64,
) -> Vec<usize> {
    let mut out: Vec<usize> = seen
        .iter()
        .rev()
        .copied()
        .take_while(|&i| events[i].0.time.as_second() >= since)
        .filter(|&i| {
            let (event, matches) = &events[i];
            matches.iter().any(|m| refs.contains(&m.rule))
                && group.iter().all(|(field, value)| {
                    SigmaEvent::new(event)
                        .lookup(field)
                        .is_none_or(|v| v == value)
                })
        })
        .take(crate::MAX_MATCH_CONTEXTS)
        .collect();
    out.reverse();
    out
}
