//! The real backend for the router tests: `StoreBackend` over a scratch data directory, filled
//! with the vendored logs through the real ingest path (the one uploads take).
#![allow(dead_code)] // each test crate uses part of it

use sandscope_ingest::Pipeline;
use sandscope_model::FileBehaviour;
use sandscope_server::{Backend, StoreBackend, Upload};
use sandscope_store::NewReport;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A vendored Sysmon EVTX: an LSASS dump, with process creations.
pub fn lsass_evtx() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/TA0006-Credential Access/\
         T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx",
    )
}

/// A store backend over a fresh scratch directory (deleted with the `TempDir`).
pub struct Scratch {
    pub backend: Arc<StoreBackend>,
    pub data: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let data = tempfile::tempdir().expect("scratch directory");
        let backend = StoreBackend::open(data.path(), Pipeline::new(None)).expect("store opens");
        Scratch {
            backend: Arc::new(backend),
            data,
        }
    }

    /// Ingest `log` as an upload of sample `sha256` and return the report it stored.
    pub fn ingest(&self, log: &Path, sha256: &str) -> FileBehaviour {
        let upload = Upload {
            path: log.to_path_buf(),
            original_name: "log.evtx".to_string(),
            sha256: Some(sha256.to_string()),
            sandbox: None,
        };
        let outcome = self.backend.ingest(&upload).expect("vendored log ingests");
        assert_eq!(outcome.report_ids.len(), 1, "{outcome:?}");
        self.backend
            .behaviour(&outcome.report_ids[0])
            .expect("store answers")
            .expect("the ingested report is stored")
    }

    /// Store `reports` as they are, with no log (replacing any of the same id).
    pub fn put(&self, reports: Vec<FileBehaviour>) {
        let batch = reports
            .into_iter()
            .map(|behaviour| NewReport {
                behaviour,
                raw_log: None,
            })
            .collect();
        self.backend
            .store()
            .put_reports(batch)
            .expect("reports are stored");
    }
}

/// The report the ingest pipeline builds from `log` for sample `sha256`, without storing it:
/// what an upload of that log must serve.
pub fn built_report(log: &Path, sha256: &str) -> FileBehaviour {
    let options = sandscope_ingest::IngestOptions {
        sha256: Some(sha256.to_string()),
        sample: None,
        sandbox: None,
    };
    let prepared = Pipeline::new(None)
        .prepare(&[log.to_path_buf()], &options)
        .expect("vendored log prepares");
    assert_eq!(prepared.reports.len(), 1);
    prepared.reports[0].behaviour.clone()
}
