//! VirusTotal's error envelope, `{"error": {"code", "message"}}`, with VirusTotal's codes and
//! statuses (schema §10), so `vt-py` raises `APIError` with the same `code` it would for VT.

use crate::backend::BackendError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For query errors: the 1-based column the parser complained about (a Sandscope
    /// extension field next to `code` and `message`; clients that do not know it ignore it).
    pub column: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            column: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFoundError", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestError", message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgumentError", message)
    }

    pub fn authentication_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequiredError",
            "X-Apikey header is missing",
        )
    }

    pub fn wrong_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "WrongCredentialsError",
            "Wrong API key",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ForbiddenError", message)
    }

    /// An upload to a read-only server (`sandscope serve --read-only`).
    pub fn read_only() -> Self {
        Self::forbidden("this server is read-only: uploads are not accepted")
    }

    pub fn payload_too_large(limit: u64) -> Self {
        // VirusTotal documents no code for this; the name follows its `<Thing>Error` pattern.
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            format!("upload larger than the limit of {limit} bytes"),
        )
    }

    pub fn deadline_exceeded() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "DeadlineExceededError",
            "the request took too long",
        )
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "TransientError", message)
    }

    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        // VirusTotal documents no code for a full disk; the name follows its `<Thing>Error`
        // pattern and the status is HTTP's own for it.
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "InsufficientStorageError",
            message,
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error",
        )
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Query { message, column } => Self {
                status: StatusCode::BAD_REQUEST,
                code: "BadRequestError",
                message: format!("{message} (column {column})"),
                column: Some(column),
            },
            BackendError::InvalidArgument(message) => Self::invalid_argument(message),
            BackendError::TooLarge(message) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeError",
                message,
            ),
            BackendError::NotFound(message) => Self::not_found(message),
            BackendError::BudgetExceeded(message) => Self::bad_request(message),
            BackendError::DeadlineExceeded(message) => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "DeadlineExceededError",
                message,
            ),
            BackendError::Unavailable(message) => Self::transient(message),
            BackendError::InsufficientStorage(message) => Self::insufficient_storage(message),
            BackendError::ReadOnly(message) => Self::forbidden(message),
            BackendError::Internal(message) => {
                // The detail may name files or internals: log it, answer generically.
                eprintln!("sandscope-server: backend error: {message}");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let (Some(column), Some(object)) = (self.column, error.as_object_mut()) {
            object.insert("column".to_string(), json!(column));
        }
        let body = json!({ "error": error }).to_string();
        let mut response = (self.status, body).into_response();
        // Exactly `application/json`: vt-py only parses error bodies of that content type.
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
