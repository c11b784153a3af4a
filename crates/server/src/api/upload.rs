//! `POST /sandscope/ingest`: a multipart upload streamed into a spool file under the size
//! limit, its form fields checked, then handed to the backend in one of the ingest slots.

use super::envelopes::{encode_component, json_response};
use super::extractors::truncate;
use super::{AppState, call};
use crate::auth::Role;
use crate::backend::{self, Upload};
use crate::error::ApiError;
use crate::{ServerConfig, spool};
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Read a short text form field, refusing anything over `max` bytes without buffering it.
async fn small_field(field: &mut Field<'_>, max: usize) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::invalid_argument(format!(
                "form field {name:?} too long"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| ApiError::invalid_argument(format!("form field {name:?} is not UTF-8")))
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            error.body_text(),
        )
    } else {
        ApiError::bad_request(format!("malformed upload: {}", error.body_text()))
    }
}

/// One path component of a client's name: `[A-Za-z0-9._ -]`, at most 128 characters, no
/// leading dot (so never `.` or `..`); empty when nothing is left.
fn clean_component(component: &str) -> String {
    let cleaned: String = component
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-'))
        .take(128)
        .collect();
    cleaned.trim().trim_start_matches('.').to_string()
}

/// The client's file name reduced to what [`Upload::original_name`] promises: the last path
/// component only, `[A-Za-z0-9._ -]`, at most 128 characters.
fn upload_name(client_name: Option<&str>) -> String {
    let last = client_name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned = clean_component(last);
    if cleaned.is_empty() {
        "upload".to_string()
    } else {
        cleaned
    }
}

/// Where a file of a multi-file upload goes inside its run folder: the client's relative name
/// (`reports/report.json`, `evtx/evtx.zip`, `files.json`), each component cleaned as
/// [`clean_component`] does, empty ones (`..`, `.`) dropped, at most
/// [`MAX_RUN_PATH_DEPTH`] kept from the end. Never absolute and never leaves the folder.
fn run_relative_path(client_name: Option<&str>) -> PathBuf {
    let components: Vec<String> = client_name
        .unwrap_or_default()
        .split(['/', '\\'])
        .map(clean_component)
        .filter(|c| !c.is_empty())
        .collect();
    let keep = components.len().saturating_sub(MAX_RUN_PATH_DEPTH);
    let path: PathBuf = components[keep..].iter().collect();
    if path.as_os_str().is_empty() {
        PathBuf::from("upload")
    } else {
        path
    }
}

/// Files one upload may carry (a sandbox run: its report, its logs, `files.json`).
const MAX_FILES_PER_UPLOAD: usize = 64;
/// Folder depth kept of a run file's relative name (`analysis/reports/report.json`).
const MAX_RUN_PATH_DEPTH: usize = 4;

/// The upload's extension (e.g. `.evtx`, `.gz`), kept on the spool file for readers that
/// look at it; only short alphanumeric extensions are kept.
fn spool_suffix(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, ext))
            if !ext.is_empty()
                && ext.len() <= 8
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    role: Option<axum::Extension<Role>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    if role.map(|axum::Extension(r)| r) != Some(Role::Ingest) {
        return Err(ApiError::forbidden("this API key may read but not ingest"));
    }
    if !state.backend.accepts_ingest() {
        return Err(ApiError::read_only());
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
    })?;

    let limit = state.config.upload_limit;
    let mut spooled = SpooledFiles::default();
    let mut sha256: Option<String> = None;
    let mut sandbox: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if spooled.count() >= MAX_FILES_PER_UPLOAD {
                    return Err(ApiError::invalid_argument(format!(
                        "at most {MAX_FILES_PER_UPLOAD} files per upload"
                    )));
                }
                let name = upload_name(field.file_name());
                let relative = run_relative_path(field.file_name());
                let spool = spool_file(&state, &spool_suffix(&name))?;
                let budget = limit.saturating_sub(spooled.bytes);
                let written = spool_field(&mut field, &spool, budget, limit).await?;
                spooled.bytes += written;
                spooled.add(&state, spool, name, relative)?;
            }
            "sha256" => {
                let value = small_field(&mut field, 128).await?.to_ascii_lowercase();
                if value.is_empty() {
                    continue;
                }
                if !sandscope_model::is_sha256(&value) {
                    return Err(ApiError::invalid_argument("sha256 must be 64 hex digits"));
                }
                sha256 = Some(value);
            }
            "sandbox" => {
                let value = small_field(&mut field, 256).await?;
                if value.is_empty() {
                    continue;
                }
                if !backend::is_sandbox_name(&value) {
                    return Err(ApiError::invalid_argument(
                        "sandbox must be 1 to 64 printable characters",
                    ));
                }
                sandbox = Some(value);
            }
            other => {
                return Err(ApiError::invalid_argument(format!(
                    "unknown form field {:?} (expected file, sha256, sandbox)",
                    truncate(other)
                )));
            }
        }
    }
    let (path, original_name, spool) = spooled.into_upload()?;

    let _slot = state
        .ingest_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::transient("server shutting down"))?;
    let upload = Upload {
        path,
        original_name,
        sha256,
        sandbox,
    };
    let outcome = call(&state, move |b| b.ingest(&upload)).await?;
    drop(spool);

    let data: Vec<Value> = outcome
        .report_ids
        .iter()
        .map(|id| {
            json!({
                "type": "file_behaviour",
                "id": id,
                "links": { "self": state.link(&format!("/file_behaviours/{}", encode_component(id))) }
            })
        })
        .collect();
    let mut meta = json!({ "warnings": outcome.warnings });
    if let (Some(job), Some(object)) = (&outcome.job_id, meta.as_object_mut()) {
        object.insert("job_id".to_string(), json!(job));
        object.insert(
            "job".to_string(),
            json!(state.link(&format!("/sandscope/jobs/{}", encode_component(job)))),
        );
    }
    Ok(json_response(json!({ "data": data, "meta": meta })))
}

/// Stream one file field into `spool`, refusing past `budget` bytes (what is left of the
/// upload's `limit` after its earlier files) and refusing an empty file.
async fn spool_field(
    field: &mut Field<'_>,
    spool: &tempfile::NamedTempFile,
    budget: u64,
    limit: u64,
) -> Result<u64, ApiError> {
    let std_file = spool.as_file().try_clone().map_err(|e| {
        eprintln!("sandscope-server: spool file: {e}");
        ApiError::internal()
    })?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut written: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        written = written.saturating_add(chunk.len() as u64);
        if written > budget {
            return Err(ApiError::payload_too_large(limit));
        }
        file.write_all(&chunk).await.map_err(|e| {
            eprintln!("sandscope-server: spool write: {e}");
            ApiError::transient("could not store the upload")
        })?;
    }
    file.flush()
        .await
        .map_err(|_| ApiError::transient("could not store the upload"))?;
    if written == 0 {
        return Err(ApiError::invalid_argument("the uploaded file is empty"));
    }
    Ok(written)
}

/// The files of one upload as they arrive: one file stays a spool file; a second one turns the
/// upload into a run folder (a temporary folder in the spool) holding every file under its
/// relative name.
#[derive(Default)]
struct SpooledFiles {
    first: Option<(tempfile::NamedTempFile, String, PathBuf)>,
    run: Option<(tempfile::TempDir, Vec<PathBuf>)>,
    bytes: u64,
}

/// What must live until the backend has read the upload: a spool file or a run folder.
enum SpoolGuard {
    File { _file: tempfile::NamedTempFile },
    Run { _folder: tempfile::TempDir },
}

impl SpooledFiles {
    fn count(&self) -> usize {
        match &self.run {
            Some((_, files)) => files.len(),
            None => usize::from(self.first.is_some()),
        }
    }

    fn add(
        &mut self,
        state: &AppState,
        spool: tempfile::NamedTempFile,
        name: String,
        relative: PathBuf,
    ) -> Result<(), ApiError> {
        if self.first.is_none() && self.run.is_none() {
            self.first = Some((spool, name, relative));
            return Ok(());
        }
        if self.run.is_none() {
            let dir = spool_run_folder(state)?;
            self.run = Some((dir, Vec::new()));
            if let Some((first, _, first_relative)) = self.first.take() {
                self.place(first, first_relative)?;
            }
        }
        self.place(spool, relative)
    }

    /// Move a spooled file into the run folder under `relative` (a cleaned relative path).
    fn place(&mut self, spool: tempfile::NamedTempFile, relative: PathBuf) -> Result<(), ApiError> {
        let Some((dir, files)) = &mut self.run else {
            return Err(ApiError::internal());
        };
        if files.contains(&relative) {
            return Err(ApiError::invalid_argument(format!(
                "two files of the upload are named {:?}",
                relative.display().to_string()
            )));
        }
        let target = dir.path().join(&relative);
        let stored = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                spool
                    .persist_noclobber(&target)
                    .map(drop)
                    .map_err(|e| e.error)
            });
        stored.map_err(|e| {
            eprintln!("sandscope-server: spool run folder: {e}");
            ApiError::transient("could not store the upload")
        })?;
        files.push(relative);
        Ok(())
    }

    /// The path and name the backend gets, and what keeps the files alive until it is done.
    fn into_upload(self) -> Result<(PathBuf, String, SpoolGuard), ApiError> {
        match (self.run, self.first) {
            (Some((dir, _)), _) => Ok((
                dir.path().to_path_buf(),
                "run".to_string(),
                SpoolGuard::Run { _folder: dir },
            )),
            (None, Some((spool, name, _))) => Ok((
                spool.path().to_path_buf(),
                name,
                SpoolGuard::File { _file: spool },
            )),
            (None, None) => Err(ApiError::invalid_argument("no file field in the upload")),
        }
    }
}

fn spool_run_folder(state: &AppState) -> Result<tempfile::TempDir, ApiError> {
    let base = spool_base(&state.config);
    spool::create_folder(&base).map_err(|e| {
        eprintln!(
            "sandscope-server: cannot create an upload run folder in {}: {e}",
            spool::folder(&base).display()
        );
        ApiError::transient("could not store the upload")
    })
}

fn spool_file(state: &AppState, suffix: &str) -> Result<tempfile::NamedTempFile, ApiError> {
    let base = spool_base(&state.config);
    spool::create(&base, suffix).map_err(|e| {
        eprintln!(
            "sandscope-server: cannot create an upload spool file in {}: {e}",
            spool::folder(&base).display()
        );
        ApiError::transient("could not store the upload")
    })
}

/// The directory holding this server's spool folder.
pub(super) fn spool_base(config: &ServerConfig) -> PathBuf {
    config.upload_dir.clone().unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_lose_paths_and_odd_characters() {
        assert_eq!(upload_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(upload_name(Some("C:\\logs\\run 1.evtx")), "run 1.evtx");
        assert_eq!(upload_name(Some("..")), "upload");
        assert_eq!(upload_name(Some("<script>.evtx")), "script.evtx");
        assert_eq!(upload_name(None), "upload");
        assert_eq!(spool_suffix("a.EVTX"), ".evtx");
        assert_eq!(spool_suffix("a.ev/tx"), "");
        assert_eq!(spool_suffix("noext"), "");
    }

    #[test]
    fn run_paths_stay_inside_the_run_folder() {
        let path = |name: &str| run_relative_path(Some(name));
        assert_eq!(
            path("reports/report.json"),
            PathBuf::from("reports/report.json")
        );
        assert_eq!(path("../../etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(path("/abs/evtx\\x.evtx"), PathBuf::from("abs/evtx/x.evtx"));
        assert_eq!(path("a/b/c/d/e/f.json"), PathBuf::from("c/d/e/f.json"));
        assert_eq!(path(".."), PathBuf::from("upload"));
        assert_eq!(path("./.hidden/<x>.json"), PathBuf::from("hidden/x.json"));
        assert!(path("..\\..\\x").is_relative());
    }
}
