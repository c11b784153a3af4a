//! `/files/{id}…`: a sample, its reports (paged, whole or as descriptors), their merged
//! summary and their ATT&CK trees.

use super::envelopes::{behaviour_descriptor, behaviour_json, collection, json_response};
use super::extractors::{Params, file_not_found, page_request, params, sample_id};
use super::{AppState, find};
use crate::backend::{MAX_LIMIT, PageRequest};
use crate::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use sandscope_model::FileBehaviour;
use serde_json::{Value, json};

/// A page of a sample's reports as the collection `/files/{id}/{relation}`, each report
/// shown by `item`.
async fn reports_collection(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
    relation: &str,
    item: impl Fn(FileBehaviour) -> Value,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let page = page_request(&params(query)?)?;
    let request = page.clone();
    let found = find(state, &id, file_not_found, move |b, id| {
        b.behaviours(id, &request)
    })
    .await?;
    let data = found.items.into_iter().map(item).collect();
    Ok(json_response(collection(
        state,
        &format!("/files/{id}/{relation}"),
        data,
        &page,
        found.next_cursor,
        found.total,
    )))
}

/// `GET /files/{id}/behaviours`: the reports, whole.
pub(super) async fn behaviours(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    reports_collection(&state, path, query, "behaviours", |r| {
        behaviour_json(&state, r)
    })
    .await
}

/// `GET /files/{id}/relationships/behaviours`: the reports' descriptors.
pub(super) async fn behaviour_descriptors(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    reports_collection(&state, path, query, "relationships/behaviours", |r| {
        behaviour_descriptor(&r)
    })
    .await
}

/// `GET /files/{id}`: the file object as far as behaviour data tells (VirusTotal's file
/// objects carry far more; scripts mostly want the id and that the file exists).
pub(super) async fn file_object(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let request = PageRequest {
        limit: MAX_LIMIT,
        cursor: None,
    };
    let page = find(&state, &id, file_not_found, move |b, id| {
        b.behaviours(id, &request)
    })
    .await?;
    let sha256 = page
        .items
        .first()
        .map(|r| r.sha256().to_string())
        .unwrap_or(id);
    let sandboxes: Vec<&str> = page
        .items
        .iter()
        .map(|r| r.attributes.sandbox_name.as_str())
        .collect();
    let last_analysis = page
        .items
        .iter()
        .filter_map(|r| r.attributes.analysis_date)
        .max();
    let mut attributes = json!({ "sha256": sha256, "sandbox_names": sandboxes });
    if let (Some(date), Some(object)) = (last_analysis, attributes.as_object_mut()) {
        object.insert("last_analysis_date".into(), json!(date));
    }
    let behaviours: Vec<Value> = page.items.iter().map(behaviour_descriptor).collect();
    Ok(json_response(json!({
        "data": {
            "type": "file",
            "id": sha256,
            "links": { "self": state.link(&format!("/files/{sha256}")) },
            "attributes": attributes,
            "relationships": { "behaviours": {
                "data": behaviours,
                "links": {
                    "self": state.link(&format!("/files/{sha256}/relationships/behaviours")),
                    "related": state.link(&format!("/files/{sha256}/behaviours")),
                }
            }}
        }
    })))
}

/// `GET /files/{id}/behaviour_summary`.
pub(super) async fn behaviour_summary(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let summary = find(&state, &id, file_not_found, |b, id| b.behaviour_summary(id)).await?;
    Ok(json_response(json!({
        "data": summary,
        "links": { "self": state.link(&format!("/files/{id}/behaviour_summary")) }
    })))
}

/// `GET /files/{id}/behaviour_mitre_trees`.
pub(super) async fn mitre_trees(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let trees = find(&state, &id, file_not_found, |b, id| {
        b.behaviour_mitre_trees(id)
    })
    .await?;
    Ok(json_response(json!({
        "data": trees,
        "links": { "self": state.link(&format!("/files/{id}/behaviour_mitre_trees")) }
    })))
}
