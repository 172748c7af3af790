//! The one error envelope of every HTTP error: `{"error":{"code","message","request_id"}}`
//! ([`bzzz_client::types::ErrorEnvelope`]), with `BZZZ-` codes ([`ApiError`]) on node endpoints
//! and `UCXL-` codes ([`UcxiError`]) on the context API.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bzzz_client::types::{ErrorBody, ErrorEnvelope};
use bzzz_protocol::ErrorCode;
use bzzz_protocol::ucxl::UcxlCode;

use crate::context::ContextError;
use crate::network::NetworkError;

/// An API error: a stable code and a message a human can act on.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_envelope(self.code.status(), self.code.as_str(), &self.message)
    }
}

/// The envelope with `status`; server errors are logged with the request id.
pub(crate) fn error_envelope(status: u16, code: &str, message: &str) -> Response {
    let request_id = hex::encode(rand::random::<[u8; 8]>());
    if status >= 500 {
        tracing::warn!(%code, %message, %request_id, "api error");
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorEnvelope {
        error: ErrorBody {
            code: code.to_owned(),
            message: message.to_owned(),
            request_id,
        },
    };
    (status, Json(body)).into_response()
}

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        let code = match &e {
            NetworkError::Shutdown | NetworkError::InsufficientPeers { .. } | NetworkError::Busy(_) => {
                ErrorCode::ServiceUnavailable
            }
            NetworkError::NotFound => ErrorCode::NotFound,
            NetworkError::RecordTooLarge { .. } => ErrorCode::PayloadTooLarge,
            NetworkError::UnknownTopic(_) => ErrorCode::BadRequest,
            NetworkError::Dht { .. } | NetworkError::Rpc { .. } => ErrorCode::ServiceUnavailable,
            NetworkError::Publish(_) | NetworkError::Sign(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::PayloadTooLarge
        } else {
            ErrorCode::BadRequest
        };
        ApiError::new(code, e.body_text())
    }
}

/// A context error on a node endpoint (`/api/roles`): the `BZZZ-` code of the same status.
impl From<ContextError> for ApiError {
    fn from(e: ContextError) -> Self {
        let code = match e.code {
            UcxlCode::InvalidAddress | UcxlCode::TemporalInvalid | UcxlCode::BadRequest | UcxlCode::Conflict => {
                ErrorCode::BadRequest
            }
            UcxlCode::Unauthorized => ErrorCode::Unauthorized,
            UcxlCode::Forbidden => ErrorCode::Forbidden,
            UcxlCode::NotFound => ErrorCode::NotFound,
            UcxlCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            UcxlCode::Internal => ErrorCode::Internal,
            UcxlCode::ServiceUnavailable => ErrorCode::ServiceUnavailable,
            UcxlCode::Timeout => ErrorCode::Timeout,
        };
        ApiError::new(code, e.message)
    }
}

/// A UCXI error response (`UCXL-` codes).
#[derive(Debug)]
pub(crate) struct UcxiError(pub ContextError);

impl From<ContextError> for UcxiError {
    fn from(e: ContextError) -> Self {
        Self(e)
    }
}

impl IntoResponse for UcxiError {
    fn into_response(self) -> Response {
        error_envelope(self.0.code.status(), self.0.code.as_str(), &self.0.message)
    }
}

impl UcxiError {
    /// A `UCXL-400-BAD_REQUEST`.
    pub(crate) fn bad(message: impl Into<String>) -> UcxiError {
        UcxiError(ContextError::bad_request(message))
    }
}

impl From<QueryRejection> for UcxiError {
    fn from(e: QueryRejection) -> Self {
        UcxiError::bad(format!("query string: {}", e.body_text()))
    }
}

impl From<BytesRejection> for UcxiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UcxiError(ContextError::new(UcxlCode::PayloadTooLarge, e.body_text()))
        } else {
            UcxiError::bad(format!("body: {}", e.body_text()))
        }
    }
}
