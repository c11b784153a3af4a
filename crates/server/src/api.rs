//! Routes, handlers and the layers around them (auth, deadlines, security headers).

use crate::auth::{ApiKeys, Role};
use crate::backend::{
    self, Backend, BackendError, DEFAULT_LIMIT, MAX_LIMIT, PageRequest, SearchLimits, SearchOrder,
    SearchRequest, Upload,
};
use crate::error::ApiError;
use crate::lanes::SearchLanes;
use crate::{ServerConfig, html_report, ui};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sandscope_model::FileBehaviour;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tower_http::set_header::SetResponseHeaderLayer;

/// The UI's policy: scripts, styles and fetches only from this origin, nothing inline.
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The HTML report's policy: no script at all; its one inline stylesheet is allowed.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// Longest accepted query text and cursor, to keep hostile requests cheap.
const MAX_QUERY_LEN: usize = 4096;
const MAX_CURSOR_LEN: usize = 1024;

#[derive(Clone)]
pub(crate) struct AppState {
    backend: Arc<dyn Backend>,
    keys: Arc<ApiKeys>,
    config: Arc<ServerConfig>,
    ingest_slots: Arc<Semaphore>,
    search_lanes: Arc<SearchLanes>,
}

impl AppState {
    pub(crate) fn new(backend: Arc<dyn Backend>, keys: ApiKeys, config: ServerConfig) -> Self {
        let slots = config.max_concurrent_ingests.max(1);
        // Uploads a killed server left behind.
        let base = spool_base(&config);
        match crate::spool::remove_leftovers(&base) {
            Ok(0) => {}
            Ok(n) => eprintln!(
                "sandscope-server: removed {n} spool folder(s) of stopped servers in {}",
                base.display()
            ),
            Err(e) => eprintln!(
                "sandscope-server: cannot clean spool folders in {}: {e}",
                base.display()
            ),
        }
        let search_lanes = Arc::new(SearchLanes::new(&config));
        Self {
            search_lanes,
            backend,
            keys: Arc::new(keys),
            config: Arc::new(config),
            ingest_slots: Arc::new(Semaphore::new(slots)),
        }
    }

    fn link(&self, path: &str) -> String {
        format!(
            "{}/api/v3{path}",
            self.config.public_url.trim_end_matches('/')
        )
    }
}

pub(crate) fn router(state: AppState) -> Router {
    let request_timeout = state.config.request_timeout;
    let ingest_timeout = state.config.ingest_timeout;
    // Multipart framing around the file adds a little; the file field itself is counted
    // against `upload_limit` exactly.
    let body_limit =
        usize::try_from(state.config.upload_limit.saturating_add(64 * 1024)).unwrap_or(usize::MAX);

    let reads = Router::new()
        .route("/files/{id}", get(file_object))
        .route("/files/{id}/behaviours", get(behaviours))
        .route(
            "/files/{id}/relationships/behaviours",
            get(behaviour_descriptors),
        )
        .route("/files/{id}/behaviour_summary", get(behaviour_summary))
        .route("/files/{id}/behaviour_mitre_trees", get(mitre_trees))
        .route("/file_behaviours/{id}", get(behaviour))
        .route("/file_behaviours/{id}/evtx", get(behaviour_log))
        .route("/file_behaviours/{id}/html", get(behaviour_html))
        .route(
            "/file_behaviours/{id}/relationships/file",
            get(behaviour_file_descriptor),
        )
        .route("/intelligence/search", get(search))
        .route("/sandscope/graph/{id}", get(pivot_graph))
        .route(
            "/sandscope/export/{format}/{id}",
            get(crate::export_api::export_sample),
        )
        .route_layer(middleware::from_fn(move |req, next| {
            deadline(request_timeout, req, next)
        }));
    let ingest = Router::new()
        .route("/sandscope/ingest", post(ingest))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn(move |req, next| {
            deadline(ingest_timeout, req, next)
        }));
    let authenticated = reads
        .merge(ingest)
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));

    let api = Router::new()
        .route(
            "/sandscope/health",
            get(health).layer(middleware::from_fn(move |req, next| {
                deadline(request_timeout, req, next)
            })),
        )
        .route("/sandscope/schema", get(crate::schema_api::schema))
        .merge(authenticated)
        .fallback(api_not_found);

    Router::new()
        .nest("/api/v3", api)
        .merge(ui::router())
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(UI_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

async fn deadline(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::deadline_exceeded().into_response(),
    }
}

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(presented) = request.headers().get("x-apikey") else {
        return ApiError::authentication_required().into_response();
    };
    match state.keys.role_of(presented.as_bytes()) {
        Some(role) => {
            request.extensions_mut().insert(role);
            next.run(request).await
        }
        None => ApiError::wrong_credentials().into_response(),
    }
}

async fn api_not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("Resource {:?} not found", uri.path()))
}

/// Run a backend call on the blocking pool.
pub(crate) async fn call<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&dyn Backend) -> Result<T, BackendError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = state.backend.clone();
    match tokio::task::spawn_blocking(move || work(backend.as_ref())).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join_error) => {
            eprintln!("sandscope-server: backend call failed: {join_error}");
            Err(ApiError::internal())
        }
    }
}

type Params = HashMap<String, String>;

fn params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))
}

pub(crate) fn sample_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("File not found"));
    };
    if backend::is_sample_id(&id) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(ApiError::not_found(format!(
            "File {:?} not found",
            truncate(&id)
        )))
    }
}

fn behaviour_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("File behaviour not found"));
    };
    match sandscope_model::split_behaviour_id(&id) {
        Some((sha256, sandbox)) if backend::is_behaviour_id(&id) => {
            Ok(format!("{}_{sandbox}", sha256.to_ascii_lowercase()))
        }
        _ => Err(ApiError::not_found(format!(
            "File behaviour {:?} not found",
            truncate(&id)
        ))),
    }
}

/// Echo at most 100 characters of a rejected value back in an error message.
fn truncate(value: &str) -> String {
    value.chars().take(100).collect()
}

fn page_request(params: &Params) -> Result<PageRequest, ApiError> {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_argument(format!(
                    "limit must be an integer from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let cursor = match params.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(c) if c.len() > MAX_CURSOR_LEN => {
            return Err(ApiError::invalid_argument("cursor too long"));
        }
        Some(c) => Some(c.to_string()),
    };
    Ok(PageRequest { limit, cursor })
}

/// Percent-encode a path segment or query value (RFC 3986 unreserved characters kept).
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn behaviour_json(state: &AppState, mut report: FileBehaviour) -> Value {
    report.links = Some(sandscope_model::Links {
        self_link: state.link(&format!(
            "/file_behaviours/{}",
            encode_component(&report.id)
        )),
        next: None,
    });
    serde_json::to_value(&report).unwrap_or(Value::Null)
}

fn json_response(value: Value) -> Response {
    axum::Json(value).into_response()
}

async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
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

async fn behaviours(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let params = params(query)?;
    let page = page_request(&params)?;
    let (lookup_id, request) = (id.clone(), page.clone());
    let result = call(&state, move |b| b.behaviours(&lookup_id, &request)).await?;
    let page_of = result.ok_or_else(|| ApiError::not_found(format!("File {id:?} not found")))?;
    let data: Vec<Value> = page_of
        .items
        .into_iter()
        .map(|r| behaviour_json(&state, r))
        .collect();
    Ok(json_response(collection(
        &state,
        &format!("/files/{id}/behaviours"),
        data,
        &page,
        page_of.next_cursor,
        page_of.total,
    )))
}

/// VirusTotal's collection envelope (schema §10).
fn collection(
    state: &AppState,
    path: &str,
    data: Vec<Value>,
    page: &PageRequest,
    next_cursor: Option<String>,
    count: Option<u64>,
) -> Value {
    let limit = page.limit.to_string();
    let mut self_pairs = vec![("limit", limit.as_str())];
    if let Some(cursor) = &page.cursor {
        self_pairs.push(("cursor", cursor));
    }
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!(format!(
            "{}?{}",
            state.link(path),
            query_string(&self_pairs)
        )),
    );
    let mut meta = Map::new();
    if let Some(count) = count {
        meta.insert("count".into(), json!(count));
    }
    if let Some(cursor) = next_cursor.filter(|c| !c.is_empty()) {
        links.insert(
            "next".into(),
            json!(format!(
                "{}?{}",
                state.link(path),
                query_string(&[("cursor", &cursor), ("limit", &limit)])
            )),
        );
        meta.insert("cursor".into(), json!(cursor));
    }
    json!({ "data": data, "meta": meta, "links": links })
}

async fn behaviour_descriptors(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let params = params(query)?;
    let page = page_request(&params)?;
    let (lookup_id, request) = (id.clone(), page.clone());
    let result = call(&state, move |b| b.behaviours(&lookup_id, &request)).await?;
    let page_of = result.ok_or_else(|| ApiError::not_found(format!("File {id:?} not found")))?;
    let data = page_of
        .items
        .iter()
        .map(|r| json!({ "type": "file_behaviour", "id": r.id }))
        .collect();
    Ok(json_response(collection(
        &state,
        &format!("/files/{id}/relationships/behaviours"),
        data,
        &page,
        page_of.next_cursor,
        page_of.total,
    )))
}

/// `GET /files/{id}`: the file object as far as behaviour data tells (VirusTotal's file
/// objects carry far more; scripts mostly want the id and that the file exists).
async fn file_object(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let lookup_id = id.clone();
    let request = PageRequest {
        limit: MAX_LIMIT,
        cursor: None,
    };
    let result = call(&state, move |b| b.behaviours(&lookup_id, &request)).await?;
    let page = result.ok_or_else(|| ApiError::not_found(format!("File {id:?} not found")))?;
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
    let behaviours: Vec<Value> = page
        .items
        .iter()
        .map(|r| json!({ "type": "file_behaviour", "id": r.id }))
        .collect();
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

async fn behaviour_summary(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let lookup_id = id.clone();
    let summary = call(&state, move |b| b.behaviour_summary(&lookup_id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("File {id:?} not found")))?;
    Ok(json_response(json!({
        "data": summary,
        "links": { "self": state.link(&format!("/files/{id}/behaviour_summary")) }
    })))
}

async fn mitre_trees(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let lookup_id = id.clone();
    let trees = call(&state, move |b| b.behaviour_mitre_trees(&lookup_id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("File {id:?} not found")))?;
    Ok(json_response(json!({
        "data": trees,
        "links": { "self": state.link(&format!("/files/{id}/behaviour_mitre_trees")) }
    })))
}

async fn load_behaviour(state: &AppState, id: &str) -> Result<FileBehaviour, ApiError> {
    let lookup_id = id.to_string();
    call(state, move |b| b.behaviour(&lookup_id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("File behaviour {id:?} not found")))
}

async fn behaviour(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = behaviour_id(path)?;
    let report = load_behaviour(&state, &id).await?;
    Ok(json_response(
        json!({ "data": behaviour_json(&state, report) }),
    ))
}

async fn behaviour_file_descriptor(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = behaviour_id(path)?;
    let report = load_behaviour(&state, &id).await?;
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

async fn behaviour_html(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = behaviour_id(path)?;
    let report = load_behaviour(&state, &id).await?;
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

/// A download name made only of `[A-Za-z0-9._-]`, so it can go into a header unquoted-safe.
pub(crate) fn safe_file_name(name: &str, fallback: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                Some(c)
            } else if c == ' ' || c == '%' {
                Some('_')
            } else {
                None
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        fallback.to_string()
    } else {
        trimmed.to_string()
    }
}

async fn behaviour_log(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = behaviour_id(path)?;
    let lookup_id = id.clone();
    let log = call(&state, move |b| b.raw_log(&lookup_id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No log kept for {id:?}")))?;
    let name = safe_file_name(&log.file_name, "sysmon.evtx");
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        log.bytes,
    )
        .into_response())
}

fn parse_order(text: &str) -> Result<Option<SearchOrder>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (field, descending) = if let Some(f) = text.strip_suffix('-') {
        (f, true)
    } else if let Some(f) = text.strip_suffix('+') {
        (f, false)
    } else {
        (text, false)
    };
    if field.is_empty()
        || field.len() > 64
        || !field
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(ApiError::invalid_argument(format!(
            "invalid order {:?}",
            truncate(text)
        )));
    }
    Ok(Some(SearchOrder {
        field: field.to_string(),
        descending,
    }))
}

fn parse_bool(name: &str, text: Option<&String>) -> Result<bool, ApiError> {
    match text.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::invalid_argument(format!(
            "{name} must be true or false"
        ))),
    }
}

async fn search(
    State(state): State<AppState>,
    uri: Uri,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    // The query extractor decodes invalid UTF-8 to U+FFFD silently; a query is text.
    if let Some(raw) = uri.query()
        && percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .is_err()
    {
        return Err(ApiError::bad_request(
            "malformed query string: not valid UTF-8",
        ));
    }
    let params = params(query)?;
    let text = params.get("query").map(|q| q.trim()).unwrap_or_default();
    if text.is_empty() {
        return Err(ApiError::bad_request("query parameter is required"));
    }
    if text.chars().count() > MAX_QUERY_LEN {
        return Err(ApiError::bad_request(format!(
            "query longer than {MAX_QUERY_LEN} characters"
        )));
    }
    let page = page_request(&params)?;
    let order_text = params.get("order").cloned().unwrap_or_default();
    let order = parse_order(&order_text)?;
    let descriptors_only = parse_bool("descriptors_only", params.get("descriptors_only"))?;
    let request = SearchRequest {
        query: text.to_string(),
        page: page.clone(),
        order,
        descriptors_only,
        limits: SearchLimits::default(),
    };
    let (result, orders) = state
        .search_lanes
        .search(state.backend.clone(), request)
        .await?;

    let data: Vec<Value> = result
        .hits
        .into_iter()
        .map(|hit| {
            if descriptors_only {
                return json!({ "type": "file", "id": hit.sha256 });
            }
            let attributes = match hit.attributes {
                Value::Object(map) => Value::Object(map),
                _ => json!({}),
            };
            json!({
                "type": "file",
                "id": hit.sha256,
                "links": { "self": state.link(&format!("/files/{}", hit.sha256)) },
                "attributes": attributes,
                "context_attributes": { "snippets": hit.snippets },
            })
        })
        .collect();

    let limit = page.limit.to_string();
    let descriptors = if descriptors_only { "true" } else { "false" };
    let mut base_pairs = vec![("query", text), ("limit", limit.as_str())];
    if !order_text.trim().is_empty() {
        base_pairs.push(("order", order_text.trim()));
    }
    if descriptors_only {
        base_pairs.push(("descriptors_only", descriptors));
    }
    let mut self_pairs = base_pairs.clone();
    if let Some(cursor) = &page.cursor {
        self_pairs.push(("cursor", cursor));
    }
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!(format!(
            "{}?{}",
            state.link("/intelligence/search"),
            query_string(&self_pairs)
        )),
    );
    let mut meta = Map::new();
    meta.insert("total_hits".into(), json!(result.total_hits));
    // Elasticsearch's convention: a broad query's count stops at a limit (see the store).
    meta.insert(
        "total_hits_relation".into(),
        json!(if result.total_hits_exact { "eq" } else { "gte" }),
    );
    meta.insert("allowed_orders".into(), json!(orders));
    if let Some(cursor) = result.next_cursor.filter(|c| !c.is_empty()) {
        let mut next_pairs = vec![("cursor", cursor.as_str())];
        next_pairs.extend(base_pairs.iter().copied());
        links.insert(
            "next".into(),
            json!(format!(
                "{}?{}",
                state.link("/intelligence/search"),
                query_string(&next_pairs)
            )),
        );
        meta.insert("cursor".into(), json!(cursor));
    }
    Ok(json_response(
        json!({ "meta": meta, "data": data, "links": links }),
    ))
}

async fn pivot_graph(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = sample_id(path)?;
    let lookup_id = id.clone();
    let graph = call(&state, move |b| b.pivot_graph(&lookup_id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("File {id:?} not found")))?;
    Ok(json_response(json!({ "data": graph })))
}

/// Read a short text form field, refusing anything over `max` bytes without buffering it.
async fn small_field(
    field: &mut axum::extract::multipart::Field<'_>,
    max: usize,
) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::invalid_argument(format!(
                "form field {name:?} too long"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| ApiError::invalid_argument(format!("form field {name:?} is not UTF-8")))
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            error.body_text(),
        )
    } else {
        ApiError::bad_request(format!("malformed upload: {}", error.body_text()))
    }
}

/// The client's file name reduced to what [`Upload::original_name`] promises: the last path
/// component only, `[A-Za-z0-9._ -]`, at most 128 characters.
fn upload_name(client_name: Option<&str>) -> String {
    let last = client_name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-'))
        .take(128)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "upload".to_string()
    } else {
        cleaned
    }
}

/// The upload's extension (e.g. `.evtx`, `.gz`), kept on the spool file for readers that
/// look at it; only short alphanumeric extensions are kept.
fn spool_suffix(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, ext))
            if !ext.is_empty()
                && ext.len() <= 8
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

async fn ingest(
    State(state): State<AppState>,
    role: Option<axum::Extension<Role>>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    if role.map(|axum::Extension(r)| r) != Some(Role::Ingest) {
        return Err(ApiError::forbidden("this API key may read but not ingest"));
    }
    if !state.backend.accepts_ingest() {
        return Err(ApiError::read_only());
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
    })?;

    let limit = state.config.upload_limit;
    let mut spooled: Option<(tempfile::NamedTempFile, String)> = None;
    let mut sha256: Option<String> = None;
    let mut sandbox: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if spooled.is_some() {
                    return Err(ApiError::invalid_argument("only one file per upload"));
                }
                let name = upload_name(field.file_name());
                let spool = spool_file(&state, &spool_suffix(&name))?;
                let std_file = spool.as_file().try_clone().map_err(|e| {
                    eprintln!("sandscope-server: spool file: {e}");
                    ApiError::internal()
                })?;
                let mut file = tokio::fs::File::from_std(std_file);
                let mut written: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    written = written.saturating_add(chunk.len() as u64);
                    if written > limit {
                        return Err(ApiError::payload_too_large(limit));
                    }
                    file.write_all(&chunk).await.map_err(|e| {
                        eprintln!("sandscope-server: spool write: {e}");
                        ApiError::transient("could not store the upload")
                    })?;
                }
                file.flush()
                    .await
                    .map_err(|_| ApiError::transient("could not store the upload"))?;
                if written == 0 {
                    return Err(ApiError::invalid_argument("the uploaded file is empty"));
                }
                spooled = Some((spool, name));
            }
            "sha256" => {
                let value = small_field(&mut field, 128).await?.to_ascii_lowercase();
                if value.is_empty() {
                    continue;
                }
                if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ApiError::invalid_argument("sha256 must be 64 hex digits"));
                }
                sha256 = Some(value);
            }
            "sandbox" => {
                let value = small_field(&mut field, 256).await?;
                if value.is_empty() {
                    continue;
                }
                if !backend::is_sandbox_name(&value) {
                    return Err(ApiError::invalid_argument(
                        "sandbox must be 1 to 64 printable characters",
                    ));
                }
                sandbox = Some(value);
            }
            other => {
                return Err(ApiError::invalid_argument(format!(
                    "unknown form field {:?} (expected file, sha256, sandbox)",
                    truncate(other)
                )));
            }
        }
    }
    let Some((spool, original_name)) = spooled else {
        return Err(ApiError::invalid_argument("no file field in the upload"));
    };

    let _slot = state
        .ingest_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::transient("server shutting down"))?;
    let upload = Upload {
        path: spool.path().to_path_buf(),
        original_name,
        sha256,
        sandbox,
    };
    let outcome = call(&state, move |b| b.ingest(&upload)).await?;
    drop(spool);

    let data: Vec<Value> = outcome
        .report_ids
        .iter()
        .map(|id| {
            json!({
                "type": "file_behaviour",
                "id": id,
                "links": { "self": state.link(&format!("/file_behaviours/{}", encode_component(id))) }
            })
        })
        .collect();
    Ok(json_response(json!({
        "data": data,
        "meta": { "warnings": outcome.warnings }
    })))
}

fn spool_file(state: &AppState, suffix: &str) -> Result<tempfile::NamedTempFile, ApiError> {
    let base = spool_base(&state.config);
    crate::spool::create(&base, suffix).map_err(|e| {
        eprintln!(
            "sandscope-server: cannot create an upload spool file in {}: {e}",
            crate::spool::folder(&base).display()
        );
        ApiError::transient("could not store the upload")
    })
}

/// The directory holding this server's spool folder.
fn spool_base(config: &ServerConfig) -> std::path::PathBuf {
    config.upload_dir.clone().unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_lose_paths_and_odd_characters() {
        assert_eq!(upload_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(upload_name(Some("C:\\logs\\run 1.evtx")), "run 1.evtx");
        assert_eq!(upload_name(Some("..")), "upload");
        assert_eq!(upload_name(Some("<script>.evtx")), "script.evtx");
        assert_eq!(upload_name(None), "upload");
        assert_eq!(spool_suffix("a.EVTX"), ".evtx");
        assert_eq!(spool_suffix("a.ev/tx"), "");
        assert_eq!(spool_suffix("noext"), "");
    }

    #[test]
    fn orders_and_components() {
        assert_eq!(
            parse_order("analysis_date-").unwrap(),
            Some(SearchOrder {
                field: "analysis_date".into(),
                descending: true
            })
        );
        assert_eq!(parse_order("").unwrap(), None);
        assert!(parse_order("drop table;").is_err());
        assert_eq!(encode_component("a b/_~é"), "a%20b%2F_~%C3%A9");
        assert_eq!(safe_file_name("../x\".evtx", "f"), "x.evtx");
        assert_eq!(safe_file_name("...", "f"), "f");
    }
}
