//! The explicit byte encoding that signatures, HKDF info and associated data cover (see the
//! notation in the [module docs](super)): fixed-width big-endian integers and `lp(x)`, a byte
//! string prefixed with its length as `u64be`.

/// Builds a canonical byte string field by field.
#[derive(Debug, Default)]
pub(crate) struct Canonical(Vec<u8>);

impl Canonical {
    /// An encoding that starts with the given bytes verbatim (a domain tag, or bytes already
    /// encoded canonically).
    pub(crate) fn starting_with(prefix: &[u8]) -> Self {
        Self(prefix.to_vec())
    }

    /// Appends `u8(b)`: one byte, 1 for true and 0 for false.
    pub(crate) fn bool(mut self, b: bool) -> Self {
        self.0.push(u8::from(b));
        self
    }

    /// Appends `u32be(x)`.
    pub(crate) fn u32(mut self, x: u32) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }

    /// Appends `u64be(x)`.
    pub(crate) fn u64(mut self, x: u64) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }

    /// Appends `lp(x) = u64be(len(x)) || x`.
    pub(crate) fn bytes(mut self, x: &[u8]) -> Self {
        // usize is at most 64 bits on every supported target, so the length is exact.
        self.0.extend_from_slice(&(x.len() as u64).to_be_bytes());
        self.0.extend_from_slice(x);
        self
    }

    /// Appends `lp(utf8(s))`.
    pub(crate) fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }

    /// Appends bytes verbatim, without a length (only for fixed-width fields).
    pub(crate) fn fixed(mut self, x: &[u8]) -> Self {
        self.0.extend_from_slice(x);
        self
    }

    /// The encoded bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding is exactly what the module docs specify: big-endian, u64 length prefixes.
    #[test]
    fn encoding_matches_the_documented_layout() {
        let got = Canonical::starting_with(b"T")
            .u32(1)
            .str("ab")
            .u64(2)
            .bool(true)
            .fixed(&[9, 9])
            .finish();
        let want: Vec<u8> = [
            &b"T"[..],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 2],
            b"ab",
            &[0, 0, 0, 0, 0, 0, 0, 2],
            &[1],
            &[9, 9],
        ]
        .concat();
        assert_eq!(got, want, "canonical bytes differ from the documented layout");
    }

    /// Moving bytes between adjacent length-prefixed fields changes the encoding.
    #[test]
    fn length_prefixes_keep_fields_apart() {
        let a = Canonical::default().str("ab").str("c").finish();
        let b = Canonical::default().str("a").str("bc").finish();
        assert_ne!(a, b, "(\"ab\",\"c\") and (\"a\",\"bc\") must encode differently");
    }
}
