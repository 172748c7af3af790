//! Envelope-encrypted context records with split signatures (DESIGN 6, with the version bound by
//! the record key instead of the header; ADR 0006). The format, the associated data and the signed
//! bytes are specified in the [module docs](crate::crypto#context-records-design-6-envelope-encryption).
//!
//! Writer: [`seal_record`] → encode → [`record_key`] / [`dht_key`] → DHT put → Raft append.
//! Storing node: [`verify_record`], then its own policy on [`VerifiedRecord::keys_signer`] and the
//! UCXL parser on [`VerifiedRecord::address`].
//! Reader: [`verify_record`] on the fetched bytes, compare [`VerifiedRecord::record_key`] with the
//! Raft index, then [`open_verified`]; or [`open_record`] for both steps.
//! Admin, on key rotation: [`verify_record`] → [`rewrap_record`] → store and re-point the version.
//!
//! Files: this module holds the format's constants and the bytes everything hashes and signs;
//! `seal` writes ([`seal_record`], [`rewrap_record`]), `verify` checks ([`verify_record`],
//! [`VerifiedRecord`]), `open` decrypts ([`open_verified`], [`open_record`]). The role keys a
//! reader holds are [`RoleKeySet`](super::RoleKeySet) / [`RoleKeyLookup`](super::RoleKeyLookup),
//! in the keyring module.

use bzzz_protocol::wire::{RecordHeader, WrappedKey};
use sha2::{Digest, Sha256};

pub use bzzz_protocol::context::{dht_key, parse_dht_key};

use super::canonical::Canonical;
use super::seal::{RolePublicKey, SEALED_CIPHERTEXT_LEN};
use super::{
    CONTENT_DIGEST_TAG, CONTENT_SIGNATURE_TAG, CryptoError, DEK_COMMIT_TAG, DEK_WRAP_TAG, KEY_LEN, KEYS_SIGNATURE_TAG,
};

mod open;
mod seal;
mod verify;

pub use open::{Opened, open_record, open_verified};
pub use seal::{rewrap_record, seal_record};
pub use verify::{VerifiedRecord, verify_record};

/// The record format this build writes and reads.
pub const RECORD_FORMAT: u32 = 1;
/// Most wrapped keys (reader role epochs) one record may carry.
pub const MAX_WRAPPED_KEYS: usize = 64;
/// Longest role name, in bytes (the UCXL `ident` limit).
pub const MAX_ROLE_LEN: usize = 64;
/// Longest address, in bytes (the UCXL address limit).
pub const MAX_ADDRESS_LEN: usize = 1024;
/// Length of a record's random write id, in bytes.
pub(crate) const WRITE_ID_LEN: usize = 16;
/// Length of a record's DEK commitment (a SHA-256 digest), in bytes.
pub(crate) const DEK_COMMITMENT_LEN: usize = 32;
/// Length of a record's content digest `D` (a SHA-256 digest), in bytes.
pub(crate) const CONTENT_DIGEST_LEN: usize = 32;
/// Length of a wrapped DEK (32-byte key plus tag), in bytes.
pub(crate) const WRAPPED_DEK_LEN: usize = SEALED_CIPHERTEXT_LEN;
/// A reasonable default for [`verify_record`]'s `max_size`: 1 MiB of content plus room for the
/// header and wrapped keys, in bytes. The daemon's configured limit takes precedence.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// One reader of a new record: a role, its key epoch, and that role's public key at that epoch.
pub type Reader<'a> = (&'a str, u64, &'a RolePublicKey);

/// What the writer says about a new record; the author and the write id are filled in by
/// [`seal_record`].
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Canonical UCXL base address, without a temporal part (checked by the caller).
    pub address: &'a str,
    /// The writer's role.
    pub role: &'a str,
    /// The key epoch of the writer's role.
    pub epoch: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// True if this version deletes the address.
    pub tombstone: bool,
}

/// `H`, the canonical header bytes: the associated data of the content, the prefix of every
/// wrapped key's associated data, and part of the bytes the author signs.
pub(crate) fn canonical_header(h: &RecordHeader) -> Vec<u8> {
    Canonical::default()
        .u32(h.format)
        .str(&h.address)
        .str(&h.role)
        .u64(h.epoch)
        .bytes(&h.author)
        .u64(h.created_ms)
        .bool(h.tombstone)
        .bytes(&h.write_id)
        .bytes(&h.dek_commitment)
        .finish()
}

/// The commitment to a DEK carried in the header: `SHA-256("bzzz/dek-commit/v1" || DEK)`.
/// XChaCha20-Poly1305 does not commit to its key, so this is what makes every reader use the one
/// DEK the author signed for.
pub(crate) fn dek_commitment(dek: &[u8; KEY_LEN]) -> [u8; DEK_COMMITMENT_LEN] {
    Sha256::new()
        .chain_update(DEK_COMMIT_TAG)
        .chain_update(dek)
        .finalize()
        .into()
}

/// Associated data of a wrapped key: `A = H || lp(role) || u64be(epoch)`.
fn wrap_aad(header: &[u8], role: &str, epoch: u64) -> Vec<u8> {
    Canonical::starting_with(header).str(role).u64(epoch).finish()
}

/// HKDF info of a wrapped key: `"bzzz/dek-wrap/v1" || A`.
fn wrap_info(aad: &[u8]) -> Vec<u8> {
    Canonical::starting_with(DEK_WRAP_TAG).fixed(aad).finish()
}

/// `D`, the content digest: `SHA-256("bzzz/ctx-digest/v1" || H || lp(nonce) || lp(ciphertext))`,
/// with `H` the [`canonical_header`]. Both signatures cover the content part through it
/// ([`content_signed_bytes`], [`keys_signed_bytes`]), so it is the one pass over the ciphertext
/// that signing or verifying a record makes; the hashed bytes are streamed, never copied.
pub(crate) fn content_digest(header: &RecordHeader, nonce: &[u8], ciphertext: &[u8]) -> [u8; CONTENT_DIGEST_LEN] {
    digest_content(&canonical_header(header), nonce, ciphertext)
}

/// [`content_digest`] of an already encoded header `h`.
fn digest_content(h: &[u8], nonce: &[u8], ciphertext: &[u8]) -> [u8; CONTENT_DIGEST_LEN] {
    // lp(x) fed piecewise: the same bytes as Canonical::bytes, without building them.
    let lp = |hasher: Sha256, x: &[u8]| hasher.chain_update((x.len() as u64).to_be_bytes()).chain_update(x);
    let hasher = Sha256::new().chain_update(CONTENT_DIGEST_TAG).chain_update(h);
    lp(lp(hasher, nonce), ciphertext).finalize().into()
}

/// `S_c`, the bytes the author signs: `"bzzz/ctx-content/v1" || D`, with `D` the
/// [`content_digest`] of the header, nonce and ciphertext.
pub(crate) fn content_signed_bytes(content_digest: &[u8; CONTENT_DIGEST_LEN]) -> Vec<u8> {
    Canonical::starting_with(CONTENT_SIGNATURE_TAG)
        .fixed(content_digest)
        .finish()
}

/// `S_k`, the bytes the keys signer signs: `"bzzz/ctx-keys/v1" || D || lp(keys_signer) ||
/// u64be(count) || for each wrapped key: lp(role) || u64be(epoch) || lp(ephemeral_public) ||
/// lp(nonce) || lp(wrapped_dek)`, with `D` the record's [`content_digest`].
pub(crate) fn keys_signed_bytes(
    content_digest: &[u8; CONTENT_DIGEST_LEN],
    keys_signer: &[u8],
    wrapped_keys: &[WrappedKey],
) -> Vec<u8> {
    let mut c = Canonical::starting_with(KEYS_SIGNATURE_TAG)
        .fixed(content_digest)
        .bytes(keys_signer)
        .u64(wrapped_keys.len() as u64);
    for w in wrapped_keys {
        c = c
            .str(&w.role)
            .u64(w.epoch)
            .bytes(&w.ephemeral_public)
            .bytes(&w.nonce)
            .bytes(&w.wrapped_dek);
    }
    c.finish()
}

/// `SHA-256` of an encoded record: its name in the DHT and in the Raft version index.
pub fn record_key(encoded: &[u8]) -> [u8; 32] {
    Sha256::digest(encoded).into()
}

/// Checks a fixed-length field of a record being verified.
fn check_len(what: &str, bytes: &[u8], want: usize) -> Result<(), CryptoError> {
    if bytes.len() != want {
        return Err(CryptoError::malformed(
            what,
            format!("{} bytes, expected {want}", bytes.len()),
        ));
    }
    Ok(())
}

/// A role name of 1 to [`MAX_ROLE_LEN`] bytes.
fn check_role(role: &str) -> Result<(), String> {
    if role.is_empty() || role.len() > MAX_ROLE_LEN {
        return Err(format!("{} bytes, expected 1 to {MAX_ROLE_LEN}", role.len()));
    }
    Ok(())
}

/// An address of 1 to [`MAX_ADDRESS_LEN`] bytes.
fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "address is {} bytes, expected 1 to {MAX_ADDRESS_LEN}",
            address.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
