//! Sandscope's own endpoints beside VirusTotal's: the health check and the pivot graph.

use super::envelopes::json_response;
use super::extractors::{file_not_found, sample_id};
use super::{AppState, call, find};
use crate::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

/// `GET /sandscope/health` (no key needed).
pub(super) async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let health = call(&state, |b| b.health()).await.map_err(|e| {
        if e.status == StatusCode::INTERNAL_SERVER_ERROR {
            ApiError::transient("backend unavailable")
        } else {
            e
        }
    })?;
    // Degraded (writes failing, samples not yet searchable) is still 200: reads work, and the
    // store recovers by itself; only a backend that cannot answer is 503.
    let mut data = json!({
        "status": if health.degraded.is_some() { "degraded" } else { "ok" },
        "samples": health.samples,
        "reports": health.reports,
        "read_only": health.read_only,
    });
    if let (Some(reason), Some(object)) = (health.degraded, data.as_object_mut()) {
        object.insert("reason".to_string(), json!(reason));
    }
    Ok(json_response(json!({ "data": data })))
}

/// `GET /sandscope/graph/{id}`: the sample, its indicators and the samples sharing them.
pub(super) async fn pivot_graph(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let graph = find(&state, &id, file_not_found, |b, id| b.pivot_graph(id)).await?;
    Ok(json_response(json!({ "data": graph })))
}
