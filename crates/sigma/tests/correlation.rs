//! Sigma correlation rules (`event_count`, `value_count`, `temporal`, `temporal_ordered`) on a
//! real log: a rundll32-loaded DLL that writes registry values in bursts and creates a scheduled
//! task (EVTX-ATTACK-SAMPLES, GPL-3.0). The rules are ours, in `tests/rules/correlation/`.

mod common;

use sandscope_event::SysmonEvent;
use sandscope_sigma::{RuleStatus, SigmaAnalysis, SigmaEngine, SigmaEngineBuilder};
use std::path::PathBuf;

const LOG: &str =
    "sbousseaden_EVTX-ATTACK-SAMPLES/AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx";

fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/rules/correlation"
    ))
}

fn events() -> Vec<SysmonEvent> {
    sandscope_read::read_all(&common::vendored().join(LOG))
        .expect("vendored log reads")
        .events
}

fn engine_with(files: &[&str]) -> SigmaEngine {
    let mut builder = SigmaEngineBuilder::new();
    for file in files {
        builder
            .add_path(&rules_dir().join(file))
            .expect("rule file reads");
    }
    let (engine, report) = builder.build();
    assert_eq!(report.rejected(), 0, "{:#?}", report.rules);
    engine
}

fn engine_from_text(text: &str) -> (SigmaEngine, sandscope_sigma::LoadReport) {
    let mut builder = SigmaEngineBuilder::new();
    builder.add_texts([sandscope_sigma::RuleText {
        file: "inline.yml".into(),
        origin: sandscope_sigma::RuleOrigin::File,
        text: text.into(),
    }]);
    builder.build()
}

fn analyse(engine: &SigmaEngine) -> SigmaAnalysis {
    engine.analyse(&events())
}

fn result<'a>(
    analysis: &'a SigmaAnalysis,
    id: &str,
) -> Option<&'a sandscope_model::SigmaAnalysisResult> {
    analysis.results.iter().find(|r| r.rule_id == id)
}

#[test]
fn correlation_rules_load_with_the_rules_they_name() {
    let mut builder = SigmaEngineBuilder::new();
    builder.add_path(&rules_dir()).expect("rules folder reads");
    let (engine, report) = builder.build();
    assert_eq!(report.rejected(), 0, "{:#?}", report.rules);
    assert!(engine.has_correlations());
    let correlations: Vec<_> = engine
        .rules()
        .filter(|r| r.logsource.starts_with("correlation/"))
        .map(|r| r.logsource.as_str())
        .collect();
    assert_eq!(
        correlations,
        [
            "correlation/event_count",
            "correlation/temporal",
            "correlation/temporal_ordered",
            "correlation/value_count"
        ]
    );
}

#[test]
fn event_count_fires_on_a_burst_and_quotes_the_events_it_counted() {
    let engine = engine_with(&["event_count.yml"]);
    let analysis = analyse(&engine);
    let hit = result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1001")
        .expect("eight registry sets by one rundll32 within 10 s fire");
    assert_eq!(hit.rule_level, "high");
    assert!(hit.match_context.len() >= 8, "{:#?}", hit.match_context);
    for context in &hit.match_context {
        assert_eq!(context.values["EventID"], "13");
        assert!(
            context.values["Image"]
                .to_lowercase()
                .ends_with("\\rundll32.exe")
        );
    }
    // The base rule only feeds the correlation (`generate` defaults to false).
    assert!(result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1002").is_none());
    assert_eq!(analysis.stats.high, 1);
    assert!(analysis.techniques.iter().any(|t| t.id == "T1218.011"));
}

#[test]
fn event_count_above_what_the_log_holds_does_not_fire() {
    let text = std::fs::read_to_string(rules_dir().join("event_count.yml"))
        .unwrap()
        .replace("gte: 8", "gte: 30");
    let (engine, report) = engine_from_text(&text);
    assert_eq!(report.rejected(), 0);
    let analysis = analyse(&engine);
    assert!(analysis.results.is_empty(), "{:#?}", analysis.results);
}

#[test]
fn value_count_counts_distinct_values() {
    let engine = engine_with(&["value_count.yml"]);
    let analysis = analyse(&engine);
    let hit = result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1011")
        .expect("five distinct registry values by one rundll32 within a minute fire");
    let keys: std::collections::BTreeSet<_> = hit
        .match_context
        .iter()
        .map(|c| c.values["TargetObject"].as_str())
        .collect();
    assert!(keys.len() >= 5, "{keys:#?}");

    // The same events counted by distinct value: more distinct keys than the burst has.
    let text = std::fs::read_to_string(rules_dir().join("value_count.yml"))
        .unwrap()
        .replace("gte: 5", "gte: 500");
    let (engine, _) = engine_from_text(&text);
    assert!(analyse(&engine).results.is_empty());
}

#[test]
fn temporal_fires_when_both_rules_match_within_the_span_and_keeps_generating_rules() {
    let engine = engine_with(&["temporal.yml"]);
    let analysis = analyse(&engine);
    let hit = result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1021")
        .expect("rundll32 DLL run and schtasks /Create /XML within a minute fire");
    let images: Vec<_> = hit
        .match_context
        .iter()
        .map(|c| c.values["Image"].to_lowercase())
        .collect();
    assert!(
        images.iter().any(|i| i.ends_with("\\rundll32.exe")),
        "{images:?}"
    );
    assert!(
        images.iter().any(|i| i.ends_with("\\schtasks.exe")),
        "{images:?}"
    );
    // `generate: true`: the named rules are reported on their own as well.
    assert!(result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1022").is_some());
    assert!(result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1023").is_some());
}

#[test]
fn temporal_ordered_needs_the_order_the_rule_names() {
    let engine = engine_with(&["temporal_ordered.yml"]);
    let hit = result(&analyse(&engine), "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1031")
        .cloned()
        .expect("schtasks /Create, then data.enc written 46 s later, fires");
    assert_eq!(hit.rule_level, "critical");

    // The same two rules in the other order: the log never writes data.enc before the task.
    let text = std::fs::read_to_string(rules_dir().join("temporal_ordered.yml"))
        .unwrap()
        .replace(
            "        - ordered_schtasks_create\n        - ordered_data_enc_written",
            "        - ordered_data_enc_written\n        - ordered_schtasks_create",
        );
    let (engine, report) = engine_from_text(&text);
    assert_eq!(report.rejected(), 0);
    assert!(analyse(&engine).results.is_empty());
}

#[test]
fn hunting_explains_a_correlation_on_the_event_that_completed_it() {
    let engine = engine_with(&["temporal_ordered.yml"]);
    let events = events();
    let matches = engine.evaluate_all(&events);
    let mut correlator = engine.correlator();
    correlator.feed(&events, &matches);
    let outcome = correlator.finish();
    assert_eq!(outcome.dropped, 0);
    let hits = engine.correlation_hits(&outcome);
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let hit = &hits[0];
    assert_eq!(hit.event_id, 11);
    assert!(
        hit.key_fields
            .iter()
            .any(|(k, v)| k == "TargetFilename" && v.ends_with("\\data.enc"))
    );
    assert_eq!(hit.selections, ["temporal_ordered within 120 s"]);
    assert!(
        hit.matched
            .iter()
            .any(|(k, v)| k == "Computer" && v == "MSEDGEWIN10")
    );
    // Matches of correlation-only rules are not hits of their own.
    assert!(engine.hits(&events, matches).is_empty());
}

#[test]
fn a_correlation_naming_a_missing_rule_is_rejected_with_the_name() {
    let text = std::fs::read_to_string(rules_dir().join("event_count.yml")).unwrap();
    let correlation_only = text.split("\n---\n").next().unwrap();
    let (engine, report) = engine_from_text(correlation_only);
    assert!(!engine.has_correlations());
    let rejected = report
        .rules
        .iter()
        .find_map(|r| match &r.status {
            RuleStatus::Rejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("the correlation is rejected");
    assert!(rejected.contains("rundll32_registry_set"), "{rejected}");
    assert!(rejected.contains("not loaded"), "{rejected}");
}

#[test]
fn a_correlation_that_names_itself_is_rejected() {
    let text = "title: Self\nid: 5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b10ff\nname: self_ref\ncorrelation:\n    type: event_count\n    rules:\n        - self_ref\n    timespan: 1m\n    condition:\n        gte: 2\n";
    let (engine, report) = engine_from_text(text);
    assert!(!engine.has_correlations());
    assert_eq!(report.rejected(), 1, "{:#?}", report.rules);
}

#[test]
fn temporal_needs_every_rule_it_names() {
    let engine = engine_with(&["temporal.yml"]);
    let events = events();
    let matches = engine.evaluate_all(&events);
    let mut correlator = engine.correlator();
    correlator.feed(&events, &matches);
    let outcome = correlator.finish();
    assert!(!outcome.hits.is_empty());
    for hit in &outcome.hits {
        assert_eq!(hit.value, 2.0, "{hit:?}");
    }
    // The log creates one scheduled task; a DLL run alone never completes the rule.
    let text = std::fs::read_to_string(rules_dir().join("temporal.yml"))
        .unwrap()
        .replace("- '/XML'", "- '/XML-never-in-this-log'");
    let (engine, report) = engine_from_text(&text);
    assert_eq!(report.rejected(), 0);
    let analysis = analyse(&engine);
    assert!(
        result(&analysis, "5b0e6a0c-6f0a-4c59-9a51-6a7c3c9b1021").is_none(),
        "{:#?}",
        analysis.results
    );
}
