//! The HTTP API end to end through the router, against the real store in a scratch directory
//! holding reports ingested from a real Sysmon EVTX (vendored under `tests/data`).

#[path = "support/http.rs"]
mod http;
#[path = "support/store.rs"]
mod store;

use axum::Router;
use axum::http::StatusCode;
use http::{get, upload};
use sandscope_model::FileBehaviour;
use sandscope_server::{
    ApiKeys, Backend, BackendError, Role, SearchPage, SearchRequest, ServerConfig, router,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use store::{Scratch, built_report, lsass_evtx};

const READ_KEY: &str = "read-key-0001";
const INGEST_KEY: &str = "ingest-key-0001";
const SHA_A: &str = "a1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa";
const SHA_B: &str = "b2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb2bb";
const SHA_C: &str = "c3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc3cc";
const XSS: &str = "<img src=x onerror=alert(1)>";

fn with_sandbox(report: &FileBehaviour, sandbox: &str) -> FileBehaviour {
    let mut attributes = report.attributes.clone();
    attributes.sandbox_name = sandbox.to_string();
    FileBehaviour::new(report.sha256(), attributes)
}

fn keys() -> ApiKeys {
    let mut keys = ApiKeys::new();
    keys.add(READ_KEY, Role::Read).unwrap();
    keys.add(INGEST_KEY, Role::Ingest).unwrap();
    keys
}

fn config() -> ServerConfig {
    ServerConfig {
        public_url: "http://sandscope.test".to_string(),
        ..ServerConfig::default()
    }
}

/// Sample A with three sandbox reports (the ingested log's, and two copies of it under other
/// sandbox names, one with a hostile command line, with no log kept), B and C with the
/// ingested log's.
fn populated() -> (Scratch, FileBehaviour) {
    let scratch = Scratch::new();
    let report = scratch.ingest(&lsass_evtx(), SHA_A);
    assert!(
        !report.attributes.command_executions.is_empty(),
        "the LSASS dump log has process creations"
    );
    let mut hostile = with_sandbox(&report, "Zenbox");
    hostile
        .attributes
        .command_executions
        .push(format!("cmd.exe /c echo {XSS}"));
    if let Some(root) = hostile.attributes.processes_tree.first_mut() {
        root.name = format!("cmd.exe /c echo {XSS}");
    }
    scratch.put(vec![hostile, with_sandbox(&report, "CAPE Sandbox")]);
    scratch.ingest(&lsass_evtx(), SHA_B);
    scratch.ingest(&lsass_evtx(), SHA_C);
    (scratch, report)
}

fn app(scratch: &Scratch) -> Router {
    router(scratch.backend.clone(), keys(), config())
}

/// Strip the configured public URL, to follow a `links.next` through the router.
fn local(link: &str) -> &str {
    link.strip_prefix("http://sandscope.test")
        .expect("absolute link")
}

#[tokio::test]
async fn behaviours_are_paged_with_vt_envelopes() {
    let (scratch, report) = populated();
    let app = app(&scratch);
    let first = get(
        &app,
        &format!("/api/v3/files/{SHA_A}/behaviours?limit=2"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.header("content-type"), "application/json");
    let body = first.json();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    // The store pages a sample's reports in id order and does not count them.
    assert!(body["meta"].get("count").is_none(), "{body}");
    let cursor = body["meta"]["cursor"].as_str().expect("a cursor on page 1");
    let next = body["links"]["next"]
        .as_str()
        .expect("links.next on page 1");
    // The store's cursor is the last report id, whose space the link percent-encodes.
    assert!(
        next.contains(&format!("cursor={}", cursor.replace(' ', "%20"))),
        "{next}"
    );
    assert_eq!(data[0]["attributes"]["sandbox_name"], "CAPE Sandbox");
    let item = &data[1];
    assert_eq!(item["type"], "file_behaviour");
    assert_eq!(item["id"], format!("{SHA_A}_Microsoft Sysinternals"));
    assert_eq!(
        item["links"]["self"],
        format!("http://sandscope.test/api/v3/file_behaviours/{SHA_A}_Microsoft%20Sysinternals")
    );
    assert_eq!(
        item["attributes"]["command_executions"],
        serde_json::to_value(&report.attributes.command_executions).unwrap()
    );

    let second = get(&app, local(next), Some(READ_KEY)).await;
    let body = second.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["attributes"]["sandbox_name"], "Zenbox");
    assert!(
        body["meta"].get("cursor").is_none(),
        "last page has no cursor"
    );
    assert!(body["links"].get("next").is_none());

    let descriptors = get(
        &app,
        &format!("/api/v3/files/{SHA_A}/relationships/behaviours"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(
        descriptors["data"][2],
        serde_json::json!({"type": "file_behaviour", "id": format!("{SHA_A}_Zenbox")})
    );

    let file = get(&app, &format!("/api/v3/files/{SHA_A}"), Some(READ_KEY))
        .await
        .json();
    assert_eq!(file["data"]["type"], "file");
    assert_eq!(
        file["data"]["attributes"]["sandbox_names"],
        serde_json::json!(["CAPE Sandbox", "Microsoft Sysinternals", "Zenbox"])
    );

    for bad in ["limit=0", "limit=301", "limit=ten", "cursor=zzz"] {
        get(
            &app,
            &format!("/api/v3/files/{SHA_A}/behaviours?{bad}"),
            Some(READ_KEY),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    }
}

#[tokio::test]
async fn one_report_by_percent_encoded_id_and_not_found_shapes() {
    let (scratch, report) = populated();
    let app = app(&scratch);
    let answer = get(
        &app,
        &format!("/api/v3/file_behaviours/{SHA_A}_Microsoft%20Sysinternals"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["data"]["id"], report.id);
    assert_eq!(
        body["data"]["attributes"]["processes_created"],
        serde_json::to_value(&report.attributes.processes_created).unwrap()
    );

    let unknown_sha = "d".repeat(64);
    for uri in [
        format!("/api/v3/file_behaviours/{SHA_A}_No%20Such%20Sandbox"),
        format!("/api/v3/file_behaviours/{unknown_sha}_Zenbox"),
        "/api/v3/file_behaviours/..%2F..%2Fetc%2Fpasswd".to_string(),
        "/api/v3/file_behaviours/%FF%FE".to_string(),
        format!("/api/v3/files/{unknown_sha}/behaviours"),
        format!("/api/v3/files/{unknown_sha}/behaviour_summary"),
        format!("/api/v3/files/{unknown_sha}/behaviour_mitre_trees"),
        "/api/v3/files/not-a-hash/behaviours".to_string(),
        "/api/v3/no/such/endpoint".to_string(),
        format!("/api/v3/file_behaviours/{SHA_A}_Zenbox/evtx"),
    ] {
        get(&app, &uri, Some(READ_KEY))
            .await
            .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
    }
}

#[tokio::test]
async fn summary_and_mitre_trees() {
    let (scratch, report) = populated();
    let app = app(&scratch);
    let summary = get(
        &app,
        &format!("/api/v3/files/{SHA_A}/behaviour_summary"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(summary.status, StatusCode::OK);
    let body = summary.json();
    let data = body["data"].as_object().unwrap();
    assert!(!data.contains_key("sandbox_name") && !data.contains_key("analysis_date"));
    let commands = data["command_executions"].as_array().unwrap();
    // All of the real report's commands, plus the one only the Zenbox report has.
    assert_eq!(
        commands.len(),
        report.attributes.command_executions.len() + 1
    );

    let trees = get(
        &app,
        &format!("/api/v3/files/{SHA_A}/behaviour_mitre_trees"),
        Some(READ_KEY),
    )
    .await
    .json();
    let sandboxes = trees["data"].as_object().unwrap();
    assert_eq!(sandboxes.len(), 3);
    assert!(sandboxes["Zenbox"]["tactics"].is_array());
    assert!(
        trees["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with("/behaviour_mitre_trees")
    );
}

#[tokio::test]
async fn authentication_and_roles() {
    let (scratch, _) = populated();
    let app = app(&scratch);
    let uri = format!("/api/v3/files/{SHA_A}/behaviours");
    get(&app, &uri, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequiredError");
    get(&app, &uri, Some("read-key-0002"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "WrongCredentialsError");
    get(&app, "/api/v3/intelligence/search?query=x", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequiredError");
    get(&app, "/api/v3/no/such/endpoint", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");

    let health = get(&app, "/api/v3/sandscope/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["data"]["samples"], 3);

    let bytes = std::fs::read(lsass_evtx()).unwrap();
    upload(&app, READ_KEY, &bytes, &[])
        .await
        .assert_error(StatusCode::FORBIDDEN, "ForbiddenError");
    upload(&app, "nobody-key-000", &bytes, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "WrongCredentialsError");
}

#[tokio::test]
async fn ingest_upload_then_fetch_report_and_original_log() {
    let scratch = Scratch::new();
    let app = app(&scratch);
    let bytes = std::fs::read(lsass_evtx()).unwrap();
    let sha = "e".repeat(64);
    let answer = upload(&app, INGEST_KEY, &bytes, &[("sha256", &sha)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let id = body["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(id, format!("{sha}_Microsoft Sysinternals"));

    let fetched = get(
        &app,
        &format!("/api/v3/file_behaviours/{sha}_Microsoft%20Sysinternals"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(
        fetched["data"]["attributes"]["command_executions"],
        serde_json::to_value(
            &built_report(&lsass_evtx(), &sha)
                .attributes
                .command_executions
        )
        .unwrap()
    );

    let log = get(
        &app,
        &format!("/api/v3/file_behaviours/{sha}_Microsoft%20Sysinternals/evtx"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(log.status, StatusCode::OK);
    assert_eq!(log.body, bytes, "the original log comes back byte for byte");
    assert_eq!(log.header("content-type"), "application/octet-stream");
    // The client's path is gone from the name; only the last component, made safe, is kept.
    assert_eq!(
        log.header("content-disposition"),
        "attachment; filename=\"LSASS_dump.evtx\""
    );

    upload(&app, INGEST_KEY, b"this is not an event log", &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    upload(&app, INGEST_KEY, &bytes, &[("sha256", "xyz")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    upload(&app, INGEST_KEY, &bytes, &[("path", "/etc/passwd")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
}

#[tokio::test]
async fn oversized_upload_is_refused_while_streaming() {
    let scratch = Scratch::new();
    let small = ServerConfig {
        upload_limit: 10_000,
        ..config()
    };
    let app = router(scratch.backend.clone(), keys(), small);
    let bytes = std::fs::read(lsass_evtx()).unwrap();
    assert!(bytes.len() > 10_000);
    upload(&app, INGEST_KEY, &bytes, &[])
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError");
    assert_eq!(
        scratch.backend.health().unwrap().reports,
        0,
        "nothing was ingested"
    );
}

#[tokio::test]
async fn intelligence_search_pages_and_query_errors() {
    let (scratch, report) = populated();
    let app = app(&scratch);
    // A process image of the real log, by file name.
    let image = report.attributes.processes_created[0].clone();
    let name = image.rsplit('\\').next().unwrap().to_string();
    let query = format!("behaviour_processes:{name}");
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let mut uri = format!(
            "/api/v3/intelligence/search?query={}&limit=2",
            encode(&query)
        );
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let answer = get(&app, &uri, Some(READ_KEY)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let body = answer.json();
        pages += 1;
        assert_eq!(body["meta"]["total_hits"], 3);
        assert_eq!(body["meta"]["total_hits_relation"], "eq");
        assert_eq!(
            body["meta"]["allowed_orders"],
            serde_json::json!(["first_submission_date", "last_submission_date"])
        );
        for item in body["data"].as_array().unwrap() {
            assert_eq!(item["type"], "file");
            let snippet = &item["context_attributes"]["snippets"][0];
            assert!(
                snippet["value"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains(&name.to_lowercase()),
                "{snippet}"
            );
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        cursor = body["meta"]["cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
        assert!(body["links"]["next"].as_str().unwrap().contains("query="));
    }
    assert_eq!(pages, 2);
    seen.sort();
    assert_eq!(seen, vec![SHA_A, SHA_B, SHA_C]);

    let descriptors = get(
        &app,
        &format!(
            "/api/v3/intelligence/search?query={}&descriptors_only=true&order=first_submission_date%2B",
            encode(&query)
        ),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(
        descriptors["data"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["type", "id"]
    );

    let bad = get(
        &app,
        &format!(
            "/api/v3/intelligence/search?query={}",
            encode("lsass behaviour_nope:x")
        ),
        Some(READ_KEY),
    )
    .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "BadRequestError");
    let error = &bad.json()["error"];
    assert_eq!(error["column"], 7);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("behaviour_nope")
    );

    let unterminated = get(
        &app,
        &format!(
            "/api/v3/intelligence/search?query={}",
            encode(r#"behaviour_files:"abc"#)
        ),
        Some(READ_KEY),
    )
    .await;
    unterminated.assert_error(StatusCode::BAD_REQUEST, "BadRequestError");
    assert_eq!(unterminated.json()["error"]["column"], 17);

    for bad in [
        "/api/v3/intelligence/search",
        "/api/v3/intelligence/search?query=%20",
        "/api/v3/intelligence/search?query=x&descriptors_only=maybe",
        "/api/v3/intelligence/search?query=x&order=size%3B",
    ] {
        let answer = get(&app, bad, Some(READ_KEY)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    get(
        &app,
        "/api/v3/intelligence/search?query=x&order=size",
        Some(READ_KEY),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn html_report_escapes_hostile_values_and_forbids_scripts() {
    let (scratch, real) = populated();
    let app = app(&scratch);
    let answer = get(
        &app,
        &format!("/api/v3/file_behaviours/{SHA_A}_Zenbox/html"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), "text/html; charset=utf-8");
    let csp = answer.header("content-security-policy");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src"),
        "no script source at all: {csp}"
    );
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    let html = answer.text();
    assert!(html.contains("cmd.exe /c echo &lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<img"), "the hostile tag is never markup");
    assert!(!html.to_lowercase().contains("<script"));
    // The real log's commands are in the report, escaped.
    let first = sandscope_server::html_report::escape(&real.attributes.command_executions[0]);
    assert!(html.contains(&first));
}

#[tokio::test]
async fn ui_is_served_with_a_strict_policy() {
    let (scratch, _) = populated();
    let app = app(&scratch);
    let index = get(&app, "/", None).await;
    assert_eq!(index.status, StatusCode::OK);
    let csp = index.header("content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(index.header("x-content-type-options"), "nosniff");
    let html = index.text();
    assert!(html.contains(r#"<script type="module" src="/ui/main.js">"#));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !has_event_handler_attribute(&html),
        "no inline event handler attributes"
    );
    for module in ["main.js", "dom.js", "pivot.js", "sample.js", "graph.js"] {
        let js = get(&app, &format!("/ui/{module}"), None).await;
        assert_eq!(js.status, StatusCode::OK, "{module}");
        assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
        assert!(
            !js.text().contains("innerHTML"),
            "{module}: the UI never parses data as HTML"
        );
    }
    // Only the listed files are served: nothing else, no way out of the folder.
    for path in [
        "/ui/app.js",
        "/ui/..%2FCargo.toml",
        "/ui/../src/ui.rs",
        "/ui/%2e%2e/ui.rs",
    ] {
        let response = get(&app, path, None).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
    }
    let api = get(&app, "/api/v3/sandscope/health", None).await;
    assert_eq!(api.header("x-content-type-options"), "nosniff");
    assert!(
        api.header("content-security-policy")
            .contains("default-src 'none'")
    );
}

/// True when `html` has an ` on<letters>=` attribute (onclick=, onerror=, …).
fn has_event_handler_attribute(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        letters > 0 && rest[letters..].trim_start().starts_with('=')
    })
}

#[test]
fn event_handler_detector_works() {
    assert!(has_event_handler_attribute(
        r#"<img src=x onerror=alert(1)>"#
    ));
    assert!(has_event_handler_attribute(r#"<a onclick = "x">"#));
    assert!(!has_event_handler_attribute("<p>turn on the light</p>"));
}

/// The real backend, but its searches take longer than the request deadline and its health
/// check fails.
struct SlowBackend(Scratch);

impl Backend for SlowBackend {
    fn behaviours(
        &self,
        s: &str,
        p: &sandscope_server::PageRequest,
    ) -> Result<Option<sandscope_server::Page<FileBehaviour>>, BackendError> {
        self.0.backend.behaviours(s, p)
    }
    fn behaviour(&self, id: &str) -> Result<Option<FileBehaviour>, BackendError> {
        self.0.backend.behaviour(id)
    }
    fn raw_log(&self, id: &str) -> Result<Option<sandscope_server::StoredLog>, BackendError> {
        self.0.backend.raw_log(id)
    }
    fn behaviour_summary(&self, s: &str) -> Result<Option<Value>, BackendError> {
        self.0.backend.behaviour_summary(s)
    }
    fn behaviour_mitre_trees(&self, s: &str) -> Result<Option<Value>, BackendError> {
        self.0.backend.behaviour_mitre_trees(s)
    }
    fn search(&self, request: &SearchRequest) -> Result<SearchPage, BackendError> {
        std::thread::sleep(Duration::from_millis(500));
        self.0.backend.search(request)
    }
    fn search_orders(&self) -> Vec<String> {
        self.0.backend.search_orders()
    }
    fn pivot_graph(&self, s: &str) -> Result<Option<sandscope_server::PivotGraph>, BackendError> {
        self.0.backend.pivot_graph(s)
    }
    fn ingest(
        &self,
        u: &sandscope_server::Upload,
    ) -> Result<sandscope_server::IngestOutcome, BackendError> {
        self.0.backend.ingest(u)
    }
    fn health(&self) -> Result<sandscope_server::Health, BackendError> {
        Err(BackendError::Internal(
            "disk on fire at /secret/path".into(),
        ))
    }
}

#[tokio::test]
async fn deadlines_and_backend_failures_use_vt_codes() {
    let app = router(
        Arc::new(SlowBackend(Scratch::new())),
        keys(),
        ServerConfig {
            request_timeout: Duration::from_millis(100),
            ..config()
        },
    );
    get(&app, "/api/v3/intelligence/search?query=x", Some(READ_KEY))
        .await
        .assert_error(StatusCode::GATEWAY_TIMEOUT, "DeadlineExceededError");
    let health = get(&app, "/api/v3/sandscope/health", None).await;
    health.assert_error(StatusCode::SERVICE_UNAVAILABLE, "TransientError");
    assert!(
        !health.text().contains("/secret/path"),
        "internals stay in the log"
    );
}

#[tokio::test]
async fn pivot_graph_links_samples_through_shared_indicators() {
    let (scratch, _) = populated();
    let app = app(&scratch);
    let graph = get(
        &app,
        &format!("/api/v3/sandscope/graph/{SHA_B}"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(graph.status, StatusCode::OK);
    let body = graph.json();
    let nodes = body["data"]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["id"], format!("sample:{SHA_B}"));
    for other in [SHA_A, SHA_C] {
        assert!(
            nodes.iter().any(|n| n["id"] == format!("sample:{other}")),
            "samples sharing the real log's processes are neighbours"
        );
    }
    let edges = body["data"]["edges"].as_array().unwrap();
    for edge in edges {
        for end in ["source", "target"] {
            assert!(
                nodes.iter().any(|n| n["id"] == edge[end]),
                "edge end {end} is a node: {edge}"
            );
        }
    }
}

#[tokio::test]
async fn graph_exports_are_downloads_in_the_clis_formats() {
    let (scratch, _) = populated();
    let app = app(&scratch);
    let path = |format: &str| format!("/api/v3/sandscope/graph/{SHA_B}/export/{format}");
    let json = get(&app, &path("json"), Some(READ_KEY)).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(
        json.header("content-disposition"),
        format!("attachment; filename=\"{SHA_B}.graph.json\"")
    );
    assert!(
        json.text().ends_with("}\n"),
        "ends as `sandscope graph` does"
    );
    let graph = json.json();
    let ids: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    for sha in [SHA_A, SHA_B, SHA_C] {
        assert!(ids.contains(&sha), "{sha} in {ids:?}");
    }
    let dot = get(&app, &path("dot"), Some(READ_KEY)).await;
    assert_eq!(dot.header("content-type"), "text/vnd.graphviz");
    assert!(dot.text().contains(SHA_A), "{}", dot.text());
    let graphml = get(&app, &path("graphml"), Some(READ_KEY)).await;
    assert!(graphml.text().contains("<graphml"), "{}", graphml.text());
    get(&app, &path("svg"), Some(READ_KEY))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
    let unknown = "0".repeat(64);
    get(
        &app,
        &format!("/api/v3/sandscope/graph/{unknown}/export/dot"),
        Some(READ_KEY),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
    get(&app, &path("json"), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequiredError");
}

#[tokio::test]
async fn compare_is_the_diff_of_two_stored_reports() {
    let (scratch, _) = populated();
    let app = app(&scratch);
    let stored = |sandbox: &str| {
        scratch
            .backend
            .behaviour(&format!("{SHA_A}_{sandbox}"))
            .unwrap()
            .unwrap()
    };
    let expected = sandscope_model::diff_reports(&stored("Zenbox"), &stored("CAPE Sandbox"));
    let response = get(
        &app,
        &format!("/api/v3/sandscope/compare/{SHA_A}_Zenbox/{SHA_A}_CAPE%20Sandbox"),
        Some(READ_KEY),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    let diff: sandscope_model::ReportDiff =
        serde_json::from_value(response.json()["data"].clone()).unwrap();
    assert_eq!(
        diff, expected,
        "the model's diff, as `sandscope diff` prints it"
    );
    assert_eq!(diff.left.sandbox_name, "Zenbox");
    assert_eq!(diff.right.sandbox_name, "CAPE Sandbox");
    let commands = diff
        .attributes
        .iter()
        .find(|a| a.attribute == "command_executions")
        .unwrap();
    assert!(
        commands.only_left.iter().any(|c| c.contains(XSS)),
        "the hostile command only Zenbox saw: {commands:?}"
    );
    assert!(
        !commands.both.is_empty(),
        "the real log's commands are shared"
    );
    get(
        &app,
        &format!("/api/v3/sandscope/compare/{SHA_A}_Zenbox/{SHA_A}_Nowhere"),
        Some(READ_KEY),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
}

#[tokio::test]
async fn a_bundled_sigma_rule_is_served_as_its_vendored_yaml() {
    let (scratch, _) = populated();
    let app = app(&scratch);
    // The vendored SigmaHQ rule the bundle is packed from (one YAML document).
    let file = "rules/windows/process_creation/proc_creation_win_susp_shadow_copies_deletion.yml";
    let vendored = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../sigma")
            .join(file),
    )
    .unwrap();
    let id = "c947b146-0abc-4c87-9c64-b17e9d7274a2";
    let uri = format!("/api/v3/sandscope/sigma_rules/{id}");
    let response = get(&app, &uri, Some(READ_KEY)).await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    assert_eq!(body["data"]["type"], "sigma_rule");
    assert_eq!(body["data"]["id"], id);
    assert_eq!(body["data"]["attributes"]["file"], file);
    let yaml = body["data"]["attributes"]["yaml"].as_str().unwrap();
    assert_eq!(yaml.trim_end(), vendored.trim_end());
    assert_eq!(get(&app, &uri, None).await.status, StatusCode::UNAUTHORIZED);
    for missing in [
        "00000000-0000-0000-0000-000000000000",
        "..%2F..%2Fetc",
        "a%20b",
    ] {
        let uri = format!("/api/v3/sandscope/sigma_rules/{missing}");
        let answer = get(&app, &uri, Some(READ_KEY)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(answer.json()["error"]["code"], "NotFoundError", "{missing}");
    }
}
