//! Error types of this crate.

/// Why a bootstrap address could not be parsed or resolved.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The text is not a usable bootstrap address; `reason` says what is wrong.
    #[error("invalid bootstrap address {input:?}: {reason}")]
    InvalidAddress {
        /// The address exactly as the operator wrote it.
        input: String,
        /// What is wrong with it, in plain words.
        reason: String,
    },
    /// The address has no TCP port (for example it is UDP-only or lacks a port).
    #[error(
        "bootstrap address {input:?} has no tcp port (expected e.g. /ip4/10.0.0.1/tcp/9000, /dns4/tasks.dht-bootstrap/tcp/9101 or host:9000)"
    )]
    MissingPort {
        /// The address exactly as the operator wrote it.
        input: String,
    },
    /// The DNS lookup of a bootstrap host name failed.
    #[error("could not resolve bootstrap host {host:?}: {source}")]
    Resolve {
        /// The DNS name that was looked up.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The DNS lookup succeeded but returned no address of the requested family.
    #[error("bootstrap host {host:?} resolved to no usable addresses")]
    NoAddresses {
        /// The DNS name that was looked up.
        host: String,
    },
}

/// Why a [`Mode`](crate::Mode) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown node mode {value:?}: expected \"agent\" or \"bootstrap\"")]
pub struct ParseModeError {
    /// The text that was rejected.
    pub value: String,
}
