//! The SigmaHQ Windows rule set loads whole: every rule parses and compiles except ones that
//! are invalid per the specification, and each rule that cannot see a Sysmon event is reported
//! as such rather than silently dropped.

mod common;

use sandscope_sigma::{LoadReport, RuleStatus, SigmaEngineBuilder};

/// Rules under `rules/windows` of SigmaHQ at the vendored commit.
const SIGMAHQ_WINDOWS_RULES: usize = 2407;
/// Of those, rules whose logsource Sysmon writes (process_creation, registry_*, file_event, …).
const SYSMON_RULES: usize = 1865;

fn rejects(report: &LoadReport) -> Vec<String> {
    report
        .rules
        .iter()
        .filter_map(|r| match &r.status {
            RuleStatus::Rejected { line, reason } => {
                Some(format!("{}:{}: {reason}", r.file, line.unwrap_or(0)))
            }
            _ => None,
        })
        .collect()
}

fn assert_whole_set(report: &LoadReport) {
    assert_eq!(report.rules.len(), SIGMAHQ_WINDOWS_RULES);
    let rejected = rejects(report);
    assert!(
        rejected.is_empty(),
        "rejected rules:\n{}",
        rejected.join("\n")
    );
    assert_eq!(report.loaded(), SYSMON_RULES);
    assert_eq!(
        report.not_applicable(),
        SIGMAHQ_WINDOWS_RULES - SYSMON_RULES
    );
}

#[test]
fn bundled_rules_all_load() {
    let (engine, report) = common::bundled();
    assert_whole_set(report);
    assert_eq!(engine.rule_count(), SYSMON_RULES);
    // Attribution travels with every bundled rule (DRL 1.1).
    for rule in engine.rules() {
        assert_eq!(rule.license.as_deref(), Some("DRL-1.1"), "{}", rule.file);
        assert!(rule.file.starts_with("rules/windows/"), "{}", rule.file);
    }
    // Not-applicable rules say why: other channels and categories Sysmon does not write.
    let reasons: Vec<&str> = report
        .rules
        .iter()
        .filter_map(|r| match &r.status {
            RuleStatus::NotApplicable { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("service `security`")));
    assert!(reasons.iter().any(|r| r.contains("category `ps_script`")));
}

#[test]
#[ignore = "needs ../shared/corpus (or SANDSCOPE_CORPUS); `cargo test -- --ignored` runs it"]
fn corpus_rule_folder_loads_like_the_bundle() {
    let corpus =
        common::corpus().expect("../shared/corpus not found (set SANDSCOPE_CORPUS to point at it)");
    let mut builder = SigmaEngineBuilder::new();
    builder
        .add_path(&corpus.join("sigma/SigmaHQ_sigma/rules/windows"))
        .unwrap();
    let (engine, report) = builder.build();
    assert_whole_set(&report);
    assert_eq!(engine.rule_count(), SYSMON_RULES);
}

#[test]
fn adding_the_bundle_twice_rejects_duplicates() {
    let mut builder = SigmaEngineBuilder::new();
    builder.add_bundled().unwrap();
    builder.add_bundled().unwrap();
    let (engine, report) = builder.build();
    assert_eq!(engine.rule_count(), SYSMON_RULES);
    let duplicates = report
        .rules
        .iter()
        .filter(|r| matches!(&r.status, RuleStatus::Rejected { reason, .. } if reason.contains("duplicate rule id")))
        .count();
    // Only rules that load can collide; the others are not applicable either way.
    assert_eq!(duplicates, SYSMON_RULES);
}

#[test]
fn a_bad_rule_does_not_stop_the_others() {
    let dir = std::env::temp_dir().join(format!("sandscope-sigma-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a_bad.yml"),
        "title: Broken\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    Image|endswith: x.exe\n  condition: sel and (\n",
    )
    .unwrap();
    std::fs::write(dir.join("b_yaml.yml"), "title: [unclosed\n").unwrap();
    std::fs::write(
        dir.join("c_good.yml"),
        "title: Good\nid: 11111111-2222-3333-4444-555555555555\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    Image|endswith: x.exe\n  condition: sel\n",
    )
    .unwrap();
    let mut builder = SigmaEngineBuilder::new();
    builder.add_path(&dir).unwrap();
    let (engine, report) = builder.build();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(engine.rule_count(), 1);
    assert_eq!(report.rejected(), 2);
    match &report.rules[0].status {
        RuleStatus::Rejected { line, reason } => {
            assert_eq!(*line, Some(8), "{reason}");
            assert!(reason.to_lowercase().contains("condition"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match &report.rules[1].status {
        // The YAML parser notices the unclosed sequence at the start of line 2.
        RuleStatus::Rejected { line, reason } => assert_eq!(*line, Some(2), "{reason}"),
        other => panic!("{other:?}"),
    }
}
