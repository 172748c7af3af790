//! Stable error codes of the HTTP API: `BZZZ-<status>-<NAME>`.
//!
//! Clients branch on the code, never on the message. Codes are never renamed; new ones are added.

use serde::Serialize;

/// An error code of the HTTP API, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    /// The request body or parameters are malformed.
    BadRequest,
    /// The request body is larger than the API accepts.
    PayloadTooLarge,
    /// An operator action without a valid operator token.
    Unauthorized,
    /// The node or caller may not do this.
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The node cannot do this now (not joined, no peers, shutting down); retry later.
    ServiceUnavailable,
    /// The operation did not finish in time.
    Timeout,
    /// An internal failure; the message says what failed.
    Internal,
}

impl ErrorCode {
    /// The HTTP status code for this error.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::Timeout => 504,
            ErrorCode::Internal => 500,
        }
    }

    /// The stable code string, e.g. `BZZZ-404-NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BZZZ-400-BAD_REQUEST",
            ErrorCode::NotFound => "BZZZ-404-NOT_FOUND",
            ErrorCode::Unauthorized => "BZZZ-401-UNAUTHORIZED",
            ErrorCode::Forbidden => "BZZZ-403-FORBIDDEN",
            ErrorCode::PayloadTooLarge => "BZZZ-413-PAYLOAD_TOO_LARGE",
            ErrorCode::ServiceUnavailable => "BZZZ-503-SERVICE_UNAVAILABLE",
            ErrorCode::Timeout => "BZZZ-504-TIMEOUT",
            ErrorCode::Internal => "BZZZ-500-INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code string carries its own HTTP status, so the two can never disagree.
    #[test]
    fn code_strings_carry_their_status() {
        for c in [
            ErrorCode::BadRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::ServiceUnavailable,
            ErrorCode::Timeout,
            ErrorCode::Internal,
        ] {
            let want = format!("BZZZ-{}-", c.status());
            assert!(c.as_str().starts_with(&want), "{} should start with {want}", c.as_str());
        }
    }
}
