//! VirusTotal's response shapes: the `data`/`meta`/`links` envelopes of objects and
//! collections, links built from the configured public URL, and file downloads.

use super::AppState;
use crate::backend::PageRequest;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sandscope_model::FileBehaviour;
use serde_json::{Map, Value, json};

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

/// A report as a `file_behaviour` object with its `links.self`.
pub(super) fn behaviour_json(state: &AppState, mut report: FileBehaviour) -> Value {
    report.links = Some(sandscope_model::Links {
        self_link: state.link(&format!(
            "/file_behaviours/{}",
            encode_component(&report.id)
        )),
        next: None,
    });
    serde_json::to_value(&report).unwrap_or(Value::Null)
}

/// The `{type, id}` descriptor of a report.
pub(super) fn behaviour_descriptor(report: &FileBehaviour) -> Value {
    json!({ "type": "file_behaviour", "id": report.id })
}

pub(super) fn json_response(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// VirusTotal's collection envelope (schema §10).
pub(super) fn collection(
    state: &AppState,
    path: &str,
    data: Vec<Value>,
    page: &PageRequest,
    next_cursor: Option<String>,
    count: Option<u64>,
) -> Value {
    let limit = page.limit.to_string();
    let mut meta = Map::new();
    if let Some(count) = count {
        meta.insert("count".into(), json!(count));
    }
    let links = page_links(
        state,
        path,
        &[("limit", &limit)],
        page.cursor.as_deref(),
        next_cursor,
        &mut meta,
    );
    json!({ "data": data, "meta": meta, "links": links })
}

/// The `links` of one page: `self` is `path` with the request's parameters (`params`) and its
/// `cursor`; with a next page, `next` has `next_cursor` instead and `meta.cursor` holds it
/// (VirusTotal's rule: no `meta.cursor` means no more pages).
pub(super) fn page_links(
    state: &AppState,
    path: &str,
    params: &[(&str, &str)],
    cursor: Option<&str>,
    next_cursor: Option<String>,
    meta: &mut Map<String, Value>,
) -> Map<String, Value> {
    let url = |pairs: &[(&str, &str)]| format!("{}?{}", state.link(path), query_string(pairs));
    let mut self_pairs = params.to_vec();
    if let Some(cursor) = cursor {
        self_pairs.push(("cursor", cursor));
    }
    let mut links = Map::new();
    links.insert("self".into(), json!(url(&self_pairs)));
    if let Some(cursor) = next_cursor.filter(|c| !c.is_empty()) {
        let mut next_pairs = vec![("cursor", cursor.as_str())];
        next_pairs.extend_from_slice(params);
        links.insert("next".into(), json!(url(&next_pairs)));
        meta.insert("cursor".into(), json!(cursor));
    }
    links
}

/// A file download: `body` as an attachment named `name` (reduced by [`safe_file_name`],
/// `fallback` when nothing of it is left).
pub(crate) fn download(
    media_type: &'static str,
    name: &str,
    fallback: &str,
    body: Vec<u8>,
) -> Response {
    let name = safe_file_name(name, fallback);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A download name made only of `[A-Za-z0-9._-]`, so it can go into a header unquoted-safe.
fn safe_file_name(name: &str, fallback: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_file_names() {
        assert_eq!(encode_component("a b/_~é"), "a%20b%2F_~%C3%A9");
        assert_eq!(safe_file_name("../x\".evtx", "f"), "x.evtx");
        assert_eq!(safe_file_name("...", "f"), "f");
    }
}
