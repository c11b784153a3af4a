//! Issue 13 item 5: the terminal report says what the JSON report knows. `report --format text`
//! and `show --format text` list the Sigma hits (most severe first, with the fields of the
//! events they matched) and the ATT&CK techniques, on a real lateral-movement log.

mod support;

use support::sandscope_ok as sandscope;

use serde_json::Value;

/// Impacket wmiexec running `whoami /all` over WMI (sbousseaden, GPL-3.0, vendored).
const WMIEXEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx"
);

/// The lines of a section, from its heading to the next heading (or the end).
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no {heading} section in\n{text}"))
        + heading.len()
        + 2;
    let rest = &text[start..];
    let end = rest.find("\n\n").map(|e| e + 1).unwrap_or(rest.len());
    &rest[..end]
}

fn level_rank(level: &str) -> usize {
    ["critical", "high", "medium", "low", "informational"]
        .iter()
        .position(|l| *l == level)
        .unwrap_or(5)
}

/// Everything the JSON attributes hold about Sigma and ATT&CK is in the text, in level order.
fn says_what_the_json_knows(text: &str, attributes: &Value) {
    assert!(!text.contains('\u{1b}'), "no styles when not a terminal");
    let sigma = section(text, "Sigma rules");
    let results = attributes["sigma_analysis_results"].as_array().unwrap();
    assert!(!results.is_empty(), "Sigma ran and matched");
    let mut order = Vec::new();
    for rule in results {
        let level = rule["rule_level"].as_str().unwrap();
        let title = rule["rule_title"].as_str().unwrap();
        let events = rule["match_context"].as_array().unwrap();
        let header = format!("  {:<13} {title} (", level.to_ascii_uppercase());
        let at = sigma
            .find(&header)
            .unwrap_or_else(|| panic!("no `{header}` in\n{sigma}"));
        order.push((at, level_rank(level)));
        // The matched event's fields follow the rule's line.
        let quoted = &sigma[at..];
        let first = &events[0]["values"];
        for field in ["Image", "CommandLine", "ParentImage"] {
            if let Some(value) = first[field].as_str() {
                assert!(
                    quoted.contains(&format!("      {field} {value}\n")),
                    "{field} of {title} in\n{quoted}"
                );
            }
        }
        assert!(!quoted.contains("ProcessGuid"), "identifiers left out");
        // Later events show what differs from the first.
        if let Some(second) = events.get(1)
            && let Some(command) = second["values"]["CommandLine"].as_str()
            && Some(command) != first["CommandLine"].as_str()
        {
            assert!(
                quoted.contains(&format!("      CommandLine {command}\n")),
                "second CommandLine of {title} in\n{quoted}"
            );
        }
    }
    order.sort();
    assert!(
        order.windows(2).all(|w| w[0].1 <= w[1].1),
        "most severe first: {order:?}"
    );
    let stats = &attributes["sigma_analysis_stats"];
    assert!(sigma.contains(&format!(
        "rules matched: {} critical, {} high, {} medium, {} low",
        stats["critical"], stats["high"], stats["medium"], stats["low"]
    )));

    let attack = section(text, "ATT&CK techniques");
    let techniques = attributes["mitre_attack_techniques"].as_array().unwrap();
    assert!(!techniques.is_empty());
    for technique in techniques {
        let line = format!(
            "  {:<10} {}",
            technique["id"].as_str().unwrap(),
            technique["signature_description"].as_str().unwrap()
        );
        assert!(attack.contains(&line), "no `{line}` in\n{attack}");
    }
}

#[test]
fn report_text_shows_sigma_hits_and_attack_techniques() {
    let json: Value =
        serde_json::from_slice(&sandscope(&["report", "--format", "json", WMIEXEC]).stdout)
            .unwrap();
    let attributes = &json["data"]["attributes"];
    let text =
        String::from_utf8(sandscope(&["report", "--format", "text", WMIEXEC]).stdout).unwrap();
    says_what_the_json_knows(&text, attributes);
    // Impacket's wmiexec is named, with the whoami command it ran over WMI.
    let sigma = section(&text, "Sigma rules");
    assert!(sigma.contains("Impacket"), "{sigma}");
    assert!(
        sigma.contains(
            r"CommandLine cmd.exe /Q /c whoami /all 1> \\127.0.0.1\ADMIN$\__1556656369.7 2>&1"
        ),
        "{sigma}"
    );
    assert!(section(&text, "ATT&CK techniques").contains("T1047 "));
    // Nothing was loaded, terminated or locked: no empty catch-all section.
    assert!(!text.contains("\nOther\n"), "{text}");

    let without =
        String::from_utf8(sandscope(&["report", "--format", "text", "--no-sigma", WMIEXEC]).stdout)
            .unwrap();
    assert!(section(&without, "Sigma rules").contains("(Sigma was not run)"));
}

#[test]
fn show_text_of_a_stored_sample_shows_its_sigma_hits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let ingested =
        String::from_utf8(sandscope(&["ingest", "--data", data, WMIEXEC]).stdout).unwrap();
    let sample = ingested
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|word| word.len() == 64)
        .unwrap_or_else(|| panic!("no report id in {ingested}"));
    let stored: Value =
        serde_json::from_slice(&sandscope(&["show", "--data", data, sample]).stdout).unwrap();
    let text =
        String::from_utf8(sandscope(&["show", "--data", data, "--format", "text", sample]).stdout)
            .unwrap();
    assert!(
        text.starts_with(&format!("Behaviour report {sample}_")),
        "{text}"
    );
    says_what_the_json_knows(&text, &stored["data"][0]["attributes"]);
}

#[test]
fn show_text_of_a_cape_report_shows_its_signatures_and_http() {
    // CAPE's apc-inject run (CybercentreCanada, MIT, vendored): signatures and HTTP requests.
    const SAMPLE: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";
    let lite = format!(
        "{}/../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples/{SAMPLE}/Report/reports/lite.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    sandscope(&["ingest", "--data", data, "--no-sigma", &lite]);
    let view = ["show", "--data", data, "--sandbox", "CAPE Sandbox", SAMPLE];
    let stored: Value = serde_json::from_slice(&sandscope(&view).stdout).unwrap();
    let attributes = &stored["data"][0]["attributes"];
    let text =
        String::from_utf8(sandscope(&[&view[..], &["--format", "text"]].concat()).stdout).unwrap();
    let signatures = section(&text, "Signatures");
    let matches = attributes["signature_matches"].as_array().unwrap();
    assert!(!matches.is_empty());
    for signature in matches {
        let name = signature["name"].as_str().unwrap();
        let description = signature["description"].as_str().unwrap();
        assert!(
            signatures.contains(&format!("{name} {description}\n")),
            "{name} in\n{signatures}"
        );
    }
    let network = section(&text, "Network");
    let http = attributes["http_conversations"].as_array().unwrap();
    assert!(!http.is_empty());
    for conversation in http {
        let url = conversation["url"].as_str().unwrap();
        assert!(network.contains(&format!(" {url}")), "{url} in\n{network}");
    }
    assert!(section(&text, "Sigma rules").contains("(Sigma was not run)"));
}
