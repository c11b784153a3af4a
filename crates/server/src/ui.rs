//! The web UI: static assets compiled into the binary (nothing is fetched at run time, and
//! nothing in them is built from data). The pages hold no data themselves; the scripts (ES
//! modules, one job per file) ask the API, with the key the analyst typed, and build the DOM
//! with `textContent` only.
//!
//! [`ASSETS`] is the one list of served files: a request names an entry of it or gets a 404,
//! so no request path ever reaches the file system. A test checks it against `ui/` itself.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/ui/`: name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../ui/app.css")),
    ("main.js", JS, include_str!("../ui/main.js")),
    ("dom.js", JS, include_str!("../ui/dom.js")),
    ("api.js", JS, include_str!("../ui/api.js")),
    ("router.js", JS, include_str!("../ui/router.js")),
    ("schema.js", JS, include_str!("../ui/schema.js")),
    ("pivot.js", JS, include_str!("../ui/pivot.js")),
    ("search.js", JS, include_str!("../ui/search.js")),
    ("sample.js", JS, include_str!("../ui/sample.js")),
    ("panels.js", JS, include_str!("../ui/panels.js")),
    ("tree.js", JS, include_str!("../ui/tree.js")),
    ("compare.js", JS, include_str!("../ui/compare.js")),
    ("graph.js", JS, include_str!("../ui/graph.js")),
    ("upload.js", JS, include_str!("../ui/upload.js")),
    ("rulesets.js", JS, include_str!("../ui/rulesets.js")),
    (
        "notifications.js",
        JS,
        include_str!("../ui/notifications.js"),
    ),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

async fn ui_file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => asset(content_type, body),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/ui/{name}", get(ui_file))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;
    use std::collections::BTreeSet;

    #[test]
    fn every_file_of_the_ui_folder_is_served_and_nothing_else() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let on_disk: BTreeSet<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "index.html")
            .collect();
        let served: BTreeSet<String> = ASSETS.iter().map(|(name, _, _)| name.to_string()).collect();
        assert_eq!(served, on_disk);
        for (name, content_type, _) in ASSETS {
            let expected = if name.ends_with(".js") {
                "text/javascript"
            } else {
                "text/css"
            };
            assert!(content_type.starts_with(expected), "{name}: {content_type}");
        }
    }
}
