//! Names of context records in the DHT.
//!
//! A context record's *record key* is the SHA-256 of its encoded bytes (computed by the node's
//! crypto, which owns the record format); its *DHT key* is [`DHT_KEY_PREFIX`] followed by the
//! record key in lowercase hex, [`DHT_KEY_LEN`] bytes in all. The prefix is a name space, never
//! signed: the node validates Kademlia puts under it as context records, and the record store
//! keeps records under it when it clears its cache.

/// Prefix of every context record's DHT key; the rest is the hex record key.
pub const DHT_KEY_PREFIX: &[u8] = b"/bzzz/ctx/1/";

/// Length of a record key (a SHA-256 digest), in bytes.
pub const RECORD_KEY_LEN: usize = 32;

/// Length of a context record's DHT key: the prefix and 64 hex digits.
pub const DHT_KEY_LEN: usize = DHT_KEY_PREFIX.len() + 2 * RECORD_KEY_LEN;

/// Lowercase hex digits, by value.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The DHT key of a record: `"/bzzz/ctx/1/" || lowercase_hex(record_key)` ([`DHT_KEY_LEN`]
/// bytes).
pub fn dht_key(record_key: &[u8; RECORD_KEY_LEN]) -> Vec<u8> {
    let mut key = Vec::with_capacity(DHT_KEY_LEN);
    key.extend_from_slice(DHT_KEY_PREFIX);
    for b in record_key {
        key.push(HEX[usize::from(b >> 4)]);
        key.push(HEX[usize::from(b & 0x0f)]);
    }
    key
}

/// Whether `key` is in the context records' name space (starts with [`DHT_KEY_PREFIX`]),
/// well-formed or not.
pub fn is_context_key(key: &[u8]) -> bool {
    key.starts_with(DHT_KEY_PREFIX)
}

/// The record key named by a DHT key, if it is a context record key: the prefix and exactly 64
/// lowercase hex digits (uppercase is not canonical and is refused).
pub fn parse_dht_key(key: &[u8]) -> Option<[u8; RECORD_KEY_LEN]> {
    let hex_part = key.strip_prefix(DHT_KEY_PREFIX)?;
    if hex_part.len() != 2 * RECORD_KEY_LEN {
        return None;
    }
    let mut out = [0u8; RECORD_KEY_LEN];
    for (byte, pair) in out.iter_mut().zip(hex_part.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The value of one lowercase hex digit.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHT key is the prefix and the lowercase hex record key, and parses back.
    #[test]
    fn dht_key_round_trips() {
        let mut rk = [0u8; RECORD_KEY_LEN];
        for (i, b) in rk.iter_mut().enumerate() {
            *b = u8::try_from(i * 8 + 1).unwrap_or(0);
        }
        let key = dht_key(&rk);
        assert_eq!(key.len(), DHT_KEY_LEN);
        assert_eq!(DHT_KEY_LEN, 76);
        assert_eq!(
            &key[..],
            &b"/bzzz/ctx/1/0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9"[..]
        );
        assert!(is_context_key(&key));
        assert_eq!(parse_dht_key(&key), Some(rk));
    }

    /// Uppercase, short, long, non-hex and foreign keys are not context record keys.
    #[test]
    fn malformed_dht_keys_are_refused() {
        let key = dht_key(&[0xab; RECORD_KEY_LEN]);
        let upper = key.to_ascii_uppercase();
        assert_eq!(parse_dht_key(&upper), None, "uppercase hex is not canonical");
        assert_eq!(parse_dht_key(&key[..75]), None, "short key");
        let mut long = key.clone();
        long.push(b'0');
        assert_eq!(parse_dht_key(&long), None, "long key");
        let mut bad = key.clone();
        bad[20] = b'g';
        assert_eq!(parse_dht_key(&bad), None, "non-hex digit");
        assert_eq!(parse_dht_key(b"/bzzz/other/1/00"), None, "other prefix");
        assert!(!is_context_key(b"/bzzz/test/mine"));
    }
}
