//! The on-disk value encoding: bincode 2 (standard configuration) over serde.
//!
//! This module is the only place in the workspace that touches bincode, so the
//! encoding of every persisted value can be changed in one spot. Decoding is
//! bounded by [`MAX_ENCODED_BYTES`], so a corrupt length prefix on disk can
//! never make the node allocate without limit; encoding enforces the same bound
//! so that everything written can be read back.

use bincode::config::Config;

/// The largest encoded value, in bytes, that [`encode`] produces and [`decode`] accepts.
pub const MAX_ENCODED_BYTES: usize = 16 * 1024 * 1024;

/// Errors of [`encode`] and [`decode`].
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Serialising the value failed.
    #[error("cannot encode value")]
    Encode {
        /// The bincode error.
        #[source]
        source: bincode::error::EncodeError,
    },
    /// The encoded value is larger than [`MAX_ENCODED_BYTES`].
    #[error("encoded value is {len} bytes, over the {limit} byte limit")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The limit, [`MAX_ENCODED_BYTES`].
        limit: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode value")]
    Decode {
        /// The bincode error.
        #[source]
        source: bincode::error::DecodeError,
    },
    /// The bytes hold a valid value followed by unexpected extra bytes.
    #[error("decoded value used {consumed} of {len} bytes, trailing bytes left")]
    TrailingBytes {
        /// Bytes consumed by the decoded value.
        consumed: usize,
        /// Total length of the input.
        len: usize,
    },
}

/// The bincode configuration used for every persisted value.
fn config() -> impl Config {
    bincode::config::standard().with_limit::<MAX_ENCODED_BYTES>()
}

/// Encodes `v` with bincode's standard configuration.
pub fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(v, config()).map_err(|source| CodecError::Encode { source })?;
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: MAX_ENCODED_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes a value written by [`encode`]; the whole input must be consumed.
pub fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, CodecError> {
    let (value, consumed) = decode_prefix(b)?;
    if consumed != b.len() {
        return Err(CodecError::TrailingBytes { consumed, len: b.len() });
    }
    Ok(value)
}

/// Decodes a value written by [`encode`] from the start of `b`, which may go on with more values
/// (a sequence of encoded values, such as a snapshot); returns the value and the bytes it used.
pub fn decode_prefix<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<(T, usize), CodecError> {
    bincode::serde::decode_from_slice(b, config()).map_err(|source| CodecError::Decode { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample persisted structure.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        bytes: Vec<u8>,
        when: Option<u64>,
    }

    /// Encoding then decoding yields the original value.
    #[test]
    fn round_trip() -> Result<(), CodecError> {
        let v = Sample {
            name: "bzzz".to_owned(),
            bytes: vec![0, 1, 2, 255],
            when: Some(u64::MAX),
        };
        let back: Sample = decode(&encode(&v)?)?;
        assert_eq!(back, v, "expected the decoded value to equal the original");
        Ok(())
    }

    /// Garbage input is a decode error, not a panic or a bogus value.
    #[test]
    fn garbage_is_an_error() {
        let got = decode::<Sample>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(
            matches!(got, Err(CodecError::Decode { .. })),
            "expected Err(Decode), got {got:?}"
        );
    }

    /// A length prefix claiming more than the limit is refused without allocating it.
    #[test]
    fn huge_length_prefix_is_refused() {
        // Varint 0xfd = u64 follows; claim u64::MAX / 2 bytes of string.
        let mut b = vec![0xfd];
        b.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        let got = decode::<Sample>(&b);
        assert!(
            matches!(got, Err(CodecError::Decode { .. })),
            "expected Err(Decode), got {got:?}"
        );
    }

    /// A sequence of encoded values decodes one value at a time, each reporting its length.
    #[test]
    fn prefixes_decode_in_sequence() -> Result<(), CodecError> {
        let mut b = encode(&"first")?;
        let first_len = b.len();
        b.extend(encode(&7u64)?);
        let (first, used): (String, usize) = decode_prefix(&b)?;
        assert_eq!(
            (first.as_str(), used),
            ("first", first_len),
            "expected the first value and its length"
        );
        let (second, used): (u64, usize) = decode_prefix(&b[first_len..])?;
        assert_eq!(
            (second, used),
            (7, b.len() - first_len),
            "expected the second value to use the rest"
        );
        Ok(())
    }

    /// Trailing bytes after a valid value are reported, not silently ignored.
    #[test]
    fn trailing_bytes_are_an_error() -> Result<(), CodecError> {
        let mut b = encode(&7u32)?;
        b.push(0);
        let got = decode::<u32>(&b);
        assert!(
            matches!(got, Err(CodecError::TrailingBytes { consumed: 1, len: 2 })),
            "expected Err(TrailingBytes {{ consumed: 1, len: 2 }}), got {got:?}"
        );
        Ok(())
    }
}
