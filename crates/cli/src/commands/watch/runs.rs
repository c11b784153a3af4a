//! The runs of a watched folder and what the watcher compares between two scans.
//!
//! Each entry of the watched folder is one run: a folder is a run folder (CAPE's
//! `storage/analyses/<id>/`, or any folder holding a sandbox report under `reports/`), a file
//! is one log or report on its own. Hidden entries and symbolic links are passed over (CAPE's
//! `analyses/latest` links to a run that is listed under its own name anyway).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// One entry of the watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Its name in the watched folder: the key of the watch state.
    pub name: String,
    pub path: PathBuf,
    pub is_folder: bool,
}

/// The runs of `dir`, sorted by name.
pub fn list(dir: &Path) -> std::io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() || kind.is_file() {
            runs.push(Run {
                name,
                path: entry.path(),
                is_folder: kind.is_dir(),
            });
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(runs)
}

/// A run's files with their sizes and modification times, as one scan saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    files: Vec<(PathBuf, u64, u128)>,
}

impl Snapshot {
    /// The files of `run` (a folder walked as ingest walks it).
    pub fn take(run: &Run) -> std::io::Result<Snapshot> {
        Snapshot::of_files(sandscope_read::walk(&run.path)?)
    }

    /// These files alone (a run's reports, to see whether a run taken already has changed
    /// without walking it).
    pub fn of_files(paths: impl IntoIterator<Item = PathBuf>) -> std::io::Result<Snapshot> {
        let mut files = Vec::new();
        for file in paths {
            let meta = std::fs::metadata(&file)?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            files.push((file, meta.len(), modified));
        }
        Ok(Snapshot { files })
    }

    /// The sandbox reports a run folder is waiting for: the JSON files (plain, gzip or zip)
    /// in a `reports` folder, where CAPE and Cuckoo write `report.json` and `lite.json` (last,
    /// after the logs). Recognised by place and name, not content, so a report whose first
    /// bytes are still being written counts already.
    pub fn reports(&self) -> Vec<&Path> {
        self.files
            .iter()
            .map(|(file, _, _)| file.as_path())
            .filter(|file| is_report_place(file))
            .collect()
    }

    /// A digest of the files (`only`: of these files alone), their sizes and times.
    pub fn fingerprint(&self, only: Option<&[&Path]>) -> String {
        let mut hasher = Sha256::new();
        for (file, size, modified) in &self.files {
            if only.is_some_and(|only| !only.contains(&file.as_path())) {
                continue;
            }
            hasher.update(file.as_os_str().as_encoded_bytes());
            hasher.update([0]);
            hasher.update(size.to_le_bytes());
            hasher.update(modified.to_le_bytes());
        }
        hasher
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn is_report_place(file: &Path) -> bool {
    let in_reports = sandscope_ingest::analysis_folder(file).is_some();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    in_reports && name.contains(".json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_folders_and_files_never_hidden_entries_or_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("17/reports")).unwrap();
        std::fs::write(dir.path().join("17/reports/report.json"), "{}").unwrap();
        std::fs::write(dir.path().join("17/reports/report.html"), "<p>").unwrap();
        std::fs::write(dir.path().join("loose.evtx"), "x").unwrap();
        std::fs::write(dir.path().join(".partial"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("17"), dir.path().join("latest")).unwrap();
        let runs = list(dir.path()).unwrap();
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["17", "loose.evtx"]);
        assert!(runs[0].is_folder && !runs[1].is_folder);

        let snapshot = Snapshot::take(&runs[0]).unwrap();
        assert_eq!(
            snapshot.reports(),
            [dir.path().join("17/reports/report.json").as_path()]
        );
        let before = snapshot.fingerprint(None);
        std::fs::write(dir.path().join("17/reports/report.html"), "<p>more").unwrap();
        let after = Snapshot::take(&runs[0]).unwrap();
        assert_ne!(after.fingerprint(None), before);
        // The reports' own digest ignores the other files.
        assert_eq!(
            after.fingerprint(Some(&after.reports())),
            snapshot.fingerprint(Some(&snapshot.reports()))
        );
    }
}
