//! Writing records: [`seal_record`] encrypts and signs a new record; [`rewrap_record`] gives a
//! verified record a new key list (the admin, on key rotation).

use std::collections::HashSet;

use bzzz_protocol::wire::{ContextRecord, RecordHeader, WrappedKey};
use libp2p::PeerId;
use libp2p::identity::{KeyType, Keypair};
use zeroize::Zeroizing;

use super::open::open_dek;
use super::{
    CONTENT_DIGEST_LEN, MAX_WRAPPED_KEYS, NewRecord, RECORD_FORMAT, Reader, VerifiedRecord, WRITE_ID_LEN,
    canonical_header, check_address, check_role, content_signed_bytes, dek_commitment, digest_content,
    keys_signed_bytes, wrap_aad, wrap_info,
};
#[cfg(doc)]
use super::{MAX_ADDRESS_LEN, MAX_ROLE_LEN, record_key};
use crate::crypto::seal::seal_to;
use crate::crypto::{CryptoError, KEY_LEN, NONCE_LEN, RoleKeyLookup, random_array, random_secret};

/// Encrypts `content` for the `readers` (role, epoch, role public key) and signs the record as
/// `author`, both the content part and the key list (the author is the keys signer).
///
/// A fresh random DEK encrypts the content (associated data: the canonical header, which carries
/// the DEK's commitment [`dek_commitment`]) and is wrapped to every reader's public key (HKDF info and associated data bind header, role and epoch); the
/// DEK is zeroized before returning. The writer needs no secret of the reader roles, so it can
/// write for roles above its own without being able to read their records. Per DESIGN 6 the
/// readers are the writer's role and the roles above it in the policy, each at its current epoch;
/// which roles those are, and that their public keys are authentic, is the caller's part.
///
/// Errors: [`CryptoError::InvalidInput`] for no readers, more than [`MAX_WRAPPED_KEYS`], a
/// duplicate (role, epoch), an empty or over-long role or address, or an author identity that is
/// not ed25519; [`CryptoError::LowOrderPoint`] for a low-order role public key;
/// [`CryptoError::Signing`] if the identity cannot sign.
pub fn seal_record(
    content: &[u8],
    new: &NewRecord<'_>,
    readers: &[Reader<'_>],
    author: &Keypair,
) -> Result<ContextRecord, CryptoError> {
    let invalid = |m: String| CryptoError::InvalidInput(m);
    check_address(new.address).map_err(invalid)?;
    check_role(new.role).map_err(|m| invalid(format!("writer role: {m}")))?;
    check_readers(readers)?;
    let author_id = ed25519_id(author, "author")?;

    let dek = random_secret::<KEY_LEN>();
    let header = RecordHeader {
        format: RECORD_FORMAT,
        address: new.address.to_owned(),
        role: new.role.to_owned(),
        epoch: new.epoch,
        author: author_id.to_bytes(),
        created_ms: new.created_ms,
        tombstone: new.tombstone,
        write_id: random_array::<WRITE_ID_LEN>().to_vec(),
        dek_commitment: dek_commitment(&dek).to_vec(),
    };
    let h = canonical_header(&header);

    let nonce: [u8; NONCE_LEN] = random_array();
    let ciphertext = crate::crypto::xchacha::seal(&dek, &nonce, &h, content)
        .map_err(|_| invalid("content is too large to encrypt".into()))?;
    let digest = digest_content(&h, &nonce, &ciphertext);
    let author_signature = author.sign(&content_signed_bytes(&digest))?;
    let keys = wrap_and_sign(&dek, &h, &digest, readers, author, author_id)?;
    drop(dek);
    Ok(ContextRecord {
        header: Some(header),
        nonce: nonce.to_vec(),
        ciphertext,
        author_signature,
        wrapped_keys: keys.wrapped_keys,
        keys_signer: keys.signer,
        keys_signature: keys.signature,
    })
}

/// Re-wraps the DEK of a verified record to `new_readers` and signs the new key list as `signer`
/// (the admin, on key rotation, DESIGN 7); the author is not needed.
///
/// The header, content nonce, ciphertext and author signature are kept byte for byte; the wrapped
/// keys, keys signer and keys signature are replaced. The DEK is taken from the first wrapped key
/// that `keys` holds, that unwraps and whose DEK matches the header's commitment, and must decrypt
/// the content (so a re-wrap never spreads a DEK other than the one the author committed to); DEK and plaintext are zeroized before returning. The result
/// is a new record with a new [`record_key`]: the caller stores it and re-points the version at it
/// (ADR 0006).
///
/// Errors: [`CryptoError::InvalidInput`] for unusable `new_readers` or a non-ed25519 `signer`
/// (as for [`seal_record`]), [`CryptoError::LowOrderPoint`] for a low-order role public key,
/// [`CryptoError::NoReadableKey`] if `keys` opens no wrapped key, [`CryptoError::Decrypt`] (a
/// wrapped key, the DEK commitment or the content) or [`CryptoError::LowOrderPoint`] if none of
/// those that it holds opens the record,
/// [`CryptoError::Signing`].
pub fn rewrap_record<K>(
    verified: &VerifiedRecord,
    keys: &K,
    new_readers: &[Reader<'_>],
    signer: &Keypair,
) -> Result<ContextRecord, CryptoError>
where
    K: RoleKeyLookup + ?Sized,
{
    check_readers(new_readers)?;
    let signer_id = ed25519_id(signer, "keys signer")?;
    let (dek, content, _, _) = open_dek(verified, keys)?;
    drop(Zeroizing::new(content));
    let record = &verified.record;
    let h = canonical_header(&verified.header);
    let keys = wrap_and_sign(&dek, &h, &verified.content_digest, new_readers, signer, signer_id)?;
    drop(dek);
    Ok(ContextRecord {
        wrapped_keys: keys.wrapped_keys,
        keys_signer: keys.signer,
        keys_signature: keys.signature,
        ..record.clone()
    })
}

/// A signed key list.
struct KeyList {
    wrapped_keys: Vec<WrappedKey>,
    signer: Vec<u8>,
    signature: Vec<u8>,
}

/// Wraps `dek` to every reader and signs the list as `signer` (whose peer id is `signer_id`).
fn wrap_and_sign(
    dek: &[u8; KEY_LEN],
    h: &[u8],
    content_digest: &[u8; CONTENT_DIGEST_LEN],
    readers: &[Reader<'_>],
    signer: &Keypair,
    signer_id: PeerId,
) -> Result<KeyList, CryptoError> {
    let mut wrapped_keys = Vec::with_capacity(readers.len());
    for (role, epoch, public) in readers {
        let aad = wrap_aad(h, role, *epoch);
        let sealed = seal_to(public.as_bytes(), &wrap_info(&aad), &aad, dek, "reader role public key")?;
        wrapped_keys.push(WrappedKey {
            role: (*role).to_owned(),
            epoch: *epoch,
            ephemeral_public: sealed.ephemeral_public.to_vec(),
            nonce: sealed.nonce.to_vec(),
            wrapped_dek: sealed.ciphertext,
        });
    }
    let signer_bytes = signer_id.to_bytes();
    let signature = signer.sign(&keys_signed_bytes(content_digest, &signer_bytes, &wrapped_keys))?;
    Ok(KeyList {
        wrapped_keys,
        signer: signer_bytes,
        signature,
    })
}

/// The peer id of an identity that signs records, which must be ed25519 (so verifiers can recover
/// its key from the peer id); `who` names it in the error.
pub(super) fn ed25519_id(identity: &Keypair, who: &str) -> Result<PeerId, CryptoError> {
    // An ed25519 key's peer id is always the identity multihash of the key (36 bytes encoded), so
    // [`public_key_of`] recovers it; checking the type spares decompressing the key on every seal.
    if identity.key_type() != KeyType::Ed25519 {
        return Err(CryptoError::InvalidInput(format!(
            "the {who} identity must be an ed25519 key"
        )));
    }
    Ok(identity.public().to_peer_id())
}

/// 1 to [`MAX_WRAPPED_KEYS`] readers, roles 1 to [`MAX_ROLE_LEN`] bytes, no (role, epoch) twice.
fn check_readers(readers: &[Reader<'_>]) -> Result<(), CryptoError> {
    let invalid = |m: String| CryptoError::InvalidInput(m);
    if readers.is_empty() || readers.len() > MAX_WRAPPED_KEYS {
        return Err(invalid(format!(
            "{} reader roles, expected 1 to {MAX_WRAPPED_KEYS}",
            readers.len()
        )));
    }
    let mut seen = HashSet::new();
    for (role, epoch, _) in readers {
        check_role(role).map_err(|m| invalid(format!("reader role: {m}")))?;
        if !seen.insert((*role, *epoch)) {
            return Err(invalid(format!("reader {role}@{epoch} is listed twice")));
        }
    }
    Ok(())
}
