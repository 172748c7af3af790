//! Snapshots of [`SledStateMachine`]: building, the byte format, installing.
//!
//! A snapshot is the raw content (sled keys and values, copied as they are) of every tree in
//! [`SNAPSHOT_DATA_TREES`], with the last applied log id and membership, so installing one
//! reproduces each tree exactly. The bytes are a sequence of codec-encoded values:
//!
//! 1. an `Envelope`: the schema version, then the encoded `Header` (last applied log id, last
//!    membership). The version comes first so that a snapshot from a newer build is recognised and
//!    refused before anything whose shape this build may not know is decoded;
//! 2. `Frame::Rows`, each holding consecutive rows of one tree, about [`FRAME_BYTES`] of keys and
//!    values per frame (a single bigger row gets a frame of its own), so that each encoded value
//!    stays under the codec's [`MAX_ENCODED_BYTES`](crate::codec::MAX_ENCODED_BYTES) however
//!    large the state grows;
//! 3. `Frame::End` with the number of rows, so that a truncated snapshot is refused.
//!
//! Schema 1 snapshots (one `Envelope` holding a `BodyV1`: typed node records and key-value
//! pairs) are still installed, leaving the trees schema 2 added empty. Builds of schema 1 refuse
//! schema 2 snapshots as undecodable (they expect nothing after the envelope).
//!
//! The current snapshot is kept in [`SNAPSHOT_TREE`]: its metadata and bytes under two keys
//! (bytes unencoded, so not bound by the codec limit), written together. A current snapshot kept
//! by schema 1 (both in one value under [`CURRENT_SNAPSHOT_KEY`]) is still read. Installing
//! replaces the whole state and the current snapshot in one sled transaction, then fsyncs: a
//! crash leaves the old state or the new one, never a mix.

use std::convert::Infallible;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::Snapshot;
use openraft::{ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use sled::transaction::{ConflictableTransactionError, Transactional};
use tracing::{debug, warn};

use super::schema::{
    CURRENT_SNAPSHOT_DATA_KEY, CURRENT_SNAPSHOT_KEY, CURRENT_SNAPSHOT_META_KEY, KV_TREE, LAST_APPLIED_KEY,
    MEMBERSHIP_KEY, Membership, NODES_TREE, NodeRecord, SCHEMA_KEY, SM_META_TREE as META_TREE, SNAPSHOT_DATA_TREES,
    SNAPSHOT_TREE, kv_key,
};
use super::state_machine::{SledStateMachine, tx_result};
use super::typ::{LogId, SnapshotMeta};
use super::{RaftStorageError, SCHEMA_VERSION, TypeConfig, codec_err, io, raft_err, u64_key};
use crate::codec;
use crate::store::StorageError;

/// Bytes of keys and values gathered into one frame before it is written.
const FRAME_BYTES: usize = 1024 * 1024;

/// Makes snapshot ids built within one microsecond distinct.
static SNAPSHOT_SEQ: AtomicU64 = AtomicU64::new(0);

/// One sled row: key and value.
type Row = (Vec<u8>, Vec<u8>);

/// The snapshot kept in [`SNAPSHOT_TREE`]: its metadata and its bytes (also the value schema 1
/// kept under [`CURRENT_SNAPSHOT_KEY`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StoredSnapshot {
    /// What openraft knows the snapshot by.
    pub(super) meta: SnapshotMeta,
    /// The snapshot bytes.
    pub(super) data: Vec<u8>,
}

/// The first value of the snapshot bytes; its shape never changes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    /// The [`SCHEMA_VERSION`] of the build that made the snapshot.
    schema: u32,
    /// The encoded `Header` (schema 2) or `BodyV1` (schema 1).
    body: Vec<u8>,
}

/// What a schema 2 snapshot says about itself.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Header {
    /// The last log id the state includes.
    last_applied: Option<LogId>,
    /// The last membership the state includes.
    last_membership: Membership,
}

/// A value following the envelope of a schema 2 snapshot.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Frame {
    /// Consecutive rows of one tree.
    Rows {
        /// The tree, one of [`SNAPSHOT_DATA_TREES`].
        tree: String,
        /// Its rows, raw.
        rows: Vec<Row>,
    },
    /// The end of the snapshot.
    End {
        /// How many rows all the frames held.
        rows: u64,
    },
}

/// The whole state in a schema 1 snapshot.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct BodyV1 {
    /// The last log id the state includes.
    last_applied: Option<LogId>,
    /// The last membership the state includes.
    last_membership: Membership,
    /// Every node record, by node id.
    nodes: Vec<(u64, NodeRecord)>,
    /// Every key-value pair.
    kv: Vec<KvRecordV1>,
}

/// One pair of the cluster key-value map in a schema 1 snapshot.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct KvRecordV1 {
    /// The namespace (no NUL byte).
    namespace: String,
    /// The key.
    key: String,
    /// The value.
    value: Vec<u8>,
}

/// A decoded snapshot: the state it holds.
pub(super) struct SnapshotState {
    /// The rows of each tree, in [`SNAPSHOT_DATA_TREES`] order.
    trees: [Vec<Row>; SNAPSHOT_DATA_TREES.len()],
}

impl SnapshotState {
    /// A state with every tree empty.
    fn empty() -> Self {
        Self {
            trees: std::array::from_fn(|_| Vec::new()),
        }
    }

    /// The rows of `tree`, which must be one of [`SNAPSHOT_DATA_TREES`].
    fn rows_mut(&mut self, tree: &str) -> Option<&mut Vec<Row>> {
        let at = SNAPSHOT_DATA_TREES.iter().position(|t| *t == tree)?;
        self.trees.get_mut(at)
    }

    /// How many rows it holds.
    fn len(&self) -> usize {
        self.trees.iter().map(Vec::len).sum()
    }
}

/// Decodes snapshot bytes received with `meta`, refusing a newer schema, a truncated or malformed
/// snapshot and one whose state does not match the metadata.
pub(super) fn decode(meta: &SnapshotMeta, data: &[u8]) -> Result<SnapshotState, StorageError> {
    let invalid = |what: String| StorageError::InvalidSnapshot { what };
    let id = &meta.snapshot_id;
    let (envelope, used): (Envelope, usize) =
        codec::decode_prefix(data).map_err(|e| invalid(format!("cannot decode snapshot {id}: {e}")))?;
    if envelope.schema > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            what: "the raft snapshot",
            found: envelope.schema,
            supported: SCHEMA_VERSION,
        });
    }
    let (header, state) = match envelope.schema {
        1 => {
            if used != data.len() {
                return Err(invalid(format!(
                    "schema 1 snapshot {id} has {} bytes after its body",
                    data.len() - used
                )));
            }
            decode_v1(&envelope.body).map_err(|e| invalid(format!("snapshot {id}: {e}")))?
        }
        2 | 3 => {
            let header: Header = codec::decode(&envelope.body)
                .map_err(|e| invalid(format!("cannot decode the header of snapshot {id}: {e}")))?;
            let state = decode_frames(&data[used..]).map_err(|e| invalid(format!("snapshot {id}: {e}")))?;
            (header, state)
        }
        other => return Err(invalid(format!("snapshot {id} has unknown schema version {other}"))),
    };
    if header.last_applied != meta.last_log_id || header.last_membership != meta.last_membership {
        return Err(invalid(format!(
            "snapshot {id} holds state up to {:?} with membership {}, but its metadata says {:?} with {}",
            header.last_applied, header.last_membership, meta.last_log_id, meta.last_membership
        )));
    }
    Ok(state)
}

/// Decodes the body of a schema 1 snapshot into its header and the rows schema 1 stored.
fn decode_v1(body: &[u8]) -> Result<(Header, SnapshotState), String> {
    let body: BodyV1 = codec::decode(body).map_err(|e| format!("cannot decode the body: {e}"))?;
    let mut state = SnapshotState::empty();
    let nodes = state.rows_mut(NODES_TREE).ok_or("no node tree")?;
    for (id, record) in &body.nodes {
        let value = codec::encode(record).map_err(|e| format!("cannot re-encode node {id}: {e}"))?;
        nodes.push((u64_key(*id).to_vec(), value));
    }
    let kv = state.rows_mut(KV_TREE).ok_or("no key-value tree")?;
    for record in body.kv {
        let key = kv_key(&record.namespace, &record.key)
            .ok_or_else(|| format!("namespace {:?} contains a NUL byte", record.namespace))?;
        kv.push((key, record.value));
    }
    let header = Header {
        last_applied: body.last_applied,
        last_membership: body.last_membership,
    };
    Ok((header, state))
}

/// Decodes the frames that follow the envelope of a schema 2 snapshot.
fn decode_frames(mut data: &[u8]) -> Result<SnapshotState, String> {
    let mut state = SnapshotState::empty();
    loop {
        if data.is_empty() {
            return Err(format!("truncated after {} rows, no end frame", state.len()));
        }
        let (frame, used): (Frame, usize) =
            codec::decode_prefix(data).map_err(|e| format!("cannot decode a frame: {e}"))?;
        data = &data[used..];
        match frame {
            Frame::Rows { tree, rows } => state
                .rows_mut(&tree)
                .ok_or_else(|| format!("holds rows of unknown tree {tree:?}"))?
                .extend(rows),
            Frame::End { rows } => {
                if u64::try_from(state.len()).ok() != Some(rows) {
                    return Err(format!("holds {} rows but its end frame says {rows}", state.len()));
                }
                if !data.is_empty() {
                    return Err(format!("has {} bytes after its end frame", data.len()));
                }
                return Ok(state);
            }
        }
    }
}

/// Appends the frames of `tree`'s rows to `out`; returns how many rows it wrote.
fn encode_tree(out: &mut Vec<u8>, name: &'static str, tree: &sled::Tree) -> Result<u64, StorageError> {
    let mut frame = Vec::new();
    let mut frame_bytes = 0usize;
    let mut count = 0u64;
    let emit = |out: &mut Vec<u8>, rows: Vec<Row>| -> Result<(), StorageError> {
        let frame = Frame::Rows {
            tree: name.to_owned(),
            rows,
        };
        out.extend(codec::encode(&frame).map_err(codec_err(SNAPSHOT_TREE))?);
        Ok(())
    };
    for row in tree.iter() {
        let (key, value) = row.map_err(io(name, "read rows for a snapshot"))?;
        let size = key.len() + value.len();
        // Close the frame before a row that would take it past the budget, so a frame holds at
        // most FRAME_BYTES of rows, or one row alone.
        if !frame.is_empty() && frame_bytes + size > FRAME_BYTES {
            emit(out, std::mem::take(&mut frame))?;
            frame_bytes = 0;
        }
        frame.push((key.to_vec(), value.to_vec()));
        frame_bytes += size;
        count += 1;
    }
    if !frame.is_empty() {
        emit(out, frame)?;
    }
    Ok(count)
}

/// A snapshot id unique to this call: last log id, wall-clock microseconds, sequence number.
fn snapshot_id(last: Option<LogId>) -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let seq = SNAPSHOT_SEQ.fetch_add(1, Ordering::Relaxed);
    match last {
        Some(last) => format!("{}-{}-{micros}-{seq}", last.leader_id, last.index),
        None => format!("--{micros}-{seq}"),
    }
}

/// The [`SNAPSHOT_TREE`] writes that make (`meta`, `data`) the current snapshot.
fn current_snapshot_batch(meta: &SnapshotMeta, data: &[u8]) -> Result<sled::Batch, StorageError> {
    let mut batch = sled::Batch::default();
    batch.remove(CURRENT_SNAPSHOT_KEY);
    batch.insert(
        CURRENT_SNAPSHOT_META_KEY,
        codec::encode(meta).map_err(codec_err(SNAPSHOT_TREE))?,
    );
    batch.insert(CURRENT_SNAPSHOT_DATA_KEY, data);
    Ok(batch)
}

impl SledStateMachine {
    /// Encodes the whole state as snapshot bytes; the caller holds the apply lock so it is a
    /// consistent cut. Returns the header and the bytes.
    fn encode_state(&self) -> Result<(Header, Vec<u8>), StorageError> {
        let header = Header {
            last_applied: self.last_applied()?,
            last_membership: self.last_membership()?,
        };
        let envelope = Envelope {
            schema: SCHEMA_VERSION,
            body: codec::encode(&header).map_err(codec_err(SNAPSHOT_TREE))?,
        };
        let mut data = codec::encode(&envelope).map_err(codec_err(SNAPSHOT_TREE))?;
        let mut rows = 0u64;
        for (name, tree) in self.data_trees() {
            rows += encode_tree(&mut data, name, tree)?;
        }
        data.extend(codec::encode(&Frame::End { rows }).map_err(codec_err(SNAPSHOT_TREE))?);
        Ok((header, data))
    }

    /// The snapshot kept in [`SNAPSHOT_TREE`], if any.
    pub(super) fn current_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let read = |key, op| self.snapshots.get(key).map_err(io(SNAPSHOT_TREE, op));
        if let Some(meta) = read(CURRENT_SNAPSHOT_META_KEY, "read the current snapshot metadata")? {
            let meta = codec::decode(&meta).map_err(codec_err(SNAPSHOT_TREE))?;
            let data =
                read(CURRENT_SNAPSHOT_DATA_KEY, "read the current snapshot")?.ok_or_else(|| StorageError::Corrupt {
                    tree: SNAPSHOT_TREE.to_owned(),
                    what: "the current snapshot has metadata but no bytes".to_owned(),
                })?;
            return Ok(Some(StoredSnapshot {
                meta,
                data: data.to_vec(),
            }));
        }
        read(CURRENT_SNAPSHOT_KEY, "read the current snapshot")?
            .map(|bytes| codec::decode(&bytes).map_err(codec_err(SNAPSHOT_TREE)))
            .transpose()
    }

    /// Builds a snapshot of the current state and keeps it as the current snapshot unless a newer
    /// one (installed meanwhile) is already kept. Does not flush.
    fn build(&self) -> Result<(SnapshotMeta, Vec<u8>), RaftStorageError> {
        let _guard = self.lock();
        let (header, data) = self
            .encode_state()
            .map_err(|e| raft_err(ErrorSubject::StateMachine, ErrorVerb::Read, &e))?;
        let meta = SnapshotMeta {
            last_log_id: header.last_applied,
            last_membership: header.last_membership,
            snapshot_id: snapshot_id(header.last_applied),
        };
        let write = |e: StorageError| raft_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, &e);
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
            let batch = current_snapshot_batch(&meta, &data).map_err(write)?;
            self.snapshots
                .apply_batch(batch)
                .map_err(|e| write(io(SNAPSHOT_TREE, "save the built snapshot")(e)))?;
        }
        Ok((meta, data))
    }

    /// Replaces the whole state with `state` and the current snapshot with (`meta`, `data`), in
    /// one transaction. Does not flush.
    pub(super) fn replace_state(
        &self,
        meta: &SnapshotMeta,
        state: SnapshotState,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let _guard = self.lock();
        let rows = state.len();
        // Under the lock nothing else writes these trees, so the removals listed here are
        // exactly the keys present when the transaction runs.
        let mut batches = Vec::with_capacity(SNAPSHOT_DATA_TREES.len() + 2);
        let mut trees = Vec::with_capacity(SNAPSHOT_DATA_TREES.len() + 2);
        for ((name, tree), new_rows) in self.data_trees().into_iter().zip(state.trees) {
            let mut batch = sled::Batch::default();
            for key in tree.iter().keys() {
                batch.remove(key.map_err(io(name, "list the keys a snapshot replaces"))?);
            }
            for (key, value) in new_rows {
                batch.insert(key, value);
            }
            batches.push(batch);
            trees.push(tree);
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
        batches.push(sm_meta);
        trees.push(&self.meta);
        batches.push(current_snapshot_batch(meta, data)?);
        trees.push(&self.snapshots);
        let result = trees[..].transaction(|views| {
            for (view, batch) in views.iter().zip(&batches) {
                view.apply_batch(batch)?;
            }
            Ok::<_, ConflictableTransactionError<Infallible>>(())
        });
        tx_result(result, SNAPSHOT_TREE, "install a snapshot")?;
        debug!(snapshot = %meta.snapshot_id, rows, "installed raft snapshot");
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
    use crate::raft::{Command, Entry, NodeInfo, Request};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A `SetKv` entry at index `index`.
    fn set_kv(index: u64, key: &str, value: Vec<u8>) -> Entry {
        let command = Command::SetKv {
            namespace: "ns".to_owned(),
            key: key.to_owned(),
            value,
        };
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Request::new(command, 1)),
        }
    }

    /// A state machine on a fresh store holding one key, applied at index 1.
    async fn state_machine_with_a_key() -> Result<(tempfile::TempDir, SledStateMachine), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let mut sm = SledStateMachine::new(&store)?;
        sm.apply([set_kv(1, "k", b"v".to_vec())]).await?;
        Ok((dir, sm))
    }

    /// Installs `data` with `meta` and asserts it is refused with an error whose text contains
    /// `expect`, leaving the state (and the absence of a current snapshot) untouched.
    async fn assert_refused(sm: &mut SledStateMachine, meta: &SnapshotMeta, data: Vec<u8>, expect: &str) -> TestResult {
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
    fn empty_meta() -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: None,
            last_membership: Membership::default(),
            snapshot_id: "test".to_owned(),
        }
    }

    /// Schema 2 snapshot bytes: the envelope of an empty-state header, then `frames`.
    fn v2_bytes(frames: &[Frame]) -> Result<Vec<u8>, crate::CodecError> {
        let header = Header {
            last_applied: None,
            last_membership: Membership::default(),
        };
        let mut data = codec::encode(&Envelope {
            schema: 2,
            body: codec::encode(&header)?,
        })?;
        for frame in frames {
            data.extend(codec::encode(frame)?);
        }
        Ok(data)
    }

    /// A snapshot made by a newer build (schema above ours) is refused with a storage error naming
    /// the schema, not a panic, and the state is untouched.
    #[tokio::test]
    async fn newer_schema_snapshot_is_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let mut data = codec::encode(&Envelope {
            schema: SCHEMA_VERSION + 1,
            // A body this build cannot decode: the schema must be checked first.
            body: vec![0xff; 16],
        })?;
        data.extend([0xff; 8]);
        assert_refused(&mut sm, &empty_meta(), data, "schema version").await
    }

    /// Bytes that are not a snapshot are refused with a storage error, and the state is untouched.
    #[tokio::test]
    async fn garbage_snapshot_is_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        assert_refused(&mut sm, &empty_meta(), vec![0xff, 0x00, 0x13], "cannot decode snapshot").await
    }

    /// A snapshot whose header disagrees with its metadata is refused, and the state is untouched.
    #[tokio::test]
    async fn snapshot_not_matching_its_meta_is_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let data = v2_bytes(&[Frame::End { rows: 0 }])?;
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), 9)),
            ..empty_meta()
        };
        assert_refused(&mut sm, &meta, data, "but its metadata says").await
    }

    /// Malformed frame sequences are refused with what is wrong, and the state is untouched:
    /// no end frame, a wrong row count, an unknown tree, bytes after the end.
    #[tokio::test]
    async fn malformed_frames_are_refused() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let kv_rows = || Frame::Rows {
            tree: KV_TREE.to_owned(),
            rows: vec![(b"ns\0k".to_vec(), b"w".to_vec())],
        };
        let cases = [
            (v2_bytes(&[kv_rows()])?, "no end frame"),
            (v2_bytes(&[kv_rows(), Frame::End { rows: 2 }])?, "end frame says 2"),
            (
                v2_bytes(&[
                    Frame::Rows {
                        tree: "sm_nope".to_owned(),
                        rows: Vec::new(),
                    },
                    Frame::End { rows: 0 },
                ])?,
                "unknown tree \"sm_nope\"",
            ),
            (
                v2_bytes(&[Frame::End { rows: 0 }, Frame::End { rows: 0 }])?,
                "after its end frame",
            ),
        ];
        for (data, expect) in cases {
            assert_refused(&mut sm, &empty_meta(), data, expect).await?;
        }
        Ok(())
    }

    /// A snapshot of an empty state installed over a non-empty one clears it.
    #[tokio::test]
    async fn empty_snapshot_clears_the_state() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let data = v2_bytes(&[Frame::End { rows: 0 }])?;
        sm.install_snapshot(&empty_meta(), Box::new(Cursor::new(data))).await?;
        assert_eq!(sm.get_kv("ns", "k")?, None, "expected the key gone");
        assert_eq!(sm.last_applied()?, None, "expected no last applied id");
        Ok(())
    }

    /// A snapshot made by a schema 1 build (typed nodes and key-value pairs in one body) installs:
    /// its nodes and pairs are there, everything else is gone.
    #[tokio::test]
    async fn schema_1_snapshot_installs() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let info = NodeInfo {
            peer_id: "p".to_owned(),
            addrs: Vec::new(),
        };
        let body = BodyV1 {
            last_applied: None,
            last_membership: Membership::default(),
            nodes: vec![(
                7,
                NodeRecord {
                    info: info.clone(),
                    eligible: true,
                },
            )],
            kv: vec![KvRecordV1 {
                namespace: "old".to_owned(),
                key: "k".to_owned(),
                value: b"v1".to_vec(),
            }],
        };
        let data = codec::encode(&Envelope {
            schema: 1,
            body: codec::encode(&body)?,
        })?;
        sm.install_snapshot(&empty_meta(), Box::new(Cursor::new(data))).await?;
        assert_eq!(sm.nodes()?, vec![(7, info, true)], "expected the schema 1 node record");
        assert_eq!(
            sm.get_kv("old", "k")?,
            Some(b"v1".to_vec()),
            "expected the schema 1 pair"
        );
        assert_eq!(sm.get_kv("ns", "k")?, None, "expected the earlier pair gone");
        Ok(())
    }

    /// Rows beyond the frame budget are split over several frames, and the snapshot installs back
    /// to the same rows.
    #[tokio::test]
    async fn large_trees_span_frames() -> TestResult {
        let (_dir, mut sm) = state_machine_with_a_key().await?;
        let big = FRAME_BYTES / 2 + 1;
        let entries: Vec<Entry> = (2..=4)
            .map(|i| set_kv(i, &format!("big{i}"), vec![i as u8; big]))
            .collect();
        sm.apply(entries).await?;
        let (meta, data) = sm.build()?;
        let (_, mut at): (Envelope, usize) = codec::decode_prefix(&data)?;
        let mut kv_frames = 0;
        while at < data.len() {
            let (frame, used): (Frame, usize) = codec::decode_prefix(&data[at..])?;
            at += used;
            if matches!(&frame, Frame::Rows { tree, .. } if tree == KV_TREE) {
                kv_frames += 1;
            }
        }
        assert_eq!(
            kv_frames, 3,
            "expected 3 frames for 3 rows just over half the budget, got {kv_frames}"
        );

        let dir = tempfile::tempdir()?;
        let mut fresh = SledStateMachine::new(&Store::open(dir.path())?)?;
        fresh.install_snapshot(&meta, Box::new(Cursor::new(data))).await?;
        for i in 2..=4u8 {
            let got = fresh.get_kv("ns", &format!("big{i}"))?;
            assert_eq!(got, Some(vec![i; big]), "expected row big{i} back after install");
        }
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
