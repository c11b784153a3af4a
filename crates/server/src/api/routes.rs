//! The routes under `/api/v3` and the layers around them: API keys, per-request deadlines and
//! the security headers every response carries.

use super::{
    AppState, file_behaviours, files, hunting, retrohunt, sandscope, search, sigma_rules, upload,
};
use crate::error::ApiError;
use crate::ui;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

/// The UI's policy: scripts, styles and fetches only from this origin, nothing inline.
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub(crate) fn router(state: AppState) -> Router {
    let request_timeout = state.config.request_timeout;
    let ingest_timeout = state.config.ingest_timeout;
    // Multipart framing around the file adds a little; the file field itself is counted
    // against `upload_limit` exactly.
    let body_limit =
        usize::try_from(state.config.upload_limit.saturating_add(64 * 1024)).unwrap_or(usize::MAX);

    let reads = Router::new()
        .route("/files/{id}", get(files::file_object))
        .route("/files/{id}/behaviours", get(files::behaviours))
        .route(
            "/files/{id}/relationships/behaviours",
            get(files::behaviour_descriptors),
        )
        .route(
            "/files/{id}/behaviour_summary",
            get(files::behaviour_summary),
        )
        .route("/files/{id}/behaviour_mitre_trees", get(files::mitre_trees))
        .route("/file_behaviours/{id}", get(file_behaviours::behaviour))
        .route("/file_behaviours/{id}/evtx", get(file_behaviours::raw_log))
        .route("/file_behaviours/{id}/html", get(file_behaviours::html))
        .route(
            "/file_behaviours/{id}/relationships/file",
            get(file_behaviours::file_descriptor),
        )
        .route("/intelligence/search", get(search::search))
        .route(
            "/intelligence/hunting_rulesets",
            get(hunting::list_rulesets)
                .post(hunting::create_ruleset)
                .delete(hunting::delete_all_rulesets),
        )
        .route(
            "/intelligence/hunting_rulesets/{id}",
            get(hunting::get_ruleset)
                .patch(hunting::patch_ruleset)
                .delete(hunting::delete_ruleset),
        )
        .route(
            "/intelligence/hunting_rulesets/{id}/hunting_notification_files",
            get(hunting::ruleset_notification_files),
        )
        .route(
            "/intelligence/hunting_notifications",
            get(hunting::list_notifications).delete(hunting::delete_notifications),
        )
        .route(
            "/intelligence/hunting_notifications/{id}",
            get(hunting::get_notification).merge(delete(hunting::delete_notification)),
        )
        .route(
            "/intelligence/hunting_notification_files",
            get(hunting::notification_files),
        )
        .route(
            "/intelligence/retrohunt_jobs",
            get(retrohunt::list_jobs).post(retrohunt::create_job),
        )
        .route(
            "/intelligence/retrohunt_jobs/{id}",
            get(retrohunt::get_job).delete(retrohunt::delete_job),
        )
        .route(
            "/intelligence/retrohunt_jobs/{id}/abort",
            post(retrohunt::abort_job),
        )
        .route(
            "/intelligence/retrohunt_jobs/{id}/matching_files",
            get(retrohunt::matching_files),
        )
        .route("/sandscope/graph/{id}", get(sandscope::pivot_graph))
        .route(
            "/sandscope/graph/{id}/export/{format}",
            get(sandscope::graph_export),
        )
        .route("/sandscope/compare/{left}/{right}", get(sandscope::compare))
        .route("/sandscope/jobs/{id}", get(sandscope::job))
        .route("/sandscope/sigma_rules/{id}", get(sigma_rules::sigma_rule))
        .route(
            "/sandscope/export/{format}/{id}",
            get(crate::export_api::export_sample),
        )
        .route_layer(middleware::from_fn(move |req, next| {
            deadline(request_timeout, req, next)
        }));
    let ingest = Router::new()
        .route("/sandscope/ingest", post(upload::ingest))
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
            get(sandscope::health).layer(middleware::from_fn(move |req, next| {
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
