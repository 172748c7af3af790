//! Restoring a backup into a node's data directory, offline, without ever leaving it half written.

use super::*;
use read::{DbSink, parse};

/// What [`restore_data_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreOutcome {
    /// The backup that was restored.
    pub info: BackupInfo,
    /// The database directory written.
    pub db_dir: PathBuf,
    /// Where the database that was there before went (with `force`).
    pub replaced_kept_at: Option<PathBuf>,
}

/// Restores the backup file `input` as the sled database `db_dir` (a node's `<data_dir>/db`),
/// offline. In order: verifies the whole file (nothing is written if it is damaged); refuses if
/// a running node holds `db_dir` (sled's lock) or, unless `force`, if it holds any entry; writes
/// the trees into a new database beside it (checking the checksum again as it reads); then swaps
/// it in. With `force` the previous database is renamed aside (`db.replaced-<unix ms>`), not
/// deleted. Blocking.
pub fn restore_data_dir(input: &Path, db_dir: &Path, force: bool) -> Result<RestoreOutcome, BackupError> {
    verify_file(input)?;
    let exists = db_dir.exists();
    if exists {
        // A node that just stopped releases the lock a moment later: wait as Store::open does.
        let deadline = std::time::Instant::now() + crate::store::LOCK_WAIT;
        let db = loop {
            match sled::Config::new().path(db_dir).open() {
                Ok(db) => break db,
                Err(e) if crate::store::is_lock_contention(&e) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(BackupError::InUse(db_dir.to_path_buf()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(sled_err(format!("open {}", db_dir.display()))(e)),
            }
        };
        let mut trees = 0;
        let mut entries = 0u64;
        for name in db.tree_names() {
            let n = open_tree(&db, &name)?.len() as u64;
            if n > 0 {
                trees += 1;
                entries += n;
            }
        }
        drop(db);
        if entries > 0 && !force {
            return Err(BackupError::NotEmpty {
                path: db_dir.to_path_buf(),
                trees,
                entries,
            });
        }
    }
    let parent = db_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(format!("create {}", parent.display())))?;
    let file_name = db_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into());
    let staging = parent.join(format!("{file_name}.restoring-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err(format!("remove {}", staging.display())))?;
    }
    let written = (|| {
        let db = sled::Config::new()
            .path(&staging)
            .open()
            .map_err(sled_err(format!("create {}", staging.display())))?;
        let f = std::fs::File::open(input).map_err(io_err(format!("open {}", input.display())))?;
        let mut sink = DbSink {
            db: &db,
            tree: None,
            batch: sled::Batch::default(),
            pending: 0,
        };
        let info = parse(io::BufReader::with_capacity(1 << 20, f), &mut sink)?;
        sink.flush_batch()?;
        db.flush().map_err(sled_err("flush the restored database"))?;
        Ok(info)
    })();
    let info = match written {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let mut replaced_kept_at = None;
    if exists {
        let aside = parent.join(format!("{file_name}.replaced-{}", now_unix_ms()));
        std::fs::rename(db_dir, &aside).map_err(io_err(format!(
            "move the old database {} aside to {}",
            db_dir.display(),
            aside.display()
        )))?;
        replaced_kept_at = Some(aside);
    }
    std::fs::rename(&staging, db_dir).map_err(io_err(format!(
        "move the restored database {} into place at {}",
        staging.display(),
        db_dir.display()
    )))?;
    Ok(RestoreOutcome {
        info,
        db_dir: db_dir.to_path_buf(),
        replaced_kept_at,
    })
}
