//! The error envelope every failed request answers with.

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`: the body of every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// One error: a stable code, a message a human can act on, and the request id (also in the
/// node's log for server errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code: `BZZZ-<status>-<NAME>` for node endpoints, `UCXL-<status>-<NAME>` for UCXI.
    pub code: String,
    /// What went wrong and, where possible, what to do.
    pub message: String,
    /// Random id of the request, hex.
    pub request_id: String,
}
