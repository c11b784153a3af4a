//! `GET /api/v3/sandscope/export/{misp|stix}/{sha256}`: a sample's reports as a MISP event or a
//! STIX 2.1 bundle (built by `sandscope-export`), served as a download.

use crate::api::{AppState, call, download, file_not_found, sample_id};
use crate::backend::{MAX_LIMIT, PageRequest};
use crate::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use sandscope_export::SampleFormat;

/// A sample has one report per sandbox: this many pages of reports is far more than any has.
const MAX_REPORT_PAGES: usize = 20;

pub(crate) async fn export_sample(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((format, id))) = path else {
        return Err(ApiError::not_found("Export not found"));
    };
    let Some(format) = SampleFormat::parse(&format) else {
        return Err(ApiError::not_found("Unknown export format (misp or stix)"));
    };
    let id = sample_id(Ok(Path(id)))?;
    let lookup_id = id.clone();
    let reports = call(&state, move |backend| {
        let mut reports = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_REPORT_PAGES {
            let request = PageRequest {
                limit: MAX_LIMIT,
                cursor: cursor.take(),
            };
            let Some(page) = backend.behaviours(&lookup_id, &request)? else {
                return Ok(None);
            };
            reports.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(Some(reports))
    })
    .await?
    .filter(|reports| !reports.is_empty())
    .ok_or_else(|| file_not_found(&id))?;
    // An MD5 or SHA-1 id names the same sample: the export is filed under its SHA-256.
    let sha256 = reports
        .first()
        .map(|r| r.sha256().to_ascii_lowercase())
        .unwrap_or(id);
    let body = tokio::task::spawn_blocking(move || {
        format.render(&sha256, &reports).map(|body| (sha256, body))
    })
    .await;
    let (sha256, body) = match body {
        Ok(Ok(done)) => done,
        Ok(Err(err)) => {
            eprintln!("sandscope-server: export failed: {err}");
            return Err(ApiError::internal());
        }
        Err(join_error) => {
            eprintln!("sandscope-server: export failed: {join_error}");
            return Err(ApiError::internal());
        }
    };
    Ok(download(
        format.media_type(),
        &format.file_name(&sha256),
        "export.json",
        body,
    ))
}
