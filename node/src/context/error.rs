//! [`ContextError`]: what a context operation answers when it fails, with the UCXL code the HTTP
//! API and the wire carry.

use bzzz_protocol::ucxl::{UcxlCode, UcxlError};
use bzzz_protocol::wire::ContextError as WireError;

use super::metrics::ContextOutcome;
use crate::crypto::{CryptoError, ErrorKind};
use crate::network::NetworkError;

/// A failed context operation: a stable [`UcxlCode`] and a message that says what was wrong.
/// Messages never contain key material or content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ContextError {
    /// The code clients branch on.
    pub code: UcxlCode,
    /// What went wrong, for a human.
    pub message: String,
}

impl ContextError {
    /// An error with `code` and `message`.
    pub fn new(code: UcxlCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `UCXL-400-BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(UcxlCode::BadRequest, message)
    }

    /// `UCXL-403-FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(UcxlCode::Forbidden, message)
    }

    /// `UCXL-404-NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(UcxlCode::NotFound, message)
    }

    /// `UCXL-503-SERVICE_UNAVAILABLE`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(UcxlCode::ServiceUnavailable, message)
    }

    /// `UCXL-500-INTERNAL`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(UcxlCode::Internal, message)
    }

    /// The wire form.
    pub fn to_wire(&self) -> WireError {
        WireError {
            code: self.code.as_str().to_owned(),
            message: self.message.clone(),
        }
    }

    /// Reads the wire form; an unknown code becomes `UCXL-500-INTERNAL` naming it.
    pub fn from_wire(w: &WireError) -> Self {
        let message: String = w.message.chars().take(1024).collect();
        match UcxlCode::ALL.iter().find(|c| c.as_str() == w.code) {
            Some(code) => Self::new(*code, message),
            None => Self::internal(format!(
                "peer answered with unknown error code {:?}: {message}",
                w.code.chars().take(64).collect::<String>()
            )),
        }
    }

    /// The `outcome` label of the context put/get counters.
    pub fn outcome(&self) -> ContextOutcome {
        match self.code {
            UcxlCode::InvalidAddress
            | UcxlCode::TemporalInvalid
            | UcxlCode::BadRequest
            | UcxlCode::PayloadTooLarge
            | UcxlCode::Conflict => ContextOutcome::BadRequest,
            UcxlCode::Unauthorized | UcxlCode::Forbidden => ContextOutcome::Forbidden,
            UcxlCode::NotFound => ContextOutcome::NotFound,
            UcxlCode::ServiceUnavailable | UcxlCode::Timeout => ContextOutcome::Unavailable,
            UcxlCode::Internal => ContextOutcome::Failure,
        }
    }
}

impl From<UcxlError> for ContextError {
    fn from(e: UcxlError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<NetworkError> for ContextError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::RecordTooLarge { .. } => Self::new(UcxlCode::PayloadTooLarge, e.to_string()),
            NetworkError::NotFound => Self::not_found(e.to_string()),
            _ => Self::unavailable(e.to_string()),
        }
    }
}

impl From<bzzz_storage::StorageError> for ContextError {
    fn from(e: bzzz_storage::StorageError) -> Self {
        Self::internal(format!("cluster state: {e}"))
    }
}

impl From<CryptoError> for ContextError {
    fn from(e: CryptoError) -> Self {
        let code = match e.kind() {
            ErrorKind::Forbidden => UcxlCode::Forbidden,
            ErrorKind::InvalidInput => UcxlCode::BadRequest,
            _ => UcxlCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code survives the wire; a code nobody knows does not pass for one.
    #[test]
    fn wire_round_trip() {
        for code in UcxlCode::ALL {
            let e = ContextError::new(code, "m");
            assert_eq!(ContextError::from_wire(&e.to_wire()), e);
        }
        let odd = ContextError::from_wire(&WireError {
            code: "UCXL-999-NOPE".into(),
            message: "x".into(),
        });
        assert_eq!(odd.code, UcxlCode::Internal);
        assert!(odd.message.contains("UCXL-999-NOPE"), "{odd}");
    }
}
