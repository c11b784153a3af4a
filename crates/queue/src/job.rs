//! What travels through the queue: a job's manifest and its status.

use serde::{Deserialize, Serialize};

/// One detonation to build, as published on the stream. Its files are in the object store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// `ingest --sha256`: all inputs are one detonation of this sample.
    pub sha256: Option<String>,
    /// `ingest --sample`.
    pub sample: Option<String>,
    /// `ingest --sandbox`.
    pub sandbox: Option<String>,
    /// The inputs, as `ingest` was given them (a file or a folder each).
    pub inputs: Vec<JobInput>,
}

/// One input of a job: a file, or a folder (a CAPE run folder) with the files under it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobInput {
    /// The file's or folder's own name (no directories).
    pub name: String,
    pub is_dir: bool,
    /// For a file, one entry with an empty `path`; for a folder, its files.
    pub files: Vec<JobFile>,
}

/// One file of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobFile {
    /// `/`-separated path under the input folder; empty for an input that is a file.
    pub path: String,
    /// The object holding its bytes in the files bucket.
    pub object: String,
    pub size: u64,
}

impl Job {
    /// Check what a worker is about to write to its disk: names that stay inside the job's
    /// folder, and the bounds the publisher kept.
    pub fn validate(&self) -> Result<(), String> {
        let files: usize = self.inputs.iter().map(|i| i.files.len()).sum();
        if files == 0 {
            return Err("has no files".into());
        }
        if files > crate::MAX_JOB_FILES {
            return Err(format!(
                "has {files} files (at most {})",
                crate::MAX_JOB_FILES
            ));
        }
        let bytes: u64 = self
            .inputs
            .iter()
            .flat_map(|i| &i.files)
            .map(|f| f.size)
            .sum();
        if bytes > crate::MAX_JOB_BYTES {
            return Err(format!(
                "carries {bytes} bytes (at most {})",
                crate::MAX_JOB_BYTES
            ));
        }
        for input in &self.inputs {
            if !is_plain_name(&input.name) {
                return Err(format!(
                    "input name `{}` is not a plain file name",
                    input.name
                ));
            }
            for file in &input.files {
                let fine = if input.is_dir {
                    file.path.split('/').all(is_plain_name)
                } else {
                    file.path.is_empty()
                };
                if !fine {
                    return Err(format!("file path `{}` leaves its folder", file.path));
                }
            }
        }
        Ok(())
    }
}

/// A single path component that cannot climb out of, or escape, the folder it is joined to.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with(|c: char| c.is_ascii_alphabetic() && name.get(1..2) == Some(":"))
}

/// Where a job is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    /// Built and stored: `reports` holds the report ids.
    Done,
    /// Its input yields no report (nothing readable): `reason` says why; not retried.
    Failed,
    /// Delivered [`crate::MAX_DELIVERIES`] times without success (panic, timeout, error or a
    /// worker that died): `reason` says the last failure; never retried.
    Parked,
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Parked => "parked",
        })
    }
}

/// A job's status, as kept in the status bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobStatus {
    pub id: String,
    pub state: JobState,
    /// The stored report ids (done).
    #[serde(default)]
    pub reports: Vec<String>,
    /// Why it failed or was parked, or the last failed attempt's reason while it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Deliveries so far.
    #[serde(default)]
    pub deliveries: u32,
    /// The worker that last took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Seconds since the Unix epoch of the last change.
    pub updated: u64,
}

impl JobStatus {
    pub fn new(id: &str, state: JobState) -> JobStatus {
        JobStatus {
            id: id.to_owned(),
            state,
            reports: Vec::new(),
            reason: None,
            deliveries: 0,
            worker: None,
            updated: now(),
        }
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, is_dir: bool, path: &str) -> Job {
        Job {
            id: "j".into(),
            sha256: None,
            sample: None,
            sandbox: None,
            inputs: vec![JobInput {
                name: name.into(),
                is_dir,
                files: vec![JobFile {
                    path: path.into(),
                    object: "o".into(),
                    size: 1,
                }],
            }],
        }
    }

    #[test]
    fn paths_that_leave_the_job_folder_are_refused() {
        assert!(job("run", true, "logs/sysmon.evtx").validate().is_ok());
        assert!(job("a.evtx", false, "").validate().is_ok());
        assert!(job("..", false, "").validate().is_err());
        assert!(job("run", true, "../x").validate().is_err());
        assert!(job("run", true, "/etc/passwd").validate().is_err());
        assert!(job("a/b", false, "").validate().is_err());
        assert!(job("a.evtx", false, "x").validate().is_err());
        assert!(job("C:", false, "").validate().is_err());
    }
}
