//! [`SledStateMachine`]: the replicated cluster state on sled.
//!
//! Layout (`‖` is concatenation; role names, namespaces and addresses never contain NUL, so the
//! first NUL of a key splits it unambiguously; numbers in keys are 8 bytes big-endian, so keys
//! sort like the numbers):
//! - tree [`META_TREE`]: [`LAST_APPLIED_KEY`] → encoded `LogId`, [`MEMBERSHIP_KEY`] → encoded
//!   `StoredMembership`, [`SCHEMA_KEY`] → encoded `u32` schema version of the stored state;
//! - tree [`NODES_TREE`]: node id → encoded (`NodeInfo`, eligible flag);
//! - tree [`KV_TREE`]: namespace ‖ `0x00` ‖ key → value;
//! - tree [`POLICY_TREE`]: [`POLICY_KEY`] → encoded [`RolePolicy`] (absent until the first
//!   `SetRolePolicy`);
//! - tree [`BINDINGS_TREE`]: peer id → encoded [`KeyBindingRecord`];
//! - tree [`GRANTS_TREE`]: role ‖ `0x00` ‖ peer id → encoded [`GrantRecord`];
//! - tree [`EPOCHS_TREE`]: role ‖ `0x00` ‖ epoch → encoded [`RoleEpochRecord`] (a role's epochs
//!   are 1..=current without gaps; the last key of the role's prefix is the current epoch);
//! - tree [`VERSIONS_TREE`]: address ‖ `0x00` ‖ version → encoded [`VersionEntry`];
//! - tree [`VERSION_HEADS_TREE`]: address → latest version (8 bytes big-endian), because a sled
//!   transaction can read keys but not scan a range;
//! - tree [`RECORDS_TREE`]: record key → encoded (address, version), the index that makes
//!   `AppendVersion` idempotent by record key;
//! - tree [`SNAPSHOT_TREE`]: the current snapshot (see the `snapshot` module).
//!
//! Schema history: version 1 had the meta, nodes, kv and snapshot trees; version 2 added the
//! cluster data trees from [`POLICY_TREE`] to [`RECORDS_TREE`]. A state stored by an older
//! schema is upgraded at open (the new trees start empty); one stored by a newer build is
//! refused.
//!
//! A batch of entries is applied in one sled transaction over every tree but [`SNAPSHOT_TREE`],
//! together with the last applied log id (not fsynced: after a crash the state is that of a whole
//! number of batches, its last applied id says which, and openraft re-applies the rest from the
//! fsynced log; logs are purged only behind a snapshot, whose build and install flush). Applying
//! and snapshotting are serialised by a lock shared between clones, so a snapshot is a consistent
//! cut of the state. How each command is applied is in the `apply` module; the read API of the
//! cluster data in the `reads` module.

use std::convert::Infallible;
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend};
use sled::transaction::{TransactionError, Transactional};
use tracing::{info, warn};

use super::apply::{ApplyAbort, ApplyTx};
#[cfg(doc)]
use super::cluster::{GrantRecord, KeyBindingRecord, RoleEpochRecord, RolePolicy, VersionEntry};
use super::typ::{LogId, SnapshotMeta};
use super::{Entry, NodeInfo, RaftStorageError, Response, SCHEMA_VERSION, TypeConfig};
use super::{codec_err, io, key_u64, raft_err};
use crate::codec;
use crate::store::{StorageError, Store};

pub use super::schema::{
    BINDINGS_TREE, CURRENT_SNAPSHOT_DATA_KEY, CURRENT_SNAPSHOT_KEY, CURRENT_SNAPSHOT_META_KEY, EPOCHS_TREE,
    GRANTS_TREE, KV_TREE, LAST_APPLIED_KEY, MEMBERSHIP_KEY, NODES_TREE, POLICY_KEY, POLICY_TREE, RECORDS_TREE,
    SCHEMA_KEY, SM_META_TREE as META_TREE, SNAPSHOT_DATA_TREES, SNAPSHOT_TREE, VERSION_HEADS_TREE, VERSIONS_TREE,
};
use super::schema::{Membership, MetaTree, NodeRecord, kv_key};

/// The replicated state machine on sled: the trees listed in the [module docs](self) (last
/// applied log id, membership and schema; node records; the cluster key-value map; the role
/// policy, key bindings, grants and key epochs; the context version index; the current snapshot).
///
/// Cloning is cheap; clones share the trees and the apply/snapshot lock, so one clone can be given
/// to openraft and another kept for the read side.
#[derive(Clone)]
pub struct SledStateMachine {
    /// The database, for flushing.
    pub(super) store: Store,
    /// Last applied log id, membership, schema version.
    pub(super) meta: sled::Tree,
    /// Node records.
    pub(super) nodes: sled::Tree,
    /// Cluster key-value map.
    pub(super) kv: sled::Tree,
    /// The role policy.
    pub(super) policy: sled::Tree,
    /// Key bindings by peer id.
    pub(super) bindings: sled::Tree,
    /// Role grants by role and peer id.
    pub(super) grants: sled::Tree,
    /// Role key epochs by role and epoch.
    pub(super) epochs: sled::Tree,
    /// Version entries by address and version.
    pub(super) versions: sled::Tree,
    /// Latest version number by address.
    pub(super) heads: sled::Tree,
    /// Record key → (address, version).
    pub(super) records: sled::Tree,
    /// The current snapshot.
    pub(super) snapshots: sled::Tree,
    /// Held while state changes (apply, install) and while a snapshot reads the state.
    write_lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for SledStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStateMachine").field("store", &self.store).finish()
    }
}

impl MetaTree for SledStateMachine {
    fn meta_tree(&self) -> (&sled::Tree, &'static str) {
        (&self.meta, META_TREE)
    }
}

impl SledStateMachine {
    /// Holds off every change to the state (applies, snapshot installs) until the guard is
    /// dropped, so a reader outside openraft (a backup) sees one consistent cut of the trees.
    /// Blocking; keep it short: Raft applies wait meanwhile.
    pub fn hold_changes(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (creating if needed) the state machine trees in `store` and checks the stored state,
    /// upgrading a state stored by an older schema (its new trees start empty). Call it once per
    /// store and clone the result: clones share the apply/snapshot lock.
    ///
    /// Fails with [`StorageError::SchemaTooNew`] if a newer build wrote the state, and with a codec
    /// or corruption error if the schema, last applied log id or membership cannot be read.
    pub fn new(store: &Store) -> Result<Self, StorageError> {
        let sm = Self {
            store: store.clone(),
            meta: store.tree(META_TREE)?,
            nodes: store.tree(NODES_TREE)?,
            kv: store.tree(KV_TREE)?,
            policy: store.tree(POLICY_TREE)?,
            bindings: store.tree(BINDINGS_TREE)?,
            grants: store.tree(GRANTS_TREE)?,
            epochs: store.tree(EPOCHS_TREE)?,
            versions: store.tree(VERSIONS_TREE)?,
            heads: store.tree(VERSION_HEADS_TREE)?,
            records: store.tree(RECORDS_TREE)?,
            snapshots: store.tree(SNAPSHOT_TREE)?,
            write_lock: Arc::new(Mutex::new(())),
        };
        let schema: Option<u32> = sm.read_meta(SCHEMA_KEY, "read the schema version")?;
        match schema {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StorageError::SchemaTooNew {
                    what: "the raft state machine",
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(found) if found == SCHEMA_VERSION => {}
            // New, or written by an older build. Every upgrade so far only added trees (which
            // open empty) and variants (which old data never uses), so the types of this build
            // read the old state as it is; from now on it holds this version's data.
            found => {
                if let Some(found) = found {
                    info!(
                        from = found,
                        to = SCHEMA_VERSION,
                        "upgrading the raft state machine schema"
                    );
                }
                let bytes = codec::encode(&SCHEMA_VERSION).map_err(codec_err(META_TREE))?;
                sm.meta
                    .insert(SCHEMA_KEY, bytes)
                    .map_err(io(META_TREE, "write the schema version"))?;
                sm.store.flush()?;
            }
        }
        sm.last_applied()?;
        sm.last_membership()?;
        Ok(sm)
    }

    /// The schema version of the stored state (this build's [`SCHEMA_VERSION`] once opened).
    pub fn stored_schema(&self) -> Result<Option<u32>, StorageError> {
        self.read_meta(SCHEMA_KEY, "read the schema version")
    }

    /// Read side for the API: every node record, as (node id, info, admin-eligible), by node id.
    pub fn nodes(&self) -> Result<Vec<(u64, NodeInfo, bool)>, StorageError> {
        let mut out = Vec::new();
        for row in self.nodes.iter() {
            let (key, value) = row.map_err(io(NODES_TREE, "iterate node records"))?;
            let id = key_u64(&key).ok_or_else(|| StorageError::Corrupt {
                tree: NODES_TREE.to_owned(),
                what: format!("key of {} bytes, expected 8", key.len()),
            })?;
            let record: NodeRecord = codec::decode(&value).map_err(codec_err(NODES_TREE))?;
            out.push((id, record.info, record.eligible));
        }
        Ok(out)
    }

    /// Read side for the API: the value of `key` in `namespace`, if set.
    pub fn get_kv(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(k) = kv_key(namespace, key) else {
            return Ok(None);
        };
        let value = self.kv.get(k).map_err(io(KV_TREE, "read a key"))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// The id of the last log entry applied to this state machine, if any.
    pub fn last_applied(&self) -> Result<Option<LogId>, StorageError> {
        self.read_meta(LAST_APPLIED_KEY, "read the last applied log id")
    }

    /// The last membership applied to this state machine (empty if none).
    pub(super) fn last_membership(&self) -> Result<Membership, StorageError> {
        Ok(self
            .read_meta(MEMBERSHIP_KEY, "read the last membership")?
            .unwrap_or_default())
    }

    /// The trees a snapshot holds, by name, in [`SNAPSHOT_DATA_TREES`] order.
    pub(super) fn data_trees(&self) -> [(&'static str, &sled::Tree); SNAPSHOT_DATA_TREES.len()] {
        [
            (NODES_TREE, &self.nodes),
            (KV_TREE, &self.kv),
            (POLICY_TREE, &self.policy),
            (BINDINGS_TREE, &self.bindings),
            (GRANTS_TREE, &self.grants),
            (EPOCHS_TREE, &self.epochs),
            (VERSIONS_TREE, &self.versions),
            (VERSION_HEADS_TREE, &self.heads),
            (RECORDS_TREE, &self.records),
        ]
    }

    /// Takes the apply/snapshot lock. It guards no data of its own, so a poisoned lock is still
    /// usable: a panic elsewhere cannot have left sled half-written (transactions are atomic).
    pub(super) fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `entries` in one transaction, without flushing; returns one response per entry.
    fn apply_entries(&self, entries: &[Entry]) -> Result<Vec<Response>, RaftStorageError> {
        let Some(last) = entries.last() else {
            return Ok(Vec::new());
        };
        let last_applied = codec::encode(&last.log_id).map_err(|e| {
            raft_err(
                ErrorSubject::Apply(last.log_id),
                ErrorVerb::Write,
                &codec_err(META_TREE)(e),
            )
        })?;
        let _guard = self.lock();
        let trees = (
            &self.meta,
            &self.nodes,
            &self.kv,
            &self.policy,
            &self.bindings,
            &self.grants,
            &self.epochs,
            &self.versions,
            &self.heads,
            &self.records,
        );
        let result = trees.transaction(
            |(meta, nodes, kv, policy, bindings, grants, epochs, versions, heads, records)| {
                let mut responses = Vec::with_capacity(entries.len());
                for entry in entries {
                    let tx = ApplyTx {
                        log_id: entry.log_id,
                        nodes,
                        kv,
                        policy,
                        bindings,
                        grants,
                        epochs,
                        versions,
                        heads,
                        records,
                    };
                    let response = match &entry.payload {
                        EntryPayload::Blank => Response::Ok,
                        EntryPayload::Normal(request) => tx.apply_request(request)?,
                        EntryPayload::Membership(membership) => {
                            let stored = Membership::new(Some(entry.log_id), membership.clone());
                            let bytes = codec::encode(&stored).map_err(|e| {
                                sled::transaction::ConflictableTransactionError::Abort(ApplyAbort {
                                    log_id: entry.log_id,
                                    source: codec_err(META_TREE)(e),
                                })
                            })?;
                            meta.insert(MEMBERSHIP_KEY, bytes)?;
                            Response::Ok
                        }
                    };
                    responses.push(response);
                }
                meta.insert(LAST_APPLIED_KEY, last_applied.as_slice())?;
                Ok(responses)
            },
        );
        result.map_err(|e| match e {
            TransactionError::Abort(ApplyAbort { log_id, source }) => {
                raft_err(ErrorSubject::Apply(log_id), ErrorVerb::Write, &source)
            }
            TransactionError::Storage(e) => raft_err(
                ErrorSubject::Apply(last.log_id),
                ErrorVerb::Write,
                &io(META_TREE, "apply log entries")(e),
            ),
        })
    }

    /// Flushes, mapping a failure to openraft's error for `subject` and `verb`.
    pub(super) async fn flush(&self, subject: ErrorSubject<u64>, verb: ErrorVerb) -> Result<(), RaftStorageError> {
        self.store.flush_async().await.map_err(|e| raft_err(subject, verb, &e))
    }
}

impl RaftStateMachine<TypeConfig> for SledStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), RaftStorageError> {
        let read = |e: StorageError| raft_err(ErrorSubject::StateMachine, ErrorVerb::Read, &e);
        Ok((
            self.last_applied().map_err(read)?,
            self.last_membership().map_err(read)?,
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Not fsynced: state and last_applied move together in one transaction, so after a crash
        // the state is consistent with its last_applied and openraft re-applies the rest from
        // the (fsynced) log. Logs are purged only behind a snapshot, whose build flushes.
        let responses = self.apply_entries(&entries)?;
        for (entry, response) in entries.iter().zip(&responses) {
            if let Response::Rejected { reason } = response {
                warn!(log_id = %entry.log_id, %reason, "raft command rejected");
            }
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        let data = snapshot.into_inner();
        let state = super::snapshot::decode(meta, &data).map_err(|e| raft_err(subject(), ErrorVerb::Read, &e))?;
        self.replace_state(meta, state, &data)
            .map_err(|e| raft_err(subject(), ErrorVerb::Write, &e))?;
        self.flush(subject(), ErrorVerb::Write).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, RaftStorageError> {
        let current = self
            .current_snapshot()
            .map_err(|e| raft_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))?;
        Ok(current.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

/// Maps the result of a transaction that never aborts.
pub(super) fn tx_result<T>(
    r: Result<T, TransactionError<Infallible>>,
    tree: &'static str,
    op: &'static str,
) -> Result<T, StorageError> {
    r.map_err(|e| match e {
        TransactionError::Storage(e) => io(tree, op)(e),
        TransactionError::Abort(never) => match never {},
    })
}
