//! The protocol's errors: a status and a message, answered as `{"error": "..."}`.

use http::StatusCode;
use serde_json::{Value, json};

/// An error answered as `{"error": "..."}` with a 4xx or 5xx status.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body, `{"error": "..."}`.
    pub fn body(&self) -> Value {
        json!({ "error": self.message })
    }
}

impl From<skiff_runtime::Error> for ApiError {
    /// Input the model refuses, or an explanation of a model that has none, is the caller's to
    /// fix (400); anything else failed inside (500).
    fn from(e: skiff_runtime::Error) -> ApiError {
        match e {
            skiff_runtime::Error::BadInput(m) => ApiError::bad_request(m),
            e @ skiff_runtime::Error::NotExplainable { .. } => ApiError::bad_request(e.to_string()),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// The 404 of a path the protocol does not have.
pub fn no_such_endpoint() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see /v2)")
}

/// The 405 of a path asked with the wrong method.
pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {path} (see /v2)"),
    )
}
