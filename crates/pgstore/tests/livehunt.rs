//! Livehunt on a PostgreSQL store: the same rulesets over the same two seed detonations
//! (`tests/data/seed`: a coin miner and a ransomware run) notify on exactly the samples they
//! notify on in the embedded store, through the one ingest path (prepare, store, notify), and
//! the records (ids, rate windows, deletes) behave alike; a ruleset's `limit` holds when many
//! processes notify at once; a webhook delivery claimed by a process killed mid-attempt is
//! made by another once the lease ends; the webhook queue's bound is the store's count of
//! pending deliveries; creates racing from many processes never pass the maximum of rulesets
//! together; on one PostgreSQL and on the two-server layout.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;
#[macro_use]
#[path = "support/layouts.rs"]
mod layouts;
#[path = "../../../tests/support/ruleset_race.rs"]
mod ruleset_race;

use postgres_server::{Layout, TestCluster};
use ruleset_race::{assert_one_create_won, fill_to_one_short, seed_ruleset};
use sandscope_hunting::{
    Finding, Hunting, Livehunt, MAX_RULESETS, NotificationFilter, RecordStore, RecordTable,
    RuleHit, Webhooks,
};
use sandscope_ingest::{IngestOptions, Pipeline};
use sandscope_pgstore::PgStore;
use sandscope_store::{NewReport, Store};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed");
const SHADOW_COPIES: &str = include_str!("../../hunting/tests/rules/shadow_copies_deleted.yml");
const SCHTASKS: &str = include_str!("../../hunting/tests/rules/scheduled_task_created.yml");
const QUERIES: &str = "# XMR pool\nbehaviour_command_executions:\"pool.supportxmr.com\"\n\n# never\nbehaviour_files:\"no-such-file-anywhere.bin\"\n";

fn seed(name: &str) -> PathBuf {
    Path::new(SEED).join(name)
}

/// What an API server holds over the cluster's store: the store and its Livehunt.
struct Server {
    store: Arc<PgStore>,
    live: Livehunt,
}

impl Server {
    /// The first process: it makes the schema.
    fn first(cluster: &TestCluster) -> Server {
        Server::over(layouts::store(cluster))
    }

    /// Another process on the same database.
    fn open(cluster: &TestCluster) -> Server {
        Server::over(PgStore::open(&cluster.url()).unwrap())
    }

    fn over(store: PgStore) -> Server {
        let store = Arc::new(store);
        let live = Livehunt::load(store.clone()).unwrap();
        Server { store, live }
    }

    fn hunting(&self) -> Hunting<'_> {
        Hunting {
            store: self.store.as_ref(),
            live: &self.live,
        }
    }
}

fn attributes(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

/// What a test needs of either store: the hunting records and storing reports.
trait Reports: RecordStore {
    fn put(&self, reports: Vec<NewReport>) -> Vec<String>;
}

impl Reports for Store {
    fn put(&self, reports: Vec<NewReport>) -> Vec<String> {
        self.put_reports(reports).unwrap()
    }
}

impl Reports for PgStore {
    fn put(&self, reports: Vec<NewReport>) -> Vec<String> {
        self.put_reports(reports).unwrap()
    }
}

/// (ruleset name, rule name, sha256) of each notification.
type Notified = Vec<(String, String, String)>;

/// Every notification in `hunting`, sorted.
fn notified(hunting: &Hunting<'_>) -> Notified {
    let page = hunting
        .notifications(&NotificationFilter::default(), 300, None)
        .unwrap();
    let mut all: Vec<_> = page
        .items
        .into_iter()
        .map(|n| (n.ruleset_name, n.rule_name, n.sha256))
        .collect();
    all.sort();
    all
}

/// Create the rulesets, ingest both seed logs and return every notification; then delete the
/// Sigma ruleset and return what is left.
fn hunt(store: Arc<dyn Reports>) -> (Notified, Notified) {
    let live = Arc::new(Livehunt::load(store.clone()).unwrap());
    let hunting = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    let rules = format!("{SHADOW_COPIES}---\n{SCHTASKS}");
    let sigma = hunting
        .create_ruleset(
            &attributes(json!({"name": "ransom", "rules": rules})),
            1_000,
        )
        .unwrap();
    let query = hunting
        .create_ruleset(
            &attributes(json!({"name": "miners", "rule_language": "query", "rules": QUERIES})),
            1_000,
        )
        .unwrap();
    hunting
        .create_ruleset(
            &attributes(json!({"name": "off", "rules": SHADOW_COPIES, "enabled": false})),
            1_000,
        )
        .unwrap();
    assert_eq!((sigma.id, query.id), (1, 2), "ids start at 1 and increase");

    let pipeline = Pipeline::new(None).with_livehunt(live.clone());
    for log in [
        "coinminer_sihost32_sysmon.xml",
        "ransomware_tutanota_sysmon.xml",
    ] {
        let prepared = pipeline
            .prepare(&[seed(log)], &IngestOptions::default())
            .unwrap();
        let ids = store.put(prepared.reports);
        pipeline
            .notify(store.as_ref(), prepared.livehunt, &ids)
            .unwrap();
    }
    let all = notified(&hunting);
    hunting.delete_ruleset(sigma.id).unwrap();
    assert!(hunting.ruleset(sigma.id).is_err());
    (all, notified(&hunting))
}

on_each_layout!(
    rulesets_notify_on_the_same_samples_as_on_the_embedded_store,
    record_ids_are_shared_by_every_process_and_ranges_read_both_ways,
    a_rulesets_limit_holds_with_many_processes_notifying_at_once,
    a_patch_survives_many_processes_notifying_on_its_ruleset,
    webhook_outcomes_of_every_process_show_on_the_ruleset_everywhere,
    a_delivery_claimed_by_a_killed_process_is_made_by_another_after_its_lease,
    the_webhook_queue_is_bounded_by_the_stores_count_of_deliveries,
    concurrent_creates_of_many_processes_never_pass_the_maximum_together,
);

fn rulesets_notify_on_the_same_samples_as_on_the_embedded_store(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(Store::open(dir.path()).unwrap());
    let cluster = TestCluster::start(layout);
    let postgres = Arc::new(layouts::store(&cluster));

    let (on_embedded, left_embedded) = hunt(embedded.clone());
    let (on_postgres, left_postgres) = hunt(postgres.clone());
    assert_eq!(on_postgres, on_embedded);
    assert_eq!(left_postgres, left_embedded);

    // And what they are: each rule on the sample it describes, the disabled ruleset silent.
    let rules: Vec<(&str, &str)> = on_postgres
        .iter()
        .map(|(set, rule, _)| (set.as_str(), rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("miners", "XMR pool"),
            ("ransom", "Scheduled task created"),
            ("ransom", "Shadow copies deleted with vssadmin"),
        ]
    );
    let miner = &on_postgres[0].2;
    assert_eq!(&on_postgres[1].2, miner, "the miner schedules a task");
    assert_ne!(
        &on_postgres[2].2, miner,
        "the ransomware deletes shadow copies"
    );
    assert_eq!(
        left_postgres,
        on_postgres[..1],
        "deleting a ruleset deletes its notifications"
    );

    let doc = RecordStore::sample_doc(postgres.as_ref(), miner)
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(doc),
        RecordStore::sample_doc(embedded.as_ref(), miner).unwrap()
    );
    assert!(
        RecordStore::sample_doc(postgres.as_ref(), &"0".repeat(64))
            .unwrap()
            .is_none()
    );
}

fn record_ids_are_shared_by_every_process_and_ranges_read_both_ways(layout: Layout) {
    let cluster = TestCluster::start(layout);
    // Two stores on one database stand for two processes: ids never collide.
    let a = layouts::store(&cluster);
    let b = PgStore::open(&cluster.url()).unwrap();
    let table = RecordTable::HuntingNotifications;
    assert_eq!(a.allocate_ids(table, 3).unwrap(), [1, 2, 3]);
    assert_eq!(b.allocate_ids(table, 2).unwrap(), [4, 5]);
    assert_eq!(
        a.allocate_ids(RecordTable::HuntingRulesets, 1).unwrap(),
        [1]
    );

    let writes = (1..=5)
        .map(|id| sandscope_hunting::RecordWrite::Put(table, id, vec![id as u8]))
        .collect();
    RecordStore::write_records(&a, writes).unwrap();
    let ids = |rows: Vec<(u64, Vec<u8>)>| rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(
        ids(RecordStore::records(&b, table, 2..=u64::MAX, 2, false).unwrap()),
        [2, 3]
    );
    assert_eq!(
        ids(RecordStore::records(&b, table, 0..=4, 10, true).unwrap()),
        [4, 3, 2, 1]
    );
    assert_eq!(RecordStore::record(&b, table, 5).unwrap(), Some(vec![5]));
    assert_eq!(RecordStore::record(&b, table, u64::MAX).unwrap(), None);

    // A batch with a write PostgreSQL refuses lands not at all.
    let batch = vec![
        sandscope_hunting::RecordWrite::Delete(table, 1),
        sandscope_hunting::RecordWrite::Put(table, u64::MAX, vec![0]),
    ];
    let e = RecordStore::write_records(&a, batch).unwrap_err();
    assert!(e.to_string().contains("2^63"), "{e}");
    assert_eq!(RecordStore::record(&b, table, 1).unwrap(), Some(vec![1]));
}

/// Writers, each a store and a Livehunt of its own (as separate workers are), and the findings
/// each records per round.
const WRITERS: usize = 8;
const ROUNDS: usize = 3;
const PER_ROUND: usize = 2;

/// `count` findings of `ruleset`'s shadow-copy rule, on samples named after `writer` and `round`.
fn findings(ruleset: u64, writer: usize, round: usize, count: usize) -> Vec<Finding> {
    (0..count)
        .map(|n| Finding {
            ruleset_id: ruleset,
            sha256: format!("{writer:032x}{round:016x}{n:016x}"),
            hit: RuleHit {
                rule_name: "Shadow copies deleted with vssadmin".into(),
                rule_tags: Vec::new(),
                snippet: String::new(),
            },
        })
        .collect()
}

fn a_rulesets_limit_holds_with_many_processes_notifying_at_once(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let server = Server::first(&cluster);
    let hunting = server.hunting();
    let limit = 5;
    let ruleset = hunting
        .create_ruleset(
            &attributes(json!({"name": "capped", "rules": SHADOW_COPIES, "limit": limit})),
            1_000,
        )
        .unwrap();
    let now = sandscope_hunting::unix_now();
    let start = std::sync::Barrier::new(WRITERS);
    let notified: usize = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (cluster, start, ruleset) = (&cluster, &start, ruleset.id);
                scope.spawn(move || {
                    let store = Arc::new(PgStore::open(&cluster.url()).unwrap());
                    let live = Livehunt::load(store.clone()).unwrap();
                    start.wait();
                    let mut kept = 0;
                    for round in 0..ROUNDS {
                        let findings = findings(ruleset, w, round, PER_ROUND);
                        kept += live
                            .notify(store.as_ref(), findings, &[], now)
                            .unwrap()
                            .len();
                    }
                    kept
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let matched = (WRITERS * ROUNDS * PER_ROUND) as u64;
    assert_eq!(notified as u64, limit, "notifications admitted");
    let stored = hunting
        .notifications(&NotificationFilter::default(), 300, None)
        .unwrap()
        .items
        .len();
    assert_eq!(stored as u64, limit, "notifications stored");
    let window = hunting.ruleset(ruleset.id).unwrap().window;
    assert_eq!((window.kept, window.dropped), (limit, matched - limit));
}

/// PATCHes of one ruleset, one after the other, through a server of their own.
const PATCHES: usize = 12;

fn a_patch_survives_many_processes_notifying_on_its_ruleset(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let server = Server::first(&cluster);
    let hunting = server.hunting();
    let ruleset = hunting
        .create_ruleset(
            &attributes(json!({"name": "busy", "rules": SHADOW_COPIES, "limit": 100_000})),
            1_000,
        )
        .unwrap()
        .id;
    let now = sandscope_hunting::unix_now();
    let start = std::sync::Barrier::new(WRITERS + 1);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let notified: usize = std::thread::scope(|scope| {
        // Workers: each a store and a Livehunt of its own, writing the ruleset's rate window
        // with every notification, until the PATCHes are done.
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (cluster, start, stop) = (&cluster, &start, &stop);
                scope.spawn(move || {
                    let store = Arc::new(PgStore::open(&cluster.url()).unwrap());
                    let live = Livehunt::load(store.clone()).unwrap();
                    start.wait();
                    let mut kept = 0;
                    let mut round = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let found = findings(ruleset, w, round, 1);
                        kept += live.notify(store.as_ref(), found, &[], now).unwrap().len();
                        round += 1;
                    }
                    kept
                })
            })
            .collect();
        // An API server: PATCHes of name and tags, each checked from yet another process.
        let patcher = Server::open(&cluster);
        let api = patcher.hunting();
        let reader = Server::open(&cluster);
        let other = reader.hunting();
        start.wait();
        for n in 0..PATCHES {
            let patch = json!({"name": format!("busy {n}"), "tags": [format!("t{n}")]});
            api.update_ruleset(ruleset, &attributes(patch), now)
                .unwrap();
            // Let notifications land on the patched record before the next PATCH.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        api.update_ruleset(ruleset, &attributes(json!({"enabled": false})), now)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let notified = writers.into_iter().map(|w| w.join().unwrap()).sum();
        let shown = other.ruleset(ruleset).unwrap();
        assert_eq!(
            shown.name,
            format!("busy {}", PATCHES - 1),
            "the PATCHed name"
        );
        assert_eq!(
            shown.tags,
            [format!("t{}", PATCHES - 1)],
            "the PATCHed tags"
        );
        assert!(!shown.enabled, "the PATCH that disabled it");
        notified
    });
    assert!(
        notified > WRITERS,
        "the workers notified meanwhile: {notified}"
    );
    // No rate-window write was undone either: each kept notification is counted once.
    let window = hunting.ruleset(ruleset).unwrap().window;
    assert_eq!(window.kept as usize, notified);
    let stored = hunting
        .notifications(&NotificationFilter::default(), 100_000, None)
        .unwrap()
        .items
        .len();
    assert_eq!(stored, notified);
}

/// A webhook receiver on loopback. Once `answering`, it answers every POST with `204` and
/// keeps its body; before, it holds the request unanswered until the client goes away.
struct Receiver {
    url: String,
    answering: Arc<std::sync::atomic::AtomicBool>,
    /// Bodies of the requests answered, and how many were held.
    answered: Arc<std::sync::Mutex<Vec<Value>>>,
    held: Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    fn start(answering: bool) -> Receiver {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let receiver = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            answering: Arc::new(AtomicBool::new(answering)),
            answered: Arc::default(),
            held: Arc::new(AtomicUsize::new(0)),
        };
        let (answering, answered, held) = (
            receiver.answering.clone(),
            receiver.answered.clone(),
            receiver.held.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (answering, answered, held) =
                    (answering.clone(), answered.clone(), held.clone());
                std::thread::spawn(move || serve(stream, &answering, &answered, &held));
            }
        });
        receiver
    }

    fn answered(&self) -> Vec<Value> {
        self.answered.lock().unwrap().clone()
    }

    fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One connection of a [`Receiver`].
fn serve(
    mut stream: std::net::TcpStream,
    answering: &std::sync::atomic::AtomicBool,
    answered: &std::sync::Mutex<Vec<Value>>,
    held: &std::sync::atomic::AtomicUsize,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    // The whole request (headers, then Content-Length bytes of body), then the answer.
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let body = loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        let complete = text.split_once("\r\n\r\n").and_then(|(head, body)| {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            (body.len() >= length).then(|| body.to_string())
        });
        if let Some(body) = complete {
            break body;
        }
        if n == 0 {
            break String::new();
        }
    };
    if !answering.load(Ordering::SeqCst) {
        held.fetch_add(1, Ordering::SeqCst);
        // Until the client closes the connection (or dies).
        while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
        return;
    }
    answered
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
    let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
}

/// Processes notifying at once, each delivering its notifications' webhooks.
const DELIVERING: usize = 4;
/// Findings each of them records per ruleset.
const EACH: usize = 3;

fn webhook_outcomes_of_every_process_show_on_the_ruleset_everywhere(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let server = Server::first(&cluster);
    let api = server.hunting();
    let receiver = Receiver::start(true);
    let url = receiver.url.clone();
    let create = |name: &str, url: &str| {
        let body = json!({"name": name, "rules": SHADOW_COPIES, "webhook_url": url, "limit": 1000});
        api.create_ruleset(&attributes(body), 1_000).unwrap().id
    };
    let delivered = create("delivered", &url);
    // Nothing listens on port 9 (discard) of this host: every attempt fails.
    let failing = create("failing", "http://127.0.0.1:9/hook");
    let now = sandscope_hunting::unix_now();
    std::thread::scope(|scope| {
        for w in 0..DELIVERING {
            let cluster = &cluster;
            scope.spawn(move || {
                // A worker: its own store and Livehunt; dropping it writes what it delivered.
                let store = Arc::new(PgStore::open(&cluster.url()).unwrap());
                let webhooks = Webhooks::with_back_off(vec![Duration::from_millis(10)]);
                let live = Livehunt::load_with(store.clone(), webhooks).unwrap();
                let mut found = findings(delivered, w, 0, EACH);
                found.extend(findings(failing, w, 1, EACH));
                let kept = live.notify(store.as_ref(), found, &[], now).unwrap();
                assert_eq!(kept.len(), 2 * EACH);
            });
        }
    });
    let all = (DELIVERING * EACH) as u64;
    assert_eq!(receiver.answered().len() as u64, all);

    // Another server, which delivered nothing, shows every worker's outcomes.
    let other_server = Server::open(&cluster);
    let other = other_server.hunting();
    let shown = other.ruleset_object(&other.ruleset(delivered).unwrap(), now);
    assert_eq!(shown["attributes"]["webhook_deliveries"], all);
    assert_eq!(shown["attributes"]["webhook_failures"], 0);
    assert!(
        shown["attributes"].get("webhook_last_error").is_none(),
        "{shown}"
    );
    let shown = other.ruleset_object(&other.ruleset(failing).unwrap(), now);
    assert_eq!(shown["attributes"]["webhook_deliveries"], 0);
    assert_eq!(shown["attributes"]["webhook_failures"], all);
    let error = shown["attributes"]["webhook_last_error"].as_str().unwrap();
    assert!(
        error.contains("cannot deliver to http://127.0.0.1:9/hook"),
        "{error}"
    );
    // The rate windows written meanwhile are whole too.
    let window = other.ruleset(failing).unwrap().window;
    assert_eq!(window.kept, all);
}

/// Set in the child process of
/// [`a_delivery_claimed_by_a_killed_process_is_made_by_another_after_its_lease`]: the cluster's
/// URL.
const CHILD_STORE: &str = "SANDSCOPE_TEST_WEBHOOK_CHILD_STORE";
/// How long the child's claim holds a delivery.
const CHILD_LEASE: Duration = Duration::from_secs(3);

/// Now, in Unix milliseconds (as leases are written).
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_millis() as i64
}

/// Process A (this test binary run again, running only this test, with [`CHILD_STORE`] set)
/// ingests the seed ransomware run: its notification's delivery is stored, claimed by A and
/// attempted against a receiver that holds the request; A is killed (SIGKILL) mid-attempt.
/// Process B, started then, makes the delivery once A's lease has ended.
fn a_delivery_claimed_by_a_killed_process_is_made_by_another_after_its_lease(layout: Layout) {
    if let Ok(url) = std::env::var(CHILD_STORE) {
        claim_and_hang(&url);
    }
    let cluster = TestCluster::start(layout);
    let server = Server::first(&cluster);
    let receiver = Receiver::start(false);
    let body = json!({"name": "hooked", "rules": SHADOW_COPIES, "webhook_url": receiver.url});
    let ruleset = server
        .hunting()
        .create_ruleset(&attributes(body), 1_000)
        .unwrap()
        .id;
    let test = format!(
        "{}::{}",
        "a_delivery_claimed_by_a_killed_process_is_made_by_another_after_its_lease",
        match layout {
            Layout::OneServer => "one_server",
            Layout::TwoServers => "two_servers",
        }
    );
    let mut a = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            test.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_STORE, cluster.url())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while receiver.held() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "process A never attempted the delivery"
        );
        assert!(a.try_wait().unwrap().is_none(), "process A ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let notifications = server
        .hunting()
        .notifications(&NotificationFilter::default(), 10, None)
        .unwrap()
        .items;
    assert_eq!(notifications.len(), 1);
    let notification = notifications[0].id;
    let stored = |store: &PgStore| {
        RecordStore::record(store, RecordTable::WebhookDeliveries, notification)
            .unwrap()
            .map(|bytes| serde_json::from_slice::<Value>(&bytes).unwrap())
    };
    let claimed = stored(server.store.as_ref()).expect("the delivery is pending");
    let lease_ends = claimed["lease"]["until_ms"].as_i64().expect("claimed by A");
    assert!(lease_ends > now_ms(), "A's lease still runs: {claimed}");
    a.kill().unwrap();
    a.wait().unwrap();

    // Process B: a store and a Livehunt of its own.
    receiver
        .answering
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let b = Server::open(&cluster);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while receiver.answered().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "process B never made the delivery"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(now_ms() >= lease_ends, "not before A's lease ended");
    let answered = receiver.answered();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0]["data"]["id"], notification.to_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stored(b.store.as_ref()).is_some() {
        assert!(std::time::Instant::now() < deadline, "never settled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = b.hunting().ruleset(ruleset).unwrap().webhook;
    assert_eq!((status.delivered, status.failures), (1, 0));
    drop(b);
    assert_eq!(receiver.answered().len(), 1, "delivered once by B");
    assert_eq!(receiver.held(), 1, "held once, from A");
}

/// Process A: ingest the seed ransomware run through a Livehunt whose claims hold for
/// [`CHILD_LEASE`], then wait to be killed (its delivery's attempt is held by the receiver).
fn claim_and_hang(url: &str) -> ! {
    let store = Arc::new(PgStore::open(url).unwrap());
    let webhooks = Webhooks::with_back_off(vec![Duration::from_secs(60)]).with_lease(CHILD_LEASE);
    let live = Arc::new(Livehunt::load_with(store.clone(), webhooks).unwrap());
    let pipeline = Pipeline::new(None).with_livehunt(live);
    let prepared = pipeline
        .prepare(
            &[seed("ransomware_tutanota_sysmon.xml")],
            &IngestOptions::default(),
        )
        .unwrap();
    let ids = store.put_reports(prepared.reports).unwrap();
    pipeline
        .notify(store.as_ref(), prepared.livehunt, &ids)
        .unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Deliveries a store queues at most (`sandscope_hunting`'s webhook queue bound).
const QUEUE: usize = 1_000;

fn the_webhook_queue_is_bounded_by_the_stores_count_of_deliveries(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let store = Arc::new(layouts::store(&cluster));
    let table = RecordTable::WebhookDeliveries;
    assert_eq!(
        RecordStore::count_records(store.as_ref(), table, 10).unwrap(),
        0
    );
    // Nothing listens on port 9 of this host: every attempt fails and is retried only after an
    // hour, so what is queued stays queued while the test looks.
    let webhooks = Webhooks::with_back_off(vec![Duration::from_secs(3600)]);
    let live = Livehunt::load_with(store.clone(), webhooks.clone()).unwrap();
    let hunting = Hunting {
        store: store.as_ref(),
        live: &live,
    };
    let body = json!({"name": "hooked", "rules": SHADOW_COPIES, "webhook_url": "http://127.0.0.1:9/hook", "limit": 100_000});
    let hooked = hunting.create_ruleset(&attributes(body), 1_000).unwrap().id;
    let now = sandscope_hunting::unix_now();
    let kept = live
        .notify(store.as_ref(), findings(hooked, 0, 0, QUEUE - 1), &[], now)
        .unwrap();
    assert_eq!(kept.len(), QUEUE - 1);
    let count = |cap| RecordStore::count_records(store.as_ref(), table, cap).unwrap();
    assert_eq!(count(QUEUE), QUEUE - 1);
    assert_eq!(count(10), 10, "counted up to the cap");

    // Another process notifies twice more: one place was left.
    let other = Arc::new(PgStore::open(&cluster.url()).unwrap());
    let other_live = Livehunt::load_with(other.clone(), webhooks).unwrap();
    let kept = other_live
        .notify(other.as_ref(), findings(hooked, 1, 0, 2), &[], now)
        .unwrap();
    assert_eq!(kept.len(), 2, "both notifications are kept");
    assert_eq!(count(2 * QUEUE), QUEUE);
    let status = hunting.ruleset(hooked).unwrap().webhook;
    assert_eq!((status.delivered, status.failures), (0, 1));
    let error = status.last_error.unwrap();
    assert!(
        error.contains("1000 webhook deliveries already wait"),
        "{error}"
    );
}

/// Processes creating a ruleset at once (each a store and a Livehunt set of its own, as API
/// servers sharing the database are), and threads per process (requests it serves at once).
const CREATING: usize = 3;
const REQUESTS: usize = 3;

fn concurrent_creates_of_many_processes_never_pass_the_maximum_together(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let first = Server::first(&cluster);
    fill_to_one_short(first.store.as_ref());
    let servers: Vec<Server> = (0..CREATING).map(|_| Server::open(&cluster)).collect();
    for server in &servers {
        assert_eq!(server.live.enabled(), MAX_RULESETS - 1);
    }
    let start = std::sync::Barrier::new(CREATING * REQUESTS);
    let outcomes: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let requests: Vec<_> = servers
            .iter()
            .enumerate()
            .flat_map(|(p, server)| (0..REQUESTS).map(move |r| (p, r, server)))
            .map(|(p, r, server)| {
                let start = &start;
                scope.spawn(move || {
                    let attributes = seed_ruleset(&format!("racer {p}.{r}"));
                    start.wait();
                    server
                        .hunting()
                        .create_ruleset(&attributes, 2)
                        .map(|ruleset| ruleset.id)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_one_create_won(first.store.as_ref(), &outcomes);
}
