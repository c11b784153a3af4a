//! `--store postgres://…` end to end on a real PostgreSQL: `db init`, `ingest`, `search` and
//! `show` through the binary, and each way of failing to reach the store says PostgreSQL and
//! what to do.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;

use postgres_server::TestPostgres;
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
    let pg = TestPostgres::start();
    let url = pg.url();
    let out = sandscope(&["db", "init", "--store", &url]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("created the Sandscope schema"));
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
