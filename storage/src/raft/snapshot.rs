//! Snapshots of [`SledStateMachine`]: building, the byte format, installing.
//!
//! The snapshot bytes are an encoded `Envelope`: the schema version, then the encoded `Body` (last
//! applied log id, last membership, every node record and key-value pair). The version comes first
//! and outside the body so that a snapshot from a newer build is recognised and refused before its
//! body, whose shape this build may not know, is decoded.
//!
//! The current snapshot (metadata and bytes) is kept in
//! [`SNAPSHOT_TREE`](super::state_machine::SNAPSHOT_TREE). Installing replaces the whole state and
//! the current snapshot in one sled transaction, then fsyncs: a crash leaves the old state or the
//! new one, never a mix.

use std::convert::Infallible;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::Snapshot;
use openraft::{ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta};
use sled::transaction::{ConflictableTransactionError, Transactional};
use tracing::{debug, warn};

use super::state_machine::{
    CURRENT_SNAPSHOT_KEY, KV_TREE, LAST_APPLIED_KEY, MEMBERSHIP_KEY, META_TREE, Membership, NODES_TREE, NodeRecord,
    SCHEMA_KEY, SNAPSHOT_TREE, SledStateMachine, kv_key, split_kv_key, tx_result,
};
use super::{NodeInfo, RaftStorageError, SCHEMA_VERSION, TypeConfig, codec_err, io, raft_err, u64_key};
use crate::codec;
use crate::store::StorageError;

/// Makes snapshot ids built within one microsecond distinct.
static SNAPSHOT_SEQ: AtomicU64 = AtomicU64::new(0);

/// The snapshot as kept in [`SNAPSHOT_TREE`]: its metadata and its bytes.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StoredSnapshot {
    /// What openraft knows the snapshot by.
    pub(super) meta: SnapshotMeta<u64, NodeInfo>,
    /// The encoded `Envelope`.
    pub(super) data: Vec<u8>,
}

/// The outer layer of the snapshot bytes; its shape never changes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    /// The [`SCHEMA_VERSION`] of the build that made the snapshot.
    schema: u32,
    /// The encoded `Body`.
    body: Vec<u8>,
}

/// The whole state machine state.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Body {
    /// The last log id the state includes.
    last_applied: Option<LogId<u64>>,
    /// The last membership the state includes.
    last_membership: Membership,
    /// Every node record, by node id.
    nodes: Vec<(u64, NodeRecord)>,
    /// Every key-value pair.
    kv: Vec<KvRecord>,
}

/// One pair of the cluster key-value map.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct KvRecord {
    /// The namespace (no NUL byte).
    namespace: String,
    /// The key.
    key: String,
    /// The value.
    value: Vec<u8>,
}

/// Decodes snapshot bytes received with `meta`, refusing a newer schema and a body that does not
/// match the metadata.
pub(super) fn decode(meta: &SnapshotMeta<u64, NodeInfo>, data: &[u8]) -> Result<Body, StorageError> {
    let invalid = |what: String| StorageError::InvalidSnapshot { what };
    let envelope: Envelope =
        codec::decode(data).map_err(|e| invalid(format!("cannot decode snapshot {}: {e}", meta.snapshot_id)))?;
    if envelope.schema > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            what: "the raft snapshot",
            found: envelope.schema,
            supported: SCHEMA_VERSION,
        });
    }
    let body: Body = codec::decode(&envelope.body)
        .map_err(|e| invalid(format!("cannot decode the body of snapshot {}: {e}", meta.snapshot_id)))?;
    if body.last_applied != meta.last_log_id || body.last_membership != meta.last_membership {
        return Err(invalid(format!(
            "snapshot {} holds state up to {:?} with membership {}, but its metadata says {:?} with {}",
            meta.snapshot_id, body.last_applied, body.last_membership, meta.last_log_id, meta.last_membership
        )));
    }
    Ok(body)
}

/// A snapshot id unique to this call: last log id, wall-clock microseconds, sequence number.
fn snapshot_id(last: Option<LogId<u64>>) -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let seq = SNAPSHOT_SEQ.fetch_add(1, Ordering::Relaxed);
    match last {
        Some(last) => format!("{}-{}-{micros}-{seq}", last.leader_id, last.index),
        None => format!("--{micros}-{seq}"),
    }
}

impl SledStateMachine {
    /// Reads the whole state; the caller holds the apply lock so it is a consistent cut.
    fn collect_state(&self) -> Result<Body, StorageError> {
        let nodes = self
            .nodes()?
            .into_iter()
            .map(|(id, info, eligible)| (id, NodeRecord { info, eligible }))
            .collect();
        let mut kv = Vec::new();
        for row in self.kv.iter() {
            let (raw, value) = row.map_err(io(KV_TREE, "iterate key-value pairs"))?;
            let (namespace, key) = split_kv_key(&raw)?;
            kv.push(KvRecord {
                namespace,
                key,
                value: value.to_vec(),
            });
        }
        Ok(Body {
            last_applied: self.last_applied()?,
            last_membership: self.last_membership()?,
            nodes,
            kv,
        })
    }

    /// The snapshot kept in [`SNAPSHOT_TREE`], if any.
    pub(super) fn current_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let stored = self
            .snapshots
            .get(CURRENT_SNAPSHOT_KEY)
            .map_err(io(SNAPSHOT_TREE, "read the current snapshot"))?;
        stored
            .map(|bytes| codec::decode(&bytes).map_err(codec_err(SNAPSHOT_TREE)))
            .transpose()
    }

    /// Builds a snapshot of the current state and keeps it as the current snapshot unless a newer
    /// one (installed meanwhile) is already kept. Does not flush.
    fn build(&self) -> Result<(SnapshotMeta<u64, NodeInfo>, Vec<u8>), RaftStorageError> {
        let _guard = self.lock();
        let body = self
            .collect_state()
            .map_err(|e| raft_err(ErrorSubject::StateMachine, ErrorVerb::Read, &e))?;
        let meta = SnapshotMeta {
            last_log_id: body.last_applied,
            last_membership: body.last_membership.clone(),
            snapshot_id: snapshot_id(body.last_applied),
        };
        let write = |e: StorageError| raft_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, &e);
        let envelope = Envelope {
            schema: SCHEMA_VERSION,
            body: codec::encode(&body).map_err(|e| write(codec_err(SNAPSHOT_TREE)(e)))?,
        };
        let data = codec::encode(&envelope).map_err(|e| write(codec_err(SNAPSHOT_TREE)(e)))?;
        let kept = match self.current_snapshot() {
            Ok(kept) => kept.map(|s| s.meta.last_log_id),
            Err(e) => {
                warn!(error = %e, "current raft snapshot unreadable, replacing it");
                None
            }
        };
        if kept.is_some_and(|kept| kept > meta.last_log_id) {
            debug!(?kept, built = ?meta.last_log_id, "a newer snapshot is kept, not replacing it");
        } else {
            let stored = StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            };
            let bytes = codec::encode(&stored).map_err(|e| write(codec_err(SNAPSHOT_TREE)(e)))?;
            self.snapshots
                .insert(CURRENT_SNAPSHOT_KEY, bytes)
                .map_err(|e| write(io(SNAPSHOT_TREE, "save the built snapshot")(e)))?;
        }
        Ok((meta, data))
    }

    /// Replaces the whole state with `body` and the current snapshot with (`meta`, `data`), in one
    /// transaction. Does not flush.
    pub(super) fn replace_state(
        &self,
        meta: &SnapshotMeta<u64, NodeInfo>,
        body: &Body,
        data: Vec<u8>,
    ) -> Result<(), StorageError> {
        let _guard = self.lock();
        // Under the lock nothing else writes these trees, so the removals listed here are
        // exactly the keys present when the transaction runs.
        let mut nodes = sled::Batch::default();
        for key in self.nodes.iter().keys() {
            nodes.remove(key.map_err(io(NODES_TREE, "list node records"))?);
        }
        for (id, record) in &body.nodes {
            let bytes = codec::encode(record).map_err(codec_err(NODES_TREE))?;
            nodes.insert(u64_key(*id).as_slice(), bytes);
        }
        let mut kv = sled::Batch::default();
        for key in self.kv.iter().keys() {
            kv.remove(key.map_err(io(KV_TREE, "list key-value pairs"))?);
        }
        for record in &body.kv {
            let key = kv_key(&record.namespace, &record.key).ok_or_else(|| StorageError::InvalidSnapshot {
                what: format!("namespace {:?} contains a NUL byte", record.namespace),
            })?;
            kv.insert(key, record.value.as_slice());
        }
        let mut sm_meta = sled::Batch::default();
        match &meta.last_log_id {
            Some(last) => sm_meta.insert(LAST_APPLIED_KEY, codec::encode(last).map_err(codec_err(META_TREE))?),
            None => sm_meta.remove(LAST_APPLIED_KEY),
        }
        sm_meta.insert(
            MEMBERSHIP_KEY,
            codec::encode(&meta.last_membership).map_err(codec_err(META_TREE))?,
        );
        sm_meta.insert(
            SCHEMA_KEY,
            codec::encode(&SCHEMA_VERSION).map_err(codec_err(META_TREE))?,
        );
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let mut snapshots = sled::Batch::default();
        snapshots.insert(
            CURRENT_SNAPSHOT_KEY,
            codec::encode(&stored).map_err(codec_err(SNAPSHOT_TREE))?,
        );
        let result = (&self.meta, &self.nodes, &self.kv, &self.snapshots).transaction(|(m, n, k, s)| {
            m.apply_batch(&sm_meta)?;
            n.apply_batch(&nodes)?;
            k.apply_batch(&kv)?;
            s.apply_batch(&snapshots)?;
            Ok::<_, ConflictableTransactionError<Infallible>>(())
        });
        tx_result(result, SNAPSHOT_TREE, "install a snapshot")?;
        debug!(snapshot = %meta.snapshot_id, nodes = body.nodes.len(), kv = body.kv.len(), "installed raft snapshot");
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SledStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, RaftStorageError> {
        let (meta, data) = self.build()?;
        self.flush(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write)
            .await?;
        debug!(snapshot = %meta.snapshot_id, bytes = data.len(), "built raft snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::Store;
    use crate::raft::{Command, Entry, Request};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A state machine on a fresh store holding one key, applied at index 1.
    async fn state_machine_with_a_key() -> Result<(tempfile::TempDir, SledStateMachine), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let mut sm = SledStateMachine::new(&store)?;
        let command = Command::SetKv {
            namespace: "ns".to_owned(),
            key: "k".to_owned(),
            value: b"v".to_vec(),
        };
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Normal(Request::new(command, 1)),
        };
        sm.apply([entry]).await?;
        Ok((dir, sm))
    }

    /// Installs `data` with `meta` and asserts it is refused with an error whose text contains
    /// `expect`, leaving the state (and the absence of a current snapshot) untouched.
    async fn assert_refused(
        sm: &mut SledStateMachine,
        meta: &SnapshotMeta<u64, NodeInfo>,
        data: Vec<u8>,
        expect: &str,
    ) -> TestResult {
        let got = sm.install_snapshot(meta, Box::new(Cursor::new(data))).await;
        let msg = got.as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(
            msg.contains(expect),
            "expected an error containing {expect:?}, got {got:?}"
        );
        assert_eq!(
            sm.get_kv("ns", "k")?.as_deref(),
            Some(&b"v"[..]),
            "expected the state unchanged"
        );
        let applied = sm.last_applied()?.map(|l| l.index);
        assert_eq!(applied, Some(1), "expected last applied still 1, got {applied:?}");
        assert!(sm.current_snapshot()?.is_none(), "expected no current snapshot kept");
        Ok(())
    }

    /// Metadata for a snapshot of an empty state.
    fn empty_meta() -> SnapshotMeta<u64, NodeInfo> {
        SnapshotMeta {
            last_log_id: None,
            last_membership: Membership::default(),
            snapshot_id: "test".to_owned(),
        }
    }

    /// The encoded body of an empty state.
    fn empty_body() -> Result<Vec<u8>, crate::CodecError> {
        codec::encode(&Body {
            last_applied: None,
            last_membership: Membership::default(),
            nodes: Vec::new(),
            kv: Vec::new(),
        })
    }

    /// A snapshot made by a newer build (schema above ours) is refused with a storage error naming
    /// the schema, not a panic, and the state is untouched.
    #[tokio::test]
    async fn newer_schema_snapshot_is_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let data = codec::encode(&Envelope {
            schema: SCHEMA_VERSION + 1,
            // A body this build cannot decode: the schema must be checked first.
            body: vec![0xff; 16],
        })?;
        assert_refused(&mut sm, &empty_meta(), data, "schema version").await
    }

    /// Bytes that are not a snapshot are refused with a storage error, and the state is untouched.
    #[tokio::test]
    async fn garbage_snapshot_is_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        assert_refused(&mut sm, &empty_meta(), vec![0xff, 0x00, 0x13], "cannot decode snapshot").await
    }

    /// A snapshot whose body disagrees with its metadata is refused, and the state is untouched.
    #[tokio::test]
    async fn snapshot_not_matching_its_meta_is_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let data = codec::encode(&Envelope {
            schema: SCHEMA_VERSION,
            body: empty_body()?,
        })?;
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), 9)),
            ..empty_meta()
        };
        assert_refused(&mut sm, &meta, data, "but its metadata says").await
    }

    /// A snapshot of an empty state installed over a non-empty one clears it.
    #[tokio::test]
    async fn empty_snapshot_clears_the_state() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let data = codec::encode(&Envelope {
            schema: SCHEMA_VERSION,
            body: empty_body()?,
        })?;
        sm.install_snapshot(&empty_meta(), Box::new(Cursor::new(data))).await?;
        assert_eq!(sm.get_kv("ns", "k")?, None, "expected the key gone");
        assert_eq!(sm.last_applied()?, None, "expected no last applied id");
        Ok(())
    }

    /// Snapshot ids are distinct even when built for the same log id at once.
    #[test]
    fn snapshot_ids_are_distinct() {
        let last = Some(LogId::new(CommittedLeaderId::new(2, 1), 5));
        let (a, b) = (snapshot_id(last), snapshot_id(last));
        assert_ne!(a, b, "expected two distinct ids, got {a:?} twice");
    }
}
