//! Where uploads wait on disk while they are ingested.
//!
//! Each server process spools into its own folder, `sandscope-spool-<pid>` under the upload
//! directory (the system temporary directory by default). A spool file is deleted when its
//! request ends, whichever way it ends; a server killed mid-upload leaves its folder behind,
//! and the next server to start deletes every such folder whose process is gone. Folders of
//! live processes (another server sharing the directory) are left alone.

use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "sandscope-spool-";

/// This process's spool folder under `base`.
pub(crate) fn folder(base: &Path) -> PathBuf {
    base.join(format!("{PREFIX}{}", std::process::id()))
}

/// A new spool file in this process's folder (created on first use), deleted when dropped.
pub(crate) fn create(base: &Path, suffix: &str) -> io::Result<tempfile::NamedTempFile> {
    let dir = folder(base);
    std::fs::create_dir_all(&dir)?;
    tempfile::Builder::new()
        .prefix("upload-")
        .suffix(suffix)
        .tempfile_in(&dir)
}

/// A new spool folder in this process's folder (for the files of one multi-file upload),
/// deleted with its contents when dropped.
pub(crate) fn create_folder(base: &Path) -> io::Result<tempfile::TempDir> {
    let dir = folder(base);
    std::fs::create_dir_all(&dir)?;
    tempfile::Builder::new().prefix("run-").tempdir_in(&dir)
}

/// Delete the spool folders under `base` left by server processes that no longer run.
/// Returns how many were removed.
pub(crate) fn remove_leftovers(base: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(base)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) || !entry.file_type()?.is_dir() {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Whether a process with this id exists (Linux `/proc`; elsewhere every process counts as
/// alive, so nothing is deleted by mistake).
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_processes_go_and_live_ones_stay() {
        let base = tempfile::tempdir().unwrap();
        // A process id above the kernel's maximum (4194304) never runs.
        let dead = base.path().join(format!("{PREFIX}4999999"));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("upload-x.evtx"), b"left behind").unwrap();
        let live = base.path().join(format!("{PREFIX}1"));
        std::fs::create_dir_all(&live).unwrap();
        let own = create(base.path(), ".gz").unwrap();
        let unrelated = base.path().join("sandscope-spool-notapid");
        std::fs::create_dir_all(&unrelated).unwrap();

        assert_eq!(remove_leftovers(base.path()).unwrap(), 1);
        assert!(!dead.exists());
        assert!(live.exists(), "pid 1 runs");
        assert!(own.path().exists(), "this process's own spool stays");
        assert!(unrelated.exists());
        let path = own.path().to_path_buf();
        drop(own);
        assert!(!path.exists());
    }
}
