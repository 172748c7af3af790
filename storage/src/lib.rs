//! bzzz local state on sled.
//!
//! - [`Store`] opens the node's sled database and hands out one [`sled::Tree`]
//!   per keyspace, with flush and a health [`Store::probe`].
//! - [`SledRecordStore`] is the libp2p Kademlia
//!   [`RecordStore`](libp2p::kad::store::RecordStore) persisted in that
//!   database: value and provider records survive restarts and their expiry is
//!   honoured; limits come from [`RecordStoreConfig`] and counters are exposed
//!   as [`RecordStoreStats`] through a [`RecordStoreStatsHandle`].
//! - [`codec`] is the single place where persisted values are (de)serialised.
//!
//! Nothing read from disk can panic the node: an entry that fails to decode is
//! logged with `warn!` and treated as absent.

pub mod codec;
pub mod kad_store;
pub mod store;

pub use codec::CodecError;
pub use kad_store::{RecordStoreConfig, RecordStoreStats, RecordStoreStatsHandle, SledRecordStore};
pub use store::{StorageError, Store};
