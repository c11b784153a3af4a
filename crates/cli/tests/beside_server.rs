//! One data directory, several processes (issue 13): while `sandscope serve` holds a data
//! directory, the read commands and `ingest` go through it and print what they print on their
//! own; what cannot run beside it (a second `serve`, an ingest with other Sigma rules) is
//! refused with one sentence naming the server; a server killed with `kill -9` leaves nothing
//! that stops the next command.

mod support;

use support::{Server, sandscope};

use std::path::{Path, PathBuf};

const RANSOM: &str = "8c18288195245660d3836693ec97509d43df8e25d52ff3858b9778aa2c4725e1";
const MINER: &str = "7a550b8a17983af622f31270ebe566b1834c28c2a2ea2b6b0ed819c95d8e534d";
const SYSMON: &str = "Microsoft Sysinternals";

fn seed(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed")
        .join(file)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn search_ids(data: &str, query: &str) -> Vec<String> {
    let out = sandscope(&["search", "--data", data, "--format", "json", query]);
    assert!(out.status.success(), "search: {}", text(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).expect("search JSON");
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|hit| hit["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn read_commands_and_ingest_work_while_a_server_holds_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("UTF-8 path");
    let ransom = seed("ransomware_tutanota_sysmon.xml");
    let out = sandscope(&[
        "ingest",
        "--data",
        data,
        "--no-sigma",
        ransom.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "ingest: {}", text(&out.stderr));

    // What the read commands print without a server, to compare with what they print beside it.
    let alone_show = sandscope(&["show", "--data", data, RANSOM]);
    assert!(alone_show.status.success());
    let alone_pivot = sandscope(&["pivot", "--data", data, RANSOM]);
    let alone_graph = sandscope(&["graph", "--data", data, "--format", "dot", RANSOM]);

    let (mut server, url) = Server::start(data);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let owner = std::fs::read_to_string(dir.path().join("data/run/owner.json"))
        .expect("the server leaves an owner record");
    assert!(
        owner.contains(&format!("\"pid\":{}", server.pid())),
        "{owner}"
    );
    let mode = std::fs::metadata(dir.path().join("data/run")).expect("run dir");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o700,
        "only the owner may reach the control socket"
    );

    assert_eq!(search_ids(data, "behaviour_files:@tutanota.com"), [RANSOM]);
    let show = sandscope(&["show", "--data", data, RANSOM]);
    assert!(show.status.success(), "show: {}", text(&show.stderr));
    assert_eq!(text(&show.stdout), text(&alone_show.stdout));
    let pivot = sandscope(&["pivot", "--data", data, RANSOM]);
    assert_eq!(text(&pivot.stdout), text(&alone_pivot.stdout));
    let graph = sandscope(&["graph", "--data", data, "--format", "dot", RANSOM]);
    assert_eq!(text(&graph.stdout), text(&alone_graph.stdout));
    let unknown = sandscope(&["show", "--data", data, MINER]);
    assert_eq!(
        unknown.status.code(),
        Some(1),
        "an error keeps its exit code"
    );
    assert!(
        text(&unknown.stderr).contains("no reports of sample"),
        "{}",
        text(&unknown.stderr)
    );

    // Ingest goes through the server (with the server's own Sigma setting) …
    let miner = seed("coinminer_sihost32_sysmon.xml");
    let ingest = sandscope(&["ingest", "--data", data, miner.to_str().expect("path")]);
    assert!(ingest.status.success(), "ingest: {}", text(&ingest.stderr));
    assert!(text(&ingest.stdout).contains(&format!("stored\t{MINER}_{SYSMON}")));
    assert_eq!(search_ids(data, "behaviour_network:supportxmr"), [MINER]);
    // … and so does a diff of two stored reports.
    let left = format!("{RANSOM}_{SYSMON}");
    let right = format!("{MINER}_{SYSMON}");
    let diff = sandscope(&["diff", "--data", data, &left, &right]);
    assert!(diff.status.success(), "diff: {}", text(&diff.stderr));
    assert!(text(&diff.stdout).contains("tutanota"));

    // What cannot run beside it says who holds the directory, once, in plain words.
    let second = sandscope(&["serve", "--data", data, "--listen", "127.0.0.1:0"]);
    assert_eq!(second.status.code(), Some(1));
    let message = text(&second.stderr);
    assert!(
        message.contains(&format!(
            "is held by `sandscope serve` (pid {}",
            server.pid()
        )),
        "{message}"
    );
    assert!(message.contains(&url), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    let rules = sandscope(&[
        "ingest",
        "--data",
        data,
        "--no-sigma",
        ransom.to_str().expect("path"),
    ]);
    assert_eq!(rules.status.code(), Some(1));
    assert!(
        text(&rules.stderr).contains("ingests with the Sigma rules it was started with"),
        "{}",
        text(&rules.stderr)
    );

    // Ctrl-C: the server removes its record and socket; the CLI opens the store itself.
    server.signal("-INT");
    assert!(!dir.path().join("data/run/owner.json").exists());
    assert!(!dir.path().join("data/run/control.sock").exists());
    assert_eq!(search_ids(data, "behaviour_network:supportxmr"), [MINER]);

    // kill -9 leaves a record of a dead process behind: nothing is blocked by it.
    let (mut server, _) = Server::start(data);
    server.signal("-KILL");
    assert!(dir.path().join("data/run/owner.json").exists());
    assert_eq!(search_ids(data, "behaviour_files:@tutanota.com"), [RANSOM]);
    let (_server, _) = Server::start(data);
    assert_eq!(search_ids(data, "behaviour_files:@tutanota.com"), [RANSOM]);
}

#[test]
fn a_directory_path_too_long_for_a_unix_socket_still_gets_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let long = dir.path().join("d".repeat(120));
    let data = long.to_str().expect("UTF-8 path");
    let (server, _) = Server::start(data);
    let owner = std::fs::read_to_string(long.join("run/owner.json")).expect("owner record");
    let record: serde_json::Value = serde_json::from_str(&owner).expect("owner JSON");
    let socket = record["socket"].as_str().expect("socket path");
    assert!(socket.len() < 108, "{socket}");
    assert!(search_ids(data, "behaviour_files:@tutanota.com").is_empty());
    drop(server);
}

#[test]
fn a_bad_certificate_is_refused_before_anything_is_ingested() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").expect("write");
    let out = sandscope(&[
        "serve",
        "--data",
        data.to_str().expect("path"),
        "--listen",
        "127.0.0.1:0",
        "--no-sigma",
        "--tls-cert",
        cert.to_str().expect("path"),
        "--tls-key",
        cert.to_str().expect("path"),
        "--ingest",
        seed("ransomware_tutanota_sysmon.xml")
            .to_str()
            .expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let message = text(&out.stderr);
    assert!(message.contains("TLS certificate"), "{message}");
    assert!(message.contains("cert.pem"), "{message}");
    // Refused before the ingest: the directory holds no report.
    assert!(
        search_ids(
            data.to_str().expect("path"),
            "behaviour_files:@tutanota.com"
        )
        .is_empty()
    );
}
