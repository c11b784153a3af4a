//! Hostile logs generated here (never checked in): a gzip'd flood of one repeated event, and
//! floods of distinct events past the memory budget, the list cap and the decompression budget.

use flate2::Compression;
use flate2::write::GzEncoder;
use sandscope_ingest::flood::{FLOOD_SAMPLE_SHA256, write_file_creation_flood};
use sandscope_ingest::{IngestError, IngestLimits, IngestOptions, Pipeline};
use std::path::{Path, PathBuf};

fn gzip_flood(dir: &Path, name: &str, events: u64, distinct: bool) -> PathBuf {
    let path = dir.join(name);
    let mut gz = GzEncoder::new(std::fs::File::create(&path).unwrap(), Compression::fast());
    write_file_creation_flood(&mut gz, events, distinct).unwrap();
    gz.finish().unwrap();
    path
}

#[test]
fn a_flood_of_one_repeated_event_is_held_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = gzip_flood(dir.path(), "flood.jsonl.gz", 100_000, false);
    let prepared = Pipeline::new(None)
        .prepare(std::slice::from_ref(&file), &IngestOptions::default())
        .unwrap();
    let [report] = prepared.reports.as_slice() else {
        panic!("one report, got {}", prepared.reports.len());
    };
    let attributes = &report.behaviour.attributes;
    assert_eq!(report.behaviour.sha256(), FLOOD_SAMPLE_SHA256);
    assert_eq!(attributes.files_written, vec![r"%TEMP%\x.tmp".to_string()]);
    assert_eq!(attributes.processes_created.len(), 1);
    assert!(attributes.truncated.is_empty());
    assert!(
        prepared.notes.iter().any(|n| n.contains(
            "99999 event(s) repeat an earlier event's content exactly and were counted once (2 distinct)"
        )),
        "{:?}",
        prepared.notes
    );
}

#[test]
fn lists_past_the_cap_are_cut_and_the_cut_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let file = gzip_flood(dir.path(), "many.jsonl.gz", 10_123, true);
    let prepared = Pipeline::new(None)
        .prepare(std::slice::from_ref(&file), &IngestOptions::default())
        .unwrap();
    let attributes = &prepared.reports[0].behaviour.attributes;
    assert_eq!(attributes.files_written.len(), 10_000);
    assert_eq!(attributes.files_dropped.len(), 10_000);
    assert_eq!(attributes.files_written[0], r"%TEMP%\x0.tmp");
    assert_eq!(attributes.files_written[9_999], r"%TEMP%\x9999.tmp");
    assert_eq!(attributes.truncated.get("files_written"), Some(&123));
    assert_eq!(attributes.truncated.get("files_dropped"), Some(&123));
    // Raw spellings follow their values out of the report.
    assert!(attributes.raw_forms.contains_key(r"%TEMP%\x9999.tmp"));
    assert!(!attributes.raw_forms.contains_key(r"%TEMP%\x10000.tmp"));
    assert_eq!(attributes.truncated.get("raw_forms"), Some(&123));
    // The flag survives the JSON round trip under its documented name.
    let json = serde_json::to_value(&prepared.reports[0].behaviour).unwrap();
    assert_eq!(json["attributes"]["truncated"]["files_written"], 123);
}

#[test]
fn distinct_events_past_the_memory_budget_fail_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = gzip_flood(dir.path(), "distinct.jsonl.gz", 20_000, true);
    let limits = IngestLimits {
        memory_budget: 1 << 20,
        ..IngestLimits::default()
    };
    let error = Pipeline::new(None)
        .with_limits(limits)
        .prepare(std::slice::from_ref(&file), &IngestOptions::default())
        .unwrap_err();
    assert!(
        // Reading stopped soon after the budget was spent, not at the end of the log.
        matches!(error, IngestError::MemoryBudget { budget: 1048576, held, .. }
            if held > 300 && held < 5_000),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&file.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("memory budget of 1048576 bytes"),
        "{message}"
    );
    assert!(error.is_input_fault());
}

#[test]
fn an_input_past_its_decompression_budget_is_the_input_s_fault() {
    let dir = tempfile::tempdir().unwrap();
    let file = gzip_flood(dir.path(), "bomb.jsonl.gz", 20_000, false);
    let error = Pipeline::new(None)
        .with_limits(IngestLimits::with_decompression(1 << 20, 64 << 20))
        .prepare(std::slice::from_ref(&file), &IngestOptions::default())
        .unwrap_err();
    assert!(error.is_decompression_budget(), "{error:?}");
    assert!(error.is_input_fault());
    assert!(
        error
            .to_string()
            .contains("decompressed size exceeds the limit of 1048576 bytes"),
        "{error}"
    );
}
