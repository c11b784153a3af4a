//! `--store postgres://…` end to end on a real PostgreSQL: `db init`, `ingest`, `search` and
//! `show` through the binary, and each way of failing to reach the store says PostgreSQL and
//! what to do.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;

use postgres_server::{Layout, TestCluster, TestPostgres};
use std::path::Path;
use std::process::{Command, Output};

fn sandscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .env_remove("SANDSCOPE_STORE")
        .env_remove("SANDSCOPE_DATA")
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LOG: &str = "../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/TA0040-Impact/T1565-Data manipulation/ID11-DNS hosts files modified.evtx";

#[test]
fn init_ingest_search_and_show_on_postgresql() {
    init_ingest_search_and_show(Layout::OneServer);
}

/// The same on two servers: `db init --shards URL1,URL2` partitions the large tables.
#[test]
fn init_ingest_search_and_show_on_two_postgresql_servers() {
    init_ingest_search_and_show(Layout::TwoServers);
}

fn init_ingest_search_and_show(layout: Layout) {
    let cluster = TestCluster::start(layout);
    let url = cluster.url();
    let shards = cluster.shard_urls().join(",");
    let mut init = vec!["db", "init", "--store", &url];
    if layout == Layout::TwoServers {
        init.extend(["--shards", &shards]);
    }
    let out = sandscope(&init);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("created the Sandscope schema"));
    if layout == Layout::TwoServers {
        assert!(text(&out).0.contains("over 2 servers"), "{:?}", text(&out));
    }
    let out = sandscope(&["db", "upgrade", "--store", &url]);
    assert!(
        text(&out).0.contains("already at version"),
        "{:?}",
        text(&out)
    );

    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join(LOG);
    let out = sandscope(&[
        "ingest",
        "--no-sigma",
        "--store",
        &url,
        log.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let stored: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("stored\t"))
        .collect();
    assert_eq!(stored.len(), 1, "{stdout}");
    let sha = &stored[0][..64];

    // Compaction (vacuum, indexes rebuilt) leaves every answer below as it was.
    let out = sandscope(&["compact", "--store", &url]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("tables and indexes"), "{stdout}");

    let out = sandscope(&[
        "search",
        "--store",
        &url,
        "--format",
        "json",
        "behaviour_files:hosts",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let page: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(page["data"][0]["id"], *sha, "{stdout}");
    assert_eq!(page["meta"]["total_hits"], 1);

    let out = sandscope(&["pivot", "--store", &url, "--format", "json", sha]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let indicators: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        indicators
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["type"] == "file_path"
                && i["value"]
                    .as_str()
                    .is_some_and(|v| v.ends_with(r"\etc\hosts")))),
        "{stdout}"
    );

    let out = sandscope(&["show", "--store", &url, sha]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let reports: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        reports["data"][0]["id"].as_str().map(|id| &id[..64]),
        Some(sha)
    );
}

#[test]
fn a_store_that_cannot_be_used_is_one_error_naming_postgresql_and_what_to_do() {
    let pg = TestPostgres::start();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        ("not-a-url", "postgres://".to_string()),
        (
            "unreachable",
            format!("postgres://postgres@127.0.0.1:{free}/sandscope"),
        ),
        ("wrong password", pg.password_url("wrong")),
        ("no schema", pg.url()),
    ];
    for (case, url) in cases {
        let url = if case == "not-a-url" {
            "/tmp/x".to_string()
        } else {
            url
        };
        let out = sandscope(&["search", "--store", &url, "x"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(stderr.contains("PostgreSQL"), "{case}: {stderr}");
        let advice = match case {
            "not-a-url" => "postgres://",
            "unreachable" => "host and port",
            "wrong password" => "user and password",
            _ => "sandscope db init",
        };
        assert!(stderr.contains(advice), "{case}: {stderr}");
        assert!(
            !stderr.contains("right-password") && !stderr.contains(":wrong@"),
            "{stderr}"
        );
    }
}

/// A running `sandscope serve`, killed when dropped.
struct Serve {
    child: std::process::Child,
    url: String,
}

const KEY: &str = "pgserve-test-key";

impl Serve {
    fn start(store: &[&str], ingest: &[&Path]) -> Serve {
        use std::io::{BufRead, BufReader};
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandscope"));
        command
            .arg("serve")
            .args(store)
            .args(["--listen", "127.0.0.1:0", "--api-key", KEY, "--no-sigma"])
            .env_remove("SANDSCOPE_STORE")
            .env_remove("SANDSCOPE_DATA")
            .stdout(std::process::Stdio::piped());
        if !ingest.is_empty() {
            command.arg("--ingest").args(ingest);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("serve exited before serving").unwrap();
            if let Some(rest) = line.strip_prefix("Sandscope is serving at ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
            }
        };
        // Keep reading its output, so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Serve { child, url }
    }

    /// GET `path` (under `/api/v3`): the status code and the body.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.curl(&[&format!("{}/api/v3{path}", self.url)])
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// `json(path)` with the server's own address (in `links`) written as `SERVER`.
    fn answer(&self, path: &str) -> serde_json::Value {
        let text = self.json(path).to_string().replace(&self.url, "SERVER");
        serde_json::from_str(&text).unwrap()
    }

    fn upload(&self, file: &Path) -> serde_json::Value {
        let (status, body) = self.curl(&[
            "-F",
            &format!("file=@{}", file.display()),
            &format!("{}/api/v3/sandscope/ingest", self.url),
        ]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    fn curl(&self, args: &[&str]) -> (u16, Vec<u8>) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-H",
                &format!("x-apikey: {KEY}"),
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .output()
            .expect("curl runs");
        let mut body = out.stdout;
        let split = body.iter().rposition(|&b| b == b'\n').unwrap();
        let status = String::from_utf8_lossy(&body[split + 1..]).parse().unwrap();
        body.truncate(split);
        (status, body)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn search_answer(serve: &Serve, query: &str) -> (Vec<String>, serde_json::Value) {
    let page = serve.json(&format!(
        "/intelligence/search?limit=300&query={}",
        query
            .replace(' ', "%20")
            .replace(':', "%3A")
            .replace('"', "%22")
    ));
    let ids = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page["meta"]["total_hits"].clone())
}

#[test]
fn two_servers_on_one_postgresql_answer_as_an_embedded_server_does() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let out = sandscope(&["db", "init", "--store", &url]);
    assert!(out.status.success(), "{:?}", text(&out));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let logs = [
        root.join(LOG),
        root.join("../../tests/data/seed/ransomware_tutanota_sysmon.xml"),
    ];

    // Livehunt rulesets on both stores, added through the CLI: a Sigma rule for the ransomware
    // run and a query for the hosts-file log.
    let rules = tempfile::tempdir().unwrap();
    let sigma_rules = rules.path().join("shadow.yml");
    std::fs::copy(
        root.join("../hunting/tests/rules/shadow_copies_deleted.yml"),
        &sigma_rules,
    )
    .unwrap();
    let query_rules = rules.path().join("hosts.txt");
    std::fs::write(&query_rules, "# hosts file\nbehaviour_files:hosts\n").unwrap();
    let add_rulesets = |store: &[&str]| {
        for (name, file) in [("ransom", &sigma_rules), ("hosts", &query_rules)] {
            let mut args = vec!["rulesets", "add", name, file.to_str().unwrap()];
            args.extend_from_slice(store);
            let out = sandscope(&args);
            assert!(out.status.success(), "{:?}", text(&out));
        }
    };
    add_rulesets(&["--store", &url]);

    let first = Serve::start(&["--store", &url], &[]);
    let second = Serve::start(&["--store", &url], &[]);
    let mut report_ids = Vec::new();
    for log in &logs {
        let answer = first.upload(log);
        let created = answer["data"].as_array().unwrap();
        assert_eq!(created.len(), 1, "{answer}");
        report_ids.push(created[0]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(report_ids.len(), 2, "{report_ids:?}");
    let health = second.json("/sandscope/health");
    assert_eq!(health["data"]["reports"], 2, "{health}");
    assert_eq!(health["data"]["status"], "ok", "{health}");

    let data = tempfile::tempdir().unwrap();
    let data = data.path().join("data");
    let data = data.to_str().unwrap();
    add_rulesets(&["--data", data]);
    let log_refs: Vec<&Path> = logs.iter().map(|l| l.as_path()).collect();
    let embedded = Serve::start(&["--data", data], &log_refs);

    for query in [
        "behaviour_files:hosts",
        "behaviour_files:@tutanota.com",
        "NOT behaviour_files:hosts",
        "behaviour_files:hosts OR behaviour_network:tutanota.com",
    ] {
        let (ids, total) = search_answer(&second, query);
        assert!(!ids.is_empty() || query.starts_with("NOT"), "{query}");
        assert_eq!((ids, total), search_answer(&embedded, query), "{query}");
        assert_eq!(search_answer(&first, query), search_answer(&second, query));
    }
    for id in &report_ids {
        let sha = &id[..64];
        for path in [
            format!("/files/{sha}/behaviours"),
            format!("/files/{sha}/behaviour_summary"),
            format!("/files/{sha}/behaviour_mitre_trees"),
            format!("/sandscope/graph/{sha}"),
        ] {
            assert_eq!(second.answer(&path), embedded.answer(&path), "{path}");
        }
        let raw = format!("/file_behaviours/{}/evtx", id.replace(' ', "%20"));
        let (status, bytes) = second.get(&raw);
        assert_eq!(status, 200, "{raw}");
        assert!(!bytes.is_empty());
        assert_eq!((status, bytes), embedded.get(&raw), "{raw}");

        // `graph --store` prints what `graph` prints on the data directory.
        for format in ["json", "dot", "graphml"] {
            let on_postgres = sandscope(&["graph", "--store", &url, "--format", format, sha]);
            let embedded_graph = sandscope(&["graph", "--data", data, "--format", format, sha]);
            assert!(on_postgres.status.success(), "{:?}", text(&on_postgres));
            assert!(on_postgres.stdout.len() > 20, "{:?}", text(&on_postgres));
            assert_eq!(text(&on_postgres), text(&embedded_graph), "{format}");
        }
    }
    // Hunting on PostgreSQL: the uploads through one server raised the notifications the
    // embedded server raised, and every server lists them and the rulesets.
    let notified = |serve: &Serve| {
        let page = serve.json("/intelligence/hunting_notifications?limit=40");
        let mut all: Vec<[String; 4]> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let a = &n["attributes"];
                ["ruleset_name", "rule_name", "sha256", "snippet"]
                    .map(|k| a[k].as_str().unwrap().to_string())
            })
            .collect();
        all.sort();
        all
    };
    let on_postgres = notified(&second);
    assert_eq!(on_postgres, notified(&embedded));
    assert_eq!(on_postgres, notified(&first));
    let hits: Vec<(&str, &str)> = on_postgres
        .iter()
        .map(|[set, _, sha, _]| (set.as_str(), &sha[..]))
        .collect();
    assert_eq!(
        hits,
        [
            ("hosts", &report_ids[0][..64]),
            ("ransom", &report_ids[1][..64])
        ]
    );
    let rulesets = second.json("/intelligence/hunting_rulesets");
    assert_eq!(rulesets["data"].as_array().unwrap().len(), 2, "{rulesets}");
    let listed = sandscope(&["rulesets", "list", "--store", &url]);
    assert!(text(&listed).0.contains("ransom"), "{:?}", text(&listed));
}
