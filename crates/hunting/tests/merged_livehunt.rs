//! Livehunt's merged Sigma engine: every enabled Sigma ruleset without correlations is
//! evaluated in one engine, and each ruleset still finds exactly what it finds alone — the same
//! rule in two rulesets notifies both, a ruleset with a correlation keeps its own engine, a
//! disabled one finds nothing — on the ransomware seed's real events.

use sandscope_hunting::{CompiledRules, Hunting, Livehunt, RuleLanguage};
use sandscope_store::Store;
use serde_json::{Map, Value, json};
use std::path::Path;

const SHADOWS: &str = include_str!("rules/shadow_copies_deleted.yml");

const NEVER: &str = r#"title: Never here
id: 0b0c7f3e-1111-4a4a-8a8a-000000000009
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\no-such-tool.exe'
  condition: selection
level: low
"#;

/// A named detection rule and an `event_count` correlation over it.
const CORRELATED: &str = r#"title: Any process creation
id: 0b0c7f3e-1111-4a4a-8a8a-00000000000a
name: any_process
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    EventID: 1
  condition: selection
level: low
---
title: Several processes
id: 0b0c7f3e-1111-4a4a-8a8a-00000000000b
correlation:
    type: event_count
    rules:
        - any_process
    timespan: 1h
    condition:
        gte: 2
level: medium
"#;

fn attributes(name: &str, rules: &str, enabled: bool) -> Map<String, Value> {
    json!({"name": name, "rules": rules, "enabled": enabled})
        .as_object()
        .cloned()
        .unwrap()
}

#[test]
fn merged_rulesets_find_exactly_what_each_finds_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let live = Livehunt::load(store.clone()).unwrap();
    let hunting = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    let rulesets = [
        ("shadows", SHADOWS, true),
        ("shadows again", SHADOWS, true),
        ("never", NEVER, true),
        ("correlated", CORRELATED, true),
        ("disabled", SHADOWS, false),
        ("both", &format!("{SHADOWS}---\n{NEVER}"), true),
    ];
    let mut ids = Vec::new();
    for (name, rules, enabled) in rulesets {
        ids.push(
            hunting
                .create_ruleset(&attributes(name, rules, enabled), 1)
                .unwrap()
                .id,
        );
    }
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed/ransomware_tutanota_sysmon.xml");
    let events = sandscope_read::read_all(&seed).unwrap().events;

    let found: Vec<(u64, String, String)> = live
        .sigma_findings("ab", &events)
        .into_iter()
        .map(|f| (f.ruleset_id, f.hit.rule_name, f.hit.snippet))
        .collect();
    let mut alone = Vec::new();
    for ((_, rules, enabled), id) in rulesets.iter().zip(&ids) {
        if !enabled {
            continue;
        }
        let compiled = CompiledRules::compile(RuleLanguage::Sigma, rules).unwrap();
        alone.extend(
            compiled
                .sigma_hits(&events)
                .into_iter()
                .map(|h| (*id, h.rule_name, h.snippet)),
        );
    }
    assert_eq!(found, alone);
    let names = |id: u64| -> Vec<&str> {
        found
            .iter()
            .filter(|f| f.0 == id)
            .map(|f| f.1.as_str())
            .collect()
    };
    assert_eq!(names(ids[0]), ["Shadow copies deleted with vssadmin"]);
    assert_eq!(names(ids[1]), ["Shadow copies deleted with vssadmin"]);
    assert!(names(ids[2]).is_empty());
    assert!(names(ids[3]).contains(&"Several processes"), "{found:?}");
    assert!(names(ids[4]).is_empty());
    assert_eq!(names(ids[5]), ["Shadow copies deleted with vssadmin"]);

    // Disabling a ruleset takes it out of the merged engine at once.
    hunting
        .update_ruleset(ids[0], &attributes("shadows", SHADOWS, false), 2)
        .unwrap();
    let after: Vec<u64> = live
        .sigma_findings("ab", &events)
        .into_iter()
        .map(|f| f.ruleset_id)
        .collect();
    assert!(!after.contains(&ids[0]));
    assert!(after.contains(&ids[1]));
}
