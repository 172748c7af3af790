//! Wire types of the bzzz mesh: the prost schemas, gossip topic names, protocol ids, the signed
//! [`Envelope`](wire::Envelope) every gossip message travels in, [UCXL addresses](ucxl), the
//! DHT names of [context records](context) and the stable error codes of the HTTP API.
//!
//! This crate holds no runtime: no tokio, no sled, no libp2p swarm. Everything here is pure data
//! and pure functions, so every boundary (gossip, RPC, HTTP) validates input with the same code.

pub mod cert;
pub mod context;
pub mod envelope;
pub mod error_codes;
pub mod replay;
pub mod topics;
pub mod ucxl;

/// Generated prost types of `proto/bzzz/v1/*.proto`.
#[allow(missing_docs, clippy::all)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/bzzz.v1.rs"));
}

pub use envelope::{EnvelopeLimits, RejectReason, VerifiedEnvelope};
pub use error_codes::ErrorCode;
pub use replay::ReplayWindow;
pub use ucxl::{UcxlCode, UcxlError};

/// Version of the envelope format this build speaks; receivers reject other versions.
pub const WIRE_VERSION: u32 = 1;

/// libp2p protocol ids of bzzz's request-response protocols.
pub mod protocols {
    /// Raft RPC (append entries, vote, install snapshot).
    pub const RAFT: &str = "/bzzz/raft/1";
    /// Direct node-to-node requests (probe acknowledgements and later RPCs).
    pub const RPC: &str = "/bzzz/rpc/1";
    /// Identify protocol version string; peers with another major version are not bzzz v1.
    pub const IDENTIFY: &str = "/bzzz/id/1";
    /// Kademlia protocol name, so the bzzz DHT does not mix with the public IPFS DHT.
    pub const KAD: &str = "/bzzz/kad/1";
    /// Admission: the certificate exchange every connection runs before anything else.
    pub const ADMIT: &str = "/bzzz/admit/1";
}
