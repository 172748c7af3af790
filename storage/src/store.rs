//! [`Store`]: the node's sled database, one [`sled::Tree`] per keyspace.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::debug;

use crate::codec::CodecError;

/// Name of the tree holding node metadata (and the [`Store::probe`] key).
pub const META_TREE: &str = "meta";

/// Key written, read back and removed by [`Store::probe`].
const PROBE_KEY: &[u8] = b"__bzzz_storage_probe__";

/// How long [`Store::open`] keeps retrying while the database directory is locked.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Makes successive probe values distinct even within one clock tick.
static PROBE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The sled database could not be opened or created.
    #[error("cannot open sled database at {}", .path.display())]
    Open {
        /// The database directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A tree could not be opened.
    #[error("cannot open tree {name:?} in sled database at {}", .path.display())]
    Tree {
        /// The tree name.
        name: String,
        /// The database directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// Flushing (fsync) the database failed.
    #[error("cannot flush sled database at {}", .path.display())]
    Flush {
        /// The database directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// The on-disk size of the database could not be measured.
    #[error("cannot measure size on disk of sled database at {}", .path.display())]
    SizeOnDisk {
        /// The database directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A read or write on a tree failed.
    #[error("i/o error while trying to {op} in tree {tree:?}")]
    Io {
        /// The tree name.
        tree: String,
        /// What was being done, e.g. "insert the probe key".
        op: &'static str,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A value could not be encoded or decoded.
    #[error("cannot encode or decode an entry of tree {tree:?}")]
    Codec {
        /// The tree name.
        tree: String,
        /// The codec error.
        #[source]
        source: CodecError,
    },
    /// The storage probe read back something other than what it wrote.
    #[error("storage probe read back {got:?} instead of the value it wrote in tree {tree:?}")]
    ProbeMismatch {
        /// The tree name.
        tree: String,
        /// What was read back (`None`: the key was missing).
        got: Option<Vec<u8>>,
    },
    /// A configuration value is out of range.
    #[error("invalid storage configuration: {what}")]
    InvalidConfig {
        /// What is wrong.
        what: String,
    },
    /// An entry decoded but is inconsistent with its key or with the rest of the tree.
    #[error("corrupt entry in tree {tree:?}: {what}")]
    Corrupt {
        /// The tree name.
        tree: String,
        /// What is inconsistent.
        what: String,
    },
    /// Data was written by a newer build whose schema this build does not know.
    #[error("{what} has schema version {found}, newer than version {supported} that this build supports")]
    SchemaTooNew {
        /// What carries the schema version, e.g. "the raft state machine".
        what: &'static str,
        /// The schema version found.
        found: u32,
        /// The newest schema version this build supports.
        supported: u32,
    },
    /// A Raft snapshot is malformed or does not match its metadata.
    #[error("invalid raft snapshot: {what}")]
    InvalidSnapshot {
        /// What is wrong.
        what: String,
    },
}

/// A node's sled database: one Tree per keyspace.
///
/// Cloning is cheap and yields a handle to the same database. sled holds an
/// exclusive lock on the directory until every handle (including trees and
/// record stores made from it) is dropped.
#[derive(Clone)]
pub struct Store {
    /// The database.
    db: sled::Db,
    /// The database directory, for error messages.
    path: Arc<Path>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the sled database in `dir`, creating it if needed.
    ///
    /// sled 0.34 releases its directory lock from a background thread shortly
    /// after the last handle is dropped (spacejam/sled#1289), so an immediate
    /// reopen can find the lock still held: lock contention is retried with
    /// backoff for up to [`LOCK_WAIT`], blocking the calling thread.
    pub fn open(dir: &Path) -> Result<Store, StorageError> {
        let deadline = Instant::now() + LOCK_WAIT;
        let mut backoff = Duration::from_millis(5);
        loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => {
                    return Ok(Store {
                        db,
                        path: Arc::from(dir),
                    });
                }
                Err(e) if is_lock_contention(&e) && Instant::now() < deadline => {
                    debug!(path = %dir.display(), ?backoff, "sled database locked, retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Err(source) => {
                    return Err(StorageError::Open {
                        path: dir.to_path_buf(),
                        source,
                    });
                }
            }
        }
    }

    /// Opens (creating if needed) the tree called `name`.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StorageError> {
        self.db.open_tree(name).map_err(|source| StorageError::Tree {
            name: name.to_owned(),
            path: self.path.to_path_buf(),
            source,
        })
    }

    /// Flushes every dirty buffer to disk and fsyncs, blocking.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(drop).map_err(|source| self.flush_error(source))
    }

    /// Flushes every dirty buffer to disk and fsyncs, on sled's thread pool.
    pub async fn flush_async(&self) -> Result<(), StorageError> {
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(|source| self.flush_error(source))
    }

    /// Storage health probe: write a probe key in the "meta" tree, read it back and compare, remove it, flush. Returns the time it took.
    pub fn probe(&self) -> Result<Duration, StorageError> {
        let started = Instant::now();
        let meta = self.tree(META_TREE)?;
        let io = |op: &'static str| {
            move |source| StorageError::Io {
                tree: META_TREE.to_owned(),
                op,
                source,
            }
        };
        let value = probe_value();
        meta.insert(PROBE_KEY, value.as_slice())
            .map_err(io("insert the probe key"))?;
        let got = meta.get(PROBE_KEY).map_err(io("read the probe key"))?;
        if got.as_deref() != Some(value.as_slice()) {
            return Err(StorageError::ProbeMismatch {
                tree: META_TREE.to_owned(),
                got: got.map(|v| v.to_vec()),
            });
        }
        meta.remove(PROBE_KEY).map_err(io("remove the probe key"))?;
        self.flush()?;
        Ok(started.elapsed())
    }

    /// The database's size on disk, in bytes.
    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.db.size_on_disk().map_err(|source| StorageError::SizeOnDisk {
            path: self.path.to_path_buf(),
            source,
        })
    }

    /// The underlying sled database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wraps a sled flush error with this store's path.
    fn flush_error(&self, source: sled::Error) -> StorageError {
        StorageError::Flush {
            path: self.path.to_path_buf(),
            source,
        }
    }
}

/// Whether a sled open error is the directory lock being held (possibly transiently).
pub(crate) fn is_lock_contention(e: &sled::Error) -> bool {
    // sled 0.34 reports a failed `try_lock_exclusive` as an `Other` i/o error
    // with this message; match on it, nothing else is retried.
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

/// A probe value unique to this call: wall-clock nanoseconds and a sequence number.
fn probe_value() -> Vec<u8> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seq = PROBE_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&nanos.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a fresh store in a temporary directory.
    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = Store::open(dir.path()).expect("open a store in a fresh directory");
        (dir, store)
    }

    /// The probe succeeds on a healthy store and leaves no probe key behind.
    #[test]
    fn probe_succeeds_and_cleans_up() -> Result<(), StorageError> {
        let (_dir, store) = temp_store();
        let took = store.probe()?;
        assert!(
            took < Duration::from_secs(30),
            "expected the probe to take well under 30 s, got {took:?}"
        );
        let left = store.tree(META_TREE)?.get(PROBE_KEY).ok().flatten();
        assert!(left.is_none(), "expected no probe key left, got {left:?}");
        Ok(())
    }

    /// Data written to a tree and flushed is there after reopening the store.
    #[test]
    fn tree_data_survives_reopen() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        {
            let store = Store::open(dir.path())?;
            store
                .tree("t")?
                .insert(b"k", b"v".as_slice())
                .expect("insert into a fresh tree");
            store.flush()?;
        }
        let store = Store::open(dir.path())?;
        let got = store.tree("t")?.get(b"k").expect("read back the key");
        assert_eq!(
            got.as_deref(),
            Some(b"v".as_slice()),
            "expected Some(b\"v\"), got {got:?}"
        );
        assert!(store.size_on_disk()? > 0, "expected a non-zero size on disk");
        Ok(())
    }

    /// Opening a path that is a regular file fails with an error naming the path.
    #[test]
    fn open_error_names_the_path() {
        let file = tempfile::NamedTempFile::new().expect("create a temporary file");
        let got = Store::open(file.path());
        match got {
            Err(e @ StorageError::Open { .. }) => {
                let msg = e.to_string();
                let path = file.path().display().to_string();
                assert!(
                    msg.contains(&path),
                    "expected the message to contain {path:?}, got {msg:?}"
                );
            }
            other => panic!("expected Err(Open), got {other:?}"),
        }
    }

    /// A database held open elsewhere is not opened twice: the open fails, naming the path, after the lock wait.
    #[test]
    fn open_while_held_fails_after_waiting() {
        let (dir, _held) = temp_store();
        let started = Instant::now();
        let got = Store::open(dir.path());
        let waited = started.elapsed();
        assert!(
            matches!(&got, Err(StorageError::Open { path, .. }) if path == dir.path()),
            "expected Err(Open) naming {:?}, got {got:?}",
            dir.path()
        );
        assert!(
            waited >= LOCK_WAIT,
            "expected open to retry for at least {LOCK_WAIT:?}, got {waited:?}"
        );
    }

    /// An open that races with the release of the lock by the previous holder succeeds.
    #[test]
    fn open_waits_for_lock_release() {
        let (dir, held) = temp_store();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let got = Store::open(dir.path());
        releaser.join().expect("the releasing thread does not panic");
        assert!(got.is_ok(), "expected Ok(store), got {got:?}");
    }

    /// The async flush completes without error, and its future is Send.
    #[tokio::test]
    async fn flush_async_succeeds() -> Result<(), StorageError> {
        fn assert_send<T: Send>(t: T) -> T {
            t
        }
        let (_dir, store) = temp_store();
        store.tree("t")?.insert(b"k", b"v".as_slice()).expect("insert");
        assert_send(store.flush_async()).await
    }
}
