//! The node's ed25519 identity: created once in the data dir, or read from a key file (a Docker
//! secret), and reused on every start, so a data dir always has the same peer id.
//!
//! Key material never reaches logs or errors: errors name the file and the problem only.

use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;

/// File name of the identity key inside the data dir.
pub(crate) const KEY_FILE: &str = "identity.key";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("identity key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a libp2p protobuf-encoded ed25519 key.
    #[error("identity key file {path} is not a libp2p protobuf-encoded ed25519 private key")]
    Decode {
        /// The file.
        path: PathBuf,
    },
    /// `bzzz identity new` would replace an existing key.
    #[error(
        "identity key file {path} already exists; a new key would change the node's peer id (remove it first if that is intended)"
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The key file is readable by other users.
    #[error("identity key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the identity from `key_file` if given (never modified), else from
/// `<data_dir>/identity.key`, creating it (mode 0600) on first start.
pub(crate) fn load_or_create(data_dir: &Path, key_file: Option<&Path>) -> Result<Keypair, IdentityError> {
    if let Some(path) = key_file {
        return read_key(path, false);
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::metadata(&path) {
        Ok(_) => read_key(&path, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path),
        Err(e) => Err(io(&path)(e)),
    }
}

fn read_key(path: &Path, check_mode: bool) -> Result<Keypair, IdentityError> {
    if check_mode {
        check_permissions(path)?;
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    let key = Keypair::from_protobuf_encoding(&bytes).map_err(|_| IdentityError::Decode { path: path.to_owned() })?;
    if key.clone().try_into_ed25519().is_err() {
        return Err(IdentityError::Decode { path: path.to_owned() });
    }
    Ok(key)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

/// Writes a new key atomically: a private temp file in the same dir, fsync, rename.
fn create_key(path: &Path) -> Result<Keypair, IdentityError> {
    let key = Keypair::generate_ed25519();
    write_key(path, &key)?;
    tracing::info!(path = %path.display(), peer_id = %key.public().to_peer_id(), "created node identity");
    Ok(key)
}

/// A new ed25519 identity in libp2p's protobuf encoding: the format of `identity.key` and of
/// `node.identity_key_file` (`bzzz identity new`).
pub(crate) fn generate() -> (Keypair, Vec<u8>) {
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .expect("an ed25519 key always has a protobuf encoding");
    (key, bytes)
}

/// Writes a new identity to `path` (mode 0600); refuses to replace an existing file, because a
/// node's peer id is its name in the mesh and in the Raft membership.
pub(crate) fn create_key_file(path: &Path) -> Result<Keypair, IdentityError> {
    if path.exists() {
        return Err(IdentityError::Exists { path: path.to_owned() });
    }
    let (key, _) = generate();
    write_key(path, &key)?;
    Ok(key)
}

/// Reads an identity key file (as `node.identity_key_file` would be read).
pub(crate) fn read_key_file(path: &Path) -> Result<Keypair, IdentityError> {
    read_key(path, false)
}

/// Reads a key file that must be private to its owner (a CA or issuer key): refused when group
/// or others can read it.
pub(crate) fn read_private_key_file(path: &Path) -> Result<Keypair, IdentityError> {
    read_key(path, true)
}

fn write_key(path: &Path, key: &Keypair) -> Result<(), IdentityError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|_| IdentityError::Decode { path: path.to_owned() })?;
    let tmp = path.with_extension("key.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same data dir yields the same peer id on every load; the file is private.
    #[test]
    fn identity_is_stable_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path(), None).expect("create");
        let b = load_or_create(dir.path(), None).expect("reload");
        assert_eq!(
            a.public().to_peer_id(),
            b.public().to_peer_id(),
            "peer id must not change"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key must not be group/world readable, mode {mode:o}");
        }
    }

    /// A key file that is not a key is a clear error naming the file, not a panic.
    #[test]
    fn garbage_key_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, b"not a key").expect("write");
        let e = load_or_create(dir.path(), Some(&path)).expect_err("garbage must fail");
        assert!(e.to_string().contains("secret"), "error should name the file: {e}");
        assert!(
            !e.to_string().contains("not a key"),
            "error must not echo file contents: {e}"
        );
    }

    /// A key file given in config (a Docker secret) is used as is.
    #[test]
    fn key_file_from_config_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = Keypair::generate_ed25519();
        let path = dir.path().join("bootstrap.key");
        std::fs::write(&path, key.to_protobuf_encoding().expect("encodes")).expect("write");
        let loaded = load_or_create(dir.path(), Some(&path)).expect("load");
        assert_eq!(loaded.public().to_peer_id(), key.public().to_peer_id());
        assert!(
            !dir.path().join(KEY_FILE).exists(),
            "must not create a data-dir key when a key file is given"
        );
    }

    /// `bzzz identity new` writes a private key file a node can use as `identity_key_file`, and
    /// never replaces an existing one.
    #[test]
    fn new_key_file_is_private_loadable_and_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets").join("walnut.key");
        let key = create_key_file(&path).expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o077, 0, "key must not be group/world readable, mode {mode:o}");
        }
        let loaded = read_key_file(&path).expect("read");
        assert_eq!(loaded.public().to_peer_id(), key.public().to_peer_id());
        let before = std::fs::read(&path).expect("read bytes");
        let e = create_key_file(&path).expect_err("must refuse an existing file");
        assert!(matches!(e, IdentityError::Exists { .. }), "got {e}");
        assert_eq!(
            std::fs::read(&path).expect("read bytes"),
            before,
            "existing key changed"
        );
        let (k, bytes) = generate();
        let decoded = Keypair::from_protobuf_encoding(&bytes).expect("decode");
        assert_eq!(decoded.public().to_peer_id(), k.public().to_peer_id());
    }
}
