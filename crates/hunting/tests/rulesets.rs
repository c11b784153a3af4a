//! Rulesets that must be refused, or accepted with bounded work: each problem names its rule,
//! line and reason, a refused ruleset leaves nothing behind, and concurrent creates never pass
//! the store's maximum of rulesets together.

use sandscope_hunting::{
    CompiledRules, Hunting, HuntingError, Livehunt, MAX_RULES, MAX_RULES_BYTES, MAX_RULESETS,
    RuleLanguage,
};
use serde_json::json;
use std::sync::{Arc, Barrier};

#[path = "../../../tests/support/ruleset_race.rs"]
mod ruleset_race;
use ruleset_race::{assert_one_create_won, fill_to_one_short, seed_ruleset};

const GOOD: &str = r#"title: Good rule
id: 0b0c7f3e-1111-4a4a-8a8a-000000000001
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\whoami.exe'
  condition: selection
level: low
"#;

const BAD_MODIFIER: &str = r#"title: Bad modifier
id: 0b0c7f3e-1111-4a4a-8a8a-000000000002
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|sortof: '\cmd.exe'
  condition: selection
level: low
"#;

fn problems(result: Result<CompiledRules, HuntingError>) -> Vec<(String, usize, String)> {
    match result {
        Err(HuntingError::Rules(problems)) => problems
            .into_iter()
            .map(|p| (p.rule, p.line, p.reason))
            .collect(),
        Err(other) => panic!("expected rule problems, got {other}"),
        Ok(_) => panic!("expected rule problems, the rules compiled"),
    }
}

#[test]
fn a_bad_sigma_rule_is_named_with_its_line_in_the_whole_text() {
    let text = format!("{GOOD}---\n{BAD_MODIFIER}");
    let found = problems(CompiledRules::compile(RuleLanguage::Sigma, &text));
    assert_eq!(found.len(), 1, "{found:?}");
    let (rule, line, reason) = &found[0];
    assert_eq!(rule, "Bad modifier");
    // The second document starts on line 12; its bad line is its 8th.
    assert_eq!(*line, 19, "{reason}");
    assert!(reason.contains("sortof"), "{reason}");
}

#[test]
fn a_bad_query_is_named_with_its_line_and_column() {
    let text = "# good\nbehaviour_processes:\"whoami.exe\"\n\n# broken\nbehaviour_processes:(\n";
    let found = problems(CompiledRules::compile(RuleLanguage::Query, text));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "broken");
    assert_eq!(found[0].1, 5);
    assert!(found[0].2.starts_with("column "), "{}", found[0].2);
}

#[test]
fn a_rule_that_cannot_see_sysmon_events_is_refused() {
    let text = GOOD.replace("category: process_creation", "service: security");
    let found = problems(CompiledRules::compile(RuleLanguage::Sigma, &text));
    assert!(
        found[0].2.contains("cannot match Sysmon events"),
        "{found:?}"
    );
}

#[test]
fn oversized_rulesets_are_refused_before_any_parsing() {
    let line = "behaviour_processes:\"x.exe\"\n";
    let huge = line.repeat((10 << 20) / line.len() + 1);
    assert!(huge.len() > 10 << 20);
    match CompiledRules::compile(RuleLanguage::Query, &huge) {
        Err(HuntingError::Invalid(m)) => {
            assert!(m.contains(&MAX_RULES_BYTES.to_string()), "{m}")
        }
        _ => panic!("a 10 MB ruleset must be refused"),
    }
    let many = line.repeat(10_000);
    assert!(many.len() < MAX_RULES_BYTES);
    match CompiledRules::compile(RuleLanguage::Query, &many) {
        Err(HuntingError::Invalid(m)) => assert!(m.contains(&MAX_RULES.to_string()), "{m}"),
        _ => panic!("10,000 queries must be refused"),
    }
    let many_sigma = vec![GOOD; 10_000].join("---\n");
    assert!(many_sigma.len() < MAX_RULES_BYTES * 4);
    match CompiledRules::compile(RuleLanguage::Sigma, &many_sigma) {
        Err(HuntingError::Invalid(_)) => {}
        _ => panic!("10,000 Sigma rules must be refused"),
    }
}

#[test]
fn a_yaml_bomb_is_an_error_not_an_expansion() {
    // Nine levels of nine aliases: 387 million strings if expanded.
    let mut bomb = String::from(
        "title: bomb\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{next}: &{next} [{refs}]\n"));
    }
    bomb.push_str("logsource:\n  category: process_creation\n  product: windows\ndetection:\n  selection:\n    Image: *i\n  condition: selection\n");
    assert!(CompiledRules::compile(RuleLanguage::Sigma, &bomb).is_err());
}

#[test]
fn a_backtracking_regex_is_accepted_and_runs_in_linear_time() {
    // `(a+)+$` is exponential on a backtracking engine; Sigma's `re` runs on a linear one.
    let text = GOOD.replace("Image|endswith: '\\whoami.exe'", "CommandLine|re: '(a+)+$'");
    let rules = CompiledRules::compile(RuleLanguage::Sigma, &text).unwrap();
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx"
    );
    let events = sandscope_read::read_all(std::path::Path::new(log))
        .unwrap()
        .events;
    assert!(!events.is_empty());
    // No command line there ends in `a`: the rule runs over every event and matches none.
    assert_eq!(rules.sigma_hits(&events), Vec::new());
}

#[test]
fn a_refused_ruleset_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(sandscope_store::Store::open(dir.path()).unwrap());
    let live = Livehunt::load(store.clone()).unwrap();
    let h = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    let body = json!({"name": "x", "rules": format!("{GOOD}---\n{BAD_MODIFIER}")});
    let err = h.create_ruleset(body.as_object().unwrap(), 1).unwrap_err();
    assert!(
        err.to_string().contains("rule \"Bad modifier\", line 19"),
        "{err}"
    );
    for missing in [json!({"rules": GOOD}), json!({"name": "x"})] {
        assert!(h.create_ruleset(missing.as_object().unwrap(), 1).is_err());
    }
    assert!(h.list_rulesets("", "", 10, None).unwrap().items.is_empty());
    assert_eq!(live.enabled(), 0);
}

/// Creates racing on one store: threads of one process sharing its Livehunt set.
const RACERS: usize = 8;

#[test]
fn concurrent_creates_never_pass_the_maximum_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(sandscope_store::Store::open(dir.path()).unwrap());
    fill_to_one_short(store.as_ref());
    let live = Livehunt::load(store.clone()).unwrap();
    assert_eq!(live.enabled(), MAX_RULESETS - 1);

    let start = Barrier::new(RACERS);
    let outcomes: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|n| {
                let (store, live, start) = (store.as_ref(), &live, &start);
                scope.spawn(move || {
                    let h = Hunting { store, live };
                    let attributes = seed_ruleset(&format!("racer {n}"));
                    start.wait();
                    h.create_ruleset(&attributes, 2)
                        .map(|r| r.id)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_one_create_won(store.as_ref(), &outcomes);
    assert_eq!(live.enabled(), MAX_RULESETS);
}
