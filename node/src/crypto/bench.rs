//! Seal/open throughput of context records, for `bzzz-bench` (DESIGN 12: "envelope encryption
//! throughput"). Numbers come from runs on the calling machine; nothing here asserts a time.
//!
//! Measure from a release build. In a debug build the AEAD's generic code is instantiated inside
//! `bzzz-node`, which the dev profile does not optimise (only dependencies get opt-level 2), and
//! runs about 200 times slower: ~5 MB/s here against ~940 MB/s for XChaCha20-Poly1305 alone in
//! release, on the 2-core development machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use libp2p::identity::Keypair;
use prost::Message;

use super::{CryptoError, NewRecord, RoleKey, RolePublicKey, open_verified, seal_record, verify_record};

/// What [`seal_open_throughput`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Content size of each record, in bytes.
    pub content_bytes: usize,
    /// Reader roles each record is wrapped for.
    pub readers: usize,
    /// Records sealed and opened.
    pub iterations: u32,
    /// Total time spent sealing and encoding (DEK, encryption, one X25519 exchange per reader to
    /// wrap the DEK, two signatures).
    pub seal_time: Duration,
    /// Total time spent verifying and opening (decode, canonical check, two signatures, one X25519
    /// exchange to unwrap, decrypt).
    pub open_time: Duration,
    /// Content bytes sealed per second.
    pub seal_bytes_per_sec: f64,
    /// Content bytes opened per second.
    pub open_bytes_per_sec: f64,
}

/// Seals `iterations` records of `content_bytes` random-looking bytes for `readers` roles (1 to
/// [`MAX_WRAPPED_KEYS`](super::MAX_WRAPPED_KEYS)), as a writer holding only the roles' public
/// keys, then verifies and opens each one with the secret of one role, timing the two halves
/// separately. Opening also checks the content came back intact.
pub fn seal_open_throughput(content_bytes: usize, readers: usize, iterations: u32) -> Result<Throughput, CryptoError> {
    let author = Keypair::generate_ed25519();
    let names: Vec<String> = (0..readers).map(|i| format!("role-{i}")).collect();
    let keys: Vec<RoleKey> = (0..readers).map(|_| RoleKey::generate()).collect();
    let publics: Vec<RolePublicKey> = keys.iter().map(RoleKey::public).collect();
    let reader_list: Vec<(&str, u64, &RolePublicKey)> =
        names.iter().zip(&publics).map(|(n, k)| (n.as_str(), 1, k)).collect();
    // The opener holds only the last role's secret, so it scans the whole wrapped-key list.
    let secrets: Vec<(&str, u64, &RoleKey)> = names.iter().zip(&keys).map(|(n, k)| (n.as_str(), 1, k)).collect();
    let opener = &secrets[secrets.len().saturating_sub(1)..];
    let content: Vec<u8> = (0..content_bytes).map(|i| (i * 131 + 17) as u8).collect();
    let address = "ucxl://bench:role-0@bzzz:throughput";
    let new = NewRecord {
        address,
        role: "role-0",
        epoch: 1,
        created_ms: 0,
        tombstone: false,
    };
    let max_size = content_bytes + 64 * 1024;

    let mut encoded = Vec::with_capacity(iterations as usize);
    let start = Instant::now();
    for _ in 0..iterations {
        let record = seal_record(black_box(&content), &new, &reader_list, &author)?;
        encoded.push(record.encode_to_vec());
    }
    let seal_time = start.elapsed();

    let start = Instant::now();
    for bytes in &encoded {
        let verified = verify_record(black_box(bytes), max_size)?;
        let opened = open_verified(&verified, address, opener)?;
        if opened.content != content {
            return Err(CryptoError::Decrypt {
                what: "benchmark content (round trip changed it)".into(),
            });
        }
        black_box(opened);
    }
    let open_time = start.elapsed();

    let total = content_bytes as f64 * f64::from(iterations);
    let rate = |d: Duration| {
        if d.is_zero() {
            f64::INFINITY
        } else {
            total / d.as_secs_f64()
        }
    };
    Ok(Throughput {
        content_bytes,
        readers,
        iterations,
        seal_time,
        open_time,
        seal_bytes_per_sec: rate(seal_time),
        open_bytes_per_sec: rate(open_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark runs end to end and reports what it did (no timing is asserted).
    #[test]
    fn throughput_runs() {
        let t = seal_open_throughput(4096, 3, 3).expect("benchmark runs");
        assert_eq!((t.content_bytes, t.readers, t.iterations), (4096, 3, 3));
        assert!(t.seal_bytes_per_sec > 0.0 && t.open_bytes_per_sec > 0.0, "{t:?}");
    }
}
