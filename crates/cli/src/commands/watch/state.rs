//! What a watcher has done with each run of its folder, kept across restarts in the data
//! directory (`DATA/watch/<digest of the watched folder>.json`), so that a restarted watcher
//! ingests nothing twice and reports a broken run once.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const STATE_DIR: &str = "watch";

/// What became of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Its reports are stored.
    Ingested,
    /// It could not be ingested; it is tried again only once its files change.
    Failed,
}

/// One run as the watcher last took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The digest of the run's report files (names, sizes, times), or of the file itself for a
    /// loose log: a run whose digest changes (a re-processed CAPE task) is taken again.
    pub fingerprint: String,
    pub outcome: Outcome,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A run folder's report files (relative to it) that `fingerprint` covers: a later scan
    /// looks at them alone to see that the run is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report_files: Vec<PathBuf>,
    /// The ids of the reports it gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    /// The watched folder, for whoever reads the file.
    dir: String,
    /// Run (its name in the watched folder) → what became of it.
    runs: BTreeMap<String, Remembered>,
}

/// The remembered runs of one watched folder, saved after every change.
#[derive(Debug)]
pub struct WatchState {
    file: PathBuf,
    state: StateFile,
}

impl WatchState {
    /// Load the state of `watched` (an absolute path) from `data`, or start an empty one.
    /// A state file that cannot be read is an error, never a silent fresh start (which would
    /// ingest every run again).
    pub fn load(data: &Path, watched: &Path) -> Result<WatchState> {
        let digest = Sha256::digest(watched.as_os_str().as_encoded_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let file = data.join(STATE_DIR).join(format!("{name}.json"));
        let state = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<StateFile>(&bytes) {
                Ok(state) => state,
                Err(e) => bail!(
                    "the watch state {} is damaged ({e}); move it away to ingest every run of \
                     {} again",
                    file.display(),
                    watched.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile {
                dir: watched.display().to_string(),
                runs: BTreeMap::new(),
            },
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the watch state {}", file.display()));
            }
        };
        Ok(WatchState { file, state })
    }

    /// Where the state is kept.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn get(&self, run: &str) -> Option<&Remembered> {
        self.state.runs.get(run)
    }

    pub fn len(&self) -> usize {
        self.state.runs.len()
    }

    /// Remember `run` and save at once (temporary file, then rename: a crash leaves the old
    /// state or the new one, never half of one).
    pub fn remember(&mut self, run: &str, remembered: Remembered) -> Result<()> {
        self.state.runs.insert(run.to_string(), remembered);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let temp = self
            .file
            .with_extension(format!("json.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(&self.state)?;
        let written = std::fs::File::create(&temp)
            .and_then(|mut out| out.write_all(&text).and_then(|()| out.sync_all()));
        written.with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &self.file)
            .with_context(|| format!("writing {}", self.file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_runs_survive_a_reload() {
        let data = tempfile::tempdir().unwrap();
        let watched = Path::new("/srv/cape/storage/analyses");
        let mut state = WatchState::load(data.path(), watched).unwrap();
        assert_eq!(state.len(), 0);
        let ingested = Remembered {
            fingerprint: "f1".into(),
            outcome: Outcome::Ingested,
            reason: None,
            report_files: vec!["reports/report.json".into()],
            reports: vec!["a_CAPE Sandbox".into()],
        };
        state.remember("17", ingested.clone()).unwrap();
        let again = WatchState::load(data.path(), watched).unwrap();
        assert_eq!(again.get("17"), Some(&ingested));
        assert_eq!(again.file(), state.file());
        // Another folder has its own state.
        let other = WatchState::load(data.path(), Path::new("/srv/drop")).unwrap();
        assert_eq!(other.len(), 0);
    }

    #[test]
    fn a_damaged_state_is_an_error_not_a_fresh_start() {
        let data = tempfile::tempdir().unwrap();
        let watched = Path::new("/srv/drop");
        let state = WatchState::load(data.path(), watched).unwrap();
        std::fs::create_dir_all(state.file().parent().unwrap()).unwrap();
        std::fs::write(state.file(), b"{\"dir\": \"/srv/drop\", \"runs\": {").unwrap();
        let err = WatchState::load(data.path(), watched).unwrap_err();
        assert!(err.to_string().contains("is damaged"), "{err}");
    }
}
