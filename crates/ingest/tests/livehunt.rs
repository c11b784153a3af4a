//! Livehunt on the seed's two detonations (`tests/data/seed`: a coin miner and a ransomware
//! run): each ruleset notifies on exactly the samples it should, through the ingest path every
//! door takes (prepare, then store with the notifications: one transaction on the embedded
//! store, a second one for them on a store that cannot, the PostgreSQL store's workers).

use sandscope_hunting::{Hunting, Livehunt, NotificationFilter, RecordStore, Webhooks};
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_store::Store;
use serde_json::{Map, Value, json};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed");

const SHADOW_COPIES: &str = concat!(
    include_str!("../../hunting/tests/rules/shadow_copies_deleted.yml"),
    "---\n",
    include_str!("../../hunting/tests/rules/scheduled_task_created.yml"),
);

fn seed(name: &str) -> PathBuf {
    Path::new(SEED).join(name)
}

fn attributes(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

struct Lab {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    live: Arc<Livehunt>,
    pipeline: Pipeline,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_webhooks(Webhooks::default())
    }

    fn with_webhooks(webhooks: Webhooks) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let live = Arc::new(Livehunt::load_with(store.clone(), webhooks).unwrap());
        let pipeline = Pipeline::new(None).with_livehunt(live.clone());
        Lab {
            _dir: dir,
            store,
            live,
            pipeline,
        }
    }

    fn hunting(&self) -> Hunting<'_> {
        Hunting {
            store: self.store.as_ref(),
            live: &self.live,
        }
    }

    /// Ingest one log as `sandscope ingest` and the API do on the embedded store: the reports
    /// and their notifications in one transaction. Returns the sample's SHA-256.
    fn ingest(&self, file: &Path) -> String {
        let prepared = self
            .pipeline
            .prepare(&[file.to_path_buf()], &IngestOptions::default())
            .unwrap();
        let (ids, _) = self
            .pipeline
            .put_reports(&self.store, prepared.reports, prepared.livehunt)
            .unwrap();
        ids[0].split('_').next().unwrap().to_string()
    }

    /// Ingest one log as a PostgreSQL worker does: the reports, then the notifications in a
    /// transaction of their own.
    fn ingest_then_notify(&self, file: &Path) -> String {
        let prepared = self
            .pipeline
            .prepare(&[file.to_path_buf()], &IngestOptions::default())
            .unwrap();
        let ids = self.store.put_reports(prepared.reports).unwrap();
        self.pipeline
            .notify(self.store.as_ref(), prepared.livehunt, &ids)
            .unwrap();
        ids[0].split('_').next().unwrap().to_string()
    }

    /// The ids of every notification, lowest first.
    fn notified_ids(&self) -> Vec<u64> {
        let page = self
            .hunting()
            .notifications(&NotificationFilter::default(), 300, None)
            .unwrap();
        let mut ids: Vec<u64> = page.items.iter().map(|n| n.id).collect();
        ids.sort();
        ids
    }

    /// (ruleset id, rule name, sha256) of every notification, sorted.
    fn notified(&self) -> Vec<(u64, String, String)> {
        let page = self
            .hunting()
            .notifications(&NotificationFilter::default(), 300, None)
            .unwrap();
        let mut all: Vec<_> = page
            .items
            .into_iter()
            .map(|n| (n.ruleset_id, n.rule_name, n.sha256))
            .collect();
        all.sort();
        all
    }
}

#[test]
fn sigma_and_query_rulesets_notify_on_exactly_their_samples() {
    let lab = Lab::new();
    let h = lab.hunting();
    let sigma = h
        .create_ruleset(
            &attributes(json!({"name": "ransom", "rules": SHADOW_COPIES, "tags": ["impact"]})),
            1_000,
        )
        .unwrap();
    let query = h
        .create_ruleset(
            &attributes(json!({
                "name": "miners",
                "rule_language": "query",
                "rules": "# XMR pool\nbehaviour_command_executions:\"pool.supportxmr.com\"\n\n# never\nbehaviour_files:\"no-such-file-anywhere.bin\"\n",
            })),
            1_000,
        )
        .unwrap();
    let disabled = h
        .create_ruleset(
            &attributes(json!({"name": "off", "rules": SHADOW_COPIES, "enabled": false})),
            1_000,
        )
        .unwrap();
    assert_eq!(
        sigma.rule_names,
        [
            "Shadow copies deleted with vssadmin",
            "Scheduled task created"
        ]
    );
    assert_eq!(query.rule_names, ["XMR pool", "never"]);

    let miner = lab.ingest(&seed("coinminer_sihost32_sysmon.xml"));
    let ransom = lab.ingest(&seed("ransomware_tutanota_sysmon.xml"));
    assert_ne!(miner, ransom);
    assert_eq!(
        lab.notified(),
        vec![
            (
                sigma.id,
                "Scheduled task created".to_string(),
                miner.clone()
            ),
            (
                sigma.id,
                "Shadow copies deleted with vssadmin".to_string(),
                ransom.clone()
            ),
            (query.id, "XMR pool".to_string(), miner.clone()),
        ],
        "the disabled ruleset {} never notifies",
        disabled.id
    );

    // A hit is explained by the event that matched, and the file view carries the context.
    let page = h
        .notifications(
            &NotificationFilter::parse(&format!("ruleset_id:{} tag:attack.t1490", sigma.id))
                .unwrap(),
            10,
            None,
        )
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let n = &page.items[0];
    assert!(
        n.snippet.contains("vssadmin.exe delete shadows"),
        "{}",
        n.snippet
    );
    let file = n.to_file_object();
    assert_eq!(file["id"], json!(ransom));
    assert_eq!(file["context_attributes"]["ruleset_name"], json!("ransom"));
    assert_eq!(
        file["context_attributes"]["notification_id"],
        json!(n.id.to_string())
    );

    // Deleting a ruleset deletes its notifications; the others stay.
    h.delete_ruleset(sigma.id).unwrap();
    assert_eq!(
        lab.notified(),
        vec![(query.id, "XMR pool".to_string(), miner)]
    );
    assert!(h.ruleset(sigma.id).is_err());
}

#[test]
fn storing_with_the_reports_and_notifying_after_them_raise_the_same_notifications() {
    let labs = [Lab::new(), Lab::new()];
    for lab in &labs {
        let h = lab.hunting();
        h.create_ruleset(
            &attributes(json!({"name": "ransom", "rules": SHADOW_COPIES})),
            1_000,
        )
        .unwrap();
        h.create_ruleset(
            &attributes(json!({
                "name": "processes", "rule_language": "query",
                "rules": "# any exe\nbehaviour_processes:*.exe\n# XMR pool\nbehaviour_command_executions:\"pool.supportxmr.com\"",
            })),
            1_000,
        )
        .unwrap();
    }
    let files = [
        seed("coinminer_sihost32_sysmon.xml"),
        seed("ransomware_tutanota_sysmon.xml"),
    ];
    for file in &files {
        labs[0].ingest(file);
        labs[1].ingest_then_notify(file);
    }
    let notified = labs[0].notified();
    // Both samples start an .exe, the miner reaches its pool, the ransomware deletes shadow
    // copies, and the miner creates a scheduled task.
    assert_eq!(notified.len(), 5, "{notified:?}");
    assert_eq!(notified, labs[1].notified());
    assert_eq!(labs[0].notified_ids(), labs[1].notified_ids());
}

#[test]
fn a_ruleset_over_its_limit_is_rate_limited_and_says_so() {
    let lab = Lab::new();
    let h = lab.hunting();
    // Both seed samples start a process: two matches, room for one.
    let r = h
        .create_ruleset(
            &attributes(json!({
                "name": "any process", "rule_language": "query", "limit": 1,
                "rules": "behaviour_processes:*.exe",
            })),
            1_000,
        )
        .unwrap();
    lab.ingest(&seed("coinminer_sihost32_sysmon.xml"));
    lab.ingest(&seed("ransomware_tutanota_sysmon.xml"));
    assert_eq!(lab.notified().len(), 1);
    let now = sandscope_hunting::unix_now();
    let object = h.ruleset_object(&h.ruleset(r.id).unwrap(), now);
    assert_eq!(object["attributes"]["rate_limited"], json!(true));
    assert_eq!(object["attributes"]["rate_limited_ratio"], json!(0.5));
}

#[test]
fn rulesets_persist_and_a_reopened_store_hunts_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let live = Livehunt::load(store.clone()).unwrap();
        let h = Hunting {
            store: store.as_ref(),
            live: &live,
        };
        h.create_ruleset(
            &attributes(json!({"name": "ransom", "rules": SHADOW_COPIES})),
            1_000,
        )
        .unwrap()
        .id
    };
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let live = Arc::new(Livehunt::load(store.clone()).unwrap());
    assert_eq!(live.enabled(), 1);
    let pipeline = Pipeline::new(None).with_livehunt(live.clone());
    let prepared = pipeline
        .prepare(
            &[seed("ransomware_tutanota_sysmon.xml")],
            &IngestOptions::default(),
        )
        .unwrap();
    assert_eq!(prepared.livehunt.len(), 1);
    assert_eq!(prepared.livehunt[0].ruleset_id, id);
    let ids = store.put_reports(prepared.reports).unwrap();
    assert_eq!(
        pipeline
            .notify(store.as_ref(), prepared.livehunt, &ids)
            .unwrap(),
        1
    );
    // The seam reads the stored sample back as the search would.
    let sha = ids[0].split('_').next().unwrap();
    assert!(
        RecordStore::sample_doc(store.as_ref(), sha)
            .unwrap()
            .is_some()
    );
}

/// A receiver that answers the first POST with 500 and the next with 204, and hands over the
/// body it accepted.
fn flaky_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/livehunt", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (attempt, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then the body Content-Length announces.
            loop {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        // Header names are case-insensitive (HTTP/1.1).
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().to_string())
                        })
                        .unwrap()
                        .parse()
                        .unwrap();
                    if body.len() >= length || n == 0 {
                        let status = if attempt == 0 {
                            "500 Oops"
                        } else {
                            "204 No Content"
                        };
                        write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").unwrap();
                        if attempt > 0 {
                            tx.send(body.to_string()).unwrap();
                        }
                        break;
                    }
                }
            }
        }
    });
    (url, rx)
}

#[test]
fn webhooks_are_posted_retried_and_their_outcomes_kept_on_the_ruleset_across_a_reopen() {
    let lab = Lab::with_webhooks(Webhooks::with_back_off(vec![Duration::from_millis(50); 2]));
    let h = lab.hunting();
    let (url, received) = flaky_receiver();
    let delivered = h
        .create_ruleset(
            &attributes(json!({"name": "ransom", "rules": SHADOW_COPIES, "webhook_url": url})),
            1_000,
        )
        .unwrap();
    // Nothing listens on port 9 (discard) of this host: every attempt fails.
    let failing = h
        .create_ruleset(
            &attributes(json!({"name": "dead end", "rules": SHADOW_COPIES, "webhook_url": "http://127.0.0.1:9/x"})),
            1_000,
        )
        .unwrap();
    let ransom = lab.ingest(&seed("ransomware_tutanota_sysmon.xml"));

    // The second attempt, after the 500, is accepted.
    let body: Value =
        serde_json::from_str(&received.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
    assert_eq!(body["data"]["type"], "hunting_notification");
    assert_eq!(
        body["data"]["attributes"]["rule_name"],
        "Shadow copies deleted with vssadmin"
    );
    assert_eq!(body["data"]["attributes"]["sha256"], json!(ransom));

    // The hook nobody listens to fails three times (a first try and two retries), then the
    // failure is written to its ruleset's record. Deliveries run in order, so wait for the
    // thread to get to it.
    let mut status = Default::default();
    for _ in 0..600 {
        status = h.ruleset(failing.id).unwrap().webhook;
        if status.failures > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!((status.delivered, status.failures), (0, 1));
    let shown = h.ruleset_object(&h.ruleset(failing.id).unwrap(), 1_000);
    assert_eq!(shown["attributes"]["webhook_failures"], 1);
    let error = shown["attributes"]["webhook_last_error"].as_str().unwrap();
    assert!(
        error.contains("cannot deliver to http://127.0.0.1:9/x"),
        "{error}"
    );
    let ok = h.ruleset(delivered.id).unwrap().webhook;
    assert_eq!((ok.delivered, ok.failures), (1, 0));

    // The counts are the store's: the reopened store shows them.
    let Lab {
        _dir: dir,
        store,
        live,
        pipeline,
    } = lab;
    drop((pipeline, live, store));
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let live = Livehunt::load(store.clone()).unwrap();
    let h = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    let shown = h.ruleset_object(&h.ruleset(failing.id).unwrap(), 1_000);
    assert_eq!(shown["attributes"]["webhook_failures"], 1);
    assert_eq!(shown["attributes"]["webhook_last_error"], json!(error));
    assert_eq!(h.ruleset(delivered.id).unwrap().webhook, ok);

    // A PATCH to another receiver counts its deliveries from scratch; one resending the same
    // URL (as vt-py sends back what it fetched) keeps them.
    let same = json!({"webhook_url": "http://127.0.0.1:9/x", "webhook_failures": 0});
    let kept = h
        .update_ruleset(failing.id, &attributes(same), 1_001)
        .unwrap();
    assert_eq!(kept.webhook.failures, 1);
    let other = json!({"webhook_url": "http://127.0.0.1:9/y"});
    let moved = h
        .update_ruleset(failing.id, &attributes(other), 1_002)
        .unwrap();
    assert_eq!(moved.webhook, Default::default());
}

/// The pending webhook deliveries of `store`: (notification id, ruleset id, attempts made).
fn pending_deliveries(store: &Store) -> Vec<(u64, u64, u64)> {
    RecordStore::records(
        store,
        sandscope_hunting::RecordTable::WebhookDeliveries,
        0..=u64::MAX,
        100,
        false,
    )
    .unwrap()
    .into_iter()
    .map(|(id, bytes)| {
        let record: Value = serde_json::from_slice(&bytes).unwrap();
        let number = |key: &str| record[key].as_u64().unwrap();
        (id, number("ruleset_id"), number("attempts"))
    })
    .collect()
}

#[test]
fn pending_deliveries_go_with_their_ruleset_or_its_old_webhook() {
    // One attempt, then a retry a minute later: the deliveries stay pending meanwhile.
    let lab = Lab::with_webhooks(Webhooks::with_back_off(vec![Duration::from_secs(60)]));
    let h = lab.hunting();
    let create = |name: &str| {
        // Nothing listens on port 9 (discard) of this host: every attempt fails.
        let body =
            json!({"name": name, "rules": SHADOW_COPIES, "webhook_url": "http://127.0.0.1:9/x"});
        h.create_ruleset(&attributes(body), 1_000).unwrap().id
    };
    let (moved, deleted) = (create("moved"), create("deleted"));
    lab.ingest(&seed("ransomware_tutanota_sysmon.xml"));
    let notified = lab.notified();
    assert_eq!(notified.len(), 2, "{notified:?}");

    // Stored with the notifications, tried once each, waiting for their retry.
    let mut pending = Vec::new();
    for _ in 0..600 {
        pending = pending_deliveries(&lab.store);
        if pending.iter().all(|&(_, _, attempts)| attempts == 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let rulesets: Vec<(u64, u64)> = pending.iter().map(|&(_, r, a)| (r, a)).collect();
    assert_eq!(rulesets, [(moved, 1), (deleted, 1)]);
    let ids: Vec<u64> = lab.notified_ids();
    assert_eq!(
        pending.iter().map(|&(id, _, _)| id).collect::<Vec<_>>(),
        ids,
        "each under its notification's id"
    );

    // A PATCH to the same URL keeps it; one to another drops it, uncounted.
    let same = json!({"webhook_url": "http://127.0.0.1:9/x"});
    h.update_ruleset(moved, &attributes(same), 1_001).unwrap();
    assert_eq!(pending_deliveries(&lab.store).len(), 2);
    let other = json!({"webhook_url": "http://127.0.0.1:9/y"});
    h.update_ruleset(moved, &attributes(other), 1_002).unwrap();
    let left: Vec<u64> = pending_deliveries(&lab.store)
        .iter()
        .map(|&(_, r, _)| r)
        .collect();
    assert_eq!(left, [deleted]);
    assert_eq!(h.ruleset(moved).unwrap().webhook, Default::default());

    h.delete_ruleset(deleted).unwrap();
    assert_eq!(pending_deliveries(&lab.store), []);
}
