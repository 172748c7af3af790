//! bzzz local state on sled.
//!
//! - [`Store`] opens the node's sled database and hands out one [`sled::Tree`]
//!   per keyspace, with flush and a health [`Store::probe`].
//! - [`SledRecordStore`] is the libp2p Kademlia
//!   [`RecordStore`](libp2p::kad::store::RecordStore) persisted in that
//!   database: value and provider records survive restarts and their expiry is
//!   honoured; limits come from [`RecordStoreConfig`] and counters are exposed
//!   as [`RecordStoreStats`] through a [`RecordStoreStatsHandle`].
//! - [`raft`] is openraft's storage for the admin election: the Raft log and
//!   vote ([`raft::SledLogStore`]) and the replicated state machine with its
//!   snapshots ([`raft::SledStateMachine`]), fsynced before a write is reported
//!   done. The state machine holds the cluster data ([`raft::cluster`]): role
//!   policy, key bindings, role grants, key epochs and the context version index.
//! - [`codec`] is the single place where persisted values are (de)serialised.
//! - [`util`] holds the wall clock in milliseconds ([`util::now_unix_ms`]) and
//!   [`util::error_chain`], used across the workspace.
//! - [`backup`] exports every tree of a live database to one versioned, checksummed file and
//!   restores such a file into a node's data dir offline.
//!
//! Nothing read from disk can panic the node: a Kademlia entry that fails to
//! decode is logged with `warn!` and treated as absent; a Raft entry that fails
//! to decode is an [`openraft::StorageError`] naming what failed (openraft then
//! stops the Raft node rather than act on a corrupt log).

pub mod backup;
pub mod codec;
pub mod kad_store;
pub mod raft;
pub mod store;
pub mod util;

pub use codec::CodecError;
pub use kad_store::{
    CacheClearReport, CacheClearStep, CachePass, LocalRecords, RecordStoreConfig, RecordStoreStats,
    RecordStoreStatsHandle, SledRecordStore,
};
pub use store::{StorageError, Store};
