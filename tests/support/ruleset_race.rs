//! The concurrent-create tests' shared pieces (embedded store in `crates/hunting/tests`,
//! PostgreSQL in `crates/pgstore/tests`): a store filled to one short of the maximum of rulesets,
//! and the check that exactly one of the racing creates won.

use sandscope_hunting::{
    CompiledRules, MAX_RULESETS, RecordStore, RecordTable, RecordWrite, RuleLanguage, Ruleset,
};

/// One line of a query that notifies on the coin-miner seed run (`tests/data/seed`).
pub const SEED_QUERY: &str = "behaviour_command_executions:\"pool.supportxmr.com\"";

/// The attributes of a query ruleset holding [`SEED_QUERY`], as a client creates it.
pub fn seed_ruleset(name: &str) -> serde_json::Map<String, serde_json::Value> {
    let body = serde_json::json!({"name": name, "rule_language": "query", "rules": SEED_QUERY});
    body.as_object().cloned().unwrap_or_default()
}

/// Store `MAX_RULESETS - 1` query rulesets in one transaction, as a create stores each (a
/// create per ruleset would reload the Livehunt set each time).
pub fn fill_to_one_short(store: &dyn RecordStore) {
    let rule_names = CompiledRules::compile(RuleLanguage::Query, SEED_QUERY)
        .unwrap()
        .rule_names();
    let table = RecordTable::HuntingRulesets;
    let writes = store
        .allocate_ids(table, (MAX_RULESETS - 1) as u64)
        .unwrap()
        .into_iter()
        .map(|id| {
            let attributes = seed_ruleset(&format!("stored {id}"));
            let mut ruleset = Ruleset::from_attributes(id, &attributes, 1).unwrap();
            ruleset.rule_names = rule_names.clone();
            RecordWrite::Put(table, id, serde_json::to_vec(&ruleset).unwrap())
        })
        .collect();
    store.write_records(writes).unwrap();
}

/// Exactly one of the racing creates succeeded, every other was refused for the maximum, and the
/// store holds the maximum, the winner's id last. Returns the winner's id.
pub fn assert_one_create_won(store: &dyn RecordStore, outcomes: &[Result<u64, String>]) -> u64 {
    let created: Vec<u64> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one create succeeds: {outcomes:?}"
    );
    for refused in outcomes.iter().filter_map(|o| o.clone().err()) {
        assert_eq!(
            refused,
            "this store already holds the maximum of 1000 rulesets"
        );
    }
    let stored = store
        .records(
            RecordTable::HuntingRulesets,
            0..=u64::MAX,
            2 * MAX_RULESETS,
            false,
        )
        .unwrap();
    assert_eq!(stored.len(), MAX_RULESETS);
    assert_eq!(stored.last().unwrap().0, created[0]);
    created[0]
}
