//! Stable error codes of the UCXL HTTP API: `UCXL-<status>-<NAME>`.
//!
//! Clients branch on the code, never on the message. Codes are never renamed; new ones are added.
//! The node-level API keeps its own `BZZZ-` codes ([`crate::ErrorCode`]).

use serde::{Serialize, Serializer};

/// An error code of the UCXL HTTP API, with its HTTP status. Serialized as its code string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UcxlCode {
    /// The UCXL address does not parse (any field but the temporal part).
    InvalidAddress,
    /// The temporal part of the address does not parse, or names a version that cannot exist.
    TemporalInvalid,
    /// The request is malformed in some way other than its address.
    BadRequest,
    /// The request carries no valid credentials.
    Unauthorized,
    /// The caller's role may not do this (e.g. read context encrypted for another role).
    Forbidden,
    /// Nothing is stored at the address (or at the version asked for).
    NotFound,
    /// The write conflicts with the current state (e.g. a version that already exists).
    Conflict,
    /// The request body is larger than the API accepts.
    PayloadTooLarge,
    /// An internal failure; the message says what failed.
    Internal,
    /// The node cannot do this now (not joined, no peers, shutting down); retry later.
    ServiceUnavailable,
    /// The operation did not finish in time.
    Timeout,
}

impl UcxlCode {
    /// Every code, for tests, documentation and pre-registering metric label values.
    pub const ALL: [UcxlCode; 11] = [
        UcxlCode::InvalidAddress,
        UcxlCode::TemporalInvalid,
        UcxlCode::BadRequest,
        UcxlCode::Unauthorized,
        UcxlCode::Forbidden,
        UcxlCode::NotFound,
        UcxlCode::Conflict,
        UcxlCode::PayloadTooLarge,
        UcxlCode::Internal,
        UcxlCode::ServiceUnavailable,
        UcxlCode::Timeout,
    ];

    /// The HTTP status code for this error.
    pub fn status(self) -> u16 {
        match self {
            UcxlCode::InvalidAddress | UcxlCode::TemporalInvalid | UcxlCode::BadRequest => 400,
            UcxlCode::Unauthorized => 401,
            UcxlCode::Forbidden => 403,
            UcxlCode::NotFound => 404,
            UcxlCode::Conflict => 409,
            UcxlCode::PayloadTooLarge => 413,
            UcxlCode::Internal => 500,
            UcxlCode::ServiceUnavailable => 503,
            UcxlCode::Timeout => 504,
        }
    }

    /// The stable code string, e.g. `UCXL-400-INVALID_ADDRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            UcxlCode::InvalidAddress => "UCXL-400-INVALID_ADDRESS",
            UcxlCode::TemporalInvalid => "UCXL-400-TEMPORAL_INVALID",
            UcxlCode::BadRequest => "UCXL-400-BAD_REQUEST",
            UcxlCode::Unauthorized => "UCXL-401-UNAUTHORIZED",
            UcxlCode::Forbidden => "UCXL-403-FORBIDDEN",
            UcxlCode::NotFound => "UCXL-404-NOT_FOUND",
            UcxlCode::Conflict => "UCXL-409-CONFLICT",
            UcxlCode::PayloadTooLarge => "UCXL-413-PAYLOAD_TOO_LARGE",
            UcxlCode::Internal => "UCXL-500-INTERNAL",
            UcxlCode::ServiceUnavailable => "UCXL-503-SERVICE_UNAVAILABLE",
            UcxlCode::Timeout => "UCXL-504-TIMEOUT",
        }
    }
}

impl std::fmt::Display for UcxlCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UcxlCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
