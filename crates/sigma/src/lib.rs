//! Sigma detection over Sysmon events: rule loading with a per-rule report, the logsource routing
//! table, the [`RuleEngine`] seam over `rsigma-eval`, explained hits, the behaviour-report
//! analysis (`sigma_analysis_results`, stats, ATT&CK techniques) and the bundled SigmaHQ rules.
//!
//! A [`SigmaEngine`] is built once (parse in parallel, compile in one batch) and is immutable
//! afterwards, so one instance can stay resident and serve every report and thread.
//!
//! Correlation rules (`event_count`, `value_count`, `temporal`, `temporal_ordered`) load with
//! the detection rules they name (by `id` or `name`, resolved at load time; a dangling name is a
//! rejection saying so). Per-event evaluation is unchanged; a [`Correlator`] per stream (one log
//! file in `hunt`, one sample's events in a report) then correlates the named rules' matches in
//! time order (see `correlation.rs`). Rules a correlation names with `generate: false` (Sigma's
//! default) feed it without being reported on their own.
//!
//! Depends on the event model and the report model only; never on readers, storage or servers.

mod analysis;
mod base64offset;
mod bundled;
mod correlation;
mod engine;
mod event;
mod hit;
pub mod routing;
mod rules;

pub use analysis::{MAX_MATCH_CONTEXTS, SigmaAnalysis};
pub use bundled::{BUNDLED_LICENSE_TEXT, bundled_rule_texts};
pub use correlation::{CorrelationHit, CorrelationOutcome, Correlator, MAX_CORRELATED_EVENTS};
pub use engine::{RsigmaEngine, RuleEngine, RuleMatch};
pub use hit::{Hit, key_fields};
pub use rules::{
    Level, LoadError, LoadReport, RuleInfo, RuleOrigin, RuleReport, RuleStatus, RuleText,
    SIGMAHQ_LICENSE, SIGMAHQ_SOURCE, read_rule_path,
};

use correlation::{Correlations, PendingCorrelation};
use rayon::prelude::*;
use rules::ParsedBody;
use sandscope_event::SysmonEvent;
use std::collections::HashMap;
use std::path::Path;

/// Collects rule files, then compiles them into a [`SigmaEngine`].
#[derive(Default)]
pub struct SigmaEngineBuilder {
    texts: Vec<RuleText>,
}

impl SigmaEngineBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the SigmaHQ Windows rules bundled in the binary.
    pub fn add_bundled(&mut self) -> Result<&mut Self, LoadError> {
        self.texts.extend(bundled_rule_texts()?);
        Ok(self)
    }

    /// Add a rule file, or every `.yml`/`.yaml` under a folder.
    pub fn add_path(&mut self, path: &Path) -> Result<&mut Self, LoadError> {
        self.texts.extend(read_rule_path(path)?);
        Ok(self)
    }

    /// Add rule texts already in memory.
    pub fn add_texts(&mut self, texts: impl IntoIterator<Item = RuleText>) -> &mut Self {
        self.texts.extend(texts);
        self
    }

    /// Parse (in parallel) and compile (in one batch) every rule added. Never fails on a bad
    /// rule: each one is in the returned report.
    pub fn build(self) -> (SigmaEngine, LoadReport) {
        let (parsed, mut reports) = rules::parse_rule_texts(&self.texts);
        // Detection rules take the first indexes (the evaluator's own), correlations follow.
        let (detections, correlations): (Vec<_>, Vec<_>) = parsed
            .into_iter()
            .partition(|p| matches!(p.rule, ParsedBody::Detection(_)));
        let mut infos = Vec::with_capacity(detections.len() + correlations.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut sigma_rules = Vec::with_capacity(detections.len());
        let mut pending = Vec::with_capacity(correlations.len());
        for (index, p) in detections.into_iter().chain(correlations).enumerate() {
            for name in p.info.id.iter().chain(&p.name) {
                names.entry(name.clone()).or_insert(index);
            }
            match p.rule {
                ParsedBody::Detection(rule) => sigma_rules.push(*rule),
                ParsedBody::Correlation(rule) => {
                    pending.push(PendingCorrelation { index, rule: *rule })
                }
            }
            infos.push((p.info, p.report));
        }
        let detection_count = sigma_rules.len();
        let (engine, mut errors) = RsigmaEngine::compile(sigma_rules);
        // A correlation may only name detection rules that compiled.
        for (index, _) in &errors {
            names.retain(|_, i| i != index);
        }
        let (correlations, rejected) =
            Correlations::resolve(pending, &names, |i| i < detection_count);
        errors.extend(rejected);
        let mut compiled = vec![true; infos.len()];
        let text_of: HashMap<&str, &str> = self
            .texts
            .iter()
            .map(|t| (t.file.as_str(), t.text.as_str()))
            .collect();
        for (index, reason) in errors {
            let Some(((info, report), flag)) = infos.get(index).zip(compiled.get_mut(index)) else {
                continue;
            };
            *flag = false;
            let text = text_of.get(info.file.as_str()).copied().unwrap_or_default();
            if let Some(slot) = reports.get_mut(*report) {
                *slot = rules::rejected_report(info, text, &reason);
            }
        }
        let rules = infos.into_iter().map(|(info, _)| info).collect();
        (
            SigmaEngine {
                rules,
                compiled,
                engine: Box::new(engine),
                correlations,
            },
            LoadReport { rules: reports },
        )
    }
}

/// A compiled Sigma rule set over Sysmon events. Immutable and shareable between threads.
pub struct SigmaEngine {
    /// Every rule handed to the evaluator, by the index matches refer to.
    rules: Vec<RuleInfo>,
    /// False for rules the evaluator could not compile (they never match).
    compiled: Vec<bool>,
    engine: Box<dyn RuleEngine>,
    /// The correlation rules (their indexes follow the detection rules').
    correlations: Correlations,
}

impl SigmaEngine {
    /// The bundled SigmaHQ Windows rules alone.
    pub fn bundled() -> Result<(SigmaEngine, LoadReport), LoadError> {
        let mut builder = SigmaEngineBuilder::new();
        builder.add_bundled()?;
        Ok(builder.build())
    }

    /// The rule a [`RuleMatch::rule`] refers to.
    pub fn rule(&self, index: usize) -> Option<&RuleInfo> {
        self.rules.get(index)
    }

    /// The rules that compiled, in load order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleInfo> {
        self.rules
            .iter()
            .zip(&self.compiled)
            .filter(|(_, ok)| **ok)
            .map(|(r, _)| r)
    }

    /// Number of rules that loaded: detection rules that compiled, and correlations.
    pub fn rule_count(&self) -> usize {
        self.engine.rule_count() + self.correlations.len()
    }

    /// True when a correlation rule is loaded (then streams are worth a [`Correlator`]).
    pub fn has_correlations(&self) -> bool {
        !self.correlations.is_empty()
    }

    /// A correlator for one stream of events (one log file, one sample's events).
    pub fn correlator(&self) -> Correlator<'_> {
        Correlator::new(&self.correlations)
    }

    /// True when a rule's own matches are reported: every rule except detection rules that
    /// only feed correlations (Sigma's `generate: false`, the default).
    pub fn reports_matches_of(&self, rule: usize) -> bool {
        !self.correlations.is_silent(rule)
    }

    /// The rules matching one event.
    pub fn evaluate(&self, event: &SysmonEvent) -> Vec<RuleMatch> {
        let mut out = Vec::new();
        self.engine.evaluate(event, &mut out);
        out
    }

    /// Every (event index, match) over `events`, evaluated in parallel, in event order.
    pub fn evaluate_all(&self, events: &[SysmonEvent]) -> Vec<(usize, RuleMatch)> {
        events
            .par_iter()
            .enumerate()
            .with_min_len(64)
            .flat_map_iter(|(i, event)| self.matches_of(i, event))
            .collect()
    }

    /// [`Self::evaluate_all`] on the calling thread alone: for a caller that already runs one
    /// stream per thread (many small logs), where splitting each batch only adds hand-offs.
    pub fn evaluate_all_here(&self, events: &[SysmonEvent]) -> Vec<(usize, RuleMatch)> {
        events
            .iter()
            .enumerate()
            .flat_map(|(i, event)| self.matches_of(i, event))
            .collect()
    }

    fn matches_of(
        &self,
        i: usize,
        event: &SysmonEvent,
    ) -> impl Iterator<Item = (usize, RuleMatch)> {
        let mut out = Vec::new();
        self.engine.evaluate(event, &mut out);
        out.into_iter().map(move |m| (i, m))
    }

    /// Explained hits of `matches` over `events` (as [`Self::evaluate_all`] gives them), for
    /// hunting output: correlation-only rules' matches left out (feed them to a
    /// [`Correlator`]; [`Self::correlation_hits`] explains what it finds).
    pub fn hits(&self, events: &[SysmonEvent], matches: Vec<(usize, RuleMatch)>) -> Vec<Hit> {
        matches
            .into_iter()
            .filter(|(_, m)| self.reports_matches_of(m.rule))
            .filter_map(|(i, m)| Some(Hit::new(events.get(i)?, m)))
            .collect()
    }

    /// A correlator's findings as hits, each on the event that completed it.
    pub fn correlation_hits(&self, outcome: &CorrelationOutcome) -> Vec<Hit> {
        outcome
            .hits
            .iter()
            .filter_map(|hit| {
                Some(Hit::new(
                    outcome.events.get(hit.event)?,
                    hit.as_rule_match(),
                ))
            })
            .collect()
    }

    /// The Sigma part of a behaviour report over one sample's events.
    pub fn analyse(&self, events: &[SysmonEvent]) -> SigmaAnalysis {
        analysis::analyse(self, events, &self.evaluate_all(events))
    }
}

#[cfg(test)]
mod tests {
    /// The engine is built once and shared by every report and thread.
    #[test]
    fn engine_is_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::SigmaEngine>();
    }
}
