//! Retrohunt jobs through the API, as vt-py and vt-cli call them: create (Sigma rules or
//! Intelligence queries, `time_range`), poll, `matching_files` on real logs, list with cursors,
//! abort (within a second, on a larger store) and delete; VirusTotal's envelope rules.

#[path = "support/http.rs"]
mod http;
#[path = "support/intelligence.rs"]
mod intelligence;
#[path = "support/store.rs"]
mod store;

use axum::Router;
use axum::http::StatusCode;
use http::{Answer, get};
use intelligence::{INGEST_KEY, READ_KEY, SHADOWS, app, call, seed};
use sandscope_hunting::MAX_JOBS;
use sandscope_model::FileBehaviour;
use sandscope_store::{NewReport, RawData, RawLog, RecordTable, RecordWrite};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use store::{Scratch, built_report, lsass_evtx};

const JOBS: &str = "/api/v3/intelligence/retrohunt_jobs";
const RANSOM: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const MINER: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A store holding the two seed runs and an LSASS dump.
fn seeded() -> Scratch {
    let scratch = Scratch::new();
    scratch.ingest(&seed("coinminer_sihost32_sysmon.xml"), MINER);
    scratch.ingest(&seed("ransomware_tutanota_sysmon.xml"), RANSOM);
    scratch.ingest(&lsass_evtx(), &"3".repeat(64));
    scratch
}

async fn create(app: &Router, attributes: Value) -> Answer {
    let body = json!({ "data": { "type": "retrohunt_job", "attributes": attributes } });
    call(app, "POST", JOBS, INGEST_KEY, Some(body)).await
}

/// Poll a job until `done` holds of its attributes; returns them.
async fn poll(app: &Router, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = get(app, &format!("{JOBS}/{id}"), Some(READ_KEY)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let attributes = answer.json()["data"]["attributes"].clone();
        if done(&attributes) {
            return attributes;
        }
        assert!(Instant::now() < deadline, "job {id} stuck: {attributes}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn finished(a: &Value) -> bool {
    a["status"] == "finished" || a["status"] == "aborted"
}

/// Every matching file of a job, walked with `limit` and `meta.cursor`.
async fn matching_files(app: &Router, id: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("{JOBS}/{id}/matching_files?limit={limit}");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let page = get(app, &uri, Some(READ_KEY)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page = page.json();
        let items = page["data"].as_array().unwrap().clone();
        match page["meta"]["cursor"].as_str() {
            Some(c) => {
                assert!(!items.is_empty(), "a cursor on an empty page: {page}");
                assert!(page["links"]["next"].is_string(), "{page}");
                cursor = Some(c.to_string());
            }
            None => cursor = None,
        }
        all.extend(items);
        if cursor.is_none() {
            return all;
        }
    }
}

#[tokio::test]
async fn a_sigma_job_finds_the_ransomware_run_and_serves_its_matching_files() {
    let scratch = seeded();
    let app = app(&scratch);
    let body = json!({ "data": { "type": "retrohunt_job", "attributes": {"rules": SHADOWS} } });
    call(&app, "POST", JOBS, READ_KEY, Some(body))
        .await
        .assert_error(StatusCode::FORBIDDEN, "ForbiddenError");

    let created = create(&app, json!({"rules": SHADOWS})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let data = created.json()["data"].clone();
    assert_eq!(data["type"], "retrohunt_job");
    let id = data["id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("sandscope-"),
        "vt-cli keeps \\w+-\\d+ ids: {id}"
    );
    assert!(data["attributes"]["creation_date"].is_i64());
    assert!(data["attributes"].get("finish_date").is_none(), "{data}");

    let done = poll(&app, &id, finished).await;
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["progress"], 100.0);
    assert_eq!(done["num_matches"], 1);
    assert_eq!(done["scanned_detonations"], 3);
    assert!(done["scanned_bytes"].as_u64().unwrap() > 0);
    assert!(done["start_date"].is_i64() && done["finish_date"].is_i64());

    let files = matching_files(&app, &id, 1).await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["type"], "file");
    assert_eq!(files[0]["id"], RANSOM);
    let context = &files[0]["context_attributes"];
    assert_eq!(context["rule_name"], "Shadow copies deleted with vssadmin");
    assert_eq!(context["retrohunt_job_id"], id.as_str());
    assert!(
        context["match_snippet"]
            .as_str()
            .unwrap()
            .contains("delete shadows"),
        "{context}"
    );

    // Nothing first seen in the year 2999.
    let later = create(
        &app,
        json!({"rules": SHADOWS, "time_range": {"start": 32_472_144_000i64}}),
    )
    .await
    .json();
    let later_id = later["data"]["id"].as_str().unwrap().to_string();
    let done = poll(&app, &later_id, finished).await;
    assert_eq!(done["num_matches"], 0, "{done}");
    assert!(matching_files(&app, &later_id, 10).await.is_empty());

    // Listed newest first, paged with a cursor.
    let first = get(&app, &format!("{JOBS}?limit=1"), Some(READ_KEY))
        .await
        .json();
    assert_eq!(first["data"][0]["id"], later_id.as_str());
    let cursor = first["meta"]["cursor"].as_str().expect("a second page");
    let second = get(
        &app,
        &format!("{JOBS}?limit=1&cursor={cursor}"),
        Some(READ_KEY),
    )
    .await
    .json();
    assert_eq!(second["data"][0]["id"], id.as_str());
    assert!(second["meta"].get("cursor").is_none(), "{second}");

    // Deleted with its matches.
    let deleted = call(&app, "DELETE", &format!("{JOBS}/{id}"), INGEST_KEY, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    get(&app, &format!("{JOBS}/{id}"), Some(READ_KEY))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
    get(&app, &format!("{JOBS}/{id}/matching_files"), Some(READ_KEY))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFoundError");
}

#[tokio::test]
async fn a_query_job_matches_samples_as_the_search_does() {
    let scratch = seeded();
    let app = app(&scratch);
    let created = create(
        &app,
        json!({"rules": "# tutanota mail\nbehaviour_files:@tutanota.com\n", "rule_language": "query"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let id = created.json()["data"]["id"].as_str().unwrap().to_string();
    let done = poll(&app, &id, finished).await;
    assert_eq!(done["status"], "finished", "{done}");
    let files = matching_files(&app, &id, 10).await;
    let ids: Vec<&str> = files.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [RANSOM]);
    assert_eq!(files[0]["context_attributes"]["rule_name"], "tutanota mail");
}

#[tokio::test]
async fn rules_that_do_not_compile_are_refused_and_nothing_is_saved() {
    let scratch = seeded();
    let app = app(&scratch);
    let bad = create(
        &app,
        json!({"rules": "title: x\ndetection: [", "rule_language": "sigma"}),
    )
    .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    let bad = create(
        &app,
        json!({"rules": "behaviour_files:(", "rule_language": "query"}),
    )
    .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    create(
        &app,
        json!({"rules": SHADOWS, "time_range": {"start": 5, "end": 1}}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    let list = get(&app, JOBS, Some(READ_KEY)).await.json();
    assert_eq!(list["data"], json!([]));
    assert!(list["meta"].get("cursor").is_none());
}

#[tokio::test]
async fn abort_stops_a_running_job_within_a_second() {
    let scratch = Scratch::new();
    // 600 detonations of the LSASS dump, each under its own sample id.
    let report = built_report(&lsass_evtx(), &"0".repeat(64));
    let bytes = std::fs::read(lsass_evtx()).unwrap();
    for batch in 0..6 {
        let reports = (0..100)
            .map(|i| NewReport {
                behaviour: FileBehaviour::new(
                    &format!("{:064x}", batch * 100 + i + 1),
                    report.attributes.clone(),
                ),
                raw_log: Some(RawLog {
                    file_name: "lsass.evtx".into(),
                    data: RawData::Bytes(bytes.clone()),
                }),
            })
            .collect();
        scratch.backend.store().put_reports(reports).unwrap();
    }
    let app = app(&scratch);
    let created = create(&app, json!({"rules": SHADOWS})).await.json();
    let id = created["data"]["id"].as_str().unwrap().to_string();
    poll(&app, &id, |a| {
        a["status"] == "running" && a["scanned_detonations"].as_u64() > Some(0)
    })
    .await;
    let asked = Instant::now();
    let abort = call(
        &app,
        "POST",
        &format!("{JOBS}/{id}/abort"),
        INGEST_KEY,
        None,
    )
    .await;
    assert_eq!(abort.status, StatusCode::OK, "{}", abort.text());
    let status = abort.json()["data"]["attributes"]["status"].clone();
    assert!(status == "aborting" || status == "aborted", "{status}");
    let done = poll(&app, &id, |a| a["status"] == "aborted").await;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "abort took {took:?}");
    assert!(
        done["scanned_detonations"].as_u64().unwrap() < 600,
        "the job had finished before the abort: {done}"
    );
    assert!(done["finish_date"].is_i64());
}

#[tokio::test]
async fn a_store_holding_the_maximum_of_jobs_refuses_one_more_and_takes_one_after_a_delete() {
    let scratch = seeded();
    let app = app(&scratch);
    let created = create(&app, json!({"rules": SHADOWS})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let first = created.json()["data"]["id"].as_str().unwrap().to_string();
    poll(&app, &first, finished).await;
    // The store filled to one short of the maximum with copies of that real job's record.
    let store = scratch.backend.store();
    let table = RecordTable::RetrohuntJobs;
    let (id, bytes) = store
        .records(table, 0..=u64::MAX, 2, false)
        .unwrap()
        .pop()
        .unwrap();
    let copies = (1..MAX_JOBS as u64 - 1)
        .map(|n| RecordWrite::Put(table, id + n, bytes.clone()))
        .collect();
    store.write_records(copies).unwrap();

    let last = create(&app, json!({"rules": SHADOWS})).await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.text());
    let last_id = last.json()["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(last_id, format!("sandscope-{}", id + MAX_JOBS as u64 - 1));
    poll(&app, &last_id, finished).await;
    let refused = create(&app, json!({"rules": SHADOWS})).await;
    refused.assert_error(StatusCode::BAD_REQUEST, "InvalidArgumentError");
    assert!(
        refused.text().contains("maximum of 1000 retrohunt jobs"),
        "{}",
        refused.text()
    );
    let deleted = call(&app, "DELETE", &format!("{JOBS}/{first}"), INGEST_KEY, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    let again = create(&app, json!({"rules": SHADOWS})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
}
