//! Retrohunt under `/intelligence/retrohunt_jobs`: create (Sigma rules or Intelligence
//! queries, optional `time_range` on first-seen), list (cursor), get, abort, delete, and each
//! job's `matching_files` (file objects with the rule that matched in `context_attributes`).
//! Reads need any key, changes an `ingest` key. The jobs run on `sandscope-hunting`'s own
//! threads ([`crate::backend::Backend::retrohunts`]); a request only reads or writes records.

use super::AppState;
use super::envelopes::json_response;
use super::extractors::{Params, page_request, params, truncate};
use super::hunting::{CallerRole, attributes, may_change_what, page_response};
use crate::backend::{Backend, BackendError};
use crate::error::ApiError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandscope_hunting::{RetrohuntJob, Retrohunts, unix_now};
use serde_json::{Value, json};

const JOBS: &str = "/intelligence/retrohunt_jobs";
const WHAT: &str = "retrohunt jobs";

fn retrohunts(backend: &dyn Backend) -> Result<&Retrohunts, BackendError> {
    backend.retrohunts().ok_or_else(|| {
        BackendError::Unavailable(
            "Retrohunt jobs are not available on this server (a read-only store, or its jobs could not be read: see the server's log)"
                .into(),
        )
    })
}

/// A job id from the path (`sandscope-<n>` or `<n>`); anything else is a 404.
fn job_id(path: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("Retrohunt job not found"));
    };
    RetrohuntJob::parse_api_id(&id)
        .ok_or_else(|| ApiError::not_found(format!("Retrohunt job {:?} not found", truncate(&id))))
}

pub(super) async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    let page = page_request(&params)?;
    let (limit, cursor) = (page.limit, page.cursor.clone());
    let (data, next_cursor) = super::call(&state, move |b| {
        let page = retrohunts(b)?.list(limit, cursor.as_deref())?;
        let data: Vec<Value> = page.items.iter().map(RetrohuntJob::to_object).collect();
        Ok((data, page.next_cursor))
    })
    .await?;
    Ok(page_response(
        &state,
        JOBS,
        &params,
        &page,
        data,
        next_cursor,
    ))
}

pub(super) async fn create_job(
    State(state): State<AppState>,
    role: CallerRole,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    may_change_what(&state, role, WHAT)?;
    let attributes = attributes(body, "retrohunt_job")?;
    let object = super::call(&state, move |b| {
        Ok(retrohunts(b)?.create(&attributes, unix_now())?.to_object())
    })
    .await?;
    Ok(json_response(json!({ "data": object })))
}

pub(super) async fn get_job(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let object = super::call(&state, move |b| Ok(retrohunts(b)?.job(id)?.to_object())).await?;
    Ok(json_response(json!({ "data": object })))
}

pub(super) async fn abort_job(
    State(state): State<AppState>,
    role: CallerRole,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    may_change_what(&state, role, WHAT)?;
    let id = job_id(path)?;
    let object = super::call(&state, move |b| Ok(retrohunts(b)?.abort(id)?.to_object())).await?;
    Ok(json_response(json!({ "data": object })))
}

pub(super) async fn delete_job(
    State(state): State<AppState>,
    role: CallerRole,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    may_change_what(&state, role, WHAT)?;
    let id = job_id(path)?;
    super::call(&state, move |b| Ok(retrohunts(b)?.delete(id)?)).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn matching_files(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let params = params(query)?;
    let page = page_request(&params)?;
    let (limit, cursor) = (page.limit, page.cursor.clone());
    let (data, next_cursor) = super::call(&state, move |b| {
        let (job, page) = retrohunts(b)?.matches(id, limit, cursor.as_deref())?;
        let data: Vec<Value> = page.items.iter().map(|m| m.to_file_object(&job)).collect();
        Ok((data, page.next_cursor))
    })
    .await?;
    let path = format!("{JOBS}/sandscope-{id}/matching_files");
    Ok(page_response(
        &state,
        &path,
        &params,
        &page,
        data,
        next_cursor,
    ))
}
