//! Sigma detection over Sysmon events: rule loading with a per-rule report, the logsource routing
//! table, the [`RuleEngine`] seam over `rsigma-eval`, explained hits, the behaviour-report
//! analysis (`sigma_analysis_results`, stats, ATT&CK techniques) and the bundled SigmaHQ rules.
//!
//! A [`SigmaEngine`] is built once (parse in parallel, compile in one batch) and is immutable
//! afterwards, so one instance can stay resident and serve every report and thread.
//!
//! Depends on the event model and the report model only; never on readers, storage or servers.

mod analysis;
mod base64offset;
mod bundled;
mod engine;
mod event;
mod hit;
pub mod routing;
mod rules;

pub use analysis::{MAX_MATCH_CONTEXTS, SigmaAnalysis};
pub use bundled::{BUNDLED_LICENSE_TEXT, bundled_rule_texts};
pub use engine::{RsigmaEngine, RuleEngine, RuleMatch};
pub use hit::{Hit, key_fields};
pub use rules::{
    Level, LoadError, LoadReport, RuleInfo, RuleOrigin, RuleReport, RuleStatus, RuleText,
    SIGMAHQ_LICENSE, SIGMAHQ_SOURCE, read_rule_path,
};

use rayon::prelude::*;
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
        let (infos, sigma_rules): (Vec<_>, Vec<_>) = parsed
            .into_iter()
            .map(|p| ((p.info, p.report), p.rule))
            .unzip();
        let (engine, errors) = RsigmaEngine::compile(sigma_rules);
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

    /// Number of rules that compiled.
    pub fn rule_count(&self) -> usize {
        self.engine.rule_count()
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
            .flat_map_iter(|(i, event)| {
                let mut out = Vec::new();
                self.engine.evaluate(event, &mut out);
                out.into_iter().map(move |m| (i, m))
            })
            .collect()
    }

    /// Explained hits over `events` (in event order), for hunting output.
    pub fn hits(&self, events: &[SysmonEvent]) -> Vec<Hit> {
        self.evaluate_all(events)
            .into_iter()
            .filter_map(|(i, m)| Some(Hit::new(events.get(i)?, m)))
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
