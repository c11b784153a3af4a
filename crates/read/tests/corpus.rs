//! Acceptance: every EVTX, XML, JSON-lines, single-event JSON and CAPE report in the corpus gives
//! the number of Sysmon events (in total and per event id) of the corpus inventory, and as many
//! warnings as the inventory counts parse errors.

mod common;

#[test]
fn vendored_subset_matches_its_inventory() {
    let root = common::workspace().join("tests/data");
    let rows = common::inventory(&root.join("README.md"));
    assert!(
        rows.len() >= 10,
        "vendored inventory has {} rows",
        rows.len()
    );
    let problems = common::check(&root, &rows);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
#[ignore = "needs ../shared/corpus (or SANDSCOPE_CORPUS); `cargo test -- --ignored` runs it"]
fn shared_corpus_matches_its_inventory() {
    let root = common::shared_corpus()
        .expect("../shared/corpus not found (set SANDSCOPE_CORPUS to point at it)");
    let rows = common::inventory(&root.join("README.md"));
    assert!(rows.len() >= 80, "corpus inventory has {} rows", rows.len());
    let problems = common::check(&root, &rows);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
