//! A Livehunt webhook delivery outlives a `kill -9` of the server that queued it: `sandscope
//! serve` stores the seed ransomware run's notification while the receiver is down, is killed
//! in the back-off between two attempts, and the next `serve` over the same data directory
//! delivers it, exactly once, to the receiver now up; the ruleset counts it once.

mod support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use support::retrohunt::api;
use support::{Server, sandscope_ok};

/// The Sigma rule matching the ransomware seed's `vssadmin delete shadows`.
const SHADOWS: &str = include_str!("../../hunting/tests/rules/shadow_copies_deleted.yml");

/// A receiver on `listener` answering every POST with `204`; each body it took, as it came.
fn receive(listener: TcpListener) -> Receiver<Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let body = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let l = l.to_ascii_lowercase();
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break body.to_string();
                    }
                }
                if n == 0 {
                    break String::new();
                }
            };
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            if tx
                .send(serde_json::from_str(&body).unwrap_or(Value::Null))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// The ruleset's attributes as the API shows them.
fn ruleset(url: &str, id: &str) -> Value {
    api(
        url,
        "GET",
        &format!("/intelligence/hunting_rulesets/{id}"),
        None,
    )["data"]["attributes"]
        .clone()
}

#[test]
fn a_delivery_pending_at_kill_9_is_delivered_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // A port nothing listens on yet: the receiver comes up there after the kill.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/hook");

    let (mut server, url) = Server::start(data);
    let attributes = json!({"name": "ransom", "rules": SHADOWS, "webhook_url": hook});
    let created = api(
        &url,
        "POST",
        "/intelligence/hunting_rulesets",
        Some(json!({"data": {"type": "hunting_ruleset", "attributes": attributes}})),
    );
    let id = created["data"]["id"].as_str().unwrap().to_string();
    // Through the server's control socket: the server stores and notifies.
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed/ransomware_tutanota_sysmon.xml");
    sandscope_ok(&["ingest", "--data", data, seed.to_str().unwrap()]);
    let notifications = api(&url, "GET", "/intelligence/hunting_notifications", None);
    assert_eq!(
        notifications["data"].as_array().unwrap().len(),
        1,
        "{notifications}"
    );
    let notification = notifications["data"][0]["id"].clone();

    // Refused at once, then again after 1 s; the next attempt is due 4 s later. Kill before it.
    std::thread::sleep(Duration::from_millis(2_500));
    let shown = ruleset(&url, &id);
    assert_eq!(
        (
            shown["webhook_deliveries"].clone(),
            shown["webhook_failures"].clone()
        ),
        (json!(0), json!(0)),
        "still pending: {shown}"
    );
    server.signal("-KILL");
    drop(server);

    let received = receive(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let (_server, url) = Server::start(data);
    let body = received
        .recv_timeout(Duration::from_secs(90))
        .expect("the pending delivery is made after the restart");
    assert_eq!(body["data"]["type"], "hunting_notification");
    assert_eq!(
        body["data"]["id"], notification,
        "the notification id, to dedupe by"
    );
    assert_eq!(body["data"]["attributes"]["ruleset_name"], "ransom");

    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let shown = ruleset(&url, &id);
        if shown["webhook_deliveries"] == json!(1) || Instant::now() > deadline {
            break shown;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shown["webhook_deliveries"], 1, "{shown}");
    assert_eq!(shown["webhook_failures"], 0, "{shown}");
    // Longer than a delivery thread's poll (5 s): nothing is delivered again.
    assert!(
        received.recv_timeout(Duration::from_secs(8)).is_err(),
        "delivered twice"
    );
}
