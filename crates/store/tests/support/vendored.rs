//! Store reports built from the vendored real Sysmon logs (tests/data): one report per log,
//! each log its own sample.

use sandscope_report::{ReportOptions, SampleSelector, build_report};
use sandscope_store::{NewReport, RawData, RawLog};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub fn evtx_under(root: &Path) -> Vec<PathBuf> {
    sandscope_read::walk(root)
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "evtx"))
        .collect()
}

/// One report per log; each log stands for its own sample (named by the log file's hash), so
/// two detonations of one binary are two samples whose shared indicators can be counted.
pub fn report_of(path: &Path) -> Option<NewReport> {
    let read = sandscope_read::read_all(path).ok()?;
    // Trimmed lab logs have no sample-looking process: report every event, as ingest does.
    let built = build_report(&read.events, &ReportOptions::default())
        .or_else(|_| {
            build_report(
                &read.events,
                &ReportOptions {
                    sample: SampleSelector::Everything,
                    ..Default::default()
                },
            )
        })
        .ok()?;
    let mut behaviour = built.behaviour;
    let sha = format!("{:x}", Sha256::digest(std::fs::read(path).ok()?));
    behaviour.id = sandscope_model::behaviour_id(&sha, &behaviour.attributes.sandbox_name);
    Some(NewReport {
        behaviour,
        raw_log: Some(RawLog {
            file_name: path.file_name()?.to_string_lossy().into_owned(),
            data: RawData::File(path.to_path_buf()),
        }),
    })
}

pub fn vendored() -> Vec<PathBuf> {
    evtx_under(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack"),
    )
}
