//! The exports of a real CAPE run's two reports (the CAPE lite report and the report built from
//! the guest's Sysmon log, vendored under `tests/data`): determinism, references that resolve,
//! the id versions STIX asks for, and a timeline sorted through temporary runs exactly as in
//! memory. The formats' own tools check the same files in `tests/interop`.

use sandscope_export::timeline::{TimelineFormat, TimelineSorter, TimelineWriter, event_line};
use sandscope_export::{SampleFormat, misp_event, stix_bundle};
use sandscope_model::FileBehaviour;
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

const SHA: &str = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10";

fn run_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples/{SHA}/Report"
    ))
}

fn sysmon_log() -> PathBuf {
    run_dir().join("evtx/Microsoft-Windows-Sysmon%4Operational.evtx")
}

/// The run's two reports, as ingest files them.
fn reports() -> Vec<FileBehaviour> {
    let cape = sandscope_cape::import(run_dir().join("reports/lite.json").as_path())
        .expect("vendored lite.json imports");
    let events = sandscope_read::read_all(&sysmon_log())
        .expect("vendored EVTX reads")
        .events;
    // The trimmed log has no sample-looking process: ingest then reports every event.
    let options = sandscope_report::ReportOptions {
        sample: sandscope_report::SampleSelector::Everything,
        sha256: Some(SHA.to_string()),
        ..Default::default()
    };
    let sysmon = sandscope_report::build_report(&events, &options)
        .expect("the run's log builds a report")
        .behaviour;
    let mut cape = cape;
    cape.id = sandscope_model::behaviour_id(SHA, &cape.attributes.sandbox_name);
    vec![cape, sysmon]
}

fn tree_size(nodes: &[sandscope_model::ProcessNode]) -> usize {
    nodes.iter().map(|n| 1 + tree_size(&n.children)).sum()
}

#[test]
fn exports_are_byte_identical_whatever_the_report_order() {
    let reports = reports();
    let reversed: Vec<FileBehaviour> = reports.iter().rev().cloned().collect();
    for format in [SampleFormat::Misp, SampleFormat::Stix] {
        let once = format.render(SHA, &reports).unwrap();
        assert_eq!(once, format.render(SHA, &reports).unwrap());
        assert_eq!(once, format.render(SHA, &reversed).unwrap());
    }
    assert!(matches!(
        SampleFormat::Misp.render(SHA, &[]),
        Err(sandscope_export::ExportError::NoReports)
    ));
}

#[test]
fn misp_objects_reference_objects_of_the_event() {
    let reports = reports();
    let event = misp_event(SHA, &reports);
    let objects = event["Event"]["Object"].as_array().unwrap();
    let uuids: HashSet<&str> = objects
        .iter()
        .map(|o| o["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), objects.len(), "object uuids are unique");
    let processes = objects.iter().filter(|o| o["name"] == "process").count();
    let nodes: usize = reports
        .iter()
        .map(|r| tree_size(&r.attributes.processes_tree))
        .sum();
    assert!(nodes > 0);
    assert_eq!(processes, nodes);
    let reports_objects = objects
        .iter()
        .filter(|o| o["name"] == "sandbox-report")
        .count();
    assert_eq!(reports_objects, 2);
    let mut attribute_uuids = HashSet::new();
    for object in objects {
        for reference in object["ObjectReference"].as_array().into_iter().flatten() {
            assert_eq!(reference["object_uuid"], object["uuid"]);
            assert!(uuids.contains(reference["referenced_uuid"].as_str().unwrap()));
        }
        for attribute in object["Attribute"].as_array().unwrap() {
            assert!(attribute_uuids.insert(attribute["uuid"].as_str().unwrap().to_string()));
            assert!(!attribute["value"].as_str().unwrap().is_empty());
        }
    }
}

fn refs(object: &Value, out: &mut Vec<String>) {
    if let Value::Object(map) = object {
        for (key, value) in map {
            if key.ends_with("_ref") {
                out.extend(value.as_str().map(str::to_string));
            } else if key.ends_with("_refs") {
                out.extend(
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_string)),
                );
            }
        }
    }
}

#[test]
fn stix_ids_have_the_versions_stix_asks_for_and_every_ref_resolves() {
    let bundle = stix_bundle(SHA, &reports());
    let objects = bundle["objects"].as_array().unwrap();
    let ids: HashSet<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), objects.len());
    assert_eq!(
        objects
            .iter()
            .filter(|o| o["type"] == "malware-analysis")
            .count(),
        2
    );
    for object in objects {
        let id = object["id"].as_str().unwrap();
        let (kind, uuid) = id.split_once("--").unwrap();
        assert_eq!(object["type"], kind);
        let version = uuid::Uuid::parse_str(uuid).unwrap().get_version_num();
        let observable = !matches!(
            kind,
            "malware-analysis" | "attack-pattern" | "indicator" | "relationship" | "process"
        );
        assert_eq!(version, if observable { 5 } else { 4 }, "{id}");
        let mut out = Vec::new();
        refs(object, &mut out);
        for target in out {
            assert!(ids.contains(target.as_str()), "{id} → {target}");
        }
    }
}

fn timeline(lines_in_memory: usize) -> (Vec<u8>, usize) {
    let events = sandscope_read::read_all(&sysmon_log()).unwrap().events;
    let mut sorter = TimelineSorter::new(lines_in_memory);
    // Newest first: the sorter has to undo the whole order.
    for event in events.iter().rev() {
        sorter.push(event_line(event)).unwrap();
    }
    let runs = sorter.spilled_runs();
    let mut writer = TimelineWriter::new(Vec::new(), TimelineFormat::Timesketch).unwrap();
    sorter.finish(&mut writer).unwrap();
    (writer.finish().unwrap(), runs)
}

#[test]
fn timeline_sorted_through_runs_on_disk_equals_the_in_memory_sort() {
    let (in_memory, no_runs) = timeline(1_000_000);
    let (spilled, runs) = timeline(7);
    assert_eq!(no_runs, 0);
    assert!(runs >= 10, "{runs} runs");
    assert_eq!(in_memory, spilled);
    let lines: Vec<Value> = in_memory
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        78,
        "tests/data/README.md's inventory: 78 Sysmon events"
    );
    let times: Vec<&str> = lines
        .iter()
        .map(|l| l["datetime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(times.iter().all(|t| t.ends_with("+00:00")));
}
