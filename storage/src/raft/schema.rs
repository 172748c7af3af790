//! The on-disk schema of the Raft storage: every tree name and fixed key, the key encodings, the
//! node record and the one reader of the meta trees.
//!
//! [`log_store`](super::log_store) (the log and vote), [`state_machine`](super::state_machine)
//! (the replicated state), `apply`, `snapshot` and `reads` all take their names from here, so no
//! file of the Raft storage imports another's constants, and backup and readers have one list of
//! keyspaces. The layout of each tree is described where it is written: the log trees in
//! [`log_store`](super::log_store), the state machine trees in
//! [`state_machine`](super::state_machine).

use super::{NodeInfo, read_decoded};
use crate::store::StorageError;

/// Name of the tree holding log entries by index.
pub const LOG_TREE: &str = "raft_log";
/// Name of the tree holding the vote, the committed log id and the last purged log id.
pub const LOG_META_TREE: &str = "raft_meta";
/// Key of the persisted vote in [`LOG_META_TREE`].
pub const VOTE_KEY: &[u8] = b"vote";
/// Key of the persisted committed log id in [`LOG_META_TREE`].
pub const COMMITTED_KEY: &[u8] = b"committed";
/// Key of the last purged log id in [`LOG_META_TREE`].
pub const LAST_PURGED_KEY: &[u8] = b"last_purged";

/// Name of the tree holding the state machine's last applied log id, last membership and schema
/// version.
pub const SM_META_TREE: &str = "sm_meta";
/// Name of the tree holding node records by node id.
pub const NODES_TREE: &str = "sm_nodes";
/// Name of the tree holding the namespaced cluster key-value map.
pub const KV_TREE: &str = "sm_kv";
/// Name of the tree holding the role policy (schema 2).
pub const POLICY_TREE: &str = "sm_policy";
/// Name of the tree holding nodes' X25519 key bindings by peer id (schema 2).
pub const BINDINGS_TREE: &str = "sm_key_bindings";
/// Name of the tree holding role grants by role and peer id (schema 2).
pub const GRANTS_TREE: &str = "sm_grants";
/// Name of the tree holding role key epochs by role and epoch (schema 2).
pub const EPOCHS_TREE: &str = "sm_role_epochs";
/// Name of the tree holding the version index by address and version (schema 2).
pub const VERSIONS_TREE: &str = "sm_versions";
/// Name of the tree holding the latest version number of each address (schema 2).
pub const VERSION_HEADS_TREE: &str = "sm_version_heads";
/// Name of the tree mapping each record key of the version index to its address and version
/// (schema 2).
pub const RECORDS_TREE: &str = "sm_record_index";
/// Name of the tree holding the current snapshot.
pub const SNAPSHOT_TREE: &str = "sm_snapshot";
/// Key of the last applied log id in [`SM_META_TREE`].
pub const LAST_APPLIED_KEY: &[u8] = b"last_applied";
/// Key of the last applied membership in [`SM_META_TREE`].
pub const MEMBERSHIP_KEY: &[u8] = b"last_membership";
/// Key of the schema version of the stored state in [`SM_META_TREE`].
pub const SCHEMA_KEY: &[u8] = b"schema";
/// Key of the role policy in [`POLICY_TREE`].
pub const POLICY_KEY: &[u8] = b"policy";
/// Key of the current snapshot, metadata and bytes together, in [`SNAPSHOT_TREE`] as schema 1
/// wrote it; schema 2 reads it but writes [`CURRENT_SNAPSHOT_META_KEY`] and
/// [`CURRENT_SNAPSHOT_DATA_KEY`] instead.
pub const CURRENT_SNAPSHOT_KEY: &[u8] = b"current";
/// Key of the current snapshot's encoded metadata in [`SNAPSHOT_TREE`].
pub const CURRENT_SNAPSHOT_META_KEY: &[u8] = b"current_meta";
/// Key of the current snapshot's bytes (not re-encoded, so not bound by the codec's value limit)
/// in [`SNAPSHOT_TREE`].
pub const CURRENT_SNAPSHOT_DATA_KEY: &[u8] = b"current_data";

/// Every tree a snapshot holds, in snapshot order: the whole replicated state except
/// [`SM_META_TREE`] (whose last applied id and membership travel in the snapshot metadata).
pub const SNAPSHOT_DATA_TREES: [&str; 9] = [
    NODES_TREE,
    KV_TREE,
    POLICY_TREE,
    BINDINGS_TREE,
    GRANTS_TREE,
    EPOCHS_TREE,
    VERSIONS_TREE,
    VERSION_HEADS_TREE,
    RECORDS_TREE,
];

/// The membership as stored with the state machine.
pub(super) type Membership = super::typ::StoredMembership;

/// One node record (the value in [`NODES_TREE`]): what the node advertises and whether it may
/// become admin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct NodeRecord {
    /// What the node advertises.
    pub(super) info: NodeInfo,
    /// Whether the node is admin-eligible.
    pub(super) eligible: bool,
}

/// The [`KV_TREE`] key of `key` in `namespace`; `None` if the namespace contains NUL.
pub(super) fn kv_key(namespace: &str, key: &str) -> Option<Vec<u8>> {
    if namespace.contains('\0') {
        return None;
    }
    let mut k = Vec::with_capacity(namespace.len() + 1 + key.len());
    k.extend_from_slice(namespace.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    Some(k)
}

/// A store with a meta tree of encoded values under fixed keys: the log store
/// ([`LOG_META_TREE`]) and the state machine ([`SM_META_TREE`]).
pub(super) trait MetaTree {
    /// The meta tree and its name (for errors).
    fn meta_tree(&self) -> (&sled::Tree, &'static str);

    /// Reads and decodes the value at `key` of the meta tree; `op` names the read in errors.
    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        op: &'static str,
    ) -> Result<Option<T>, StorageError> {
        let (tree, name) = self.meta_tree();
        read_decoded(tree, name, key, op)
    }
}
