//! Decrypting records: [`open_verified`] for a verified record, [`open_record`] for bytes.

use bzzz_protocol::wire::{ContextRecord, RecordHeader, WrappedKey};
use libp2p::PeerId;

use super::{DEK_COMMITMENT_LEN, VerifiedRecord, canonical_header, dek_commitment, verify_record, wrap_aad, wrap_info};
use crate::crypto::seal::{EphemeralSeal, RoleKey, Secret};
use crate::crypto::{CryptoError, KEY_LEN, NONCE_LEN, RoleKeyLookup};

/// A decrypted record. `Debug` shows the content's length, not the content.
#[derive(Clone)]
pub struct Opened {
    /// The plaintext content.
    pub content: Vec<u8>,
    /// The signed header.
    pub header: RecordHeader,
    /// The verified author.
    pub author: PeerId,
    /// The verified signer of the key list (the author, or the admin after a re-wrap).
    pub keys_signer: PeerId,
    /// The role whose key opened the record.
    pub opened_role: String,
    /// The epoch of that role's key (old epochs show records still to be re-wrapped).
    pub opened_epoch: u64,
    /// `SHA-256` of the encoded record.
    pub record_key: [u8; 32],
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("content_len", &self.content.len())
            .field("header", &self.header)
            .field("author", &self.author)
            .field("keys_signer", &self.keys_signer)
            .field("opened_role", &self.opened_role)
            .field("opened_epoch", &self.opened_epoch)
            .field("record_key", &hex::encode(self.record_key))
            .finish()
    }
}

/// Decrypts a verified record for a reader who asked for `expected_address` and holds `keys`.
///
/// Checks, in order: the signed header's address is `expected_address` (else
/// [`CryptoError::WrongAddress`]); some wrapped key is for a (role, epoch) in `keys` (else
/// [`CryptoError::NoReadableKey`], the forbidden kind); it unwraps (else [`CryptoError::Decrypt`],
/// or [`CryptoError::LowOrderPoint`] for a low-order ephemeral key); the DEK matches the header's
/// commitment (else [`CryptoError::Decrypt`] of `data key commitment ...`); and the content
/// decrypts (else [`CryptoError::Decrypt`] of `content`). Readable wrapped keys are tried in
/// record order until one unwraps to the committed DEK; the first failure is reported if none
/// does.
pub fn open_verified<K>(verified: &VerifiedRecord, expected_address: &str, keys: &K) -> Result<Opened, CryptoError>
where
    K: RoleKeyLookup + ?Sized,
{
    let header = &verified.header;
    if header.address != expected_address {
        return Err(CryptoError::WrongAddress {
            expected: expected_address.to_owned(),
            found: header.address.clone(),
        });
    }
    let (dek, content, role, epoch) = open_dek(verified, keys)?;
    drop(dek);
    Ok(Opened {
        content,
        header: header.clone(),
        author: verified.author,
        keys_signer: verified.keys_signer,
        opened_role: role.to_owned(),
        opened_epoch: epoch,
        record_key: verified.record_key,
    })
}

/// [`verify_record`] then [`open_verified`]: both signatures are checked before anything else is
/// trusted.
pub fn open_record<K>(bytes: &[u8], max_size: usize, expected_address: &str, keys: &K) -> Result<Opened, CryptoError>
where
    K: RoleKeyLookup + ?Sized,
{
    let verified = verify_record(bytes, max_size)?;
    open_verified(&verified, expected_address, keys)
}

/// The DEK and the content of a verified record, with the (role, epoch) whose key unwrapped it:
/// the first wrapped key in record order that `keys` holds, that unwraps, and whose DEK matches
/// the header's commitment (checked before the content is decrypted).
pub(super) fn open_dek<'r, K>(
    verified: &'r VerifiedRecord,
    keys: &K,
) -> Result<(Secret, Vec<u8>, &'r str, u64), CryptoError>
where
    K: RoleKeyLookup + ?Sized,
{
    let record = &verified.record;
    let h = canonical_header(&verified.header);
    // verify_record checked the length; a wrong one can only fail every comparison below.
    let committed: Option<[u8; DEK_COMMITMENT_LEN]> = verified.header.dek_commitment.as_slice().try_into().ok();
    let mut first_failure = None;
    for w in &record.wrapped_keys {
        let Some(key) = keys.role_key(&w.role, w.epoch) else {
            continue;
        };
        match unwrap_dek(key, w, &h) {
            Ok(dek) if committed == Some(dek_commitment(&dek)) => {
                let content = decrypt_content(&dek, record, &h)?;
                return Ok((dek, content, &w.role, w.epoch));
            }
            Ok(_) => {
                first_failure.get_or_insert(CryptoError::Decrypt {
                    what: format!(
                        "data key commitment (wrapped key for role {} epoch {})",
                        w.role, w.epoch
                    ),
                });
            }
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| CryptoError::NoReadableKey {
        readers: verified
            .readers()
            .map(|(r, e)| format!("{r}@{e}"))
            .collect::<Vec<_>>()
            .join(", "),
    }))
}

/// Unwraps the DEK of one wrapped key with the secret of its (role, epoch).
pub(super) fn unwrap_dek(key: &RoleKey, w: &WrappedKey, header: &[u8]) -> Result<Secret, CryptoError> {
    let what = || format!("wrapped key for role {} epoch {}", w.role, w.epoch);
    let fail = || CryptoError::Decrypt { what: what() };
    let sealed = EphemeralSeal {
        ephemeral_public: w.ephemeral_public.as_slice().try_into().map_err(|_| fail())?,
        nonce: w.nonce.as_slice().try_into().map_err(|_| fail())?,
        ciphertext: &w.wrapped_dek,
    };
    let aad = wrap_aad(header, &w.role, w.epoch);
    key.open(&sealed, &wrap_info(&aad), &aad)
        .map_err(|f| f.into_error(what))
}

/// Decrypts the content of `record` with `dek` (associated data: the canonical header).
fn decrypt_content(dek: &[u8; KEY_LEN], record: &ContextRecord, header: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let fail = || CryptoError::Decrypt { what: "content".into() };
    let nonce: [u8; NONCE_LEN] = record.nonce.as_slice().try_into().map_err(|_| fail())?;
    crate::crypto::xchacha::open(dek, &nonce, header, &record.ciphertext).map_err(|_| fail())
}
