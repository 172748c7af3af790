//! The node's static X25519 key, kept in `<data_dir>/x25519.key`, and the signed [`KeyBinding`]
//! that ties its public half to the node's ed25519 identity; and the role keys the node holds
//! ([`RoleKeySet`], looked up through [`RoleKeyLookup`]).
//!
//! The key file holds exactly the 32 secret bytes. It is created once, atomically and private
//! (mode 0600 from the first byte written: a temp file opened with that mode, fsync, then linked
//! into place without replacing an existing key), and reused on every start. Losing it means the
//! node can no longer open the role keys sealed to it until the admin reseals them to a new key.
//!
//! Key material never reaches logs or errors: they name the file and the problem only.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use bzzz_protocol::wire;
use libp2p::PeerId;
use libp2p::identity::Keypair;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use super::canonical::Canonical;
use super::seal::{RoleKey, X25519_PUBLIC_LEN, open_role_key};
use super::{BINDING_TAG, CryptoError, KEY_LEN, SIGNATURE_LEN, public_key_of, random_array, random_secret};

/// File name of the X25519 key inside the data dir.
pub const X25519_KEY_FILE: &str = "x25519.key";

/// The node's static X25519 key pair, for receiving sealed role keys.
///
/// The secret is zeroized when dropped; `Debug` shows the public key only.
pub struct Keyring {
    secret: StaticSecret,
    public: [u8; X25519_PUBLIC_LEN],
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("public", &hex::encode(self.public))
            .field("secret", &format_args!("[redacted]"))
            .finish()
    }
}

impl Keyring {
    /// A fresh key pair held only in memory (tests, benchmarks, tools).
    pub fn generate() -> Self {
        Self::from_secret(StaticSecret::from(*random_secret::<KEY_LEN>()))
    }

    fn from_secret(secret: StaticSecret) -> Self {
        let public = X25519Public::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// Loads the key from `<data_dir>/x25519.key`, creating it (mode 0600) on first start.
    ///
    /// A file readable or writable by group or others is tightened to 0600 with a warning naming
    /// the file. A file that is not exactly 32 bytes, or is all zero, is
    /// [`CryptoError::CorruptKeyFile`] naming the file; it is never overwritten.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, CryptoError> {
        let path = data_dir.join(X25519_KEY_FILE);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Self::load(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Loads the key from an existing file (see [`Keyring::load_or_create`] for the checks).
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        tighten_permissions(path)?;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io(path))?);
        let corrupt = |reason: String| CryptoError::CorruptKeyFile {
            path: path.to_owned(),
            reason,
        };
        let secret: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(format!("{} bytes, expected {KEY_LEN}", bytes.len())))?,
        );
        if secret.iter().all(|&b| b == 0) {
            return Err(corrupt("all bytes are zero".into()));
        }
        Ok(Self::from_secret(StaticSecret::from(*secret)))
    }

    /// The public key, to publish in a [`KeyBinding`].
    pub fn public_key(&self) -> [u8; X25519_PUBLIC_LEN] {
        self.public
    }

    /// A binding of this key's public half to `identity`, signed by `identity`.
    pub fn bind(&self, identity: &Keypair) -> Result<KeyBinding, CryptoError> {
        KeyBinding::sign(identity, self.public)
    }

    /// Opens a role key (the role's X25519 secret) the admin sealed to this node (`me` is this
    /// node's peer id) for `role` at `epoch`. Fails with [`CryptoError::Decrypt`] if it was sealed
    /// to another key, role, epoch or peer, or was changed; [`CryptoError::Malformed`] or
    /// [`CryptoError::LowOrderPoint`] if it is not a well-formed sealed key.
    pub fn open_role_key(
        &self,
        sealed: &wire::SealedRoleKey,
        role: &str,
        epoch: u64,
        me: &PeerId,
    ) -> Result<RoleKey, CryptoError> {
        open_role_key(&self.secret, &self.public, sealed, role, epoch, me)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes the key file 0600 if group or others have any access, warning with the file name.
#[cfg(unix)]
fn tighten_permissions(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
        tracing::warn!(
            path = %path.display(),
            old_mode = format_args!("{mode:o}"),
            "X25519 key file was accessible to group or others; its mode is now 0600"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_permissions(_path: &Path) -> Result<(), CryptoError> {
    Ok(())
}

/// Creates the key file: a private temp file (mode 0600 at open, so never readable by others)
/// in the same dir, fsync, then a hard link to the final name, which fails rather than replace a
/// key another process created meanwhile (that key is then loaded instead). Where hard links are
/// not supported it falls back to a rename.
fn create(path: &Path) -> Result<Keyring, CryptoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let secret = random_secret::<KEY_LEN>();
    let tmp = dir.join(format!(".{X25519_KEY_FILE}.{}.tmp", hex::encode(random_array::<8>())));
    let written = write_private(&tmp, secret.as_slice());
    let placed = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => std::fs::rename(&tmp, path).map(|()| true),
    });
    // The temp name is gone after a rename; after a link (or a failure) it must be removed.
    let _ = std::fs::remove_file(&tmp);
    match placed {
        Ok(true) => {}
        Ok(false) => return Keyring::load(path),
        Err(e) => return Err(io(path)(e)),
    }
    if let Ok(d) = std::fs::File::open(dir) {
        // Persist the new directory entry; not all platforms can fsync a directory.
        let _ = d.sync_all();
    }
    let keyring = Keyring::from_secret(StaticSecret::from(*secret));
    tracing::info!(path = %path.display(), "created node X25519 key");
    Ok(keyring)
}

/// Writes `bytes` to a new file that is mode 0600 from creation, and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A node's X25519 public key bound to its identity by the identity key's signature
/// (`bzzz.v1.KeyBinding` on the wire; the signed bytes are in the [module docs](super)).
///
/// The admin seals role keys only to keys in bindings that [`verify`](KeyBinding::verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBinding {
    /// The node the key belongs to; its ed25519 key signs the binding.
    pub peer_id: PeerId,
    /// The node's X25519 public key.
    pub x25519_public: [u8; X25519_PUBLIC_LEN],
    /// ed25519 signature over [`KeyBinding::signed_bytes`].
    pub signature: Vec<u8>,
}

impl KeyBinding {
    /// Binds `x25519_public` to `identity`'s peer id, signed by `identity`.
    pub fn sign(identity: &Keypair, x25519_public: [u8; X25519_PUBLIC_LEN]) -> Result<Self, CryptoError> {
        let peer_id = identity.public().to_peer_id();
        let signature = identity.sign(&Self::signed_bytes(&peer_id, &x25519_public))?;
        Ok(Self {
            peer_id,
            x25519_public,
            signature,
        })
    }

    /// The bytes the identity key signs:
    /// `"bzzz/x25519-binding/v1" || lp(peer id bytes) || x25519_public`.
    pub fn signed_bytes(peer_id: &PeerId, x25519_public: &[u8; X25519_PUBLIC_LEN]) -> Vec<u8> {
        Canonical::starting_with(BINDING_TAG)
            .bytes(&peer_id.to_bytes())
            .fixed(x25519_public)
            .finish()
    }

    /// Checks the signature against the ed25519 key embedded in `peer_id`.
    pub fn verify(&self) -> Result<(), CryptoError> {
        let key = public_key_of(&self.peer_id)?;
        let signed = Self::signed_bytes(&self.peer_id, &self.x25519_public);
        if self.signature.len() != SIGNATURE_LEN || !key.verify(&signed, &self.signature) {
            return Err(CryptoError::BadSignature {
                what: "key binding",
                signer: self.peer_id,
            });
        }
        Ok(())
    }

    /// The wire form.
    pub fn to_wire(&self) -> wire::KeyBinding {
        wire::KeyBinding {
            peer_id: self.peer_id.to_bytes(),
            x25519_public: self.x25519_public.to_vec(),
            signature: self.signature.clone(),
        }
    }

    /// Parses and [verifies](KeyBinding::verify) a binding received from another node: a value
    /// returned here is authentic.
    pub fn from_wire(w: &wire::KeyBinding) -> Result<Self, CryptoError> {
        let peer_id = PeerId::from_bytes(&w.peer_id)
            .map_err(|_| CryptoError::malformed("key binding peer id", "not a peer id"))?;
        let x25519_public: [u8; X25519_PUBLIC_LEN] = w.x25519_public.as_slice().try_into().map_err(|_| {
            CryptoError::malformed(
                "key binding x25519 public key",
                format!("{} bytes, expected {X25519_PUBLIC_LEN}", w.x25519_public.len()),
            )
        })?;
        let binding = Self {
            peer_id,
            x25519_public,
            signature: w.signature.clone(),
        };
        binding.verify()?;
        Ok(binding)
    }
}

/// Finds the secret key of a role at an epoch, if this node holds it. Implemented by
/// [`RoleKeySet`] and by slices of `(role, epoch, &RoleKey)`.
pub trait RoleKeyLookup {
    /// The key of `role` at `epoch`, if held.
    fn role_key(&self, role: &str, epoch: u64) -> Option<&RoleKey>;
}

impl RoleKeyLookup for [(&str, u64, &RoleKey)] {
    fn role_key(&self, role: &str, epoch: u64) -> Option<&RoleKey> {
        self.iter()
            .find(|(r, e, _)| *r == role && *e == epoch)
            .map(|(_, _, k)| *k)
    }
}

/// The role keys a node holds, by (role, epoch).
#[derive(Debug, Default, Clone)]
pub struct RoleKeySet {
    keys: HashMap<(String, u64), RoleKey>,
}

impl RoleKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the key of `role` at `epoch`.
    pub fn insert(&mut self, role: impl Into<String>, epoch: u64, key: RoleKey) {
        self.keys.insert((role.into(), epoch), key);
    }

    /// Removes the key of `role` at `epoch` (a retired epoch, a revoked role).
    pub fn remove(&mut self, role: &str, epoch: u64) -> Option<RoleKey> {
        self.keys.remove(&(role.to_owned(), epoch))
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl RoleKeyLookup for RoleKeySet {
    fn role_key(&self, role: &str, epoch: u64) -> Option<&RoleKey> {
        self.keys.get(&(role.to_owned(), epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ErrorKind, seal_role_key};

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("key file exists").permissions().mode() & 0o777
    }

    /// The first load creates the file with mode 0600, and every later load gives the same key.
    #[test]
    fn key_is_created_private_and_reloads_identically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Keyring::load_or_create(dir.path()).expect("create");
        let path = dir.path().join(X25519_KEY_FILE);
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600, "a new key file must be mode 0600");
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            32,
            "the file holds the 32-byte secret"
        );
        let b = Keyring::load_or_create(dir.path()).expect("reload");
        assert_eq!(a.public_key(), b.public_key(), "reloading must give the same key");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .filter(|n| n != X25519_KEY_FILE)
            .collect();
        assert!(leftovers.is_empty(), "no temp files may be left behind: {leftovers:?}");
    }

    /// A key that opens role keys sealed to it keeps doing so after a reload from disk.
    #[test]
    fn reloaded_key_opens_role_keys_sealed_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = Keypair::generate_ed25519().public().to_peer_id();
        let first = Keyring::load_or_create(dir.path()).expect("create");
        let role_key = RoleKey::generate();
        let sealed = seal_role_key(&role_key, "dev", 1, &me, &first.public_key()).expect("seal");
        drop(first);
        let again = Keyring::load_or_create(dir.path()).expect("reload");
        let opened = again.open_role_key(&sealed, "dev", 1, &me).expect("open after reload");
        assert_eq!(opened.as_bytes(), role_key.as_bytes());
    }

    /// A key file that group or others can access is tightened to 0600 and still loads.
    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Keyring::load_or_create(dir.path()).expect("create");
        let path = dir.path().join(X25519_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(mode_of(&path), 0o644, "test setup: the mode must be loose");
        let b = Keyring::load_or_create(dir.path()).expect("load loose file");
        assert_eq!(mode_of(&path), 0o600, "loading must tighten the mode to 0600");
        assert_eq!(a.public_key(), b.public_key());
    }

    /// Files of the wrong length or all zero are errors that name the file and not its contents;
    /// they are left in place for the operator.
    #[test]
    fn corrupt_key_files_are_errors_naming_the_file() {
        for (case, contents) in [
            ("short", b"nope-key".to_vec()),
            ("long", vec![7u8; 33]),
            ("empty", Vec::new()),
            ("zero", vec![0u8; 32]),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(X25519_KEY_FILE);
            std::fs::write(&path, &contents).expect("write");
            let err = Keyring::load_or_create(dir.path()).expect_err(case);
            let msg = err.to_string();
            assert!(
                matches!(err, CryptoError::CorruptKeyFile { .. }),
                "{case}: unexpected error {msg}"
            );
            assert!(
                msg.contains(&path.display().to_string()),
                "{case}: error must name the file: {msg}"
            );
            assert!(!msg.contains("nope"), "{case}: error must not echo the contents: {msg}");
            assert_eq!(
                std::fs::read(&path).expect("still there"),
                contents,
                "{case}: file must be kept"
            );
        }
    }

    /// Debug shows the public key, never the secret.
    #[test]
    fn keyring_debug_is_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = Keyring::load_or_create(dir.path()).expect("create");
        let secret_hex = hex::encode(std::fs::read(dir.path().join(X25519_KEY_FILE)).expect("read"));
        let shown = format!("{k:?}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains(&hex::encode(k.public_key())), "{shown}");
        assert!(!shown.contains(&secret_hex), "Debug leaked the secret: {shown}");
    }

    /// A binding signed by the node verifies, also after a round trip through the wire form.
    #[test]
    fn binding_verifies() {
        let identity = Keypair::generate_ed25519();
        let k = Keyring::generate();
        let binding = k.bind(&identity).expect("sign");
        binding.verify().expect("valid binding must verify");
        assert_eq!(binding.peer_id, identity.public().to_peer_id());
        let back = KeyBinding::from_wire(&binding.to_wire()).expect("wire round trip verifies");
        assert_eq!(back, binding);
    }

    /// A binding is refused if it claims a peer id whose key did not sign it, if the X25519 key
    /// was changed, or if the signature is damaged.
    #[test]
    fn forged_or_changed_bindings_are_rejected() {
        let identity = Keypair::generate_ed25519();
        let other = Keypair::generate_ed25519();
        let k = Keyring::generate();
        let good = k.bind(&identity).expect("sign");

        // Signed by another identity but claiming ours.
        let mut forged = KeyBinding::sign(&other, k.public_key()).expect("sign");
        forged.peer_id = good.peer_id;
        // Our signature, another X25519 key.
        let mut changed_key = good.clone();
        changed_key.x25519_public = Keyring::generate().public_key();
        // Our signature, damaged.
        let mut damaged = good.clone();
        damaged.signature[10] ^= 0x40;
        let mut truncated = good.clone();
        truncated.signature.pop();

        for (case, bad) in [
            ("other signer", forged),
            ("changed key", changed_key),
            ("damaged signature", damaged),
            ("truncated signature", truncated),
        ] {
            let err = bad.verify().expect_err(case);
            assert!(
                matches!(err, CryptoError::BadSignature { .. }),
                "{case}: unexpected error {err}"
            );
            assert_eq!(err.kind(), ErrorKind::Tampered, "{case}");
            KeyBinding::from_wire(&bad.to_wire()).expect_err(case);
        }
    }

    /// Wire bindings with a bad peer id or key length are malformed.
    #[test]
    fn malformed_wire_bindings_are_rejected() {
        let identity = Keypair::generate_ed25519();
        let good = Keyring::generate().bind(&identity).expect("sign").to_wire();
        let mut bad_peer = good.clone();
        bad_peer.peer_id = vec![0xff; 5];
        let mut short_key = good.clone();
        short_key.x25519_public.pop();
        for (case, bad) in [("peer id", bad_peer), ("key length", short_key)] {
            let err = KeyBinding::from_wire(&bad).expect_err(case);
            assert_eq!(err.kind(), ErrorKind::Malformed, "{case}: {err}");
        }
    }
}
