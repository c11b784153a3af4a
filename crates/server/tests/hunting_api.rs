//! Livehunt through the API, as vt-py and vt-cli call it: `hunting_rulesets` (create, get,
//! list with cursors, PATCH, delete), notifications raised by an upload of a real log, and the
//! VirusTotal envelope rules (integer dates, `type` and `id` on every item, `meta.cursor` with
//! `links.next`, no cursor on an empty or last page).

#[path = "support/http.rs"]
mod http;
#[path = "support/intelligence.rs"]
mod intelligence;
#[path = "support/store.rs"]
mod store;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http::{Answer, get, send, upload};
use intelligence::{INGEST_KEY, READ_KEY, SHADOWS, app, call, seed};
use serde_json::{Value, json};
use store::Scratch;

const RULESETS: &str = "/api/v3/intelligence/hunting_rulesets";

async fn create(app: &Router, attributes: Value) -> Answer {
    let body = json!({ "data": { "type": "hunting_ruleset", "attributes": attributes } });
    call(app, "POST", RULESETS, INGEST_KEY, Some(body)).await
}

fn local(link: &Value) -> String {
    link.as_str()
        .and_then(|l| l.strip_prefix("http://sandscope.test"))
        .expect("absolute link")
        .to_string()
}

#[tokio::test]
async fn rulesets_are_created_listed_patched_and_deleted() {
    let scratch = Scratch::new();
    let app = app(&scratch);
    let attributes = json!({"name": "ransom", "rules": SHADOWS, "limit": 10});
    let body = json!({ "data": { "type": "hunting_ruleset", "attributes": attributes } });
    call(&app, "POST", RULESETS, READ_KEY, Some(body))
        .await
        .assert_error(StatusCode::FORBIDDEN, "ForbiddenError");

    let created = create(&app, attributes).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let data = created.json()["data"].clone();
    assert_eq!(data["type"], "hunting_ruleset");
    let id = data["id"].as_str().unwrap().to_string();
    assert!(
        id.bytes().all(|b| b.is_ascii_digit()),
        "vt-cli needs \\d+ ids: {id}"
    );
    assert!(data["attributes"]["creation_date"].is_i64());
    assert_eq!(data["attributes"]["rule_language"], "sigma");
    assert_eq!(data["attributes"]["number_of_rules"], 1);
    assert_eq!(data["attributes"]["rate_limited"], false);
    let second = create(
        &app,
        json!({"name": "queries", "rule_language": "query", "rules": "behaviour_processes:\"vssadmin.exe\""}),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());

    // Two rulesets, one per page: the first page carries the cursor, the last none.
    let first = get(
        &app,
        &format!("{RULESETS}?limit=1&order=name"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(first["data"][0]["attributes"]["name"], "queries");
    assert!(first["meta"]["cursor"].is_string());
    let next = get(&app, &local(&first["links"]["next"]), Some(READ_KEY))
        .await
        .json();
    assert_eq!(next["data"][0]["attributes"]["name"], "ransom");
    assert!(next["meta"].get("cursor").is_none(), "{next}");
    assert!(next["links"].get("next").is_none());
    let filtered = get(
        &app,
        &format!("{RULESETS}?filter=name:rans"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);

    // PATCH any one attribute.
    let patch =
        json!({"data": {"type": "hunting_ruleset", "id": id, "attributes": {"enabled": false}}});
    let patched = call(
        &app,
        "PATCH",
        &format!("{RULESETS}/{id}"),
        INGEST_KEY,
        Some(patch),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let fetched = get(&app, &format!("{RULESETS}/{id}"), Some(READ_KEY))
        .await
        .json();
    assert_eq!(fetched["data"]["attributes"]["enabled"], false);
    assert_eq!(fetched["data"]["attributes"]["rules"], SHADOWS);

    let deleted = call(
        &app,
        "DELETE",
        &format!("{RULESETS}/{id}"),
        INGEST_KEY,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    get(&app, &format!("{RULESETS}/{id}"), Some(READ_KEY))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
    get(&app, &format!("{RULESETS}/abc"), Some(READ_KEY))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
}

#[tokio::test]
async fn a_bad_ruleset_is_a_400_naming_rule_line_and_reason() {
    let scratch = Scratch::new();
    let app = app(&scratch);
    let bad = SHADOWS.replace("CommandLine|contains", "CommandLine|sortof");
    let answer = create(&app, json!({"name": "bad", "rules": bad})).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    // The error names the line of the bad modifier in the rule's text.
    let line = 1 + SHADOWS
        .lines()
        .position(|l| l.contains("CommandLine|"))
        .unwrap();
    assert!(
        message.contains(&format!(
            "rule \"Shadow copies deleted with vssadmin\", line {line}"
        )) && message.contains("sortof"),
        "{message}"
    );
    create(&app, json!({"rules": SHADOWS}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    let list = get(&app, RULESETS, Some(READ_KEY)).await.json();
    assert_eq!(list["data"], json!([]), "nothing saved");
    assert!(list["meta"].get("cursor").is_none());
    // Far over the body limit: refused before it is read whole.
    let huge = "x".repeat(10 << 20);
    let answer = create(&app, json!({"name": "huge", "rules": huge})).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn an_upload_raises_notifications_served_as_vt_objects() {
    let scratch = Scratch::new();
    let app = app(&scratch);
    let created = create(
        &app,
        json!({"name": "ransom", "rules": SHADOWS, "tags": ["impact"]}),
    )
    .await
    .json();
    let ruleset_id = created["data"]["id"].as_str().unwrap().to_string();

    for (name, sha) in [
        ("coinminer_sihost32_sysmon.xml", "1".repeat(64)),
        ("ransomware_tutanota_sysmon.xml", "2".repeat(64)),
    ] {
        let bytes = std::fs::read(seed(name)).unwrap();
        let answer = upload(&app, INGEST_KEY, &bytes, &[("sha256", &sha)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }

    // Acknowledged uploads have been hunted: the ransomware run only.
    let files = get(
        &app,
        "/api/v3/intelligence/hunting_notification_files",
        Some(READ_KEY),
    )
    .await
    .json();
    let items = files["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{files}");
    let file = &items[0];
    assert_eq!(file["type"], "file");
    assert_eq!(file["id"], "2".repeat(64));
    let context = &file["context_attributes"];
    assert_eq!(context["ruleset_id"], ruleset_id.as_str());
    assert_eq!(context["ruleset_name"], "ransom");
    assert_eq!(context["rule_name"], "Shadow copies deleted with vssadmin");
    assert!(context["notification_date"].is_i64());
    assert!(
        context["notification_snippet"]
            .as_str()
            .unwrap()
            .contains("delete shadows")
    );
    assert!(files["meta"].get("cursor").is_none());

    let by_ruleset = get(
        &app,
        &format!("{RULESETS}/{ruleset_id}/hunting_notification_files"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(by_ruleset["data"], files["data"]);

    let notification_id = context["notification_id"].as_str().unwrap().to_string();
    let notification = get(
        &app,
        &format!("/api/v3/intelligence/hunting_notifications/{notification_id}"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(notification["data"]["type"], "hunting_notification");
    assert!(notification["data"]["attributes"]["date"].is_i64());
    assert_eq!(
        notification["data"]["attributes"]["tags"],
        json!([
            "ransom",
            "shadow copies deleted with vssadmin",
            "2".repeat(64)
        ])
    );

    // Filters: by tag (the rule name, lower-cased, as VirusTotal tags) and one that matches
    // nothing — an empty page, without a cursor.
    let tagged = get(
        &app,
        "/api/v3/intelligence/hunting_notifications?filter=tag:impact",
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(
        tagged["data"].as_array().unwrap().len(),
        0,
        "rule tags, not ruleset tags"
    );
    let none = get(
        &app,
        "/api/v3/intelligence/hunting_notifications?filter=sha256:abc",
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(none["data"], json!([]));
    assert!(none["meta"].get("cursor").is_none());

    let uri = format!("/api/v3/intelligence/hunting_notifications/{notification_id}");
    let deleted = call(&app, "DELETE", &uri, INGEST_KEY, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    get(&app, &uri, Some(READ_KEY))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
}

#[tokio::test]
async fn deleting_every_ruleset_needs_x_confirm_delete() {
    let scratch = Scratch::new();
    let app = app(&scratch);
    for name in ["one", "two"] {
        let created = create(&app, json!({"name": name, "rules": SHADOWS})).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    }
    call(&app, "DELETE", RULESETS, INGEST_KEY, None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BadRequestError");
    let listed = get(&app, RULESETS, Some(READ_KEY)).await.json();
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        2,
        "nothing deleted"
    );

    let confirmed = |key: &str| {
        Request::builder()
            .method("DELETE")
            .uri(RULESETS)
            .header("x-apikey", key)
            .header("x-confirm-delete", "analyst")
            .body(Body::empty())
            .unwrap()
    };
    send(&app, confirmed(READ_KEY))
        .await
        .assert_error(StatusCode::FORBIDDEN, "ForbiddenError");
    let deleted = send(&app, confirmed(INGEST_KEY)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert_eq!(deleted.json()["meta"]["deleted"], 2);
    let listed = get(&app, RULESETS, Some(READ_KEY)).await.json();
    assert_eq!(listed["data"], json!([]));
}
