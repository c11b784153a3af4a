//! `/file_behaviours/{id}…`: one report as JSON or as the escaped HTML report, the log it was
//! built from, and its sample's descriptor.

use super::envelopes::{behaviour_json, download, encode_component, json_response};
use super::extractors::{behaviour_id, behaviour_not_found};
use super::{AppState, find};
use crate::error::ApiError;
use crate::html_report;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sandscope_model::FileBehaviour;
use serde_json::json;

/// The HTML report's policy: no script at all; its one inline stylesheet is allowed.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// The report the path names, or its 404.
async fn load(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<FileBehaviour, ApiError> {
    let id = behaviour_id(path)?;
    find(state, &id, behaviour_not_found, |b, id| b.behaviour(id)).await
}

/// `GET /file_behaviours/{id}`.
pub(super) async fn behaviour(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let report = load(&state, path).await?;
    Ok(json_response(
        json!({ "data": behaviour_json(&state, report) }),
    ))
}

/// `GET /file_behaviours/{id}/relationships/file`: the sample's descriptor.
pub(super) async fn file_descriptor(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let report = load(&state, path).await?;
    let sha256 = report.sha256();
    Ok(json_response(json!({
        "data": { "type": "file", "id": sha256 },
        "links": {
            "self": state.link(&format!(
                "/file_behaviours/{}/relationships/file",
                encode_component(&report.id)
            )),
            "related": state.link(&format!("/files/{sha256}")),
        }
    })))
}

/// `GET /file_behaviours/{id}/html`: the script-free HTML report.
pub(super) async fn html(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let report = load(&state, path).await?;
    let html = html_report::render(&report);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(REPORT_CSP),
            ),
        ],
        html,
    )
        .into_response())
}

/// `GET /file_behaviours/{id}/evtx`: the original log, as a download.
pub(super) async fn raw_log(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = behaviour_id(path)?;
    let log = find(
        &state,
        &id,
        |id| ApiError::not_found(format!("No log kept for {id:?}")),
        |b, id| b.raw_log(id),
    )
    .await?;
    Ok(download(
        "application/octet-stream",
        &log.file_name,
        "sysmon.evtx",
        log.bytes,
    ))
}
