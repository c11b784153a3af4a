//! `GET /intelligence/search`: VirusTotal Intelligence queries, run through the search lanes,
//! answered as `file` objects with their snippets.

use super::AppState;
use super::envelopes::{json_response, page_links};
use super::extractors::{Params, page_request, params, parse_bool, parse_order};
use crate::backend::{SearchHit, SearchRequest};
use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::{Map, Value, json};

/// Longest accepted query text, to keep hostile requests cheap.
const MAX_QUERY_LEN: usize = 4096;

pub(super) async fn search(
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
    let descriptors_only = parse_bool("descriptors_only", params.get("descriptors_only"))?;
    let mut request = SearchRequest::new(text);
    request.limit = page.limit;
    request.cursor = page.cursor.clone();
    request.order = parse_order(&order_text)?;
    let (result, orders) = state
        .search_lanes
        .search(state.backend.clone(), request)
        .await?;

    let data: Vec<Value> = result
        .hits
        .into_iter()
        .map(|hit| {
            if descriptors_only {
                json!({ "type": "file", "id": hit.sha256 })
            } else {
                file_object(&state, hit)
            }
        })
        .collect();

    let limit = page.limit.to_string();
    let mut params = vec![("query", text), ("limit", limit.as_str())];
    if !order_text.trim().is_empty() {
        params.push(("order", order_text.trim()));
    }
    if descriptors_only {
        params.push(("descriptors_only", "true"));
    }
    let mut meta = Map::new();
    meta.insert("total_hits".into(), json!(result.total_hits));
    // Elasticsearch's convention: a broad query's count stops at a limit (see the store).
    meta.insert(
        "total_hits_relation".into(),
        json!(if result.total_hits_exact { "eq" } else { "gte" }),
    );
    meta.insert("allowed_orders".into(), json!(orders));
    let links = page_links(
        &state,
        "/intelligence/search",
        &params,
        page.cursor.as_deref(),
        result.next_cursor,
        &mut meta,
    );
    Ok(json_response(
        json!({ "meta": meta, "data": data, "links": links }),
    ))
}

/// A matching sample as a VirusTotal `file` object: what the index knows of it cheaply, and
/// the matched values as `context_attributes.snippets`.
fn file_object(state: &AppState, hit: SearchHit) -> Value {
    let snippets: Vec<Value> = hit
        .snippets
        .iter()
        .map(|value| json!({ "field": "behaviour", "value": value }))
        .collect();
    json!({
        "type": "file",
        "id": hit.sha256,
        "links": { "self": state.link(&format!("/files/{}", hit.sha256)) },
        "attributes": {
            "sha256": hit.sha256,
            "first_submission_date": hit.first_seen,
            "last_submission_date": hit.last_seen,
            "sandboxes": hit.sandboxes,
            "behaviours": hit.report_ids,
            "tags": hit.tags,
            "sigma_analysis_stats": {
                "critical": hit.sigma[0], "high": hit.sigma[1],
                "medium": hit.sigma[2], "low": hit.sigma[3],
            },
        },
        "context_attributes": { "snippets": snippets },
    })
}
