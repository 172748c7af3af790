//! XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03), the one AEAD of bzzz's records and sealed keys.
//!
//! The construction is the draft's: the 256-bit subkey is `HChaCha20(key, nonce[0..16])` and the
//! message is sealed with IETF ChaCha20-Poly1305 (RFC 8439) under that subkey and the 96-bit nonce
//! `0x00000000 || nonce[16..24]`. HChaCha20 comes from RustCrypto's `chacha20`; the ChaCha20-Poly1305
//! is `ring`'s (BoringSSL's assembly), about 1.7× faster than RustCrypto's `chacha20poly1305` on the
//! development machine (ADR 0011). The output is byte-for-byte RustCrypto's `XChaCha20Poly1305`
//! (`ciphertext || 16-byte tag`); tests check both the draft's vector and agreement with RustCrypto.

use chacha20::R20;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 24;
/// Tag length in bytes; a sealed message is this much longer than its plaintext.
pub const TAG_LEN: usize = 16;

/// Why sealing or opening failed. Carries nothing about the key or the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadError {
    /// The message is longer than ChaCha20-Poly1305 can seal under one nonce (about 256 GiB).
    TooLong,
    /// The sealed message is shorter than a tag, or its tag does not verify.
    Unauthentic,
}

/// The ChaCha20-Poly1305 key and 96-bit nonce for `key` and the extended `nonce`.
fn subkey(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let (head, tail) = nonce.split_at(16);
    let head: &[u8; 16] = head.try_into().expect("a 24-byte nonce splits into 16 + 8 bytes");
    let mut sub = chacha20::hchacha::<R20>(key.into(), head.into());
    let key =
        UnboundKey::new(&CHACHA20_POLY1305, sub.as_slice()).expect("a 32-byte key is a valid ChaCha20-Poly1305 key");
    sub.as_mut_slice().zeroize();
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(tail);
    (LessSafeKey::new(key), Nonce::assume_unique_for_key(short))
}

/// Seals `plaintext` with associated data `aad`: returns `ciphertext || tag`.
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
    let (key, nonce) = subkey(key, nonce);
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out)
        .map_err(|_| AeadError::TooLong)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens `sealed` (`ciphertext || tag`) with associated data `aad` and returns the plaintext. On
/// failure nothing of the attempted decryption is returned (the working buffer is zeroed).
pub fn open(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AeadError> {
    if sealed.len() < TAG_LEN {
        return Err(AeadError::Unauthentic);
    }
    let (key, nonce) = subkey(key, nonce);
    let mut buf = sealed.to_vec();
    match key.open_in_place(nonce, Aad::from(aad), &mut buf) {
        Ok(plain) => {
            let len = plain.len();
            buf.truncate(len);
            Ok(buf)
        }
        Err(_) => {
            buf.zeroize();
            Err(AeadError::Unauthentic)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use proptest::prelude::*;

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn draft_test_vector() {
        let key: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").expect("hex");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let expected = hex::decode(concat!(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
            "21f9664c97637da9768812f615c68b13b52e",
            "c0875924c1c7987947deafd8780acf49",
        ))
        .expect("hex");
        assert_eq!(seal(&key, &nonce, &aad, plaintext), Ok(expected.clone()));
        assert_eq!(open(&key, &nonce, &aad, &expected), Ok(plaintext.to_vec()));
    }

    /// Short, tag-only and empty inputs; a sealed message shorter than a tag is refused.
    #[test]
    fn edges() {
        let (key, nonce) = ([1u8; 32], [2u8; 24]);
        let empty = seal(&key, &nonce, b"", b"").expect("seals");
        assert_eq!(empty.len(), TAG_LEN);
        assert_eq!(open(&key, &nonce, b"", &empty), Ok(Vec::new()));
        for len in 0..TAG_LEN {
            assert_eq!(open(&key, &nonce, b"", &empty[..len]), Err(AeadError::Unauthentic));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Byte-for-byte RustCrypto's XChaCha20-Poly1305 both ways, at lengths around ChaCha20's
        /// 64-byte blocks and ring's multi-block paths.
        #[test]
        fn agrees_with_rustcrypto(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..80),
            plaintext in proptest::collection::vec(any::<u8>(), 0..1100),
            extra in 0usize..3,
        ) {
            // Also a few lengths past 4 KiB without generating them byte by byte.
            let mut plaintext = plaintext;
            if extra > 0 {
                plaintext.resize(plaintext.len() + extra * 4093, 0xa5);
            }
            let reference = XChaCha20Poly1305::new(&key.into())
                .encrypt(&XNonce::from(nonce), Payload { msg: &plaintext, aad: &aad })
                .expect("rustcrypto seals");
            let ours = seal(&key, &nonce, &aad, &plaintext).expect("seals");
            prop_assert_eq!(&ours, &reference);
            prop_assert_eq!(open(&key, &nonce, &aad, &reference).expect("opens"), plaintext.clone());
            let back = XChaCha20Poly1305::new(&key.into())
                .decrypt(&XNonce::from(nonce), Payload { msg: &ours, aad: &aad })
                .expect("rustcrypto opens");
            prop_assert_eq!(back, plaintext);
        }

        /// Any flipped bit in the sealed message, the associated data, the nonce or the key makes
        /// opening fail.
        #[test]
        fn tampering_is_refused(
            plaintext in proptest::collection::vec(any::<u8>(), 0..300),
            aad in proptest::collection::vec(any::<u8>(), 1..40),
            at in any::<usize>(),
            bit in 0u8..8,
            what in 0u8..4,
        ) {
            let (mut key, mut nonce, mut aad) = ([3u8; 32], [4u8; 24], aad);
            let mut sealed = seal(&key, &nonce, &aad, &plaintext).expect("seals");
            match what {
                0 => { let i = at % sealed.len(); sealed[i] ^= 1 << bit; }
                1 => { let i = at % aad.len(); aad[i] ^= 1 << bit; }
                2 => { nonce[at % 24] ^= 1 << bit; }
                _ => { key[at % 32] ^= 1 << bit; }
            }
            prop_assert_eq!(open(&key, &nonce, &aad, &sealed), Err(AeadError::Unauthentic));
        }
    }
}
