//! Raft storage for the admin election: openraft's log store and state machine on sled.
//!
//! - [`TypeConfig`] is bzzz's openraft type configuration: log entries carry a [`Request`]
//!   (a typed [`Command`] plus the schema version and the proposer's term), the state machine
//!   answers each with a [`Response`], nodes are `u64` ids ([`node_id_from_peer_bytes`]) that
//!   advertise a [`NodeInfo`].
//! - [`typ`] names openraft's generic types for [`TypeConfig`], with the one [`Raft`] handle
//!   alias every crate uses.
//! - [`schema`] holds every tree name and fixed key, the key encodings and the node record.
//! - [`SledLogStore`] implements [`RaftLogStorage`](openraft::storage::RaftLogStorage) on the
//!   trees [`schema::LOG_TREE`] and [`schema::LOG_META_TREE`].
//! - [`SledStateMachine`] implements [`RaftStateMachine`](openraft::storage::RaftStateMachine)
//!   and builds and installs snapshots on the trees named in [`state_machine`]. Besides node
//!   records and a small key-value map it holds the cluster data of [`cluster`]: the
//!   [`RolePolicy`], nodes' key bindings, role grants, role key epochs and the context version
//!   index, with a read API (`role_policy()`, `grants()`, `versions()`, ...) for the node's read
//!   side.
//!
//! Durability: log writes, the vote and snapshots are fsynced
//! ([`Store::flush_async`](crate::Store::flush_async)) before they are reported done; the
//! committed id and applied state are not (openraft re-learns and re-applies them from the log
//! after a crash). Multi-tree updates run in one sled transaction, so a crash leaves either the
//! old or the new state. Values are encoded with [`codec`](crate::codec).
//!
//! Errors: openraft's traits return [`openraft::StorageError`] naming what failed
//! ([`ErrorSubject`]) and how ([`ErrorVerb`]), with the crate's [`StorageError`] as the source.
//! Corrupt data read from disk is such an error, never a panic. openraft shuts the Raft node down on
//! any storage error, so the state machine answers a command it cannot apply (for instance one from
//! a newer [`SCHEMA_VERSION`]) with [`Response::Rejected`] instead of failing.
//!
//! Construction, for `bzzz-node`:
//!
//! ```no_run
//! # async fn doc(network: impl openraft::RaftNetworkFactory<bzzz_storage::raft::TypeConfig>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bzzz_storage::Store;
//! use bzzz_storage::raft::{Raft, SledLogStore, SledStateMachine, node_id_from_peer_bytes};
//!
//! let store = Store::open(std::path::Path::new("/var/lib/bzzz/db"))?;
//! let peer_id = libp2p::PeerId::random();
//! let id = node_id_from_peer_bytes(&peer_id.to_bytes());
//! let config = Arc::new(openraft::Config::default().validate()?);
//! let log_store = SledLogStore::new(&store)?;
//! let state_machine = SledStateMachine::new(&store)?;
//! let raft = Raft::new(id, config, network, log_store, state_machine.clone()).await?;
//! // `state_machine` (a clone) serves reads: nodes(), get_kv(), role_policy(), versions(), ...
//! # drop(raft); Ok(()) }
//! ```
//!
//! Make one `SledLogStore` and one `SledStateMachine` per [`Store`](crate::Store) and clone them
//! for more handles: clones of a state machine share the lock that keeps snapshots consistent.
//!
//! Schema evolution: a [`Request`] from a newer build whose [`Command`] this build knows is
//! answered [`Response::Rejected`]; a [`Command`] variant this build does not know cannot be
//! decoded at all (by the network layer or, from disk, as a corrupt entry). So propose a new
//! variant only once every Raft member runs a build that knows it. A state machine stored by an
//! older schema is upgraded when opened; snapshots of an older schema are installed (see
//! [`state_machine`] for the schema history).

// openraft's storage traits fix the error type (about 224 bytes); the private helpers return it
// too, so each failure is wrapped where its subject (which entry, which snapshot) is known. It is
// only built on the failure path, which stops the Raft node.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use openraft::{ErrorSubject, ErrorVerb, StorageIOError};
use sha2::{Digest, Sha256};

use crate::store::StorageError;

mod apply;
pub mod cluster;
pub mod join_tokens;
pub mod log_store;
mod reads;
pub mod schema;
mod snapshot;
pub mod state_machine;
pub mod typ;

pub use cluster::{
    GrantRecord, GrantSource, KeyBindingRecord, NewVersion, PolicyError, RecordRef, RoleDef, RoleEpochRecord,
    RolePolicy, VersionEntry, validate_role_name,
};
pub use join_tokens::{JoinGrant, JoinRefusal, JoinTokenRecord};
pub use log_store::SledLogStore;
pub use state_machine::SledStateMachine;
pub use typ::{Entry, Raft, RaftStorageError};

openraft::declare_raft_types!(
    /// bzzz's Raft type configuration.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

/// What a Raft node advertises: its libp2p peer id and addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// The node's libp2p peer id, in its base58 text form.
    pub peer_id: String,
    /// The node's listen addresses, as multiaddr text.
    pub addrs: Vec<String>,
}

/// Schema version of the state machine, its snapshots and [`Request`]; bump when [`Command`]
/// changes shape or the state machine gains trees.
///
/// 1: nodes and the key-value map. 2: the cluster data of [`cluster`] (role policy, key bindings,
/// grants, key epochs, context version index). 3: join tokens ([`join_tokens`], in the key-value
/// map; no new tree).
pub const SCHEMA_VERSION: u32 = 3;

/// A command applied through Raft.
///
/// Later issues add variants (tasks, curation duty state); add them at the end (the encoding
/// numbers variants by position) and bump [`SCHEMA_VERSION`].
///
/// Applying is deterministic on every member: times come inside the commands. A command that
/// breaks a bound or a rule named below is answered [`Response::Rejected`] with the reason and
/// changes nothing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// No-op (used to check the log is writable).
    Noop,
    /// Record/refresh a node's info (peer id → [`NodeInfo`] + admin-eligible flag).
    UpsertNode {
        /// The node's Raft id.
        node_id: u64,
        /// What the node advertises.
        info: NodeInfo,
        /// Whether the node may become admin (a Raft voter).
        eligible: bool,
    },
    /// Remove a node record.
    RemoveNode {
        /// The node's Raft id.
        node_id: u64,
    },
    /// Set a key in a namespaced cluster key-value map (small cluster metadata).
    SetKv {
        /// The namespace; must not contain a NUL byte.
        namespace: String,
        /// The key within the namespace.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Delete such a key.
    DeleteKv {
        /// The namespace.
        namespace: String,
        /// The key within the namespace.
        key: String,
    },
    /// Replace the whole role policy (schema 2). Rejected unless [`RolePolicy::validate`] passes.
    /// Grants and epochs of roles it drops stay until revoked.
    SetRolePolicy {
        /// The new policy.
        policy: RolePolicy,
    },
    /// Store a node's X25519 key binding, replacing an older one of the same peer (schema 2).
    /// The admin checks the signature before proposing; storage keeps it as opaque bytes.
    RegisterKeyBinding {
        /// The node's libp2p peer id bytes (at most [`cluster::MAX_PEER_ID_LEN`]).
        peer_id: Vec<u8>,
        /// The node's static X25519 public key.
        x25519_public: [u8; 32],
        /// The identity key's signature over the binding (at most [`cluster::MAX_SIGNATURE_LEN`]).
        signature: Vec<u8>,
    },
    /// Grant a role of the policy to a node (schema 2). Rejected if the policy does not define the
    /// role; granting a role already held changes nothing (the first grant's source and time stay).
    GrantRole {
        /// The role.
        role: String,
        /// The node's libp2p peer id bytes.
        peer_id: Vec<u8>,
        /// Who decided it.
        source: GrantSource,
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Remove a grant, if held (schema 2). The role need not be in the policy.
    RevokeRole {
        /// The role.
        role: String,
        /// The node's libp2p peer id bytes.
        peer_id: Vec<u8>,
    },
    /// Create key epoch `epoch` of a role and make it current (schema 2). Rejected unless the
    /// policy defines the role and `epoch` is the current epoch plus one (the first is 1).
    SetRoleEpoch {
        /// The role.
        role: String,
        /// The new epoch number.
        epoch: u64,
        /// The epoch's public key (X25519, 32 bytes): writers wrap data keys to it.
        public_key: [u8; 32],
        /// The epoch key sealed to each member, by peer id bytes (at most
        /// [`cluster::MAX_SEALED_KEYS_PER_EPOCH`]).
        sealed: BTreeMap<Vec<u8>, Vec<u8>>,
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Add or replace one member's sealed key in an existing epoch, for a member granted after
    /// the epoch was created (schema 2). Rejected if the epoch does not exist.
    AddSealedKey {
        /// The role.
        role: String,
        /// The epoch.
        epoch: u64,
        /// The member's libp2p peer id bytes.
        peer_id: Vec<u8>,
        /// The epoch key sealed to the member's X25519 key.
        sealed: Vec<u8>,
    },
    /// Append the next version (the first is 1) to an address's index; answered
    /// [`Response::Version`] (schema 2). Idempotent by record key: if the index already holds
    /// `entry.record_key` (under any address) the answer is that version with `duplicate: true`
    /// and nothing changes. Rejected if the address is empty, longer than
    /// [`cluster::MAX_ADDRESS_LEN`] or contains NUL, the record key is not
    /// [`cluster::RECORD_KEY_LEN`] bytes, the role is not a valid role name, or the address
    /// already holds [`cluster::MAX_VERSIONS_PER_ADDRESS`] versions.
    AppendVersion {
        /// The canonical base address (no version selector).
        address: String,
        /// The version.
        entry: NewVersion,
    },
    /// Store a new join token (schema 3). Rejected if the id exists, the content breaks a bound
    /// of [`join_tokens::check_new_token`], or the cluster holds
    /// [`join_tokens::MAX_JOIN_TOKENS`] live tokens (expired and revoked ones are dropped first).
    CreateJoinToken {
        /// The public token id.
        id: String,
        /// The token.
        token: JoinTokenRecord,
    },
    /// Redeem a join token for a joining node (schema 3); answered [`Response::JoinToken`]. Uses
    /// one use unless the node already redeemed it.
    RedeemJoinToken {
        /// The public token id.
        id: String,
        /// SHA-256 of the secret the node presented.
        secret_hash: [u8; 32],
        /// The joining node's libp2p peer id bytes.
        peer_id: Vec<u8>,
        /// When, in milliseconds since the Unix epoch (expiry is judged against it).
        at_ms: u64,
    },
    /// Revoke a join token (schema 3): redeeming it is refused from now on. Rejected if unknown.
    RevokeJoinToken {
        /// The public token id.
        id: String,
    },
}

/// A proposal to the Raft log: one [`Command`] with its schema version and the proposer's term.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The [`SCHEMA_VERSION`] of the build that proposed it.
    pub schema: u32,
    /// What to do.
    pub command: Command,
    /// The Raft term of the admin that proposed it. Fencing: the state machine applies the
    /// request only if this is the term of the log entry that carries it (the leader's term when
    /// appended), so a proposal from an older leadership is refused ([`Response::Rejected`]).
    pub term: u64,
}

impl Request {
    /// A request for `command` proposed in `term`, with this build's [`SCHEMA_VERSION`].
    pub fn new(command: Command, term: u64) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            command,
            term,
        }
    }
}

/// The state machine's answer to one applied log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Response {
    /// The command was applied (blank and membership entries are answered `Ok` too).
    Ok,
    /// The command was not applied and the state is unchanged; the entry still counts as applied.
    Rejected {
        /// Why, for logs and the caller, e.g. "request schema 2 is newer than ...".
        reason: String,
    },
    /// The answer to [`Command::AppendVersion`] (schema 2).
    Version {
        /// The version number of the record.
        version: u64,
        /// True if the record key was already in the index: `version` is its existing version
        /// and nothing changed.
        duplicate: bool,
    },
    /// The answer to [`Command::RedeemJoinToken`] (schema 3): what the joining node's
    /// certificate may carry, or why not.
    JoinToken(Result<JoinGrant, JoinRefusal>),
}

/// Derives the Raft node id from a libp2p peer id's bytes: first 8 bytes of SHA-256(peer id bytes),
/// big endian.
pub fn node_id_from_peer_bytes(peer_id_bytes: &[u8]) -> u64 {
    Sha256::digest(peer_id_bytes)
        .iter()
        .take(8)
        .fold(0u64, |id, byte| (id << 8) | u64::from(*byte))
}

/// Wraps a storage-layer error as openraft's error for `subject` and `verb`.
pub(crate) fn raft_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: &StorageError) -> RaftStorageError {
    StorageIOError::new(subject, verb, e).into()
}

/// Maps a sled error on `tree` while doing `op` to a [`StorageError`].
fn io(tree: &'static str, op: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |source| StorageError::Io {
        tree: tree.to_owned(),
        op,
        source,
    }
}

/// Maps a codec error on `tree` to a [`StorageError`].
fn codec_err(tree: &'static str) -> impl FnOnce(crate::CodecError) -> StorageError {
    move |source| StorageError::Codec {
        tree: tree.to_owned(),
        source,
    }
}

/// Reads and decodes the value at `key` of `tree` (named `name` in errors).
fn read_decoded<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &[u8],
    op: &'static str,
) -> Result<Option<T>, StorageError> {
    match tree.get(key).map_err(io(name, op))? {
        None => Ok(None),
        Some(bytes) => crate::codec::decode(&bytes).map(Some).map_err(codec_err(name)),
    }
}

/// The sled key of a log index (or node id, epoch, version): big-endian, so keys sort like the
/// numbers.
pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Parses a key written by [`u64_key`]; `None` if it is not 8 bytes long.
pub(crate) fn key_u64(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The node id is the first 8 bytes of SHA-256, big endian: a known vector pins it across builds.
    #[test]
    fn node_id_is_stable() {
        // SHA-256("") = e3b0c442 98fc1c14 ...
        let got = node_id_from_peer_bytes(b"");
        assert_eq!(
            got, 0xe3b0_c442_98fc_1c14,
            "expected the SHA-256 prefix of \"\", got {got:#x}"
        );
        let peer = libp2p::PeerId::random();
        let (a, b) = (
            node_id_from_peer_bytes(&peer.to_bytes()),
            node_id_from_peer_bytes(&peer.to_bytes()),
        );
        assert_eq!(a, b, "expected the same id for the same peer id, got {a:#x} and {b:#x}");
    }

    /// Distinct peer ids get distinct node ids.
    #[test]
    fn node_ids_are_distinct() {
        let ids: HashSet<u64> = (0..1000)
            .map(|_| node_id_from_peer_bytes(&libp2p::PeerId::random().to_bytes()))
            .collect();
        assert_eq!(ids.len(), 1000, "expected 1000 distinct ids, got {}", ids.len());
    }

    /// A request survives the on-disk codec unchanged.
    #[test]
    fn request_round_trips_through_the_codec() -> Result<(), crate::CodecError> {
        let req = Request::new(
            Command::UpsertNode {
                node_id: 7,
                info: NodeInfo {
                    peer_id: "12D3KooW".to_owned(),
                    addrs: vec!["/ip4/127.0.0.1/tcp/1".to_owned()],
                },
                eligible: true,
            },
            3,
        );
        let back: Request = crate::codec::decode(&crate::codec::encode(&req)?)?;
        assert_eq!(back, req, "expected the decoded request to equal the original");
        Ok(())
    }

    /// Log index keys sort like the numbers and parse back; keys of another length are refused.
    #[test]
    fn u64_keys_sort_and_parse() {
        assert!(
            u64_key(255) < u64_key(256),
            "expected big-endian keys to sort numerically"
        );
        assert_eq!(key_u64(&u64_key(u64::MAX)), Some(u64::MAX), "expected u64::MAX back");
        assert_eq!(key_u64(b"short"), None, "expected None for a 5-byte key");
    }
}
