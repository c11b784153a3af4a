//! The same event read from different renderings gives the same `SysmonEvent`:
//!
//! * EVTX vs the `evtx` crate's JSON export of it (the Sigma regression samples);
//! * EVTX vs Windows' own XML rendering of it, as CAPE embeds it in `lite.json` (xmltodict);
//! * EVTX vs the `evtx` crate's XML rendering (`evtx_dump` without `-o`), read back by the XML
//!   reader.

mod common;

use sandscope_event::SysmonEvent;
use sandscope_read::{ReadOutput, read_all, read_bytes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn roots() -> Vec<PathBuf> {
    let mut roots = vec![common::workspace().join("tests/data")];
    match common::shared_corpus() {
        Some(c) => roots.push(c),
        None => eprintln!("NOTE: ../shared/corpus not found; only the vendored subset is compared"),
    }
    roots
}

fn files(root: &Path, ext: &str) -> Vec<PathBuf> {
    sandscope_read::walk(root)
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

fn anonymous(mut events: Vec<SysmonEvent>) -> Vec<SysmonEvent> {
    for e in &mut events {
        e.source.file = Arc::from("");
    }
    events
}

#[test]
fn evtx_equals_its_json_export() {
    let mut pairs = 0;
    for root in roots() {
        for evtx in files(&root.join("sigma"), "evtx") {
            let json = evtx.with_extension("json");
            if !json.exists() {
                continue;
            }
            let a = anonymous(read_all(&evtx).unwrap().events);
            let b = anonymous(read_all(&json).unwrap().events);
            assert!(!a.is_empty());
            // One upstream export (certutil_download) lost the trailing space of a command
            // line: values are compared trimmed.
            let a: Vec<_> = a.iter().map(trimmed).collect();
            let b: Vec<_> = b.iter().map(trimmed).collect();
            assert_eq!(a, b, "{}", evtx.display());
            pairs += 1;
        }
    }
    assert!(pairs >= 3, "only {pairs} EVTX/JSON pairs");
}

fn trimmed(e: &SysmonEvent) -> SysmonEvent {
    let mut e = e.clone();
    let mut data = sandscope_event::Fields::new();
    for (k, v) in e.data.iter() {
        data.push_str(k, v.trim());
    }
    e.data = data;
    e
}

#[test]
fn evtx_equals_windows_xml_in_cape_report() {
    let mut compared = 0;
    for root in roots() {
        for lite in files(&root.join("cape"), "json") {
            if !lite.ends_with("reports/lite.json") {
                continue;
            }
            let evtx = lite
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("evtx/Microsoft-Windows-Sysmon%4Operational.evtx");
            let from_evtx: BTreeMap<u64, SysmonEvent> = anonymous(read_all(&evtx).unwrap().events)
                .into_iter()
                .map(|e| (e.source.record_id.unwrap(), e))
                .collect();
            for e in anonymous(read_all(&lite).unwrap().events) {
                let id = e.source.record_id.unwrap();
                if let Some(other) = from_evtx.get(&id) {
                    // xmltodict (which CAPE uses) strips the whitespace around text, so a
                    // trailing space in a command line is lost in the report: compare trimmed.
                    assert_eq!(
                        trimmed(&e),
                        trimmed(other),
                        "record {id} of {}",
                        lite.display()
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 70, "only {compared} events compared");
}

#[test]
fn evtx_equals_its_xml_rendering() {
    let mut compared = 0;
    for root in roots() {
        for evtx in files(&root, "evtx") {
            let direct = read_all(&evtx).unwrap();
            if direct.events.is_empty() || !direct.warnings.is_empty() {
                continue;
            }
            let mut parser = evtx::EvtxParser::from_path(&evtx).unwrap();
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Events>\n");
            for r in parser.records() {
                xml.push_str(&r.unwrap().data);
                xml.push('\n');
            }
            xml.push_str("</Events>\n");
            let mut out = ReadOutput::default();
            read_bytes("x.xml", xml.as_bytes(), &mut out).unwrap();
            assert!(out.warnings.is_empty(), "{:?}", out.warnings);
            assert_eq!(
                anonymous(direct.events.clone()),
                anonymous(out.events),
                "{}",
                evtx.display()
            );
            compared += direct.events.len();
        }
    }
    assert!(compared > 300, "only {compared} events compared");
}

/// The typed fast path gives exactly what the `evtx` crate's JSON rendering gives: the same
/// events (every field), the same warnings, the same counts — over every EVTX file, damaged
/// ones included.
#[test]
fn evtx_fast_path_equals_json_path() {
    let mut events = 0;
    for root in roots() {
        for evtx in files(&root, "evtx") {
            events += common::read_same_both_ways(&evtx).events.len();
        }
    }
    assert!(events > 300);
}
