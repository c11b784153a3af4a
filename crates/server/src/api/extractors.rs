//! What a request's path and query string may hold: ids, paging, order and flags, each checked
//! before any backend call, with VirusTotal's error codes for what fails.

use crate::backend::{self, DEFAULT_LIMIT, MAX_LIMIT, Order, PageRequest};
use crate::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use std::collections::HashMap;

/// Longest accepted cursor, to keep hostile requests cheap.
const MAX_CURSOR_LEN: usize = 1024;

pub(super) type Params = HashMap<String, String>;

pub(super) fn params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))
}

/// A sample id from the path (MD5, SHA-1 or SHA-256), lower-cased; anything else is a 404.
pub(crate) fn sample_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("File not found"));
    };
    if backend::is_sample_id(&id) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(file_not_found(&truncate(&id)))
    }
}

/// A report id `<sha256>_<sandbox name>` from the path, its SHA-256 lower-cased; anything
/// else is a 404.
pub(super) fn behaviour_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("File behaviour not found"));
    };
    match sandscope_model::split_behaviour_id(&id) {
        Some((sha256, sandbox)) if backend::is_behaviour_id(&id) => {
            Ok(format!("{}_{sandbox}", sha256.to_ascii_lowercase()))
        }
        _ => Err(behaviour_not_found(&truncate(&id))),
    }
}

/// The 404 of an unknown sample.
pub(crate) fn file_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("File {id:?} not found"))
}

/// The 404 of an unknown report.
pub(super) fn behaviour_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("File behaviour {id:?} not found"))
}

/// Echo at most 100 characters of a rejected value back in an error message.
pub(super) fn truncate(value: &str) -> String {
    value.chars().take(100).collect()
}

pub(super) fn page_request(params: &Params) -> Result<PageRequest, ApiError> {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_argument(format!(
                    "limit must be an integer from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let cursor = match params.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(c) if c.len() > MAX_CURSOR_LEN => {
            return Err(ApiError::invalid_argument("cursor too long"));
        }
        Some(c) => Some(c.to_string()),
    };
    Ok(PageRequest { limit, cursor })
}

/// `order=<field>[+|-]` (a bare field or `+` ascending, `-` descending); none is the default
/// order, newest first.
pub(super) fn parse_order(text: &str) -> Result<Order, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Order::default());
    }
    Order::parse(text)
        .map_err(|_| ApiError::invalid_argument(format!("invalid order {:?}", truncate(text))))
}

pub(super) fn parse_bool(name: &str, text: Option<&String>) -> Result<bool, ApiError> {
    match text.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::invalid_argument(format!(
            "{name} must be true or false"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders() {
        assert_eq!(
            parse_order("first_submission_date-").unwrap(),
            Order::FirstSeenDesc
        );
        assert_eq!(
            parse_order(" last_submission_date ").unwrap(),
            Order::LastSeenAsc
        );
        assert_eq!(parse_order("").unwrap(), Order::default());
        assert!(parse_order("drop table;").is_err());
        assert!(parse_order("size").is_err());
    }
}
