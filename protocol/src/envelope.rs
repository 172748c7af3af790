//! Signed envelopes: how a gossip message is made and how a receiver decides to accept it.
//!
//! [`seal`] builds and signs an [`Envelope`]; [`open`] runs every check a receiver makes before any
//! handler sees the message, in a fixed order (size, schema, version, kind, sender key, signature,
//! freshness). Replay detection needs state and lives in [`crate::replay::ReplayWindow`].

use libp2p_identity::{Keypair, PeerId, PublicKey};
use prost::Message;

use crate::WIRE_VERSION;
use crate::wire::{Envelope, Kind};

/// Length of the random nonce in every envelope, in bytes.
pub const NONCE_LEN: usize = 16;

/// Size and clock limits a receiver applies.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeLimits {
    /// Largest encoded envelope accepted, in bytes.
    pub max_bytes: usize,
    /// How far in the past an envelope's timestamp may be, in milliseconds.
    pub max_age_ms: u64,
    /// How far in the future an envelope's timestamp may be (clock skew), in milliseconds.
    pub max_future_ms: u64,
}

impl Default for EnvelopeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_age_ms: 60_000,
            max_future_ms: 10_000,
        }
    }
}

/// Why a received envelope was rejected. The label is used as a metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RejectReason {
    /// Larger than [`EnvelopeLimits::max_bytes`].
    #[error("envelope is larger than the size limit")]
    Oversized,
    /// Not a decodable envelope.
    #[error("envelope does not decode")]
    Malformed,
    /// An envelope version this node does not speak.
    #[error("unsupported envelope version")]
    UnsupportedVersion,
    /// A kind this node does not know.
    #[error("unknown envelope kind")]
    UnknownKind,
    /// No signature.
    #[error("envelope is not signed")]
    Unsigned,
    /// The sender field is not a valid public key.
    #[error("sender is not a valid public key")]
    BadSenderKey,
    /// The signature does not verify under the sender's key.
    #[error("signature does not verify")]
    BadSignature,
    /// Timestamp older than the replay window.
    #[error("envelope is too old")]
    TooOld,
    /// Timestamp too far in the future.
    #[error("envelope is from the future")]
    TooNew,
    /// The (sender, nonce) pair was seen before.
    #[error("envelope was seen before")]
    Replayed,
    /// The nonce has the wrong length.
    #[error("envelope nonce has the wrong length")]
    BadNonce,
}

impl RejectReason {
    /// Every reason, for pre-registering metric label values.
    pub const ALL: [RejectReason; 11] = [
        RejectReason::Oversized,
        RejectReason::Malformed,
        RejectReason::UnsupportedVersion,
        RejectReason::UnknownKind,
        RejectReason::Unsigned,
        RejectReason::BadSenderKey,
        RejectReason::BadSignature,
        RejectReason::TooOld,
        RejectReason::TooNew,
        RejectReason::Replayed,
        RejectReason::BadNonce,
    ];

    /// Short snake_case label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::Malformed => "malformed",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::Unsigned => "unsigned",
            RejectReason::BadSenderKey => "bad_sender_key",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::TooOld => "too_old",
            RejectReason::TooNew => "too_new",
            RejectReason::Replayed => "replayed",
            RejectReason::BadNonce => "bad_nonce",
        }
    }
}

/// An envelope that passed every stateless check.
#[derive(Debug, Clone)]
pub struct VerifiedEnvelope {
    /// The sender's peer id, derived from the verified key.
    pub sender: PeerId,
    /// The payload kind.
    pub kind: Kind,
    /// Sender's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The nonce, for replay detection.
    pub nonce: Vec<u8>,
    /// The kind-specific payload.
    pub payload: Vec<u8>,
}

/// Error making an envelope.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key could not sign (only ed25519 identities are supported).
    #[error("identity key cannot sign: {0}")]
    Signing(#[from] libp2p_identity::SigningError),
}

/// The bytes a signature covers: the envelope encoded with an empty signature.
fn signing_bytes(env: &Envelope) -> Vec<u8> {
    let mut unsigned = env.clone();
    unsigned.signature.clear();
    unsigned.encode_to_vec()
}

/// Builds and signs an envelope. `nonce` must be [`NONCE_LEN`] random bytes.
pub fn seal(
    key: &Keypair,
    kind: Kind,
    payload: Vec<u8>,
    timestamp_ms: u64,
    nonce: [u8; NONCE_LEN],
) -> Result<Envelope, SealError> {
    let mut env = Envelope {
        version: WIRE_VERSION,
        kind: kind as i32,
        sender: key.public().encode_protobuf(),
        timestamp_ms,
        nonce: nonce.to_vec(),
        payload,
        signature: Vec::new(),
    };
    env.signature = key.sign(&signing_bytes(&env))?;
    Ok(env)
}

/// Checks raw bytes received from the mesh: size, schema, version, kind, key, signature and
/// timestamp window, in that order. Replay is checked separately with a
/// [`ReplayWindow`](crate::replay::ReplayWindow) once the envelope is known to be authentic.
pub fn open(bytes: &[u8], limits: &EnvelopeLimits, now_ms: u64) -> Result<VerifiedEnvelope, RejectReason> {
    if bytes.len() > limits.max_bytes {
        return Err(RejectReason::Oversized);
    }
    let env = Envelope::decode(bytes).map_err(|_| RejectReason::Malformed)?;
    if env.version != WIRE_VERSION {
        return Err(RejectReason::UnsupportedVersion);
    }
    let kind = match Kind::try_from(env.kind) {
        Ok(Kind::Unspecified) | Err(_) => return Err(RejectReason::UnknownKind),
        Ok(k) => k,
    };
    if env.signature.is_empty() {
        return Err(RejectReason::Unsigned);
    }
    if env.nonce.len() != NONCE_LEN {
        return Err(RejectReason::BadNonce);
    }
    let key = PublicKey::try_decode_protobuf(&env.sender).map_err(|_| RejectReason::BadSenderKey)?;
    if !key.verify(&signing_bytes(&env), &env.signature) {
        return Err(RejectReason::BadSignature);
    }
    if env.timestamp_ms.saturating_add(limits.max_age_ms) < now_ms {
        return Err(RejectReason::TooOld);
    }
    if env.timestamp_ms > now_ms.saturating_add(limits.max_future_ms) {
        return Err(RejectReason::TooNew);
    }
    Ok(VerifiedEnvelope {
        sender: key.to_peer_id(),
        kind,
        timestamp_ms: env.timestamp_ms,
        nonce: env.nonce,
        payload: env.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn sealed(key: &Keypair) -> Envelope {
        seal(key, Kind::Probe, b"hello".to_vec(), NOW, [7; NONCE_LEN]).expect("ed25519 signs")
    }

    /// A sealed envelope opens and yields the sender's peer id and the payload.
    #[test]
    fn seal_then_open() {
        let key = Keypair::generate_ed25519();
        let bytes = sealed(&key).encode_to_vec();
        let v = open(&bytes, &EnvelopeLimits::default(), NOW).expect("valid envelope should open");
        assert_eq!(v.sender, key.public().to_peer_id());
        assert_eq!(v.payload, b"hello");
        assert_eq!(v.kind, Kind::Probe);
    }

    /// Changing any signed field, or signing with another key, is detected.
    #[test]
    fn forgeries_are_rejected() {
        let key = Keypair::generate_ed25519();
        let other = Keypair::generate_ed25519();
        let lim = EnvelopeLimits::default();

        let mut e = sealed(&key);
        e.payload = b"hellO".to_vec();
        assert_eq!(
            open(&e.encode_to_vec(), &lim, NOW).err(),
            Some(RejectReason::BadSignature)
        );

        let mut e = sealed(&key);
        e.sender = other.public().encode_protobuf();
        assert_eq!(
            open(&e.encode_to_vec(), &lim, NOW).err(),
            Some(RejectReason::BadSignature)
        );

        let mut e = sealed(&key);
        e.signature.clear();
        assert_eq!(open(&e.encode_to_vec(), &lim, NOW).err(), Some(RejectReason::Unsigned));

        let mut e = sealed(&key);
        e.sender = vec![1, 2, 3];
        assert_eq!(
            open(&e.encode_to_vec(), &lim, NOW).err(),
            Some(RejectReason::BadSenderKey)
        );
    }

    /// Size, version, kind, nonce and time-window limits each produce their own reason.
    #[test]
    fn limits_are_enforced() {
        let key = Keypair::generate_ed25519();
        let lim = EnvelopeLimits {
            max_bytes: 200,
            ..Default::default()
        };
        let big = seal(&key, Kind::Probe, vec![0; 500], NOW, [1; NONCE_LEN]).expect("signs");
        assert_eq!(
            open(&big.encode_to_vec(), &lim, NOW).err(),
            Some(RejectReason::Oversized)
        );
        assert_eq!(open(b"\xff\xff\xff", &lim, NOW).err(), Some(RejectReason::Malformed));

        let e = sealed(&key).encode_to_vec();
        let lim = EnvelopeLimits::default();
        assert_eq!(open(&e, &lim, NOW + 61_000).err(), Some(RejectReason::TooOld));
        assert_eq!(open(&e, &lim, NOW - 11_000).err(), Some(RejectReason::TooNew));

        let mut v2 = sealed(&key);
        v2.version = 2;
        assert_eq!(
            open(&v2.encode_to_vec(), &lim, NOW).err(),
            Some(RejectReason::UnsupportedVersion)
        );
        let unknown = Envelope {
            kind: 99,
            ..sealed(&key)
        };
        assert_eq!(
            open(&unknown.encode_to_vec(), &lim, NOW).err(),
            Some(RejectReason::UnknownKind)
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the receiver; they are rejected.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = open(&bytes, &EnvelopeLimits::default(), NOW);
        }
    }
}
