//! The one error type of the crypto layer and the coarse kind a caller maps to a status code.

use std::path::PathBuf;

use libp2p::PeerId;

/// What went wrong in the crypto layer. Messages name the field, role, epoch, peer or file that
/// failed and never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The encoded record is larger than the caller's limit.
    #[error("record is {size} bytes, larger than the limit of {max} bytes")]
    Oversized {
        /// Size of the input, in bytes.
        size: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The input does not decode, or a field has the wrong length or is out of bounds.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message or field (e.g. `record`, `wrapped key 2 nonce`).
        what: String,
        /// Why, in words.
        reason: String,
    },
    /// A record format this build does not know.
    #[error("unsupported record format {0} (this node reads format {f})", f = crate::crypto::RECORD_FORMAT)]
    UnsupportedFormat(u32),
    /// The peer id does not embed an ed25519 public key, so its signatures cannot be checked.
    #[error("peer id {peer} does not embed an ed25519 public key")]
    NoEmbeddedKey {
        /// The peer id.
        peer: PeerId,
    },
    /// A signature does not verify under the signer's key: the signed data was changed, or
    /// someone else signed it.
    #[error("signature of the {what} does not verify under the key of {signer}")]
    BadSignature {
        /// What was signed (`record content`, `record key list`, `key binding`).
        what: &'static str,
        /// Whose key the signature was checked against.
        signer: PeerId,
    },
    /// The record is authentic but belongs to another address (it was moved).
    #[error("record belongs to address {found:?}, not to the requested {expected:?}")]
    WrongAddress {
        /// The address the reader asked for.
        expected: String,
        /// The address in the record's signed header.
        found: String,
    },
    /// The record is authentic, but none of its wrapped keys is for a (role, epoch) this node
    /// holds: the reader is not allowed to read it (or lacks that epoch's key).
    #[error("no readable key: the record is readable by {readers} and this node holds none of those role keys")]
    NoReadableKey {
        /// The (role, epoch) pairs the record is wrapped for, as `role@epoch, ...`.
        readers: String,
    },
    /// Authenticated decryption failed: the ciphertext, nonce or associated data was changed, or
    /// the key is not the one it was sealed with.
    #[error("{what} does not decrypt: changed in transit, or sealed under a different key")]
    Decrypt {
        /// What failed (`content`, `wrapped key for role dev epoch 3`, `sealed role key for role dev
        /// epoch 3`).
        what: String,
    },
    /// X25519 gave an all-zero shared secret: the other side's public key is a low-order point.
    #[error("X25519 with the {which} gives an all-zero shared secret (low-order public key)")]
    LowOrderPoint {
        /// Which key was bad (`recipient public key` or `reader role public key` when sealing,
        /// `ephemeral public key` when opening).
        which: &'static str,
    },
    /// The caller's own arguments are unusable (empty reader list, over-long role, non-ed25519
    /// signer, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The identity key could not sign.
    #[error("identity key cannot sign: {0}")]
    Signing(#[from] libp2p::identity::SigningError),
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file exists but does not hold a key.
    #[error("key file {path} is corrupt: {reason}")]
    CorruptKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its contents).
        reason: String,
    },
}

/// The coarse class of a [`CryptoError`], for mapping to HTTP statuses, metric labels and
/// peer scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is not a well-formed message (HTTP 400 / 413; a storing node rejects it).
    Malformed,
    /// The input is well-formed but not authentic: signature, address binding or AEAD failed
    /// (HTTP 422 or 502 depending on where the bytes came from; a storing node rejects it and may
    /// penalise the sender).
    Tampered,
    /// The input is authentic but this node may not read it (HTTP 403).
    Forbidden,
    /// The caller passed unusable arguments (HTTP 400 if they came from a request).
    InvalidInput,
    /// A local failure: key file I/O or signing (HTTP 500).
    Internal,
}

impl ErrorKind {
    /// Short snake_case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::Tampered => "tampered",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Internal => "internal",
        }
    }
}

impl CryptoError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CryptoError::Oversized { .. }
            | CryptoError::Malformed { .. }
            | CryptoError::UnsupportedFormat(_)
            | CryptoError::NoEmbeddedKey { .. }
            | CryptoError::LowOrderPoint { .. } => ErrorKind::Malformed,
            CryptoError::BadSignature { .. } | CryptoError::WrongAddress { .. } | CryptoError::Decrypt { .. } => {
                ErrorKind::Tampered
            }
            CryptoError::NoReadableKey { .. } => ErrorKind::Forbidden,
            CryptoError::InvalidInput(_) => ErrorKind::InvalidInput,
            CryptoError::Signing(_) | CryptoError::Io { .. } | CryptoError::CorruptKeyFile { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// A [`CryptoError::Malformed`] for `what`.
    pub(crate) fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        CryptoError::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
