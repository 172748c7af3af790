//! openraft's generic types, named for bzzz's [`TypeConfig`] (`u64` node ids, [`NodeInfo`]
//! nodes), as in openraft's `raft-kv-rocksdb` example. [`Raft`] is the one Raft handle alias of
//! the workspace: the daemon's consensus and the tests use it from here.

use super::{NodeInfo, TypeConfig};

/// The Raft handle of a bzzz node.
pub type Raft = openraft::Raft<TypeConfig>;

/// A Raft log entry of bzzz.
pub type Entry = openraft::Entry<TypeConfig>;

/// The id of a log entry.
pub type LogId = openraft::LogId<u64>;

/// A Raft vote.
pub type Vote = openraft::Vote<u64>;

/// A cluster membership (voters and learners with what they advertise).
pub type Membership = openraft::Membership<u64, NodeInfo>;

/// A membership with the id of the log entry that set it.
pub type StoredMembership = openraft::StoredMembership<u64, NodeInfo>;

/// The metadata of a snapshot.
pub type SnapshotMeta = openraft::SnapshotMeta<u64, NodeInfo>;

/// What a Raft node reports about itself (role, term, leader, log ids, membership).
pub type RaftMetrics = openraft::RaftMetrics<u64, NodeInfo>;

/// The error openraft's storage traits return, for bzzz's `u64` node ids.
pub type RaftStorageError = openraft::StorageError<u64>;

/// A Raft API error, with `E` the error of the API called.
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<u64, E>;

/// The error of a Raft RPC to another node, with `E` the error of the RPC called.
pub type RPCError<E = openraft::error::Infallible> = openraft::error::RPCError<u64, NodeInfo, RaftError<E>>;

/// Why a client write (a proposal) failed.
pub type ClientWriteError = openraft::error::ClientWriteError<u64, NodeInfo>;

/// The answer to a committed client write.
pub type ClientWriteResponse = openraft::raft::ClientWriteResponse<TypeConfig>;
