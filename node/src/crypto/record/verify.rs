//! Checking records: [`verify_record`] and the [`VerifiedRecord`] it returns.

use std::collections::HashSet;

use bzzz_protocol::wire::{ContextRecord, RecordHeader};
use libp2p::PeerId;
use prost::Message;

use super::{
    CONTENT_DIGEST_LEN, DEK_COMMITMENT_LEN, MAX_WRAPPED_KEYS, RECORD_FORMAT, WRAPPED_DEK_LEN, WRITE_ID_LEN,
    check_address, check_len, check_role, content_digest, content_signed_bytes, dht_key, keys_signed_bytes, record_key,
};
use crate::crypto::seal::X25519_PUBLIC_LEN;
use crate::crypto::{CryptoError, NONCE_LEN, SIGNATURE_LEN, TAG_LEN, public_key_of};

/// A record that passed [`verify_record`]: well-formed, its content signed by the author in its
/// header and its key list signed by its keys signer. Only [`verify_record`] makes one, so holding
/// one means those checks ran.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    pub(super) record: ContextRecord,
    pub(super) header: RecordHeader,
    pub(super) author: PeerId,
    pub(super) keys_signer: PeerId,
    pub(super) content_digest: [u8; CONTENT_DIGEST_LEN],
    pub(super) record_key: [u8; 32],
}

impl VerifiedRecord {
    /// The signed header.
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The address the record claims; the caller checks its syntax with the UCXL parser.
    pub fn address(&self) -> &str {
        &self.header.address
    }

    /// The author, whose signature over the header and content was verified.
    pub fn author(&self) -> PeerId {
        self.author
    }

    /// Who signed the key list (its signature was verified): the author on a normal write, the
    /// admin after a re-wrap. [`verify_record`] accepts any signer; a storing node or reader that
    /// accepts only the author or the admin checks it here.
    pub fn keys_signer(&self) -> PeerId {
        self.keys_signer
    }

    /// True if the author also signed the key list (a record as written, not re-wrapped).
    pub fn keys_signed_by_author(&self) -> bool {
        self.keys_signer == self.author
    }

    /// `D`, the [`content_digest`] both signatures cover.
    pub fn content_digest(&self) -> [u8; CONTENT_DIGEST_LEN] {
        self.content_digest
    }

    /// `SHA-256` of the verified bytes; compare with the Raft version index.
    pub fn record_key(&self) -> [u8; 32] {
        self.record_key
    }

    /// The key the record must be stored under in the DHT; a storing node compares it with the
    /// key of the put.
    pub fn dht_key(&self) -> Vec<u8> {
        dht_key(&self.record_key)
    }

    /// The (role, epoch) pairs the record is readable by, in record order.
    pub fn readers(&self) -> impl Iterator<Item = (&str, u64)> {
        self.record.wrapped_keys.iter().map(|w| (w.role.as_str(), w.epoch))
    }

    /// Length of the encrypted content (plaintext length plus the 16-byte tag), in bytes.
    pub fn ciphertext_len(&self) -> usize {
        self.record.ciphertext.len()
    }

    /// The decoded record.
    pub fn record(&self) -> &ContextRecord {
        &self.record
    }

    /// The decoded record, consuming the verified wrapper.
    pub fn into_record(self) -> ContextRecord {
        self.record
    }
}

/// What a storing node runs before accepting a record, and a reader before opening one: the size
/// bound, decoding, canonical encoding, format, field lengths and bounds, then the author's
/// signature over the content part and the keys signer's signature over the key list (the full
/// order is in the [module docs](crate::crypto#checks-in-order)). Nothing is decrypted.
///
/// Any keys signer with an ed25519 peer id is accepted; see [`VerifiedRecord::keys_signer`].
///
/// Errors: [`CryptoError::Oversized`], [`CryptoError::Malformed`],
/// [`CryptoError::UnsupportedFormat`], [`CryptoError::NoEmbeddedKey`] (malformed kind), and
/// [`CryptoError::BadSignature`] (tampered kind).
pub fn verify_record(bytes: &[u8], max_size: usize) -> Result<VerifiedRecord, CryptoError> {
    if bytes.len() > max_size {
        return Err(CryptoError::Oversized {
            size: bytes.len(),
            max: max_size,
        });
    }
    let mut record = ContextRecord::decode(bytes).map_err(|_| CryptoError::malformed("record", "does not decode"))?;
    // Exactly one encoding per record, so the record key names one record and nothing outside the
    // signed fields (unknown fields, a bool encoded as 2) can be changed.
    if !is_canonical_encoding(&mut record, bytes) {
        return Err(CryptoError::malformed("record", "not in canonical encoding"));
    }
    let header = record
        .header
        .clone()
        .ok_or_else(|| CryptoError::malformed("record", "no header"))?;
    if header.format != RECORD_FORMAT {
        return Err(CryptoError::UnsupportedFormat(header.format));
    }
    check_address(&header.address).map_err(|m| CryptoError::malformed("record address", m))?;
    check_role(&header.role).map_err(|m| CryptoError::malformed("record role", m))?;
    let author =
        PeerId::from_bytes(&header.author).map_err(|_| CryptoError::malformed("record author", "not a peer id"))?;
    check_len("record write id", &header.write_id, WRITE_ID_LEN)?;
    check_len("record DEK commitment", &header.dek_commitment, DEK_COMMITMENT_LEN)?;
    check_len("record nonce", &record.nonce, NONCE_LEN)?;
    if record.ciphertext.len() < TAG_LEN {
        return Err(CryptoError::malformed(
            "record ciphertext",
            format!("{} bytes, shorter than the {TAG_LEN}-byte tag", record.ciphertext.len()),
        ));
    }
    check_len("record author signature", &record.author_signature, SIGNATURE_LEN)?;
    let n = record.wrapped_keys.len();
    if n == 0 || n > MAX_WRAPPED_KEYS {
        return Err(CryptoError::malformed(
            "record",
            format!("{n} wrapped keys, expected 1 to {MAX_WRAPPED_KEYS}"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, w) in record.wrapped_keys.iter().enumerate() {
        check_role(&w.role).map_err(|m| CryptoError::malformed(format!("wrapped key {i} role"), m))?;
        check_len(
            &format!("wrapped key {i} ephemeral public key"),
            &w.ephemeral_public,
            X25519_PUBLIC_LEN,
        )?;
        check_len(&format!("wrapped key {i} nonce"), &w.nonce, NONCE_LEN)?;
        check_len(&format!("wrapped key {i} wrapped DEK"), &w.wrapped_dek, WRAPPED_DEK_LEN)?;
        if !seen.insert((w.role.as_str(), w.epoch)) {
            return Err(CryptoError::malformed(
                format!("wrapped key {i}"),
                format!("{}@{} appears twice", w.role, w.epoch),
            ));
        }
    }
    let keys_signer = PeerId::from_bytes(&record.keys_signer)
        .map_err(|_| CryptoError::malformed("record keys signer", "not a peer id"))?;
    check_len("record keys signature", &record.keys_signature, SIGNATURE_LEN)?;

    let author_key = public_key_of(&author)?;
    // The author usually signs the key list too: its key is decoded once.
    let keys_signer_key = if keys_signer == author {
        author_key.clone()
    } else {
        public_key_of(&keys_signer)?
    };
    let content_digest = content_digest(&header, &record.nonce, &record.ciphertext);
    if !author_key.verify(&content_signed_bytes(&content_digest), &record.author_signature) {
        return Err(CryptoError::BadSignature {
            what: "record content",
            signer: author,
        });
    }
    let keys_signed = keys_signed_bytes(&content_digest, &record.keys_signer, &record.wrapped_keys);
    if !keys_signer_key.verify(&keys_signed, &record.keys_signature) {
        return Err(CryptoError::BadSignature {
            what: "record key list",
            signer: keys_signer,
        });
    }
    Ok(VerifiedRecord {
        record,
        header,
        author,
        keys_signer,
        content_digest,
        record_key: record_key(bytes),
    })
}

/// Protobuf key of `ContextRecord.ciphertext`: field 3, wire type 2 (length-delimited).
pub(super) const CIPHERTEXT_FIELD_KEY: u8 = (3 << 3) | 2;

/// True if `bytes`, which `record` was decoded from, are exactly `record.encode_to_vec()`: the
/// same check without re-encoding (copying) the ciphertext. prost writes fields in tag order and
/// omits empty ones, so the encoding is `E(fields 1, 2) || [key 3 || varint(len) || ciphertext]
/// || E(fields 4 to 7)`; the fields other than the ciphertext are encoded (a few hundred bytes)
/// and compared around it. `record` is left as it was.
pub(super) fn is_canonical_encoding(record: &mut ContextRecord, bytes: &[u8]) -> bool {
    if record.encoded_len() != bytes.len() {
        return false;
    }
    let ciphertext = std::mem::take(&mut record.ciphertext);
    let others = record.encode_to_vec();
    let (header, nonce) = (record.header.take(), std::mem::take(&mut record.nonce));
    let tail_len = record.encoded_len();
    (record.header, record.nonce, record.ciphertext) = (header, nonce, ciphertext);

    let (head, tail) = others.split_at(others.len().saturating_sub(tail_len));
    let mut field = Vec::with_capacity(11);
    if !record.ciphertext.is_empty() {
        field.push(CIPHERTEXT_FIELD_KEY);
        if prost::encode_length_delimiter(record.ciphertext.len(), &mut field).is_err() {
            return false;
        }
    }
    bytes
        .strip_prefix(head)
        .and_then(|rest| rest.strip_prefix(field.as_slice()))
        .and_then(|rest| rest.strip_prefix(record.ciphertext.as_slice()))
        == Some(tail)
}
