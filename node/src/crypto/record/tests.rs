//! Tests of the record format: round trips, every check of verify, tampering, re-wrap, golden
//! vectors.

use bzzz_protocol::wire::{ContextRecord, RecordHeader, WrappedKey};
use libp2p::PeerId;
use libp2p::identity::Keypair;
use prost::Message;
use sha2::{Digest, Sha256};

use super::open::unwrap_dek;
use super::seal::ed25519_id;
use super::verify::{CIPHERTEXT_FIELD_KEY, is_canonical_encoding};
use super::*;
use crate::crypto::ErrorKind;
use crate::crypto::seal::low_order_points;
use crate::crypto::seal::{RoleKey, RolePublicKey, seal_to};
use crate::crypto::{KEY_LEN, RoleKeySet, TAG_LEN, public_key_of, random_secret};

const ADDR: &str = "ucxl://alice:dev@bzzz:issue-4/docs/design.md";

/// A writer, an admin identity, the role key pairs of epoch "now" (dev@1, lead@4, admin@2) and
/// of the next epoch after a rotation (dev@2, admin@3; lead has no key in the new epoch list).
struct Fixture {
    author: Keypair,
    admin_id: Keypair,
    dev: RoleKey,
    lead: RoleKey,
    admin: RoleKey,
    dev2: RoleKey,
    admin3: RoleKey,
    publics: [RolePublicKey; 5],
}

impl Fixture {
    fn new() -> Self {
        let [dev, lead, admin, dev2, admin3] = std::array::from_fn(|_| RoleKey::generate());
        let publics = [&dev, &lead, &admin, &dev2, &admin3].map(RoleKey::public);
        Self {
            author: Keypair::generate_ed25519(),
            admin_id: Keypair::generate_ed25519(),
            dev,
            lead,
            admin,
            dev2,
            admin3,
            publics,
        }
    }

    /// What a writer needs for the first `n` of dev@1, lead@4, admin@2: public keys only.
    fn readers(&self, n: usize) -> Vec<Reader<'_>> {
        [
            ("dev", 1, &self.publics[0]),
            ("lead", 4, &self.publics[1]),
            ("admin", 2, &self.publics[2]),
        ][..n]
            .to_vec()
    }

    /// The secrets of the first `n` of dev@1, lead@4, admin@2.
    fn keys(&self, n: usize) -> Vec<(&str, u64, &RoleKey)> {
        [
            ("dev", 1, &self.dev),
            ("lead", 4, &self.lead),
            ("admin", 2, &self.admin),
        ][..n]
            .to_vec()
    }

    /// The readers of the new epoch: dev@2 and admin@3 (public keys).
    fn new_readers(&self) -> Vec<Reader<'_>> {
        vec![("dev", 2, &self.publics[3]), ("admin", 3, &self.publics[4])]
    }

    /// The secrets of the new epoch.
    fn new_keys(&self) -> Vec<(&str, u64, &RoleKey)> {
        vec![("dev", 2, &self.dev2), ("admin", 3, &self.admin3)]
    }

    fn seal(&self, content: &[u8], readers: usize) -> ContextRecord {
        seal_record(content, &new_record(ADDR), &self.readers(readers), &self.author).expect("seal")
    }

    /// The record re-wrapped to the new epoch by the admin identity, which holds admin@2.
    fn rewrap(&self, record: &ContextRecord) -> ContextRecord {
        let verified = verify(record).expect("the original verifies");
        rewrap_record(
            &verified,
            &[("admin", 2, &self.admin)][..],
            &self.new_readers(),
            &self.admin_id,
        )
        .expect("rewrap")
    }
}

fn new_record(address: &str) -> NewRecord<'_> {
    NewRecord {
        address,
        role: "dev",
        epoch: 1,
        created_ms: 1_790_000_000_000,
        tombstone: false,
    }
}

fn verify(record: &ContextRecord) -> Result<VerifiedRecord, CryptoError> {
    verify_record(&record.encode_to_vec(), DEFAULT_MAX_RECORD_BYTES)
}

/// `D` of a (possibly modified) record, from its fields.
fn digest(record: &ContextRecord) -> [u8; CONTENT_DIGEST_LEN] {
    let header = record.header.as_ref().expect("test records have a header");
    content_digest(header, &record.nonce, &record.ciphertext)
}

/// `S_c` of a (possibly modified) record, from its fields.
fn content_signed(record: &ContextRecord) -> Vec<u8> {
    content_signed_bytes(&digest(record))
}

/// Signs the content part with `key`, keeping the author named in the header.
fn sign_content(record: &mut ContextRecord, key: &Keypair) {
    record.author_signature = key.sign(&content_signed(record)).expect("ed25519 signs");
}

/// Signs the key list with `key` as whatever `keys_signer` the record names (a forger's move
/// if that is not `key`).
fn sign_keys_as_named(record: &mut ContextRecord, key: &Keypair) {
    let signed = keys_signed_bytes(&digest(record), &record.keys_signer, &record.wrapped_keys);
    record.keys_signature = key.sign(&signed).expect("ed25519 signs");
}

/// Names `key` as the keys signer and signs the key list with it.
fn sign_keys(record: &mut ContextRecord, key: &Keypair) {
    record.keys_signer = key.public().to_peer_id().to_bytes();
    sign_keys_as_named(record, key);
}

/// Re-signs a (modified) record's content and key list with `key`, as a malicious author or a
/// forger would.
fn re_sign(record: &mut ContextRecord, key: &Keypair) {
    sign_content(record, key);
    sign_keys(record, key);
}

fn bad_signature_of(err: &CryptoError) -> Option<&'static str> {
    match err {
        CryptoError::BadSignature { what, .. } => Some(what),
        _ => None,
    }
}

/// Content of `len` bytes that is not all one value, so misplaced bytes would show.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Every reader role opens records of 0 B, 1 B, 64 KiB and 1 MiB sealed for 1 and 3 roles,
/// through encode, verify and open, and gets the exact content and header back.
#[test]
fn seal_open_round_trip_for_all_sizes_and_readers() {
    let f = Fixture::new();
    for len in [0, 1, 64 * 1024, 1024 * 1024] {
        let plain = content(len);
        for n in [1, 3] {
            let record = f.seal(&plain, n);
            let bytes = record.encode_to_vec();
            let verified = verify_record(&bytes, DEFAULT_MAX_RECORD_BYTES)
                .unwrap_or_else(|e| panic!("{len} B, {n} readers: verify failed: {e}"));
            assert_eq!(verified.author(), f.author.public().to_peer_id());
            assert_eq!(
                verified.keys_signer(),
                verified.author(),
                "a new record's keys signer is its author"
            );
            assert!(verified.keys_signed_by_author());
            assert_eq!(verified.address(), ADDR);
            assert_eq!(verified.record_key(), record_key(&bytes));
            assert_eq!(verified.readers().count(), n);
            for (role, epoch, key) in f.keys(n) {
                let only_this_role = [(role, epoch, key)];
                let opened = open_verified(&verified, ADDR, &only_this_role[..])
                    .unwrap_or_else(|e| panic!("{len} B, {n} readers: {role} cannot open: {e}"));
                assert!(opened.content == plain, "{len} B, {n} readers, {role}: content differs");
                assert_eq!(opened.header, *verified.header());
                assert_eq!(opened.keys_signer, verified.author());
                assert_eq!((opened.opened_role.as_str(), opened.opened_epoch), (role, epoch));
                assert_eq!(opened.header.format, RECORD_FORMAT);
                assert_eq!(opened.header.write_id.len(), WRITE_ID_LEN);
            }
        }
    }
}

/// The ciphertext is not the plaintext, and two seals of the same content differ everywhere
/// (fresh DEK, ephemeral keys, nonces and write id), so their record keys differ.
#[test]
fn sealing_is_randomised_and_hides_content() {
    let f = Fixture::new();
    let plain = b"the launch codes are in the left drawer".to_vec();
    let a = f.seal(&plain, 2);
    let b = f.seal(&plain, 2);
    assert!(
        !a.ciphertext.windows(plain.len()).any(|w| w == plain),
        "ciphertext contains the plaintext"
    );
    assert_ne!(a.ciphertext, b.ciphertext, "ciphertext repeated");
    assert_ne!(a.nonce, b.nonce, "content nonce repeated");
    assert_ne!(
        a.wrapped_keys[0].wrapped_dek, b.wrapped_keys[0].wrapped_dek,
        "wrapped DEK repeated"
    );
    assert_ne!(
        a.wrapped_keys[0].ephemeral_public, a.wrapped_keys[1].ephemeral_public,
        "ephemeral key reused across readers"
    );
    assert_ne!(
        a.wrapped_keys[0].ephemeral_public, b.wrapped_keys[0].ephemeral_public,
        "ephemeral key reused across records"
    );
    assert_ne!(
        a.header.as_ref().map(|h| &h.write_id),
        b.header.as_ref().map(|h| &h.write_id)
    );
    assert_ne!(record_key(&a.encode_to_vec()), record_key(&b.encode_to_vec()));
}

/// A reader holding only an unrelated role gets the forbidden error; so does one holding the
/// right role at another epoch; the right role and epoch with the wrong key fails to decrypt.
#[test]
fn readers_without_the_right_role_epoch_key_cannot_open() {
    let f = Fixture::new();
    let verified = verify(&f.seal(b"secret", 3)).expect("verify");

    let unrelated = RoleKey::generate();
    let err = open_verified(&verified, ADDR, &[("ops", 1, &unrelated)][..]).expect_err("unrelated role");
    assert!(
        matches!(err, CryptoError::NoReadableKey { .. }),
        "unrelated role: {err}"
    );
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(
        err.to_string().contains("dev@1"),
        "error should list the readers: {err}"
    );

    let err = open_verified(&verified, ADDR, &RoleKeySet::new()).expect_err("no keys at all");
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");

    // dev's key of epoch 2 (after a rotation) does not open a record wrapped for dev@1.
    let err = open_verified(&verified, ADDR, &[("dev", 2, &f.dev2)][..]).expect_err("other epoch");
    assert_eq!(err.kind(), ErrorKind::Forbidden, "other epoch: {err}");

    // A different key registered as dev@1 is not dev@1's key.
    let err = open_verified(&verified, ADDR, &[("dev", 1, &unrelated)][..]).expect_err("wrong key");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "wrong key bytes: {err}");
    assert_eq!(err.kind(), ErrorKind::Tampered);
}

/// A reader with a bad key for one readable role still opens with another role it holds.
#[test]
fn a_failing_wrapped_key_does_not_hide_a_good_one() {
    let f = Fixture::new();
    let verified = verify(&f.seal(b"x", 3)).expect("verify");
    let wrong = RoleKey::generate();
    let mut keys = RoleKeySet::new();
    keys.insert("dev", 1, wrong);
    keys.insert("admin", 2, f.admin.clone());
    let opened = open_verified(&verified, ADDR, &keys).expect("admin key opens");
    assert_eq!(opened.content, b"x");
    assert_eq!(opened.opened_role, "admin");
}

/// The header commits to the DEK as documented: SHA-256("bzzz/dek-commit/v1" || DEK), and the
/// DEK every reader unwraps hashes to it.
#[test]
fn the_header_commits_to_the_dek() {
    let f = Fixture::new();
    let record = f.seal(b"committed", 3);
    let header = record.header.as_ref().expect("header");
    let h = canonical_header(header);
    assert!(
        h.ends_with(&[&32u64.to_be_bytes()[..], &header.dek_commitment].concat()),
        "H ends with lp(dek_commitment)"
    );
    for (i, (_, _, key)) in f.keys(3).into_iter().enumerate() {
        let dek = unwrap_dek(key, &record.wrapped_keys[i], &h).expect("unwraps");
        let want: [u8; 32] = Sha256::digest([&b"bzzz/dek-commit/v1"[..], &dek[..]].concat()).into();
        assert_eq!(dek_commitment(&dek), want, "documented formula");
        assert_eq!(header.dek_commitment, want, "wrapped key {i} holds the committed DEK");
    }
}

/// A malicious author's record whose wrapped key for dev@1 holds a different DEK than the one
/// the header commits to (correctly wrapped and signed, so it verifies and unwraps): dev@1 is
/// refused with the commitment error before the content is decrypted, the other roles still
/// open it, and a reader holding dev@1 and lead@4 opens it through lead.
#[test]
fn a_wrapped_key_holding_another_dek_fails_the_commitment() {
    let f = Fixture::new();
    let forged = forge_other_dek(&f, f.seal(b"one content for all", 3), 0, &f.publics[0]);
    let verified = verify(&forged).expect("the author's forged record verifies");

    let err = open_verified(&verified, ADDR, &f.keys(1)[..]).expect_err("dev@1 holds another DEK");
    assert_commitment_error(&err, "dev", 1);
    for (role, epoch, key) in f.keys(3).into_iter().skip(1) {
        let opened = open_verified(&verified, ADDR, &[(role, epoch, key)][..]).expect("committed DEK opens");
        assert_eq!(opened.content, b"one content for all", "{role}@{epoch}");
    }
    let opened = open_verified(&verified, ADDR, &f.keys(2)[..]).expect("a bad key does not hide a good one");
    assert_eq!((opened.opened_role.as_str(), opened.opened_epoch), ("lead", 4));
}

/// rewrap_record refuses a DEK that does not match the header's commitment, and with another
/// held key that does, spreads only the committed DEK.
#[test]
fn rewrap_refuses_a_dek_that_does_not_match_the_commitment() {
    let f = Fixture::new();
    let forged = forge_other_dek(&f, f.seal(b"rotate me", 3), 2, &f.publics[2]);
    let verified = verify(&forged).expect("verify");

    let err = rewrap_record(&verified, &[("admin", 2, &f.admin)][..], &f.new_readers(), &f.admin_id)
        .expect_err("admin@2 holds another DEK");
    assert_commitment_error(&err, "admin", 2);

    let held = [("admin", 2, &f.admin), ("dev", 1, &f.dev)];
    let rewrapped =
        rewrap_record(&verified, &held[..], &f.new_readers(), &f.admin_id).expect("dev@1 holds the committed DEK");
    let opened = open_record(
        &rewrapped.encode_to_vec(),
        DEFAULT_MAX_RECORD_BYTES,
        ADDR,
        &f.new_keys()[..],
    )
    .expect("the new epoch opens");
    assert_eq!(opened.content, b"rotate me");
}

/// Replaces wrapped key `i` of `record` with a fresh random DEK wrapped to `public` (correctly,
/// for the record's header, role and epoch) and re-signs the key list as the author: what a
/// malicious author would do to show different roles different DEKs.
fn forge_other_dek(f: &Fixture, mut record: ContextRecord, i: usize, public: &RolePublicKey) -> ContextRecord {
    let h = canonical_header(record.header.as_ref().expect("header"));
    let other_dek = random_secret::<KEY_LEN>();
    let w = &mut record.wrapped_keys[i];
    let aad = wrap_aad(&h, &w.role, w.epoch);
    let sealed = seal_to(public.as_bytes(), &wrap_info(&aad), &aad, &other_dek, "test").expect("wrap");
    (w.ephemeral_public, w.nonce, w.wrapped_dek) = (
        sealed.ephemeral_public.to_vec(),
        sealed.nonce.to_vec(),
        sealed.ciphertext,
    );
    sign_keys(&mut record, &f.author);
    record
}

fn assert_commitment_error(err: &CryptoError, role: &str, epoch: u64) {
    match err {
        CryptoError::Decrypt { what } => assert_eq!(
            what,
            &format!("data key commitment (wrapped key for role {role} epoch {epoch})"),
            "the commitment, not the content, must fail"
        ),
        other => panic!("expected the DEK commitment error, got {other}"),
    }
    assert_eq!(err.kind(), ErrorKind::Tampered);
}

/// The point of asymmetric role keys: a dev writer holding its own secret and only the public
/// keys of lead and admin writes for all three, reads its own record through dev, cannot read
/// a record written for lead and admin only, and its own secret does not stand in for theirs.
#[test]
fn a_writer_with_public_keys_only_seals_for_higher_roles_it_cannot_open() {
    let f = Fixture::new();
    let mut writer_keys = RoleKeySet::new();
    writer_keys.insert("dev", 1, f.dev.clone());

    let everyone = verify(&f.seal(b"for dev and up", 3)).expect("verify");
    let opened = open_verified(&everyone, ADDR, &writer_keys).expect("the writer reads through dev");
    assert_eq!(opened.opened_role, "dev");
    for (role, epoch, key) in [("lead", 4, &f.lead), ("admin", 2, &f.admin)] {
        let opened = open_verified(&everyone, ADDR, &[(role, epoch, key)][..]).expect("higher role opens");
        assert_eq!(opened.content, b"for dev and up", "{role}");
    }

    let higher_only = [("lead", 4, &f.publics[1]), ("admin", 2, &f.publics[2])];
    let record = seal_record(b"above dev", &new_record(ADDR), &higher_only, &f.author).expect("seal");
    let verified = verify(&record).expect("verify");
    let err = open_verified(&verified, ADDR, &writer_keys).expect_err("the writer holds no higher key");
    assert!(matches!(err, CryptoError::NoReadableKey { .. }), "{err}");
    let err = open_verified(&verified, ADDR, &[("admin", 2, &f.dev)][..]).expect_err("dev's secret as admin");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");
    let opened = open_verified(&verified, ADDR, &f.keys(3)[..]).expect("the higher roles open it");
    assert_eq!(
        (opened.content.as_slice(), opened.opened_role.as_str()),
        (&b"above dev"[..], "lead")
    );
}

/// Flipping any bit pattern in any single byte of an encoded record, as written or re-wrapped
/// by the admin, or truncating it anywhere, never yields an opened record: decoding,
/// verification or decryption fails, and nothing panics.
#[test]
fn every_single_byte_change_is_detected() {
    let f = Fixture::new();
    // A tombstone, so the bool field is on the wire too (a byte that decodes as `true` whatever
    // non-zero value it holds: only the canonical-encoding check catches those flips).
    let new = NewRecord {
        tombstone: true,
        ..new_record(ADDR)
    };
    let record = seal_record(b"small record content", &new, &f.readers(3), &f.author).expect("seal");
    let commitment = record.header.as_ref().expect("header").dek_commitment.clone();
    assert_eq!(commitment.len(), DEK_COMMITMENT_LEN);
    let rewrapped = f.rewrap(&record);
    let mut keys = f.keys(3);
    keys.extend(f.new_keys());
    for (case, record) in [("written", record), ("re-wrapped", rewrapped)] {
        let bytes = record.encode_to_vec();
        assert!(
            bytes.windows(DEK_COMMITMENT_LEN).any(|w| w == commitment.as_slice()),
            "{case}: the DEK commitment must be among the bytes flipped below"
        );
        open_record(&bytes, DEFAULT_MAX_RECORD_BYTES, ADDR, &keys[..]).expect("the unmodified record opens");
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x02, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                if let Ok(opened) = open_record(&bad, DEFAULT_MAX_RECORD_BYTES, ADDR, &keys[..]) {
                    panic!(
                        "{case}: byte {i} of {} xor {flip:#04x} still opened ({} content bytes)",
                        bytes.len(),
                        opened.content.len()
                    );
                }
            }
        }
        for len in 0..bytes.len() {
            assert!(
                open_record(&bytes[..len], DEFAULT_MAX_RECORD_BYTES, ADDR, &keys[..]).is_err(),
                "{case}: record truncated to {len} bytes still opened"
            );
        }
    }
}

/// The author's signature covers header, nonce and ciphertext; the keys signature covers the
/// key list, the keys signer and (through S_c) the content part. Changing anything without
/// the signers' keys breaks the signature that covers it.
#[test]
fn signatures_cover_every_field() {
    let f = Fixture::new();
    let record = f.seal(b"signed", 3);
    let other_peer = Keypair::generate_ed25519().public().to_peer_id().to_bytes();
    type Edit = Box<dyn Fn(&mut ContextRecord)>;
    let content_edits: [(&str, Edit); 11] = [
        (
            "move the address",
            Box::new(|r| r.header.as_mut().expect("header").address.push('x')),
        ),
        (
            "backdate",
            Box::new(|r| r.header.as_mut().expect("header").created_ms -= 1),
        ),
        (
            "tombstone",
            Box::new(|r| r.header.as_mut().expect("header").tombstone = true),
        ),
        ("swap nonce", Box::new(|r| r.nonce.reverse())),
        ("flip ciphertext", Box::new(|r| r.ciphertext[0] ^= 1)),
        (
            "flip a middle ciphertext byte",
            Box::new(|r| {
                let mid = r.ciphertext.len() / 2;
                r.ciphertext[mid] ^= 0x80;
            }),
        ),
        (
            "flip the AEAD tag",
            Box::new(|r| *r.ciphertext.last_mut().expect("tag") ^= 1),
        ),
        (
            "shorten ciphertext",
            Box::new(|r| {
                r.ciphertext.pop();
            }),
        ),
        ("lengthen ciphertext", Box::new(|r| r.ciphertext.push(0))),
        ("damage author signature", Box::new(|r| r.author_signature[5] ^= 1)),
        (
            "the keys signature as author signature",
            Box::new(|r| r.author_signature = r.keys_signature.clone()),
        ),
    ];
    for (case, edit) in content_edits {
        let mut bad = record.clone();
        edit(&mut bad);
        let err = verify(&bad).expect_err(case);
        assert_eq!(bad_signature_of(&err), Some("record content"), "{case}: {err}");
        assert_eq!(err.kind(), ErrorKind::Tampered, "{case}");
    }
    let key_edits: [(&str, Edit); 8] = [
        (
            "drop a wrapped key",
            Box::new(|r| {
                r.wrapped_keys.pop();
            }),
        ),
        ("reorder wrapped keys", Box::new(|r| r.wrapped_keys.swap(0, 1))),
        ("relabel a wrapped key", Box::new(|r| r.wrapped_keys[2].epoch += 1)),
        (
            "swap ephemeral keys",
            Box::new(|r| {
                let e = r.wrapped_keys[0].ephemeral_public.clone();
                r.wrapped_keys[0].ephemeral_public = std::mem::replace(&mut r.wrapped_keys[1].ephemeral_public, e);
            }),
        ),
        (
            "flip a wrapped DEK",
            Box::new(|r| r.wrapped_keys[1].wrapped_dek[3] ^= 1),
        ),
        (
            "name another keys signer",
            Box::new(move |r| r.keys_signer = other_peer.clone()),
        ),
        ("damage keys signature", Box::new(|r| r.keys_signature[7] ^= 1)),
        (
            "the author signature as keys signature",
            Box::new(|r| r.keys_signature = r.author_signature.clone()),
        ),
    ];
    for (case, edit) in key_edits {
        let mut bad = record.clone();
        edit(&mut bad);
        let err = verify(&bad).expect_err(case);
        assert_eq!(bad_signature_of(&err), Some("record key list"), "{case}: {err}");
        assert_eq!(err.kind(), ErrorKind::Tampered, "{case}");
    }
}

/// A record cannot be moved to another address: asking for another address fails, and an
/// author who re-signs the header with another address gets a record that does not decrypt.
#[test]
fn records_cannot_be_moved_to_another_address() {
    let f = Fixture::new();
    let record = f.seal(b"pinned", 1);
    let keys = f.keys(1);
    let other = "ucxl://alice:dev@bzzz:issue-5/docs/design.md";

    let err = open_verified(&verify(&record).expect("verify"), other, &keys[..]).expect_err("other address");
    assert!(matches!(err, CryptoError::WrongAddress { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Tampered);

    let mut moved = record.clone();
    moved.header.as_mut().expect("header").address = other.into();
    re_sign(&mut moved, &f.author);
    let verified = verify(&moved).expect("re-signed by its author, the moved record is authentic");
    let err = open_verified(&verified, other, &keys[..]).expect_err("moved record must not decrypt");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");
    let err = open_verified(&verified, ADDR, &keys[..]).expect_err("and it is not at the old address");
    assert!(matches!(err, CryptoError::WrongAddress { .. }), "{err}");
}

/// The content itself is bound to the header: even an author who re-wraps the record's own DEK
/// correctly for a moved header (so the wrapped key opens) gets a content decryption failure.
#[test]
fn content_is_bound_to_the_header() {
    let f = Fixture::new();
    let record = f.seal(b"pinned content", 1);
    let old_h = canonical_header(record.header.as_ref().expect("header"));
    let dek = unwrap_dek(&f.dev, &record.wrapped_keys[0], &old_h).expect("author's own DEK unwraps");

    let other = "ucxl://alice:dev@bzzz:issue-5/docs/design.md";
    let mut moved = record.clone();
    moved.header.as_mut().expect("header").address = other.into();
    let new_h = canonical_header(moved.header.as_ref().expect("header"));
    let w = &mut moved.wrapped_keys[0];
    let aad = wrap_aad(&new_h, &w.role, w.epoch);
    let sealed = seal_to(f.publics[0].as_bytes(), &wrap_info(&aad), &aad, &dek, "test").expect("re-wrap");
    (w.ephemeral_public, w.nonce, w.wrapped_dek) = (
        sealed.ephemeral_public.to_vec(),
        sealed.nonce.to_vec(),
        sealed.ciphertext,
    );
    re_sign(&mut moved, &f.author);
    let verified = verify(&moved).expect("verify");
    let err = open_verified(&verified, other, &f.keys(1)[..]).expect_err("moved");
    match err {
        CryptoError::Decrypt { what } => assert_eq!(what, "content", "the content, not the key, must fail"),
        other => panic!("expected a content decryption failure, got {other}"),
    }
}

/// Changing any other header field and re-signing (a different writer role, epoch, time,
/// tombstone flag or write id) also breaks decryption: the whole header is associated data.
#[test]
fn every_header_field_is_bound_to_the_ciphertext() {
    let f = Fixture::new();
    let record = f.seal(b"bound", 1);
    let keys = f.keys(1);
    type Edit = fn(&mut RecordHeader);
    let edits: [(&str, Edit); 6] = [
        ("role", |h| h.role = "lead".into()),
        ("epoch", |h| h.epoch += 1),
        ("created_ms", |h| h.created_ms += 1),
        ("tombstone", |h| h.tombstone = !h.tombstone),
        ("write_id", |h| h.write_id[0] ^= 1),
        ("dek_commitment", |h| h.dek_commitment[31] ^= 1),
    ];
    for (field, edit) in edits {
        let mut changed = record.clone();
        edit(changed.header.as_mut().expect("header"));
        re_sign(&mut changed, &f.author);
        let verified = verify(&changed).unwrap_or_else(|e| panic!("{field}: re-signed record must verify: {e}"));
        let err = open_verified(&verified, ADDR, &keys[..]).expect_err(field);
        assert!(matches!(err, CryptoError::Decrypt { .. }), "{field}: {err}");
    }
}

/// A content signature by anyone but the author named in the header is rejected;
/// re-attributing a record to another author (and signing as them) breaks decryption; authors
/// and keys signers must be ed25519 peer ids.
#[test]
fn only_the_header_author_can_sign_the_content() {
    let f = Fixture::new();
    let mallory = Keypair::generate_ed25519();
    let record = f.seal(b"authored", 1);

    let mut forged = record.clone();
    sign_content(&mut forged, &mallory);
    sign_keys_as_named(&mut forged, &f.author);
    let err = verify(&forged).expect_err("content signature by another identity");
    assert_eq!(bad_signature_of(&err), Some("record content"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Tampered);

    let mut stolen = record.clone();
    stolen.header.as_mut().expect("header").author = mallory.public().to_peer_id().to_bytes();
    re_sign(&mut stolen, &mallory);
    let verified = verify(&stolen).expect("mallory's signatures over mallory's header verify");
    let err = open_verified(&verified, ADDR, &f.keys(1)[..]).expect_err("re-attributed record");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");

    let mut no_key = record.clone();
    no_key.header.as_mut().expect("header").author = PeerId::random().to_bytes();
    let err = verify(&no_key).expect_err("author without an embedded key");
    assert!(matches!(err, CryptoError::NoEmbeddedKey { .. }), "{err}");

    let mut signer_no_key = record.clone();
    signer_no_key.keys_signer = PeerId::random().to_bytes();
    let err = verify(&signer_no_key).expect_err("keys signer without an embedded key");
    assert!(matches!(err, CryptoError::NoEmbeddedKey { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Malformed);
}

/// A wrapped key relabelled to another role or epoch, given another wrapped key's ephemeral
/// key, or moved in from another record, does not unwrap even when the author re-signs; a
/// low-order ephemeral key is refused.
#[test]
fn wrapped_keys_are_bound_to_role_epoch_and_record() {
    let f = Fixture::new();
    let record = f.seal(b"wrapped", 2);

    let mut relabelled = record.clone();
    relabelled.wrapped_keys[0].role = "admin".into();
    re_sign(&mut relabelled, &f.author);
    let err = open_verified(&verify(&relabelled).expect("verify"), ADDR, &[("admin", 1, &f.dev)][..])
        .expect_err("relabelled role");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");

    let mut re_epoched = record.clone();
    re_epoched.wrapped_keys[0].epoch = 9;
    re_sign(&mut re_epoched, &f.author);
    let err = open_verified(&verify(&re_epoched).expect("verify"), ADDR, &[("dev", 9, &f.dev)][..])
        .expect_err("relabelled epoch");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");

    let mut swapped = record.clone();
    let lead_e = swapped.wrapped_keys[1].ephemeral_public.clone();
    swapped.wrapped_keys[0].ephemeral_public = lead_e;
    re_sign(&mut swapped, &f.author);
    let err = open_verified(&verify(&swapped).expect("verify"), ADDR, &f.keys(1)[..])
        .expect_err("another wrapped key's ephemeral key");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");

    let donor = f.seal(b"other record", 2);
    let mut spliced = record.clone();
    spliced.wrapped_keys = donor.wrapped_keys.clone();
    re_sign(&mut spliced, &f.author);
    let err = open_verified(&verify(&spliced).expect("verify"), ADDR, &f.keys(2)[..])
        .expect_err("wrapped key from another record");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");

    for point in low_order_points() {
        let mut low = record.clone();
        low.wrapped_keys[0].ephemeral_public = point.to_vec();
        re_sign(&mut low, &f.author);
        let err =
            open_verified(&verify(&low).expect("verify"), ADDR, &f.keys(1)[..]).expect_err("low-order ephemeral key");
        assert!(matches!(err, CryptoError::LowOrderPoint { .. }), "{err}");
    }
}

/// The admin, holding admin@2 only, re-wraps a record to dev@2 and admin@3 without the author:
/// the new epoch's secrets open it, lead (absent from the new list) and the old epochs do not,
/// and the keys signer is reported as the admin, not the author.
#[test]
fn admin_rewrap_opens_with_the_new_epoch_only() {
    let f = Fixture::new();
    let original = f.seal(b"rotate me", 3);
    let rewrapped = f.rewrap(&original);
    let verified = verify(&rewrapped).expect("a re-wrapped record verifies");
    assert_eq!(
        verified.author(),
        f.author.public().to_peer_id(),
        "the author stays the author"
    );
    assert_eq!(verified.keys_signer(), f.admin_id.public().to_peer_id());
    assert!(!verified.keys_signed_by_author());
    assert_eq!(verified.readers().collect::<Vec<_>>(), [("dev", 2), ("admin", 3)]);

    for (role, epoch, key) in f.new_keys() {
        let opened = open_verified(&verified, ADDR, &[(role, epoch, key)][..]).expect("new epoch opens");
        assert_eq!(opened.content, b"rotate me", "{role}@{epoch}");
        assert_eq!((opened.opened_role.as_str(), opened.opened_epoch), (role, epoch));
        assert_eq!(opened.keys_signer, f.admin_id.public().to_peer_id());
    }
    for (role, epoch, key) in f.keys(3) {
        let err = open_verified(&verified, ADDR, &[(role, epoch, key)][..]).expect_err("old epoch or dropped role");
        assert!(
            matches!(err, CryptoError::NoReadableKey { .. }),
            "{role}@{epoch}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::Forbidden);
    }
    // lead's secret registered as admin@3 does not open admin@3's wrapped key.
    let err = open_verified(&verified, ADDR, &[("admin", 3, &f.lead)][..]).expect_err("lead posing as admin@3");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");
}

/// Re-wrapping leaves the author's part untouched: header, nonce, ciphertext and author
/// signature are the same bytes, and that signature still verifies under the author's key;
/// only the key list changes, and with it the record key.
#[test]
fn author_signature_still_verifies_after_rewrap() {
    let f = Fixture::new();
    let original = f.seal(b"content", 3);
    let rewrapped = f.rewrap(&original);
    assert_eq!(rewrapped.header, original.header);
    assert_eq!(rewrapped.nonce, original.nonce);
    assert_eq!(rewrapped.ciphertext, original.ciphertext);
    assert_eq!(rewrapped.author_signature, original.author_signature);
    assert_ne!(rewrapped.wrapped_keys, original.wrapped_keys);
    assert_ne!(rewrapped.keys_signature, original.keys_signature);
    let author_key = public_key_of(&f.author.public().to_peer_id()).expect("ed25519 author");
    assert!(
        author_key.verify(&content_signed(&rewrapped), &rewrapped.author_signature),
        "the author's signature must verify over the re-wrapped record's content part"
    );
    assert_ne!(
        record_key(&rewrapped.encode_to_vec()),
        record_key(&original.encode_to_vec()),
        "a re-wrapped record is a new record key"
    );
    // Re-wrapping a re-wrapped record (the next rotation) works the same way.
    let verified = verify(&rewrapped).expect("verify");
    let dev3 = RoleKey::generate();
    let again =
        rewrap_record(&verified, &f.new_keys()[..], &[("dev", 3, &dev3.public())], &f.admin_id).expect("re-wrap again");
    assert_eq!(again.author_signature, original.author_signature);
    let opened = open_record(
        &again.encode_to_vec(),
        DEFAULT_MAX_RECORD_BYTES,
        ADDR,
        &[("dev", 3, &dev3)][..],
    )
    .expect("opens with the next epoch");
    assert_eq!(opened.content, b"content");
}

/// The key list of a re-wrapped record verifies only under the keys signer it names: signed by
/// anyone else (another identity, or the author) while still naming the admin, it fails.
#[test]
fn a_rewrapped_key_list_signed_by_someone_else_fails() {
    let f = Fixture::new();
    let rewrapped = f.rewrap(&f.seal(b"x", 3));
    let mallory = Keypair::generate_ed25519();
    for (case, key) in [("mallory", &mallory), ("the author", &f.author)] {
        let mut forged = rewrapped.clone();
        sign_keys_as_named(&mut forged, key);
        let err = verify(&forged).expect_err(case);
        assert_eq!(bad_signature_of(&err), Some("record key list"), "{case}: {err}");
        assert_eq!(err.kind(), ErrorKind::Tampered, "{case}");
    }
    // The admin's key list with mallory's wrapped keys (mallory re-wraps nothing it can read,
    // but tries to claim the admin's authority for a list of its own).
    let mut mallorys = rewrapped.clone();
    mallorys.wrapped_keys.truncate(1);
    sign_keys_as_named(&mut mallorys, &mallory);
    let err = verify(&mallorys).expect_err("mallory's list naming the admin");
    assert_eq!(bad_signature_of(&err), Some("record key list"), "{err}");
}

/// Anyone with an ed25519 identity can sign a key list as themselves and it verifies: the keys
/// signer is reported, and accepting only the author or the admin is the caller's policy.
#[test]
fn a_key_list_signed_by_another_identity_is_reported_not_hidden() {
    let f = Fixture::new();
    let mallory = Keypair::generate_ed25519();
    let mut record = f.seal(b"x", 3);
    record.wrapped_keys.remove(0);
    sign_keys(&mut record, &mallory);
    let verified = verify(&record).expect("a self-signed key list verifies");
    assert_eq!(verified.keys_signer(), mallory.public().to_peer_id());
    assert!(
        !verified.keys_signed_by_author(),
        "a storing node can refuse it on this"
    );
    assert_eq!(verified.author(), f.author.public().to_peer_id());
}

/// A key list cannot be moved between records, even two by the same author with the same
/// readers: the keys signature binds the list to the content part through SHA-256(S_c), and
/// the wrapped keys are bound to the header.
#[test]
fn key_lists_cannot_be_swapped_between_records() {
    let f = Fixture::new();
    let a = f.seal(b"record a", 3);
    let b = f.seal(b"record b", 3);
    let swap = |to: &ContextRecord, from: &ContextRecord| ContextRecord {
        wrapped_keys: from.wrapped_keys.clone(),
        keys_signer: from.keys_signer.clone(),
        keys_signature: from.keys_signature.clone(),
        ..to.clone()
    };
    for (case, bad) in [
        ("b's list on a", swap(&a, &b)),
        ("a's list on b", swap(&b, &a)),
        ("a re-wrapped list of b on a", swap(&a, &f.rewrap(&b))),
    ] {
        let err = verify(&bad).expect_err(case);
        assert_eq!(bad_signature_of(&err), Some("record key list"), "{case}: {err}");
    }
}

/// rewrap_record needs a key that opens the record, usable new readers and an ed25519 signer.
#[test]
fn rewrap_rejects_unreadable_records_and_bad_input() {
    let f = Fixture::new();
    let verified = verify(&f.seal(b"x", 2)).expect("verify");
    let new = f.new_readers();
    let holds_admin = [("admin", 2, &f.admin)];

    let err = rewrap_record(&verified, &holds_admin[..], &new, &f.admin_id).expect_err("admin@2 is not a reader");
    assert!(matches!(err, CryptoError::NoReadableKey { .. }), "{err}");
    let err = rewrap_record(&verified, &[("dev", 1, &f.admin)][..], &new, &f.admin_id).expect_err("wrong secret");
    assert!(matches!(err, CryptoError::Decrypt { .. }), "{err}");

    let keys = f.keys(1);
    let dup = [new[0], new[0]];
    for (case, readers) in [("no readers", &[][..]), ("duplicate reader", &dup[..])] {
        let err = rewrap_record(&verified, &keys[..], readers, &f.admin_id).expect_err(case);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}: {err}");
    }
    for point in low_order_points() {
        let low = RolePublicKey::from_bytes(point);
        let err = rewrap_record(&verified, &keys[..], &[("dev", 2, &low)], &f.admin_id).expect_err("low order");
        assert!(matches!(err, CryptoError::LowOrderPoint { .. }), "{err}");
    }
}

/// verify_record refuses oversized, non-canonical and structurally wrong records, each with a
/// malformed-kind error, even when they are correctly signed.
#[test]
fn verify_rejects_malformed_records() {
    let f = Fixture::new();
    let good = f.seal(b"shape", 2);
    let bytes = good.encode_to_vec();

    let err = verify_record(&bytes, bytes.len() - 1).expect_err("oversized");
    assert!(matches!(err, CryptoError::Oversized { .. }), "{err}");
    verify_record(&bytes, bytes.len()).expect("exactly at the limit is fine");

    let mut unknown_field = bytes.clone();
    unknown_field.extend_from_slice(&[0x78, 0x01]); // field 15, varint 1
    let err = verify_record(&unknown_field, DEFAULT_MAX_RECORD_BYTES).expect_err("unknown field");
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");

    let err = verify_record(b"\xff\xff\xff", DEFAULT_MAX_RECORD_BYTES).expect_err("garbage");
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");

    type Edit = fn(&mut ContextRecord);
    let edits: [(&str, Edit); 19] = [
        ("no header", |r| r.header = None),
        ("format 2", |r| r.header.as_mut().expect("header").format = 2),
        ("empty address", |r| r.header.as_mut().expect("header").address.clear()),
        ("long role", |r| {
            r.header.as_mut().expect("header").role = "r".repeat(MAX_ROLE_LEN + 1)
        }),
        ("author not a peer id", |r| {
            r.header.as_mut().expect("header").author = vec![0xff; 4]
        }),
        ("short write id", |r| {
            r.header.as_mut().expect("header").write_id.pop();
        }),
        ("short DEK commitment", |r| {
            r.header.as_mut().expect("header").dek_commitment.pop();
        }),
        ("long DEK commitment", |r| {
            r.header.as_mut().expect("header").dek_commitment.push(0)
        }),
        ("long nonce", |r| r.nonce.push(0)),
        ("short ciphertext", |r| r.ciphertext.truncate(TAG_LEN - 1)),
        ("no wrapped keys", |r| r.wrapped_keys.clear()),
        ("too many wrapped keys", |r| {
            let w = r.wrapped_keys[0].clone();
            r.wrapped_keys = (0..=MAX_WRAPPED_KEYS as u64)
                .map(|e| WrappedKey { epoch: e, ..w.clone() })
                .collect();
        }),
        ("duplicate wrapped key", |r| {
            let w = r.wrapped_keys[0].clone();
            r.wrapped_keys.push(w);
        }),
        ("short wrapped DEK", |r| {
            r.wrapped_keys[1].wrapped_dek.pop();
        }),
        ("long ephemeral key", |r| r.wrapped_keys[0].ephemeral_public.push(0)),
        ("short wrapped nonce", |r| {
            r.wrapped_keys[1].nonce.pop();
        }),
        ("empty wrapped role", |r| r.wrapped_keys[0].role.clear()),
        ("keys signer not a peer id", |r| r.keys_signer.clear()),
        ("long role of a wrapped key", |r| {
            r.wrapped_keys[1].role = "r".repeat(MAX_ROLE_LEN + 1)
        }),
    ];
    for (case, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        if bad.header.is_some() {
            sign_content(&mut bad, &f.author);
            if !bad.keys_signer.is_empty() {
                sign_keys_as_named(&mut bad, &f.author);
            }
        }
        let err = verify(&bad).expect_err(case);
        assert_eq!(err.kind(), ErrorKind::Malformed, "{case}: {err}");
        if case == "format 2" {
            assert!(matches!(err, CryptoError::UnsupportedFormat(2)), "{case}: {err}");
        }
    }

    for (case, edit) in [
        ("no author signature", (|r| r.author_signature.clear()) as Edit),
        ("short keys signature", |r| {
            r.keys_signature.pop();
        }),
    ] {
        let mut bad = good.clone();
        edit(&mut bad);
        assert_eq!(verify(&bad).expect_err(case).kind(), ErrorKind::Malformed, "{case}");
    }
}

/// seal_record refuses inputs that would produce a record no node accepts, and low-order role
/// public keys (the DEK would be readable by anyone).
#[test]
fn seal_rejects_bad_input() {
    let f = Fixture::new();
    let k = &f.publics[0];
    let many: Vec<(String, u64)> = (0..=MAX_WRAPPED_KEYS).map(|i| (format!("r{i}"), 1)).collect();
    let too_many: Vec<Reader<'_>> = many.iter().map(|(r, e)| (r.as_str(), *e, k)).collect();
    let long_addr = "a".repeat(MAX_ADDRESS_LEN + 1);
    let long_role = "r".repeat(MAX_ROLE_LEN + 1);
    let cases: [(&str, NewRecord<'_>, Vec<Reader<'_>>); 8] = [
        ("no readers", new_record(ADDR), vec![]),
        ("too many readers", new_record(ADDR), too_many),
        ("duplicate reader", new_record(ADDR), vec![("dev", 1, k), ("dev", 1, k)]),
        ("empty reader role", new_record(ADDR), vec![("", 1, k)]),
        ("long reader role", new_record(ADDR), vec![(&long_role, 1, k)]),
        ("empty address", new_record(""), vec![("dev", 1, k)]),
        ("long address", new_record(&long_addr), vec![("dev", 1, k)]),
        (
            "empty writer role",
            NewRecord {
                role: "",
                ..new_record(ADDR)
            },
            vec![("dev", 1, k)],
        ),
    ];
    for (case, new, readers) in cases {
        let err = seal_record(b"x", &new, &readers, &f.author).expect_err(case);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}: {err}");
    }
    for point in low_order_points() {
        let low = RolePublicKey::from_bytes(point);
        let err = seal_record(b"x", &new_record(ADDR), &[("dev", 1, k), ("lead", 4, &low)], &f.author)
            .expect_err("low-order role public key");
        assert!(matches!(err, CryptoError::LowOrderPoint { .. }), "{err}");
    }
}

/// The DHT key is the documented prefix plus lowercase hex, and parses back; other keys do not.
#[test]
fn dht_keys_round_trip() {
    let f = Fixture::new();
    let bytes = f.seal(b"k", 1).encode_to_vec();
    let rk = record_key(&bytes);
    assert_eq!(
        rk,
        <[u8; 32]>::from(Sha256::digest(&bytes)),
        "record key is SHA-256 of the bytes"
    );
    let key = dht_key(&rk);
    assert_eq!(key.len(), 76);
    assert!(key.starts_with(b"/bzzz/ctx/1/"), "{}", String::from_utf8_lossy(&key));
    assert_eq!(&key[12..], hex::encode(rk).as_bytes());
    assert_eq!(parse_dht_key(&key), Some(rk));
    assert_eq!(
        verify_record(&bytes, DEFAULT_MAX_RECORD_BYTES)
            .expect("verify")
            .dht_key(),
        key
    );
    let upper = [&b"/bzzz/ctx/1/"[..], hex::encode_upper(rk).as_bytes()].concat();
    assert_eq!(parse_dht_key(&upper), None, "uppercase hex is not canonical");
    assert_eq!(parse_dht_key(&key[..75]), None, "short key");
    assert_eq!(parse_dht_key(b"/bzzz/other/1/00"), None, "other prefix");
}

/// Both signatures are over exactly the documented bytes, rebuilt here from the record's fields
/// without the crate's encoders: `D = SHA-256("bzzz/ctx-digest/v1" || H || lp(n) ||
/// lp(ciphertext))`, `S_c = "bzzz/ctx-content/v1" || D` and `S_k = "bzzz/ctx-keys/v1" || D ||
/// lp(keys_signer) || u64be(count) || per key lp(role) || u64be(epoch) || lp(E) || lp(n) ||
/// lp(wrapped_dek)`. A re-wrap keeps `D` and signs a new `S_k` over it.
#[test]
fn signatures_cover_the_documented_bytes() {
    let f = Fixture::new();
    let lp = |x: &[u8]| [&(x.len() as u64).to_be_bytes()[..], x].concat();
    let original = f.seal(&content(1000), 3);
    let rewrapped = f.rewrap(&original);
    let mut digests = Vec::new();
    for (case, record, signer) in [
        ("written", &original, &f.author),
        ("re-wrapped", &rewrapped, &f.admin_id),
    ] {
        let header = record.header.as_ref().expect("header");
        let d: [u8; 32] = Sha256::digest(
            [
                &b"bzzz/ctx-digest/v1"[..],
                &canonical_header(header),
                &lp(&record.nonce),
                &lp(&record.ciphertext),
            ]
            .concat(),
        )
        .into();
        let s_c = [&b"bzzz/ctx-content/v1"[..], &d].concat();
        let mut s_k = [
            &b"bzzz/ctx-keys/v1"[..],
            &d,
            &lp(&record.keys_signer),
            &(record.wrapped_keys.len() as u64).to_be_bytes(),
        ]
        .concat();
        for w in &record.wrapped_keys {
            s_k.extend(
                [
                    lp(w.role.as_bytes()),
                    w.epoch.to_be_bytes().to_vec(),
                    lp(&w.ephemeral_public),
                    lp(&w.nonce),
                    lp(&w.wrapped_dek),
                ]
                .concat(),
            );
        }
        assert_eq!(
            content_digest(header, &record.nonce, &record.ciphertext),
            d,
            "{case}: D"
        );
        assert_eq!(content_signed_bytes(&d), s_c, "{case}: S_c");
        assert_eq!(
            keys_signed_bytes(&d, &record.keys_signer, &record.wrapped_keys),
            s_k,
            "{case}: S_k"
        );
        let verified = verify(record).expect("verifies");
        assert_eq!(verified.content_digest(), d, "{case}: the verified digest");
        let author = public_key_of(&f.author.public().to_peer_id()).expect("ed25519");
        assert!(
            author.verify(&s_c, &record.author_signature),
            "{case}: author signature over S_c"
        );
        assert_eq!(record.keys_signer, signer.public().to_peer_id().to_bytes(), "{case}");
        assert!(
            signer.public().verify(&s_k, &record.keys_signature),
            "{case}: keys signature over S_k"
        );
        digests.push(d);
    }
    assert_eq!(digests[0], digests[1], "a re-wrap keeps the content part, so D");
}

/// The identity check of seal_record and rewrap_record names the same peer id from which
/// verifiers recover the signing key.
#[test]
fn signer_ids_embed_their_ed25519_key() {
    for _ in 0..4 {
        let key = Keypair::generate_ed25519();
        let id = ed25519_id(&key, "test").expect("ed25519 identity");
        assert_eq!(id, key.public().to_peer_id());
        assert_eq!(public_key_of(&id).expect("embedded key"), key.public());
    }
}

/// The canonical-encoding check, which does not re-encode the ciphertext, agrees with the
/// plain one (`encode_to_vec() == bytes`) and leaves the record as it was: on records whose
/// ciphertext length crosses the varint boundaries, without a ciphertext or a header, on every
/// single-byte change of a record, and on encodings that move, repeat or re-encode the
/// ciphertext field (all of which decode to the same record).
#[test]
fn canonical_check_agrees_with_re_encoding() {
    let f = Fixture::new();
    let plain = |bytes: &[u8]| ContextRecord::decode(bytes).ok().map(|r| r.encode_to_vec() == bytes);
    let fast = |bytes: &[u8]| {
        ContextRecord::decode(bytes).ok().map(|mut r| {
            let before = r.clone();
            let canonical = is_canonical_encoding(&mut r, bytes);
            assert_eq!(r, before, "the check must leave the record as it was");
            canonical
        })
    };

    // Ciphertexts of 16, 17, 127, 128, 16383 and 16384 bytes: 1-, 2- and 3-byte lengths.
    let mut canonical: Vec<Vec<u8>> = [0, 1, 111, 112, 16_367, 16_368]
        .iter()
        .map(|&len| f.seal(&content(len), 2).encode_to_vec())
        .collect();
    let mut no_ciphertext = f.seal(b"x", 1);
    no_ciphertext.ciphertext.clear();
    let mut no_header = f.seal(b"x", 1);
    no_header.header = None;
    canonical.extend([no_ciphertext.encode_to_vec(), no_header.encode_to_vec()]);
    for bytes in &canonical {
        assert_eq!(fast(bytes), Some(true), "{} bytes", bytes.len());
    }

    let record = f.seal(b"canonical", 2);
    let bytes = record.encode_to_vec();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            assert_eq!(fast(&bad), plain(&bad), "byte {i} xor {flip:#04x}");
        }
    }

    let part = |r: ContextRecord| r.encode_to_vec();
    let head = part(ContextRecord {
        header: record.header.clone(),
        nonce: record.nonce.clone(),
        ..Default::default()
    });
    let field = part(ContextRecord {
        ciphertext: record.ciphertext.clone(),
        ..Default::default()
    });
    let tail = part(ContextRecord {
        header: None,
        nonce: vec![],
        ciphertext: vec![],
        ..record.clone()
    });
    assert_eq!(
        [&head[..], &field, &tail].concat(),
        bytes,
        "prost writes fields in tag order"
    );
    let len = u8::try_from(record.ciphertext.len()).expect("a short ciphertext");
    let overlong = [&[CIPHERTEXT_FIELD_KEY, len | 0x80, 0x00][..], &record.ciphertext].concat();
    let other = [CIPHERTEXT_FIELD_KEY, 1, 0xaa];
    for (case, bad) in [
        ("ciphertext field last", [&head[..], &tail, &field].concat()),
        ("ciphertext field twice", [&head[..], &field, &tail, &field].concat()),
        ("another ciphertext first", [&head[..], &other, &field, &tail].concat()),
        ("overlong length varint", [&head[..], &overlong, &tail].concat()),
    ] {
        let decoded = ContextRecord::decode(bad.as_slice()).expect(case);
        assert_eq!(decoded, record, "{case}: decodes to the same record");
        assert_eq!((fast(&bad), plain(&bad)), (Some(false), Some(false)), "{case}");
        let err = verify_record(&bad, DEFAULT_MAX_RECORD_BYTES).expect_err(case);
        assert!(err.to_string().contains("not in canonical encoding"), "{case}: {err}");
    }
}

/// Debug of an opened record does not print its content.
#[test]
fn opened_debug_hides_content() {
    let f = Fixture::new();
    let bytes = f.seal(b"top-secret-words", 1).encode_to_vec();
    let opened = open_record(&bytes, DEFAULT_MAX_RECORD_BYTES, ADDR, &f.keys(1)[..]).expect("open");
    let shown = format!("{opened:?}");
    assert!(!shown.contains("top-secret"), "{shown}");
    assert!(shown.contains("content_len: 16"), "{shown}");
}
