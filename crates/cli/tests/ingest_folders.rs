//! `sandscope ingest DIR`: files of a walked folder that are no log or report format at all
//! (licences, READMEs, scripts) are passed over in one line; a file named on the command line
//! that is not a log still fails.

use std::path::Path;
use std::process::Command;

fn seed(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/seed")
        .join(file)
}

#[test]
fn a_folders_non_logs_are_passed_over_and_a_named_non_log_fails() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("drop");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(
        seed("ransomware_tutanota_sysmon.xml"),
        folder.join("run.xml"),
    )
    .unwrap();
    std::fs::write(folder.join("LICENSE"), "Permission is hereby granted…\n").unwrap();
    std::fs::write(folder.join("notes.md"), "# what we saw\n").unwrap();
    let data = dir.path().join("data");
    let ingest = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_sandscope"))
            .args(["ingest", "--no-sigma", "--data"])
            .arg(&data)
            .arg(path)
            .output()
            .unwrap()
    };

    let out = ingest(&folder);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("info: passed over 2 file(s) of the folders given that are neither logs nor sandbox reports"),
        "{stderr}"
    );
    assert!(
        stderr.contains("LICENSE") && stderr.contains("notes.md"),
        "{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("skipped")),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 report(s) stored, 0 file(s) skipped"),
        "{stderr}"
    );

    let out = ingest(&folder.join("notes.md"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a Sysmon event log"), "{stderr}");
}
