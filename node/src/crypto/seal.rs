//! Role key pairs, and the ephemeral-static X25519 sealing (X25519, HKDF-SHA256,
//! XChaCha20-Poly1305) used both to seal a role's secret to one member (DESIGN 7) and to wrap a
//! record's data key to one reader role (DESIGN 6). The constructions are specified in the
//! [module docs](super#ephemeral-static-sealing).

use std::fmt;

use super::xchacha;
use bzzz_protocol::wire::SealedRoleKey;
use hkdf::Hkdf;
use libp2p::PeerId;
use sha2::Sha256;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::canonical::Canonical;
use super::{CryptoError, KEY_LEN, NONCE_LEN, ROLE_KEY_SEAL_TAG, TAG_LEN, random_array, random_secret};

/// Length of an X25519 public key, in bytes.
pub const X25519_PUBLIC_LEN: usize = 32;
/// Length of a sealed 32-byte secret (a role secret or a DEK) with its tag, in bytes.
pub const SEALED_CIPHERTEXT_LEN: usize = KEY_LEN + TAG_LEN;

/// The secret half of one role's X25519 key pair at one epoch: it unwraps the data keys of every
/// record wrapped to that role and epoch, and is used for nothing else. Only members of the role
/// hold it (sealed to them by the admin, [`seal_role_key`]); writers need only the
/// [`RolePublicKey`].
///
/// Zeroized when dropped; `Debug` prints `RoleKey([redacted])`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RoleKey {
    secret: [u8; KEY_LEN],
    #[zeroize(skip)]
    public: RolePublicKey,
}

impl RoleKey {
    /// A fresh key pair from the operating system's CSPRNG (the admin makes one per role and
    /// epoch).
    pub fn generate() -> Self {
        Self::from_bytes(*random_secret::<KEY_LEN>())
    }

    /// The key pair of a 32-byte X25519 secret (e.g. restored from local storage, or opened from
    /// a [`SealedRoleKey`]). The caller should zeroize its copy.
    pub fn from_bytes(secret: [u8; KEY_LEN]) -> Self {
        let public = RolePublicKey(X25519Public::from(&StaticSecret::from(secret)).to_bytes());
        Self { secret, public }
    }

    /// The secret's bytes. Never log them or put them in an error.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The public half, which writers wrap data keys to.
    pub fn public(&self) -> RolePublicKey {
        self.public
    }

    /// The secret as an X25519 static secret (zeroized when dropped).
    fn static_secret(&self) -> StaticSecret {
        StaticSecret::from(self.secret)
    }

    /// Opens a secret that [`seal_to`] sealed to this role's public key, with the same `info` and
    /// `aad`. Public for `bzzz-bench`, which times one unwrap; the daemon opens wrapped keys
    /// through [`open_verified`](super::open_verified) and sealed role keys through the keyring.
    pub fn open(&self, sealed: &EphemeralSeal<'_>, info: &[u8], aad: &[u8]) -> Result<Secret, Failure> {
        open_from(&self.static_secret(), &self.public.0, sealed, info, aad)
    }
}

impl fmt::Debug for RoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoleKey([redacted])")
    }
}

/// The X25519 public key of one role at one epoch. Public: the admin publishes it (in the Raft
/// state), and writers wrap data keys to it. A writer must take it from authenticated cluster
/// state: whoever holds the secret of a substituted key can read what is wrapped to it.
///
/// `Debug` prints the key as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RolePublicKey([u8; X25519_PUBLIC_LEN]);

impl RolePublicKey {
    /// A public key from its 32 bytes. Low-order points are refused when wrapping to them.
    pub fn from_bytes(bytes: [u8; X25519_PUBLIC_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; X25519_PUBLIC_LEN] {
        &self.0
    }
}

impl fmt::Debug for RolePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RolePublicKey({})", hex::encode(self.0))
    }
}

/// A 32-byte secret (role secret or DEK), zeroized when dropped.
pub type Secret = Zeroizing<[u8; KEY_LEN]>;

/// One ephemeral-static seal, borrowed from its wire form (a [`SealedRoleKey`] or a
/// [`WrappedKey`](bzzz_protocol::wire::WrappedKey)) after the caller checked the lengths, or from a
/// [`Sealed`] ([`Sealed::borrowed`]).
#[derive(Debug, Clone, Copy)]
pub struct EphemeralSeal<'a> {
    /// `E`, the sender's ephemeral X25519 public key.
    pub(crate) ephemeral_public: [u8; X25519_PUBLIC_LEN],
    /// The XChaCha20-Poly1305 nonce.
    pub(crate) nonce: [u8; NONCE_LEN],
    /// The sealed secret and its tag.
    pub(crate) ciphertext: &'a [u8],
}

/// What [`seal_to`] produced, to be put in its wire form.
#[derive(Debug)]
pub struct Sealed {
    /// `E`, the fresh ephemeral X25519 public key.
    pub(crate) ephemeral_public: [u8; X25519_PUBLIC_LEN],
    /// The random XChaCha20-Poly1305 nonce.
    pub(crate) nonce: [u8; NONCE_LEN],
    /// The sealed secret and its tag (48 bytes).
    pub(crate) ciphertext: Vec<u8>,
}

impl Sealed {
    /// The same seal, borrowed for opening ([`RoleKey::open`]).
    pub fn borrowed(&self) -> EphemeralSeal<'_> {
        EphemeralSeal {
            ephemeral_public: self.ephemeral_public,
            nonce: self.nonce,
            ciphertext: &self.ciphertext,
        }
    }
}

/// Why opening a seal ([`RoleKey::open`]) failed; the caller turns it into an error that names
/// what it opened.
#[derive(Debug)]
pub enum Failure {
    /// `E` is a low-order point (the shared secret is all zero).
    LowOrder,
    /// Authentication failed (other key, info, associated data, or changed bytes).
    Decrypt,
}

impl Failure {
    /// The [`CryptoError`] for this failure; `what` names the thing that did not open.
    pub(crate) fn into_error(self, what: impl FnOnce() -> String) -> CryptoError {
        match self {
            Failure::LowOrder => CryptoError::LowOrderPoint {
                which: "ephemeral public key",
            },
            Failure::Decrypt => CryptoError::Decrypt { what: what() },
        }
    }
}

/// Ephemeral-static sealing of a 32-byte `secret` to the X25519 public key `recipient`, the one
/// construction behind both [`seal_role_key`] and DEK wrapping:
///
/// ```text
/// e = fresh random X25519 secret; E = X25519(e, 9); ss = X25519(e, R)  (refused if all zero)
/// k = HKDF-SHA256(salt = E || R, ikm = ss, info, length 32)
/// ciphertext = XChaCha20-Poly1305(key k, nonce n = 24 random bytes, aad, secret)   (48 bytes)
/// ```
///
/// `recipient_name` names `recipient` in the [`CryptoError::LowOrderPoint`] error. Public for
/// `bzzz-bench`, which times one DEK wrap; the daemon wraps through
/// [`seal_record`](super::seal_record) and [`seal_role_key`].
pub fn seal_to(
    recipient: &[u8; X25519_PUBLIC_LEN],
    info: &[u8],
    aad: &[u8],
    secret: &[u8; KEY_LEN],
    recipient_name: &'static str,
) -> Result<Sealed, CryptoError> {
    let ephemeral = StaticSecret::from(*random_secret::<KEY_LEN>());
    let ephemeral_public = X25519Public::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&X25519Public::from(*recipient));
    drop(ephemeral);
    if !shared.was_contributory() {
        return Err(CryptoError::LowOrderPoint { which: recipient_name });
    }
    let key = derive_key(&shared, &ephemeral_public, recipient, info);
    let nonce: [u8; NONCE_LEN] = random_array();
    let ciphertext = xchacha::seal(&key, &nonce, aad, secret)
        .map_err(|_| CryptoError::InvalidInput("a 32-byte secret could not be encrypted".into()))?;
    Ok(Sealed {
        ephemeral_public,
        nonce,
        ciphertext,
    })
}

/// Opens what [`seal_to`] sealed to `public`, the public half of `secret`: `ss = X25519(r, E)`
/// (refused if all zero), then the same derivation with the same `info` and `aad`.
fn open_from(
    secret: &StaticSecret,
    public: &[u8; X25519_PUBLIC_LEN],
    sealed: &EphemeralSeal<'_>,
    info: &[u8],
    aad: &[u8],
) -> Result<Secret, Failure> {
    let shared = secret.diffie_hellman(&X25519Public::from(sealed.ephemeral_public));
    if !shared.was_contributory() {
        return Err(Failure::LowOrder);
    }
    let key = derive_key(&shared, &sealed.ephemeral_public, public, info);
    let plain =
        Zeroizing::new(xchacha::open(&key, &sealed.nonce, aad, sealed.ciphertext).map_err(|_| Failure::Decrypt)?);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(Failure::Decrypt);
    }
    out.copy_from_slice(&plain);
    Ok(out)
}

/// The sealing key: HKDF-SHA256(salt = E || R, ikm = shared secret, info).
fn derive_key(
    shared: &x25519_dalek::SharedSecret,
    ephemeral_public: &[u8; X25519_PUBLIC_LEN],
    recipient_public: &[u8; X25519_PUBLIC_LEN],
    info: &[u8],
) -> Zeroizing<[u8; KEY_LEN]> {
    let salt = Canonical::default()
        .fixed(ephemeral_public)
        .fixed(recipient_public)
        .finish();
    let hkdf = Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    hkdf.expand(info, key.as_mut())
        .expect("32 bytes is within HKDF-SHA256's output limit of 255 * 32 bytes");
    key
}

/// The context bytes `C` of a sealed role key, both the HKDF info and the AEAD associated data.
fn seal_context(role: &str, epoch: u64, recipient: &PeerId) -> Vec<u8> {
    Canonical::starting_with(ROLE_KEY_SEAL_TAG)
        .str(role)
        .u64(epoch)
        .bytes(&recipient.to_bytes())
        .finish()
}

/// Seals the secret of `key` (the key pair of `role` at `epoch`) to the member `recipient` whose
/// X25519 public key is `recipient_public` (taken from the member's verified
/// [`KeyBinding`](super::KeyBinding)).
///
/// Only the holder of the matching X25519 secret can open it, and only for this role, epoch and
/// peer id. Fails with [`CryptoError::LowOrderPoint`] if `recipient_public` is a low-order point
/// (the shared secret would be all zero and the key readable by anyone).
pub fn seal_role_key(
    key: &RoleKey,
    role: &str,
    epoch: u64,
    recipient: &PeerId,
    recipient_public: &[u8; X25519_PUBLIC_LEN],
) -> Result<SealedRoleKey, CryptoError> {
    let context = seal_context(role, epoch, recipient);
    let sealed = seal_to(
        recipient_public,
        &context,
        &context,
        key.as_bytes(),
        "recipient public key",
    )?;
    Ok(SealedRoleKey {
        ephemeral_public: sealed.ephemeral_public.to_vec(),
        nonce: sealed.nonce.to_vec(),
        ciphertext: sealed.ciphertext,
    })
}

/// Opens a sealed role key with the recipient's static key pair. Used through
/// [`Keyring::open_role_key`](super::Keyring::open_role_key).
pub(crate) fn open_role_key(
    secret: &StaticSecret,
    public: &[u8; X25519_PUBLIC_LEN],
    sealed: &SealedRoleKey,
    role: &str,
    epoch: u64,
    recipient: &PeerId,
) -> Result<RoleKey, CryptoError> {
    let ephemeral_public: [u8; X25519_PUBLIC_LEN] = exact(&sealed.ephemeral_public, "ephemeral public key")?;
    let nonce: [u8; NONCE_LEN] = exact(&sealed.nonce, "nonce")?;
    if sealed.ciphertext.len() != SEALED_CIPHERTEXT_LEN {
        return Err(CryptoError::malformed(
            "sealed role key ciphertext",
            format!("{} bytes, expected {SEALED_CIPHERTEXT_LEN}", sealed.ciphertext.len()),
        ));
    }
    let seal = EphemeralSeal {
        ephemeral_public,
        nonce,
        ciphertext: &sealed.ciphertext,
    };
    let context = seal_context(role, epoch, recipient);
    let secret = open_from(secret, public, &seal, &context, &context)
        .map_err(|f| f.into_error(|| format!("sealed role key for role {role} epoch {epoch}")))?;
    Ok(RoleKey::from_bytes(*secret))
}

/// `bytes` as a fixed-size array, or a [`CryptoError::Malformed`] naming the sealed-key field.
fn exact<const N: usize>(bytes: &[u8], field: &str) -> Result<[u8; N], CryptoError> {
    bytes.try_into().map_err(|_| {
        CryptoError::malformed(
            format!("sealed role key {field}"),
            format!("{} bytes, expected {N}", bytes.len()),
        )
    })
}

/// X25519 public keys of low order (order 1, 2, 4 or 8: 0, 1, two points of order 8, p - 1, as
/// u-coordinates): X25519 with any of them gives the all-zero shared secret.
#[cfg(test)]
pub(crate) fn low_order_points() -> [[u8; X25519_PUBLIC_LEN]; 5] {
    let hex_point = |s: &str| -> [u8; X25519_PUBLIC_LEN] {
        let v = hex::decode(s).expect("valid hex in test vector");
        v.try_into().expect("32-byte test vector")
    };
    let mut one = [0u8; X25519_PUBLIC_LEN];
    one[0] = 1;
    [
        [0; X25519_PUBLIC_LEN],
        one,
        hex_point("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        hex_point("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        hex_point("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ErrorKind, Keyring};

    struct Member {
        keyring: Keyring,
        peer: PeerId,
    }

    fn member() -> Member {
        Member {
            keyring: Keyring::generate(),
            peer: libp2p::identity::Keypair::generate_ed25519().public().to_peer_id(),
        }
    }

    /// The member the key was sealed to gets the same key back.
    #[test]
    fn sealed_role_key_round_trips() {
        let m = member();
        let key = RoleKey::generate();
        let sealed = seal_role_key(&key, "dev", 3, &m.peer, &m.keyring.public_key()).expect("seal");
        assert_eq!(sealed.ephemeral_public.len(), 32);
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(sealed.ciphertext.len(), SEALED_CIPHERTEXT_LEN);
        let opened = m.keyring.open_role_key(&sealed, "dev", 3, &m.peer).expect("open");
        assert_eq!(
            opened.as_bytes(),
            key.as_bytes(),
            "opened key differs from the sealed key"
        );
    }

    /// Sealing twice gives different ephemeral keys, nonces and ciphertexts.
    #[test]
    fn sealing_is_randomised() {
        let m = member();
        let key = RoleKey::generate();
        let a = seal_role_key(&key, "dev", 1, &m.peer, &m.keyring.public_key()).expect("seal");
        let b = seal_role_key(&key, "dev", 1, &m.peer, &m.keyring.public_key()).expect("seal");
        assert_ne!(a.ephemeral_public, b.ephemeral_public, "ephemeral key reused");
        assert_ne!(a.nonce, b.nonce, "nonce reused");
        assert_ne!(a.ciphertext, b.ciphertext, "ciphertext repeated");
    }

    /// Another member's static key, or the right key with another role, epoch or peer id, cannot
    /// open the sealed key.
    #[test]
    fn sealed_role_key_is_bound_to_recipient_role_epoch_and_peer() {
        let m = member();
        let other = member();
        let key = RoleKey::generate();
        let sealed = seal_role_key(&key, "dev", 3, &m.peer, &m.keyring.public_key()).expect("seal");
        let cases = [
            (
                "wrong static key",
                other.keyring.open_role_key(&sealed, "dev", 3, &m.peer),
            ),
            ("wrong role", m.keyring.open_role_key(&sealed, "admin", 3, &m.peer)),
            ("wrong epoch", m.keyring.open_role_key(&sealed, "dev", 4, &m.peer)),
            ("wrong peer id", m.keyring.open_role_key(&sealed, "dev", 3, &other.peer)),
        ];
        for (case, result) in cases {
            let err = result.expect_err(case);
            assert!(
                matches!(err, CryptoError::Decrypt { .. }),
                "{case}: unexpected error {err}"
            );
            assert_eq!(err.kind(), ErrorKind::Tampered, "{case}");
        }
    }

    /// Changing any byte of a sealed key makes it fail to open.
    #[test]
    fn tampered_sealed_role_key_fails() {
        let m = member();
        let key = RoleKey::generate();
        let sealed = seal_role_key(&key, "dev", 3, &m.peer, &m.keyring.public_key()).expect("seal");
        for field in 0..3 {
            for i in 0..[32, NONCE_LEN, SEALED_CIPHERTEXT_LEN][field] {
                let mut bad = sealed.clone();
                let bytes = match field {
                    0 => &mut bad.ephemeral_public,
                    1 => &mut bad.nonce,
                    _ => &mut bad.ciphertext,
                };
                bytes[i] ^= 0x01;
                assert!(
                    m.keyring.open_role_key(&bad, "dev", 3, &m.peer).is_err(),
                    "field {field} byte {i} flipped but the sealed key still opened"
                );
            }
        }
    }

    /// Low-order X25519 public keys (the all-zero point and the other small-order points) are
    /// refused when sealing, and as ephemeral keys when opening.
    #[test]
    fn low_order_points_are_rejected() {
        let m = member();
        let key = RoleKey::generate();
        for point in low_order_points() {
            let err = seal_role_key(&key, "dev", 1, &m.peer, &point).expect_err("low-order recipient must be refused");
            assert!(
                matches!(err, CryptoError::LowOrderPoint { .. }),
                "unexpected error {err}"
            );
            let sealed = SealedRoleKey {
                ephemeral_public: point.to_vec(),
                nonce: vec![0; NONCE_LEN],
                ciphertext: vec![0; SEALED_CIPHERTEXT_LEN],
            };
            let err = m
                .keyring
                .open_role_key(&sealed, "dev", 1, &m.peer)
                .expect_err("low-order ephemeral must be refused");
            assert!(
                matches!(err, CryptoError::LowOrderPoint { .. }),
                "unexpected error {err}"
            );
        }
    }

    /// Wrong field lengths are malformed, not a panic.
    #[test]
    fn wrong_lengths_are_malformed() {
        let m = member();
        let key = RoleKey::generate();
        let good = seal_role_key(&key, "dev", 1, &m.peer, &m.keyring.public_key()).expect("seal");
        let mut short_eph = good.clone();
        short_eph.ephemeral_public.pop();
        let mut long_nonce = good.clone();
        long_nonce.nonce.push(0);
        let mut short_ct = good.clone();
        short_ct.ciphertext.truncate(40);
        for (case, bad) in [
            ("ephemeral", short_eph),
            ("nonce", long_nonce),
            ("ciphertext", short_ct),
        ] {
            let err = m.keyring.open_role_key(&bad, "dev", 1, &m.peer).expect_err(case);
            assert_eq!(err.kind(), ErrorKind::Malformed, "{case}: {err}");
        }
    }

    /// Debug never shows the key.
    #[test]
    fn role_key_debug_is_redacted() {
        let key = RoleKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "RoleKey([redacted])");
        assert!(
            !shown.to_lowercase().contains("ab, ") && !shown.contains("171"),
            "{shown}"
        );
    }

    /// A role key pair's public half is X25519(secret, 9), the same after a round trip through
    /// bytes and through sealing to a member; its Debug is the hex key.
    #[test]
    fn role_public_key_is_derived_from_the_secret() {
        let key = RoleKey::generate();
        let expected = X25519Public::from(&StaticSecret::from(*key.as_bytes())).to_bytes();
        assert_eq!(key.public().as_bytes(), &expected);
        assert_eq!(RoleKey::from_bytes(*key.as_bytes()).public(), key.public());
        assert_ne!(RoleKey::generate().public(), key.public());
        let m = member();
        let sealed = seal_role_key(&key, "dev", 3, &m.peer, &m.keyring.public_key()).expect("seal");
        let opened = m.keyring.open_role_key(&sealed, "dev", 3, &m.peer).expect("open");
        assert_eq!(opened.public(), key.public(), "the member gets the same key pair");
        assert_eq!(
            format!("{:?}", key.public()),
            format!("RolePublicKey({})", hex::encode(expected))
        );
        assert_eq!(RolePublicKey::from_bytes(expected), key.public());
    }

    /// What seal_to seals to a role's public key opens with that role's secret only, and only
    /// under the same HKDF info and associated data.
    #[test]
    fn sealing_to_a_role_public_key_opens_with_its_secret() {
        let role = RoleKey::generate();
        let other = RoleKey::generate();
        let secret = [7u8; KEY_LEN];
        let sealed = seal_to(role.public().as_bytes(), b"info", b"aad", &secret, "role public key").expect("seal");
        let sealed = sealed.borrowed();
        assert_eq!(*role.open(&sealed, b"info", b"aad").expect("open"), secret);
        for (case, key, info, aad) in [
            ("other secret", &other, &b"info"[..], &b"aad"[..]),
            ("other info", &role, b"inf0", b"aad"),
            ("other aad", &role, b"info", b"aaD"),
        ] {
            assert!(
                matches!(key.open(&sealed, info, aad), Err(Failure::Decrypt)),
                "{case} must not open"
            );
        }
    }
}
