//! The behaviour-report view of Sigma hits (`SigmaEngine::analyse`) on a real Sysmon log: an
//! LSASS dump through comsvcs.dll (EVTX-to-MITRE-Attack, CC0).

mod common;

use sandscope_sigma::{MAX_MATCH_CONTEXTS, SIGMAHQ_SOURCE};

const LSASS_DUMP: &str = "mdecrevoisier_EVTX-to-MITRE-Attack/TA0006-Credential Access/T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx";

#[test]
fn lsass_dump_gives_results_stats_and_techniques() {
    let (engine, _) = common::bundled();
    let path = common::vendored().join(LSASS_DUMP);
    let events = sandscope_read::read_all(&path).unwrap().events;
    let analysis = engine.analyse(&events);

    let comsvcs = analysis
        .results
        .iter()
        .find(|r| r.rule_id == "a49fa4d5-11db-418c-8473-1e014a8dd462")
        .expect("Lsass Memory Dump via Comsvcs DLL fires");
    assert_eq!(comsvcs.rule_title, "Lsass Memory Dump via Comsvcs DLL");
    assert_eq!(comsvcs.rule_source, SIGMAHQ_SOURCE);
    assert!(
        !comsvcs.rule_author.is_empty(),
        "author attribution is kept"
    );
    assert!(!comsvcs.rule_description.is_empty());
    // One context per matching event, quoting the event with its id.
    assert!(!comsvcs.match_context.is_empty());
    for context in &comsvcs.match_context {
        assert_eq!(
            context.values.get("EventID").map(String::as_str),
            Some("10")
        );
        assert!(
            context.values["TargetImage"]
                .to_lowercase()
                .ends_with("lsass.exe")
        );
    }
    assert!(
        analysis
            .results
            .iter()
            .all(|r| r.match_context.len() <= MAX_MATCH_CONTEXTS)
    );

    // Stats count matched rules per level.
    let count = |level: &str| {
        analysis
            .results
            .iter()
            .filter(|r| r.rule_level == level)
            .count() as u32
    };
    assert_eq!(analysis.stats.critical, count("critical"));
    assert_eq!(analysis.stats.high, count("high"));
    assert_eq!(analysis.stats.medium, count("medium"));
    assert_eq!(analysis.stats.low, count("low"));
    assert!(analysis.stats.high + analysis.stats.critical >= 1);

    // Results are ordered most severe first.
    let rank = |level: &str| {
        ["critical", "high", "medium", "low", "informational"]
            .iter()
            .position(|l| *l == level)
    };
    assert!(
        analysis
            .results
            .windows(2)
            .all(|w| rank(&w[0].rule_level) <= rank(&w[1].rule_level))
    );

    // ATT&CK techniques come from the rules' tags, with a severity from the rule level.
    let lsass = analysis
        .techniques
        .iter()
        .find(|t| t.id == "T1003.001")
        .expect("T1003.001 from the LSASS rules' attack tags");
    assert_eq!(lsass.severity, "IMPACT_SEVERITY_HIGH");
    assert!(!lsass.signature_description.is_empty());
    assert!(analysis.techniques.iter().all(|t| t.id.starts_with('T')));
}

#[test]
fn no_events_no_analysis() {
    let (engine, _) = common::bundled();
    let analysis = engine.analyse(&[]);
    assert!(analysis.results.is_empty());
    assert!(analysis.techniques.is_empty());
    assert_eq!(analysis.stats, Default::default());
}
