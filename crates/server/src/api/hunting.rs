//! Livehunt under `/intelligence/`: `hunting_rulesets` (list with `filter`/`order`/cursor,
//! create, get, PATCH, delete, delete all with `x-confirm-delete`), `hunting_notifications` (list, get, delete, delete by filter)
//! and `hunting_notification_files` (the matched samples as `file` objects with VirusTotal's
//! `context_attributes`). Reads need any key, changes an `ingest` key. All the work is
//! `sandscope-hunting`'s, through [`crate::backend::Backend::hunting`].

use super::AppState;
use super::envelopes::{json_response, page_links};
use super::extractors::{Params, page_request, params, truncate};
use crate::auth::Role;
use crate::backend::{Backend, BackendError, PageRequest};
use crate::error::ApiError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandscope_hunting::{Hunting, NotificationFilter, unix_now};
use serde_json::{Map, Value, json};

const RULESETS: &str = "/intelligence/hunting_rulesets";
const NOTIFICATIONS: &str = "/intelligence/hunting_notifications";
const NOTIFICATION_FILES: &str = "/intelligence/hunting_notification_files";

pub(super) type CallerRole = Option<axum::Extension<Role>>;

fn may_change(state: &AppState, role: CallerRole) -> Result<(), ApiError> {
    may_change_what(state, role, "hunting rulesets")
}

/// Changes need an `ingest` key and a writable store; `what` names what is refused.
pub(super) fn may_change_what(
    state: &AppState,
    role: CallerRole,
    what: &str,
) -> Result<(), ApiError> {
    if role.map(|axum::Extension(r)| r) != Some(Role::Ingest) {
        return Err(ApiError::forbidden(format!(
            "this API key may read but not change {what}"
        )));
    }
    if !state.backend.accepts_ingest() {
        return Err(ApiError::forbidden(format!(
            "this server is read-only: {what} cannot be changed"
        )));
    }
    Ok(())
}

fn hunting(backend: &dyn Backend) -> Result<Hunting<'_>, BackendError> {
    backend
        .hunting()
        .ok_or_else(|| BackendError::Unavailable(
            "hunting is not available on this server (Livehunt runs on the embedded store only, for now)".into(),
        ))
}

/// A numeric ruleset or notification id from the path; anything else is a 404.
pub(super) fn numeric_id(
    path: Result<Path<String>, PathRejection>,
    kind: &str,
) -> Result<u64, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found(format!("{kind} not found")));
    };
    id.parse()
        .map_err(|_| ApiError::not_found(format!("{kind} {:?} not found", truncate(&id))))
}

/// The `attributes` of a `{"data": {"type": <kind>, "attributes": {…}}}` body.
pub(super) fn attributes(
    body: Result<Json<Value>, JsonRejection>,
    kind: &str,
) -> Result<Map<String, Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeError",
                format!("request body larger than the limit: {}", e.body_text()),
            )
        } else {
            ApiError::bad_request(format!("expected a JSON body: {}", e.body_text()))
        }
    })?;
    let data = body
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("expected {\"data\": {\"attributes\": {…}}}"))?;
    if let Some(t) = data.get("type")
        && t.as_str() != Some(kind)
    {
        return Err(ApiError::bad_request(format!("data.type must be {kind:?}")));
    }
    data.get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| ApiError::bad_request("data.attributes must be an object"))
}

/// A page of objects with `meta.cursor` and `links.next` when there is more (none when the
/// page is the last, empty or not).
pub(super) fn page_response(
    state: &AppState,
    path: &str,
    params: &Params,
    page: &PageRequest,
    data: Vec<Value>,
    next_cursor: Option<String>,
) -> Response {
    let limit = page.limit.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![("limit", &limit)];
    for key in ["filter", "order"] {
        if let Some(v) = params.get(key).filter(|v| !v.is_empty()) {
            pairs.push((key, v));
        }
    }
    let mut meta = Map::new();
    let next = next_cursor.filter(|_| !data.is_empty());
    let links = page_links(state, path, &pairs, page.cursor.as_deref(), next, &mut meta);
    json_response(json!({ "data": data, "meta": meta, "links": links }))
}

fn text_param(params: &Params, key: &str) -> String {
    params.get(key).cloned().unwrap_or_default()
}

pub(super) async fn list_rulesets(
    State(state): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    let page = page_request(&params)?;
    let (filter, order) = (text_param(&params, "filter"), text_param(&params, "order"));
    let (limit, cursor) = (page.limit, page.cursor.clone());
    let now = unix_now();
    let (data, next_cursor) = super::call(&state, move |b| {
        let h = hunting(b)?;
        let page = h.list_rulesets(&filter, &order, limit, cursor.as_deref())?;
        let data: Vec<Value> = page
            .items
            .iter()
            .map(|r| h.ruleset_object(r, now))
            .collect();
        Ok((data, page.next_cursor))
    })
    .await?;
    Ok(page_response(
        &state,
        RULESETS,
        &params,
        &page,
        data,
        next_cursor,
    ))
}

pub(super) async fn create_ruleset(
    State(state): State<AppState>,
    role: CallerRole,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    may_change(&state, role)?;
    let attributes = attributes(body, "hunting_ruleset")?;
    let now = unix_now();
    let object = super::call(&state, move |b| {
        let h = hunting(b)?;
        let ruleset = h.create_ruleset(&attributes, now)?;
        Ok(h.ruleset_object(&ruleset, now))
    })
    .await?;
    Ok(json_response(json!({ "data": object })))
}

pub(super) async fn get_ruleset(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = numeric_id(path, "Ruleset")?;
    let object = super::call(&state, move |b| {
        let h = hunting(b)?;
        Ok(h.ruleset_object(&h.ruleset(id)?, unix_now()))
    })
    .await?;
    Ok(json_response(json!({ "data": object })))
}

pub(super) async fn patch_ruleset(
    State(state): State<AppState>,
    role: CallerRole,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    may_change(&state, role)?;
    let id = numeric_id(path, "Ruleset")?;
    let attributes = attributes(body, "hunting_ruleset")?;
    let now = unix_now();
    let object = super::call(&state, move |b| {
        let h = hunting(b)?;
        let ruleset = h.update_ruleset(id, &attributes, now)?;
        Ok(h.ruleset_object(&ruleset, now))
    })
    .await?;
    Ok(json_response(json!({ "data": object })))
}

pub(super) async fn delete_ruleset(
    State(state): State<AppState>,
    role: CallerRole,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    may_change(&state, role)?;
    let id = numeric_id(path, "Ruleset")?;
    super::call(&state, move |b| Ok(hunting(b)?.delete_ruleset(id)?)).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /intelligence/hunting_rulesets`: every ruleset and its notifications. As on
/// VirusTotal, the request must carry `x-confirm-delete` (VirusTotal wants the user name; any
/// non-empty value is taken here, there being no users), so a stray DELETE deletes nothing.
pub(super) async fn delete_all_rulesets(
    State(state): State<AppState>,
    role: CallerRole,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    may_change(&state, role)?;
    let confirmed = headers
        .get("x-confirm-delete")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if !confirmed {
        return Err(ApiError::bad_request(
            "deleting every ruleset needs the header x-confirm-delete",
        ));
    }
    let deleted = super::call(&state, move |b| Ok(hunting(b)?.delete_all_rulesets()?)).await?;
    Ok(json_response(json!({ "meta": { "deleted": deleted } })))
}

/// The notification filter of a request: `filter`, plus the ruleset of a relationship path.
fn notification_filter(
    params: &Params,
    ruleset: Option<u64>,
) -> Result<NotificationFilter, ApiError> {
    let mut filter = NotificationFilter::parse(&text_param(params, "filter"))
        .map_err(|e| ApiError::invalid_argument(e.to_string()))?;
    if let Some(tag) = params.get("tag").filter(|t| !t.is_empty()) {
        filter.tag = Some(tag.to_lowercase());
    }
    if ruleset.is_some() {
        filter.ruleset_id = ruleset;
    }
    Ok(filter)
}

async fn notifications_page(
    state: AppState,
    params: Params,
    ruleset: Option<u64>,
    path: String,
    as_files: bool,
) -> Result<Response, ApiError> {
    let page = page_request(&params)?;
    let filter = notification_filter(&params, ruleset)?;
    let (limit, cursor) = (page.limit, page.cursor.clone());
    let result = super::call(&state, move |b| {
        let h = hunting(b)?;
        if let Some(id) = ruleset {
            h.ruleset(id)?;
        }
        Ok(h.notifications(&filter, limit, cursor.as_deref())?)
    })
    .await?;
    let data = result
        .items
        .iter()
        .map(|n| {
            if as_files {
                n.to_file_object()
            } else {
                n.to_object()
            }
        })
        .collect();
    Ok(page_response(
        &state,
        &path,
        &params,
        &page,
        data,
        result.next_cursor,
    ))
}

pub(super) async fn list_notifications(
    State(state): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    notifications_page(state, params, None, NOTIFICATIONS.into(), false).await
}

pub(super) async fn notification_files(
    State(state): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    notifications_page(state, params, None, NOTIFICATION_FILES.into(), true).await
}

pub(super) async fn ruleset_notification_files(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = numeric_id(path, "Ruleset")?;
    let params = params(query)?;
    let path = format!("{RULESETS}/{id}/hunting_notification_files");
    notifications_page(state, params, Some(id), path, true).await
}

pub(super) async fn get_notification(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = numeric_id(path, "Notification")?;
    let n = super::call(&state, move |b| Ok(hunting(b)?.notification(id)?)).await?;
    Ok(json_response(json!({ "data": n.to_object() })))
}

pub(super) async fn delete_notification(
    State(state): State<AppState>,
    role: CallerRole,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    may_change(&state, role)?;
    let id = numeric_id(path, "Notification")?;
    super::call(&state, move |b| Ok(hunting(b)?.delete_notification(id)?)).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /intelligence/hunting_notifications[?tag=…|filter=…]`: every notification the
/// filter matches (all of them without one).
pub(super) async fn delete_notifications(
    State(state): State<AppState>,
    role: CallerRole,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    may_change(&state, role)?;
    let params = params(query)?;
    let filter = notification_filter(&params, None)?;
    let deleted = super::call(&state, move |b| {
        Ok(hunting(b)?.delete_notifications(&filter)?)
    })
    .await?;
    Ok(json_response(json!({ "meta": { "deleted": deleted } })))
}
