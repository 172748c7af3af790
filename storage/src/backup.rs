//! Backup and restore of a node's sled database: every tree, in one versioned, checksummed file.
//!
//! Format (version 1; integers big-endian):
//!
//! ```text
//! magic "BZZZBKUP" (8 bytes) ‖ format version u32 ‖ created unix ms u64 ‖ source len u16 ‖ source
//! then per tree:   0x01 ‖ name len u32 ‖ name
//!                  0x02 ‖ key len u32 ‖ key ‖ value len u64 ‖ value      (once per entry)
//!                  0x03 ‖ entry count u64
//! then             0xFF ‖ tree count u32
//! then             SHA-256 of every byte before it (32 bytes), and nothing after
//! ```
//!
//! The node's identity key and X25519 key are files beside the database, never in it, so they
//! are never in a backup: they are secrets to back up separately.
//!
//! [`write_backup`] runs against a live database. It flushes, reads the Raft log trees, then the
//! state machine trees while holding the state machine's apply lock (one consistent cut; the log
//! read before it only lags, which openraft repairs at start), then every other tree (the DHT
//! record store, whose records replication repairs). [`restore_data_dir`] runs offline: it
//! verifies the whole file before it writes anything, refuses a database that a running node has
//! open or that holds data (unless forced), and swaps the restored database in only once it is
//! complete.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::raft::SledStateMachine;
use crate::store::Store;
use crate::util::now_unix_ms;

mod read;
mod restore;

pub use read::{verify, verify_file};
pub use restore::{RestoreOutcome, restore_data_dir};

/// First bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"BZZZBKUP";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Longest tree name accepted.
pub const MAX_TREE_NAME: usize = 4096;
/// Largest key accepted.
pub const MAX_KEY_BYTES: usize = 16 * 1024 * 1024;
/// Most trees in one backup.
pub const MAX_TREES: u32 = 65_536;
/// Longest source description (a peer id) accepted.
const MAX_SOURCE: usize = 1024;
/// Name of sled's default tree.
const DEFAULT_TREE: &[u8] = b"__sled__default";

const TAG_TREE: u8 = 0x01;
const TAG_ENTRY: u8 = 0x02;
const TAG_TREE_END: u8 = 0x03;
const TAG_END: u8 = 0xFF;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file or stream failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The database failed.
    #[error("database error while trying to {what}: {source}")]
    Sled {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: sled::Error,
    },
    /// The file is not a bzzz backup this build can read, or it is truncated or damaged.
    #[error("not a valid bzzz backup: {0}")]
    Format(String),
    /// The file's content does not match its checksum.
    #[error("checksum mismatch: the file says {expected} but its content hashes to {found}; the file is damaged")]
    Checksum {
        /// The digest stored in the file, hex.
        expected: String,
        /// The digest of the content, hex.
        found: String,
    },
    /// A running node holds the database.
    #[error("the database at {} is in use (sled's lock is held): stop the node that uses it first", .0.display())]
    InUse(PathBuf),
    /// The target database already holds data.
    #[error("the database at {} already holds data ({entries} entries in {trees} trees); pass --force to replace it (it is kept aside, not deleted)", path.display())]
    NotEmpty {
        /// The database directory.
        path: PathBuf,
        /// Trees with entries.
        trees: usize,
        /// Entries in them.
        entries: u64,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn sled_err(what: impl Into<String>) -> impl FnOnce(sled::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Sled { what, source }
}

/// One tree of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeSummary {
    /// The tree's name.
    pub name: String,
    /// Its entries.
    pub entries: u64,
}

/// What a backup file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    /// Format version.
    pub format_version: u32,
    /// When the backup was taken, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// Which node it was taken from (its peer id).
    pub source: String,
    /// The trees, in file order.
    pub trees: Vec<TreeSummary>,
    /// Entries in all trees.
    pub entries: u64,
    /// Size of the file, bytes.
    pub bytes: u64,
    /// SHA-256 of the content, hex (the file's last 32 bytes).
    pub sha256: String,
}

/// A tree's name and entries, copied out of the database.
type CopiedTree = (Vec<u8>, Vec<(sled::IVec, sled::IVec)>);

/// A writer that hashes and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Opens the tree `name` of `db`; sled's default tree is the database itself (opening it by name
/// would give a second, unsynchronised handle).
fn open_tree(db: &sled::Db, name: &[u8]) -> Result<sled::Tree, BackupError> {
    if name == DEFAULT_TREE {
        return Ok((**db).clone());
    }
    db.open_tree(name)
        .map_err(sled_err(format!("open tree {}", name_text(name))))
}

fn name_text(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Writes every tree of `store` to `out` in the backup format; `source` names the node (its peer
/// id). With `sm`, the state machine trees are read while its apply lock is held (one consistent
/// cut; copied to memory, so a slow `out` never holds up Raft). Blocking: run it on a blocking
/// thread. A failure of `out` ends the backup with an error; what was written is not a valid
/// backup (its checksum is missing).
pub fn write_backup<W: Write>(
    store: &Store,
    source: &str,
    sm: Option<&SledStateMachine>,
    out: W,
) -> Result<BackupInfo, BackupError> {
    store
        .flush()
        .map_err(|e| io_err("flush the database before the backup")(io::Error::other(e)))?;
    let db = store.db();
    let mut names: Vec<Vec<u8>> = db.tree_names().into_iter().map(|n| n.to_vec()).collect();
    names.sort();
    // Raft log first, then the state machine under its lock, then the rest.
    let rank = |n: &[u8]| {
        if n.starts_with(b"raft_") {
            0
        } else if n.starts_with(b"sm_") {
            1
        } else {
            2
        }
    };
    names.sort_by_key(|n| rank(n));

    let mut w = HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let wr = |w: &mut HashingWriter<W>, bytes: &[u8]| w.write_all(bytes).map_err(io_err("write the backup"));
    wr(&mut w, MAGIC)?;
    wr(&mut w, &FORMAT_VERSION.to_be_bytes())?;
    let created_unix_ms = now_unix_ms();
    wr(&mut w, &created_unix_ms.to_be_bytes())?;
    let source_bytes = &source.as_bytes()[..source.len().min(MAX_SOURCE)];
    wr(&mut w, &(source_bytes.len() as u16).to_be_bytes())?;
    wr(&mut w, source_bytes)?;

    let mut trees = Vec::new();
    let mut total = 0u64;
    let sm_names: Vec<Vec<u8>> = names.iter().filter(|n| rank(n) == 1).cloned().collect();
    for name in &names {
        match rank(name) {
            1 if sm_names.first() == Some(name) => {
                // Every state machine tree in one cut, copied out under the lock.
                let copied: Vec<CopiedTree> = {
                    let _hold = sm.map(SledStateMachine::hold_changes);
                    sm_names
                        .iter()
                        .map(|n| {
                            let tree = open_tree(db, n)?;
                            let entries = tree
                                .iter()
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(sled_err(format!("read tree {}", name_text(n))))?;
                            Ok((n.clone(), entries))
                        })
                        .collect::<Result<_, BackupError>>()?
                };
                for (n, entries) in copied {
                    let count = write_tree(&mut w, &n, entries.into_iter().map(Ok))?;
                    total += count;
                    trees.push(TreeSummary {
                        name: name_text(&n),
                        entries: count,
                    });
                }
            }
            1 => {}
            _ => {
                let tree = open_tree(db, name)?;
                let count = write_tree(&mut w, name, tree.iter())?;
                total += count;
                trees.push(TreeSummary {
                    name: name_text(name),
                    entries: count,
                });
            }
        }
    }
    wr(&mut w, &[TAG_END])?;
    wr(&mut w, &(trees.len() as u32).to_be_bytes())?;
    let digest: [u8; 32] = w.hasher.clone().finalize().into();
    w.inner.write_all(&digest).map_err(io_err("write the backup"))?;
    w.inner.flush().map_err(io_err("write the backup"))?;
    Ok(BackupInfo {
        format_version: FORMAT_VERSION,
        created_unix_ms,
        source: name_text(source_bytes),
        trees,
        entries: total,
        bytes: w.bytes + 32,
        sha256: hex::encode(digest),
    })
}

fn write_tree<W: Write>(
    w: &mut HashingWriter<W>,
    name: &[u8],
    entries: impl Iterator<Item = Result<(sled::IVec, sled::IVec), sled::Error>>,
) -> Result<u64, BackupError> {
    let mut put = |bytes: &[u8]| w.write_all(bytes).map_err(io_err("write the backup"));
    put(&[TAG_TREE])?;
    put(&(name.len() as u32).to_be_bytes())?;
    put(name)?;
    let mut count = 0u64;
    for entry in entries {
        let (k, v) = entry.map_err(sled_err(format!("read tree {}", name_text(name))))?;
        put(&[TAG_ENTRY])?;
        put(&(k.len() as u32).to_be_bytes())?;
        put(&k)?;
        put(&(v.len() as u64).to_be_bytes())?;
        put(&v)?;
        count += 1;
    }
    put(&[TAG_TREE_END])?;
    put(&count.to_be_bytes())?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with a few trees, one of them large values and binary keys.
    fn sample_store(dir: &Path) -> Store {
        let store = Store::open(dir).expect("open store");
        let a = store.tree("kad_records").expect("tree");
        for i in 0u32..300 {
            a.insert(i.to_be_bytes(), vec![i as u8; (i as usize) % 50])
                .expect("insert");
        }
        store
            .tree("raft_log")
            .expect("tree")
            .insert(b"\x00\x01", b"entry".as_slice())
            .expect("insert");
        store
            .tree("sm_meta")
            .expect("tree")
            .insert(b"last_applied", b"7".as_slice())
            .expect("insert");
        store.tree("empty").expect("tree");
        store
            .db()
            .insert(b"default-key", b"default-value".as_slice())
            .expect("insert");
        store
    }

    fn backup_bytes(store: &Store) -> (BackupInfo, Vec<u8>) {
        let mut out = Vec::new();
        let info = write_backup(store, "12D3KooWtest", None, &mut out).expect("backup");
        (info, out)
    }

    type Dump = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

    fn dump(db: &sled::Db) -> Dump {
        let mut names: Vec<_> = db.tree_names();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let t = open_tree(db, &n).expect("tree");
                let entries = t
                    .iter()
                    .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("entry"))
                    .collect();
                (name_text(&n), entries)
            })
            .collect()
    }

    /// A backup verifies, and restoring it gives every tree and entry back, the default tree too.
    #[test]
    fn backup_round_trips_every_tree() {
        let src = tempfile::tempdir().expect("temp dir");
        let store = sample_store(src.path());
        let (info, bytes) = backup_bytes(&store);
        assert_eq!(info.bytes, bytes.len() as u64);
        assert_eq!(info.entries, 300 + 1 + 1 + 1);
        let checked = verify(bytes.as_slice()).expect("verifies");
        assert_eq!(checked, info, "verify reads back what write reported");
        assert_eq!(info.trees[0].name, "raft_log", "the raft log is read first");

        let dst = tempfile::tempdir().expect("temp dir");
        let file = dst.path().join("backup.bzzz");
        std::fs::write(&file, &bytes).expect("write file");
        let db_dir = dst.path().join("data").join("db");
        let outcome = restore_data_dir(&file, &db_dir, false).expect("restore");
        assert_eq!(outcome.replaced_kept_at, None);
        // sled frees its lock shortly after the restore closed the database: Store::open waits.
        let restored = Store::open(&db_dir).expect("open restored");
        assert_eq!(dump(restored.db()), dump(store.db()), "every tree and entry restored");
    }

    /// Truncated, bit-flipped, foreign and trailing-garbage files are refused with a reason, and
    /// nothing is written into the target.
    #[test]
    fn damaged_backups_are_refused_before_writing() {
        let src = tempfile::tempdir().expect("temp dir");
        let store = sample_store(src.path());
        let (_, bytes) = backup_bytes(&store);
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x40;
        let mut trailing = bytes.clone();
        trailing.push(0);
        let mut version = bytes.clone();
        version[11] = 9;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("truncated", bytes[..bytes.len() - 100].to_vec(), "truncated"),
            ("no checksum", bytes[..bytes.len() - 32].to_vec(), "truncated"),
            ("flipped", flipped, ""),
            ("trailing", trailing, "after the checksum"),
            ("foreign", b"PK\x03\x04 not a backup at all".to_vec(), "magic"),
            ("empty", Vec::new(), "truncated"),
            ("version", version, "format version"),
        ];
        for (what, data, reason) in cases {
            let err = verify(data.as_slice()).expect_err(what);
            assert!(
                matches!(err, BackupError::Format(_) | BackupError::Checksum { .. }),
                "{what}: {err}"
            );
            assert!(err.to_string().contains(reason), "{what}: {err}");
            let dst = tempfile::tempdir().expect("temp dir");
            let file = dst.path().join("backup.bzzz");
            std::fs::write(&file, &data).expect("write file");
            let db_dir = dst.path().join("db");
            restore_data_dir(&file, &db_dir, false).expect_err(what);
            assert!(!db_dir.exists(), "{what}: nothing may be written");
            let left: Vec<_> = std::fs::read_dir(dst.path()).expect("list").collect();
            assert_eq!(left.len(), 1, "{what}: only the backup file is there");
        }
    }

    /// Whichever byte of a backup file is damaged, reading the file names the checksum (a flip
    /// in a length or a marker fails the structure first; the error still says the file is
    /// damaged).
    #[test]
    fn any_flipped_byte_is_reported_as_damage() {
        let src = tempfile::tempdir().expect("temp dir");
        let store = sample_store(src.path());
        let (_, bytes) = backup_bytes(&store);
        let dst = tempfile::tempdir().expect("temp dir");
        let file = dst.path().join("flipped.bzzz");
        let step = (bytes.len() / 64).max(1);
        for i in (0..bytes.len()).step_by(step) {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            std::fs::write(&file, &flipped).expect("write");
            let err = read::verify_file(&file)
                .expect_err("a flipped byte must be refused")
                .to_string();
            assert!(
                err.contains("checksum") || err.contains("magic") || err.contains("format version"),
                "byte {i} of {}: {err}",
                bytes.len()
            );
        }
    }

    /// A database in use is refused; one with data is refused unless forced, and forcing keeps
    /// the old database aside.
    #[test]
    fn restore_refuses_databases_in_use_or_with_data() {
        let src = tempfile::tempdir().expect("temp dir");
        let store = sample_store(src.path());
        let (_, bytes) = backup_bytes(&store);
        let dst = tempfile::tempdir().expect("temp dir");
        let file = dst.path().join("backup.bzzz");
        std::fs::write(&file, &bytes).expect("write file");
        let db_dir = dst.path().join("db");
        {
            let held = Store::open(&db_dir).expect("open target");
            held.tree("kad_records")
                .expect("tree")
                .insert(b"old", b"data".as_slice())
                .expect("insert");
            held.flush().expect("flush");
            let err = restore_data_dir(&file, &db_dir, true).expect_err("in use");
            assert!(matches!(err, BackupError::InUse(_)), "{err}");
        }
        // sled releases its lock shortly after the last handle is dropped; the restore waits.
        let err = restore_data_dir(&file, &db_dir, false).expect_err("holds data");
        assert!(
            matches!(err, BackupError::NotEmpty { entries: 1, .. }) && err.to_string().contains("--force"),
            "{err}"
        );
        let outcome = restore_data_dir(&file, &db_dir, true).expect("forced restore");
        let aside = outcome.replaced_kept_at.expect("old database kept");
        let old = Store::open(&aside).expect("open old");
        assert_eq!(
            old.tree("kad_records")
                .expect("tree")
                .get(b"old")
                .expect("get")
                .as_deref(),
            Some(b"data".as_slice())
        );
        // sled frees its lock shortly after the restore closed the database: Store::open waits.
        let restored = Store::open(&db_dir).expect("open restored");
        assert_eq!(dump(restored.db()), dump(store.db()));
    }
}
