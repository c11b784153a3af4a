//! Sandscope's own endpoints beside VirusTotal's: the health check, the pivot graph and its
//! exports, and the comparison of two reports.

use super::envelopes::{download, json_response};
use super::extractors::{behaviour_id, behaviour_not_found, file_not_found, sample_id};
use super::{AppState, call, find};
use crate::backend::GraphFormat;
use crate::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use sandscope_model::diff_reports;
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

/// `GET /sandscope/graph/{id}/export/{json|dot|graphml}`: the sample's graph as
/// `sandscope graph --format …` writes it, as a download.
pub(super) async fn graph_export(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((id, format))) = path else {
        return Err(ApiError::not_found("Graph export not found"));
    };
    let (format, media_type, extension) = match format.as_str() {
        "json" => (GraphFormat::Json, "application/json", "json"),
        "dot" => (GraphFormat::Dot, "text/vnd.graphviz", "dot"),
        "graphml" => (GraphFormat::GraphMl, "application/graphml+xml", "graphml"),
        _ => {
            return Err(ApiError::not_found(
                "Unknown graph format (json, dot or graphml)",
            ));
        }
    };
    let id = sample_id(Ok(Path(id)))?;
    let text = find(&state, &id, file_not_found, move |b, id| {
        b.graph_export(id, format)
    })
    .await?;
    let name = format!("{id}.graph.{extension}");
    Ok(download(media_type, &name, "graph", text.into_bytes()))
}

/// `GET /sandscope/compare/{left}/{right}`: what only one of two behaviour reports saw and
/// what both did, as `sandscope diff --format json` prints it.
pub(super) async fn compare(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((left, right))) = path else {
        return Err(ApiError::not_found("Comparison not found"));
    };
    let left = behaviour_id(Ok(Path(left)))?;
    let right = behaviour_id(Ok(Path(right)))?;
    let left = find(&state, &left, behaviour_not_found, |b, id| b.behaviour(id)).await?;
    let right = find(&state, &right, behaviour_not_found, |b, id| b.behaviour(id)).await?;
    let diff = diff_reports(&left, &right);
    Ok(json_response(json!({ "data": diff })))
}

/// `GET /sandscope/jobs/{id}`: where an upload published to the work queue is (queued, running,
/// done with its report ids, failed or parked with the reason).
pub(super) async fn job(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("Job not found"));
    };
    match call(&state, move |b| b.job(&id)).await? {
        Some(status) => Ok(json_response(json!({ "data": status }))),
        None => Err(ApiError::not_found("Job not found")),
    }
}
