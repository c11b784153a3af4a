//! `sandscope search` refuses values with no letters or digits and queries over the parser's
//! limits, and stops a hostile query at its `--budget` or `--timeout`, saying which.

mod support;

use support::sandscope;

use std::path::Path;
use std::time::{Duration, Instant};

const RANSOM: &str = "8c18288195245660d3836693ec97509d43df8e25d52ff3858b9778aa2c4725e1";

/// A data directory holding the seed's ransomware log.
fn seeded() -> tempfile::TempDir {
    let log = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed/ransomware_tutanota_sysmon.xml");
    let dir = tempfile::tempdir().unwrap();
    let out = sandscope(&[
        "ingest",
        "--data",
        dir.path().to_str().unwrap(),
        "--sha256",
        RANSOM,
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Run a search that must fail; its standard error.
fn failing_search(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["search", "--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = sandscope(&all);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?} printed results");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn values_without_letters_or_digits_are_refused_naming_the_column() {
    let data = seeded();
    for (query, message) in [
        (
            "behaviour:💣",
            "column 11: `behaviour:` value has no letters or digits",
        ),
        (
            "behaviour:\u{1}",
            "column 11: `behaviour:` value has no letters or digits",
        ),
        ("-", "column 1: the search term has no letters or digits"),
        (
            "behaviour_files:@tutanota.com -",
            "column 31: the search term has no letters or digits",
        ),
    ] {
        let stderr = failing_search(data.path(), &[query]);
        assert!(stderr.contains(message), "{query:?}: {stderr}");
    }
    let stderr = failing_search(data.path(), &[&vec!["a"; 65].join(" ")]);
    assert!(
        stderr.contains("column 129: query has more than 64 terms (the limit)"),
        "{stderr}"
    );
}

#[test]
fn hostile_queries_stop_at_the_budget_or_timeout() {
    let data = seeded();
    // The costliest query the parser lets through: 64 terms of 16 wildcards around a letter.
    let hostile = (0..64u8)
        .map(|i| {
            format!(
                "behaviour:{}",
                format!("*{}", char::from(b'a' + i % 26)).repeat(16)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let started = Instant::now();
    let stderr = failing_search(data.path(), &["--budget", "100", &hostile]);
    assert!(
        stderr.contains(
            "the search examined more than 100 candidates and positions (its work budget)"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let stderr = failing_search(data.path(), &["--timeout", "0.000001", &hostile]);
    assert!(stderr.contains("the search ran out of time"), "{stderr}");
    let stderr = failing_search(data.path(), &["--timeout", "0", "behaviour:x"]);
    assert!(
        stderr.contains("not a positive number of seconds: 0"),
        "{stderr}"
    );
    // The seed query runs within the defaults and within a small budget.
    for extra in [&[][..], &["--budget", "200000"][..]] {
        let mut args = vec!["search", "--data", data.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push("behaviour_files:@tutanota.com");
        let out = sandscope(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(RANSOM));
    }
}
