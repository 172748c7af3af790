//! Why a call failed: [`ClientError`].

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached, or the request timed out.
    #[error("cannot reach the bzzz node at {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node answered with its error envelope.
    #[error("{code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Stable error code, e.g. `BZZZ-401-UNAUTHORIZED` or `UCXL-404-NOT_FOUND`.
        code: String,
        /// What went wrong.
        message: String,
        /// The request id (in the node's log for server errors).
        request_id: String,
    },
    /// The node's answer was not what this client expected.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The base URL is not a usable http(s) URL.
    #[error("invalid node URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// The error code of an error envelope (`None` for errors that are not the node's answer).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of an error envelope.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A reqwest error and its causes, `outer: inner` (e.g. naming a refused connection).
pub(crate) fn error_text(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
