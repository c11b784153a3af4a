//! `GET /api/v3/sandscope/export/{misp|stix}/{id}` through the router, against the real store
//! holding the report ingested from a real Sysmon EVTX.

#[path = "support/store.rs"]
mod store;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use sandscope_export::SampleFormat;
use sandscope_server::{ApiKeys, Role, ServerConfig, router};
use store::{Scratch, lsass_evtx};
use tower::ServiceExt;

const KEY: &str = "read-key-0001";
const SHA: &str = "a1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa1aa";

/// The router, the scratch store behind it and the one report stored.
fn app() -> (Router, Scratch, Vec<sandscope_model::FileBehaviour>) {
    let scratch = Scratch::new();
    let report = scratch.ingest(&lsass_evtx(), SHA);
    let mut keys = ApiKeys::new();
    keys.add(KEY, Role::Read).unwrap();
    let app = router(scratch.backend.clone(), keys, ServerConfig::default());
    (app, scratch, vec![report])
}

async fn get(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let request = Request::get(uri)
        .header("x-apikey", KEY)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn exports_are_downloads_of_the_export_crate_bytes() {
    let (app, _scratch, reports) = app();
    for format in [SampleFormat::Misp, SampleFormat::Stix] {
        let (status, headers, body) = get(
            &app,
            &format!("/api/v3/sandscope/export/{}/{SHA}", format.name()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], format.media_type());
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            format!("attachment; filename=\"{SHA}.{}.json\"", format.name()).as_str()
        );
        assert_eq!(body, format.render(SHA, &reports).unwrap());
        // The upper-case spelling of the id is the same sample and the same bytes.
        let upper = SHA.to_ascii_uppercase();
        let (status, _, again) = get(
            &app,
            &format!("/api/v3/sandscope/export/{}/{upper}", format.name()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again, body);
    }
}

#[tokio::test]
async fn unknown_samples_formats_and_ids_are_not_found() {
    let (app, _scratch, _) = app();
    let unknown = "0".repeat(64);
    for uri in [
        format!("/api/v3/sandscope/export/misp/{unknown}"),
        format!("/api/v3/sandscope/export/stix/{unknown}"),
        format!("/api/v3/sandscope/export/yara/{SHA}"),
        "/api/v3/sandscope/export/misp/..%2F..%2Fetc%2Fpasswd".to_string(),
        "/api/v3/sandscope/export/misp/not-a-hash".to_string(),
    ] {
        let (status, headers, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "NotFoundError", "{uri}");
    }
    // Without a key: the export is as private as the reports.
    let request = Request::get(format!("/api/v3/sandscope/export/misp/{SHA}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
