//! [`SledLogStore`]: openraft's Raft log and vote on sled.
//!
//! Layout:
//! - tree [`LOG_TREE`]: log index (8 bytes big-endian) → encoded [`Entry`];
//! - tree [`META_TREE`]: [`VOTE_KEY`] → encoded `Vote`, [`COMMITTED_KEY`] → encoded
//!   `Option<LogId>`, [`LAST_PURGED_KEY`] → encoded `LogId`.
//!
//! openraft serialises every write (one call at a time from its core task), so the store needs no
//! lock of its own; readers ([`RaftLogStorage::get_log_reader`]) are clones reading the same trees.
//! Log entries, truncation, purge and the vote are fsynced before they are reported done (before
//! `append` calls its `LogFlushed` callback, before the other writes return). The committed log
//! id is written without an fsync: openraft lets it go back after a crash.

use std::convert::Infallible;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use tracing::debug;

use super::schema::MetaTree;
use super::typ::{LogId, Vote};
use super::{Entry, RaftStorageError, TypeConfig, codec_err, io, key_u64, raft_err, u64_key};
use crate::codec;
use crate::store::{StorageError, Store};

pub use super::schema::{COMMITTED_KEY, LAST_PURGED_KEY, LOG_META_TREE as META_TREE, LOG_TREE, VOTE_KEY};

/// Most encoded bytes of entries [`RaftLogReader::limited_get_log_entries`] returns in one call,
/// unless a single entry is bigger (the first entry is always returned): bounds one replication
/// message.
pub const MAX_REPLICATION_READ_BYTES: usize = 4 * 1024 * 1024;

/// openraft log storage on sled: trees [`LOG_TREE`] (u64 index big-endian → encoded [`Entry`]) and
/// [`META_TREE`] (vote, committed, last purged log id). Every write but the committed id is fsynced
/// (flush_async) before it is reported done (before calling the `LogFlushed` callback / returning).
///
/// Cloning is cheap; clones share the trees.
#[derive(Clone)]
pub struct SledLogStore {
    /// The database, for flushing.
    store: Store,
    /// Log entries by index.
    log: sled::Tree,
    /// Vote, committed and last purged log ids.
    meta: sled::Tree,
}

impl std::fmt::Debug for SledLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledLogStore").field("store", &self.store).finish()
    }
}

impl MetaTree for SledLogStore {
    fn meta_tree(&self) -> (&sled::Tree, &'static str) {
        (&self.meta, META_TREE)
    }
}

impl SledLogStore {
    /// Opens (creating if needed) the log trees in `store`.
    pub fn new(store: &Store) -> Result<Self, StorageError> {
        Ok(Self {
            store: store.clone(),
            log: store.tree(LOG_TREE)?,
            meta: store.tree(META_TREE)?,
        })
    }

    /// Encodes `value` at `key` of [`META_TREE`]; fsyncs when `durable`.
    async fn write_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        op: &'static str,
        durable: bool,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode(value).map_err(codec_err(META_TREE))?;
        self.meta.insert(key, bytes).map_err(io(META_TREE, op))?;
        if durable {
            self.store.flush_async().await?;
        }
        Ok(())
    }

    /// The index a `raft_log` key stands for.
    fn row_index(key: &[u8]) -> Result<u64, StorageError> {
        key_u64(key).ok_or_else(|| StorageError::Corrupt {
            tree: LOG_TREE.to_owned(),
            what: format!("key of {} bytes, expected 8", key.len()),
        })
    }

    /// Decodes the `raft_log` value stored under `index`, checking that the entry's index matches.
    fn decode_entry(index: u64, value: &[u8]) -> Result<Entry, StorageError> {
        let entry: Entry = codec::decode(value).map_err(codec_err(LOG_TREE))?;
        if entry.log_id.index != index {
            return Err(StorageError::Corrupt {
                tree: LOG_TREE.to_owned(),
                what: format!("entry at key {index} has log index {}", entry.log_id.index),
            });
        }
        Ok(entry)
    }

    /// Reads the entries with an index in `range`, in order, stopping before the entry that would
    /// take their encoded size past `byte_budget` (the first entry is always returned).
    fn read_entries<RB: RangeBounds<u64>>(
        &self,
        range: &RB,
        byte_budget: usize,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => match s.checked_add(1) {
                Some(s) => s,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        let mut used = 0usize;
        for row in self.log.range(u64_key(start)..) {
            let (key, value) = row.map_err(|e| {
                raft_err(
                    ErrorSubject::Logs,
                    ErrorVerb::Read,
                    &io(LOG_TREE, "iterate log entries")(e),
                )
            })?;
            let index = Self::row_index(&key).map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
            if !range.contains(&index) {
                break;
            }
            used = used.saturating_add(value.len());
            if used > byte_budget && !entries.is_empty() {
                break;
            }
            entries.push(Self::decode_entry(index, &value).map_err(|e| read_error(index, &e))?);
        }
        Ok(entries)
    }

    /// The log id of the last entry present, if any.
    fn last_present(&self) -> Result<Option<LogId>, RaftStorageError> {
        let last = self.log.last().map_err(|e| {
            raft_err(
                ErrorSubject::Logs,
                ErrorVerb::Read,
                &io(LOG_TREE, "read the last log entry")(e),
            )
        })?;
        match last {
            None => Ok(None),
            Some((key, value)) => {
                let index = Self::row_index(&key).map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
                let entry = Self::decode_entry(index, &value).map_err(|e| read_error(index, &e))?;
                Ok(Some(entry.log_id))
            }
        }
    }

    /// Removes every entry with an index in `range` in one atomic batch, without flushing.
    fn remove_range(&self, range: impl RangeBounds<[u8; 8]>) -> Result<usize, StorageError> {
        let mut batch = sled::Batch::default();
        let mut n = 0usize;
        for key in self.log.range(range).keys() {
            batch.remove(key.map_err(io(LOG_TREE, "list log entries to remove"))?);
            n += 1;
        }
        self.log
            .apply_batch(batch)
            .map_err(io(LOG_TREE, "remove log entries"))?;
        Ok(n)
    }
}

/// openraft's error for a failed read of the log entry at `index`.
fn read_error(index: u64, e: &StorageError) -> RaftStorageError {
    raft_err(ErrorSubject::LogIndex(index), ErrorVerb::Read, e)
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        self.read_entries(&range, usize::MAX)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, RaftStorageError> {
        self.read_entries(&(start..end), MAX_REPLICATION_READ_BYTES)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftStorageError> {
        let last_purged_log_id: Option<LogId> = self
            .read_meta(LAST_PURGED_KEY, "read the last purged log id")
            .map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        let last_log_id = match self.last_present()? {
            Some(last) if Some(last) > last_purged_log_id => Some(last),
            _ => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), RaftStorageError> {
        self.write_meta(VOTE_KEY, vote, "save the vote", true)
            .await
            .map_err(|e| raft_err(ErrorSubject::Vote, ErrorVerb::Write, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, RaftStorageError> {
        self.read_meta(VOTE_KEY, "read the vote")
            .map_err(|e| raft_err(ErrorSubject::Vote, ErrorVerb::Read, &e))
    }

    /// Not fsynced: openraft allows the committed id to go back after a crash (it is re-learned
    /// from the leader), and an fsync here would add one to every commit on every node.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), RaftStorageError> {
        self.write_meta(COMMITTED_KEY, &committed, "save the committed log id", false)
            .await
            .map_err(|e| raft_err(ErrorSubject::Store, ErrorVerb::Write, &e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, RaftStorageError> {
        let committed: Option<Option<LogId>> = self
            .read_meta(COMMITTED_KEY, "read the committed log id")
            .map_err(|e| raft_err(ErrorSubject::Store, ErrorVerb::Read, &e))?;
        Ok(committed.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let mut last = None;
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(|e| {
                raft_err(
                    ErrorSubject::Log(entry.log_id),
                    ErrorVerb::Write,
                    &codec_err(LOG_TREE)(e),
                )
            })?;
            batch.insert(u64_key(entry.log_id.index).as_slice(), bytes);
            last = Some(entry.log_id);
        }
        let write = |e: StorageError| raft_err(ErrorSubject::Logs, ErrorVerb::Write, &e);
        self.log
            .apply_batch(batch)
            .map_err(|e| write(io(LOG_TREE, "append log entries")(e)))?;
        self.store.flush_async().await.map_err(write)?;
        debug!(?last, "appended and flushed raft log entries");
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        let delete = |e: StorageError| raft_err(ErrorSubject::Logs, ErrorVerb::Delete, &e);
        let removed = self.remove_range(u64_key(log_id.index)..).map_err(delete)?;
        self.store.flush_async().await.map_err(delete)?;
        debug!(%log_id, removed, "truncated raft log");
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        let delete = |e: StorageError| raft_err(ErrorSubject::Logs, ErrorVerb::Delete, &e);
        let last_purged = codec::encode(&log_id).map_err(|e| delete(codec_err(META_TREE)(e)))?;
        let mut removals = sled::Batch::default();
        let mut removed = 0usize;
        for key in self.log.range(..=u64_key(log_id.index)).keys() {
            removals.remove(key.map_err(|e| delete(io(LOG_TREE, "list log entries to purge")(e)))?);
            removed += 1;
        }
        // The last purged id and the removal commit together, so the log never has a hole
        // between what is recorded as purged and the first entry present.
        (&self.meta, &self.log)
            .transaction(|(meta, log)| {
                meta.insert(LAST_PURGED_KEY, last_purged.as_slice())?;
                log.apply_batch(&removals)?;
                Ok::<_, ConflictableTransactionError<Infallible>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => delete(io(LOG_TREE, "purge log entries")(e)),
                TransactionError::Abort(never) => match never {},
            })?;
        self.store.flush_async().await.map_err(delete)?;
        debug!(%log_id, removed, "purged raft log");
        Ok(())
    }
}
