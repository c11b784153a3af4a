//! Every enabled Sigma ruleset without correlation rules, compiled into one engine with each
//! rule tagged with its ruleset: a sample's events are evaluated once for all of them, not once
//! per ruleset (100 rulesets would otherwise mean 100 passes over every report's events).
//!
//! A ruleset with correlation rules keeps an engine of its own: a correlation names the rules
//! it counts, and those names must resolve within its own ruleset, never to another's rule.
//! The analysis is the report's own ([`crate::rules::sigma_rule_hits`]), so a merged ruleset
//! finds exactly what it would find alone.

use crate::rules::{RuleHit, sigma_rule_hits, sigma_rule_texts};
use sandscope_event::SysmonEvent;
use sandscope_sigma::{SigmaEngine, SigmaEngineBuilder};

/// The rulesets merged, as `(id, modification_date)`: unchanged means no rebuilding.
pub(crate) type Members = Vec<(u64, i64)>;

pub(crate) struct MergedSigma {
    engine: SigmaEngine,
    /// The ruleset of each rule, by engine index.
    ruleset_of: Vec<u64>,
    pub(crate) members: Members,
}

impl MergedSigma {
    /// One engine over `rulesets` (`(id, modification_date, rules text)`).
    pub(crate) fn build(rulesets: &[(u64, i64, &str)]) -> MergedSigma {
        let mut builder = SigmaEngineBuilder::new();
        for (id, _, text) in rulesets {
            builder.add_texts(sigma_rule_texts(text, &label(*id)));
        }
        let (engine, _) = builder.build();
        let ruleset_of = (0..)
            .map_while(|i| engine.rule(i))
            .map(|rule| ruleset_of(&rule.file))
            .collect();
        MergedSigma {
            engine,
            ruleset_of,
            members: rulesets.iter().map(|(id, v, _)| (*id, *v)).collect(),
        }
    }

    /// Every merged ruleset's hits over one sample's events, with the ruleset's id.
    pub(crate) fn hits(&self, events: &[SysmonEvent]) -> Vec<(u64, RuleHit)> {
        sigma_rule_hits(&self.engine, events)
            .into_iter()
            .filter_map(|(index, hit)| Some((*self.ruleset_of.get(index)?, hit)))
            .collect()
    }
}

fn label(id: u64) -> String {
    format!("ruleset {id} ")
}

/// The ruleset a merged rule's file name (`ruleset N document M`) names.
fn ruleset_of(file: &str) -> u64 {
    file.strip_prefix("ruleset ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(id, _)| id.parse().ok())
        .unwrap_or(0)
}
