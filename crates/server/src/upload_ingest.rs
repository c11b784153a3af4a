//! Uploads, whatever stores them: an uploaded file or run folder turned into reports by the
//! ingest pipeline, and the pipeline's errors and warnings as the uploader should see them.

use crate::backend::{BackendError, IngestOutcome, Upload};
use sandscope_ingest::{Detonation, IngestOptions, Pipeline, Prepared};

/// Build the reports of one upload with `pipeline` (the path `sandscope ingest` takes); the
/// caller stores them.
pub(crate) fn prepare(pipeline: &Pipeline, upload: &Upload) -> Result<Prepared, BackendError> {
    let options = IngestOptions {
        sha256: upload.sha256.clone(),
        sample: None,
        sandbox: upload.sandbox.clone(),
    };
    let is_run = upload.path.is_dir();
    let detonation = if is_run {
        // The files of one upload are one detonation; `plan` finds the run folder's layout
        // in them (`reports/`, `files.json`), as `sandscope ingest DIR` would.
        sandscope_ingest::plan(std::slice::from_ref(&upload.path), true)
            .map_err(|e| ingest_error(&e, upload))?
            .pop()
            .ok_or_else(|| BackendError::InvalidArgument("the upload holds no file".into()))?
    } else {
        Detonation::of_files(std::slice::from_ref(&upload.path))
    };
    let mut prepared = pipeline
        .prepare_detonation(&detonation, &options)
        .map_err(|e| ingest_error(&e, upload))?;
    // A single upload sits in a temporary file: keep the name the client gave, not the
    // temp name (the files of a run keep their own names, which the client chose).
    if !is_run {
        for report in &mut prepared.reports {
            if let Some(raw) = &mut report.raw_log {
                raw.file_name = upload.original_name.clone();
            }
        }
    }
    Ok(prepared)
}

/// The answer to an upload whose reports `report_ids` are stored.
pub(crate) fn outcome(
    report_ids: Vec<String>,
    warnings: &[impl std::fmt::Display],
    upload: &Upload,
) -> IngestOutcome {
    IngestOutcome {
        report_ids,
        warnings: warnings
            .iter()
            .map(|w| as_uploaded(&w.to_string(), upload))
            .collect(),
        job_id: None,
    }
}

/// `text` with the spool file's path replaced by the name the client uploaded: the client
/// knows its file by that name, and the server's paths are none of its business.
fn as_uploaded(text: &str, upload: &Upload) -> String {
    text.replace(
        upload.path.to_string_lossy().as_ref(),
        &upload.original_name,
    )
}

/// An ingest failure as the client should see it: the input's fault is a 4xx naming the
/// upload (413 past a size budget), this machine's fault (disk full, permissions, the
/// decompression budget shared by concurrent uploads) a 5xx, its detail logged only.
fn ingest_error(error: &sandscope_ingest::IngestError, upload: &Upload) -> BackendError {
    let message = as_uploaded(&error.to_string(), upload);
    if !error.is_input_fault() {
        if error.is_decompression_budget() {
            return BackendError::Unavailable(message);
        }
        return BackendError::Internal(format!("ingest of {}: {error}", upload.original_name));
    }
    match error {
        sandscope_ingest::IngestError::MemoryBudget { .. } => BackendError::TooLarge(message),
        _ if error.is_decompression_budget() => BackendError::TooLarge(message),
        _ => BackendError::InvalidArgument(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandscope_ingest::IngestError;

    fn upload() -> Upload {
        Upload {
            path: "/var/tmp/sandscope-spool-77/upload-Ab12.gz".into(),
            original_name: "case 7.evtx.gz".into(),
            sha256: None,
            sandbox: None,
        }
    }

    #[test]
    fn machine_faults_are_5xx_and_input_faults_name_the_upload() {
        let upload = upload();
        for (os_error, what) in [(28, "disk full"), (13, "permission"), (30, "read-only")] {
            let error = IngestError::Io {
                path: upload.path.clone(),
                source: std::io::Error::from_raw_os_error(os_error),
            };
            assert!(
                matches!(ingest_error(&error, &upload), BackendError::Internal(_)),
                "{what}"
            );
        }
        let error = IngestError::MemoryBudget {
            file: upload.path.display().to_string(),
            budget: 1,
            held: 1,
        };
        let BackendError::TooLarge(message) = ingest_error(&error, &upload) else {
            panic!("413 expected");
        };
        assert!(message.starts_with("case 7.evtx.gz: "), "{message}");
        assert!(!message.contains("spool"), "{message}");
        let error = IngestError::Io {
            path: upload.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt deflate stream"),
        };
        assert_eq!(
            ingest_error(&error, &upload),
            BackendError::InvalidArgument("case 7.evtx.gz: corrupt deflate stream".into())
        );
    }
}
