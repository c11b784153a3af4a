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

/// The client's file name reduced to what [`Upload::original_name`] promises: the last path
/// component only, `[A-Za-z0-9._ -]`, at most 128 characters.
fn upload_name(client_name: Option<&str>) -> String {
    let last = client_name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-'))
        .take(128)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "upload".to_string()
    } else {
        cleaned
    }
}

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
    let mut spooled: Option<(tempfile::NamedTempFile, String)> = None;
    let mut sha256: Option<String> = None;
    let mut sandbox: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if spooled.is_some() {
                    return Err(ApiError::invalid_argument("only one file per upload"));
                }
                let name = upload_name(field.file_name());
                let spool = spool_file(&state, &spool_suffix(&name))?;
                let std_file = spool.as_file().try_clone().map_err(|e| {
                    eprintln!("sandscope-server: spool file: {e}");
                    ApiError::internal()
                })?;
                let mut file = tokio::fs::File::from_std(std_file);
                let mut written: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    written = written.saturating_add(chunk.len() as u64);
                    if written > limit {
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
                spooled = Some((spool, name));
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
    let Some((spool, original_name)) = spooled else {
        return Err(ApiError::invalid_argument("no file field in the upload"));
    };

    let _slot = state
        .ingest_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::transient("server shutting down"))?;
    let upload = Upload {
        path: spool.path().to_path_buf(),
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
    Ok(json_response(json!({
        "data": data,
        "meta": { "warnings": outcome.warnings }
    })))
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
}
