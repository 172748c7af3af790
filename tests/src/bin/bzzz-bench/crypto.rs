//! `bzzz-bench crypto`: seal/open throughput of context records (DESIGN 12: "envelope encryption
//! throughput") next to `openssl speed -evp chacha20-poly1305`, and the cost of each primitive
//! they are made of ([`primitive_costs`], `--primitives`), to explain those numbers. Numbers come
//! from runs on the calling machine; nothing here asserts a time.
//!
//! Measure from a release build: in a debug build the AEAD's generic code is instantiated inside
//! this crate, which the dev profile does not optimise (only dependencies get opt-level 2).
//! `cargo test --release -p bzzz-tests --bin bzzz-bench primitive_costs -- --nocapture` prints the
//! primitives. On the 2-core development machine (ADR 0010) XChaCha20-Poly1305 alone runs at about
//! 1.2 GB/s (RustCrypto, AVX2 ChaCha20 and Poly1305 in two passes), SHA-256 at 1.7 GB/s (SHA-NI),
//! and one DEK wrap (two X25519 operations) takes about 80 µs, which is what a small record's seal
//! costs per reader.
//!
//! The seal and open pieces come from `bzzz_node::crypto`, the code the daemon runs; this module
//! only drives and times them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use bzzz_node::crypto::seal::seal_to;
use bzzz_node::crypto::{NewRecord, RoleKey, RolePublicKey, open_verified, seal_record, verify_record, xchacha};
use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libp2p::identity::Keypair;
use prost::Message;
use sha2::{Digest, Sha256, Sha512};

/// What each primitive of a seal and an open costs alone (median of 5 rounds of 100 at each size).
pub(crate) fn crypto_primitives(sizes: &[usize]) -> Result<()> {
    for &size in sizes {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            rounds.push(primitive_costs(size, 100)?);
        }
        for (i, first) in rounds[0].iter().enumerate() {
            let mut per_op: Vec<f64> = rounds.iter().map(|r| r[i].per_op.as_secs_f64()).collect();
            per_op.sort_by(f64::total_cmp);
            let median = per_op[per_op.len() / 2];
            if first.bytes > 0 {
                println!(
                    "primitive size={size} {:<72} {:>8.0} MB/s",
                    first.name,
                    first.bytes as f64 / median / 1e6
                );
            } else {
                println!("primitive size={size} {:<72} {:>8.1} us", first.name, median * 1e6);
            }
        }
    }
    Ok(())
}

/// Seal/open throughput of context records, and openssl's ChaCha20-Poly1305 for comparison.
pub(crate) fn crypto(sizes: &[usize], readers: usize, seconds: u64) -> Result<()> {
    for &size in sizes {
        // Calibrate the iteration count to roughly `seconds` of work.
        let probe = seal_open_throughput(size, readers, 3)?;
        let per_iter = (probe.seal_time + probe.open_time).as_secs_f64() / 3.0;
        let iterations = ((seconds as f64 / per_iter.max(1e-6)) as u32).clamp(5, 100_000);
        let t = seal_open_throughput(size, readers, iterations)?;
        let openssl = openssl_chacha(size, seconds);
        let ratio = |ours: f64| match openssl {
            Some(o) if o > 0.0 => format!(" ({:.0}% of openssl)", 100.0 * ours / o),
            _ => String::new(),
        };
        println!(
            "crypto  size={} readers={} n={}: seal {:.0} MB/s{}, open {:.0} MB/s{}; \
             openssl chacha20-poly1305 {}",
            t.content_bytes,
            t.readers,
            t.iterations,
            t.seal_bytes_per_sec / 1e6,
            ratio(t.seal_bytes_per_sec),
            t.open_bytes_per_sec / 1e6,
            ratio(t.open_bytes_per_sec),
            openssl.map_or("not available".to_string(), |o| format!("{:.0} MB/s", o / 1e6)),
        );
    }
    Ok(())
}

/// `openssl speed -evp chacha20-poly1305` for one block size, in bytes per second.
fn openssl_chacha(size: usize, seconds: u64) -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "chacha20-poly1305", "-seconds"])
        .arg(seconds.to_string())
        .arg("-bytes")
        .arg(size.to_string())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line reads "ChaCha20-Poly1305  3327897.60k" (thousands of bytes per second).
    let last = text
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("chacha20"))?;
    let k = last.split_whitespace().last()?.strip_suffix('k')?;
    k.parse::<f64>().ok().map(|v| v * 1000.0)
}

/// What [`seal_open_throughput`] measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throughput {
    /// Content size of each record, in bytes.
    pub(crate) content_bytes: usize,
    /// Reader roles each record is wrapped for.
    pub(crate) readers: usize,
    /// Records sealed and opened.
    pub(crate) iterations: u32,
    /// Total time spent sealing and encoding (DEK, encryption, one SHA-256 pass over the
    /// ciphertext, an ephemeral X25519 key and exchange per reader to wrap the DEK, two
    /// signatures over short messages, encoding into a new buffer).
    pub(crate) seal_time: Duration,
    /// Total time spent verifying and opening (decode, canonical check, two SHA-256 passes over
    /// the record: its content digest and its record key, two signature checks, one X25519
    /// exchange to unwrap, decrypt, comparing the content).
    pub(crate) open_time: Duration,
    /// Content bytes sealed per second.
    pub(crate) seal_bytes_per_sec: f64,
    /// Content bytes opened per second.
    pub(crate) open_bytes_per_sec: f64,
}

/// How many distinct sealed records [`seal_open_throughput`] keeps and opens in turn.
const KEPT_RECORDS: usize = 8;

/// Seals `iterations` records of `content_bytes` random-looking bytes for `readers` roles (1 to
/// [`MAX_WRAPPED_KEYS`](bzzz_node::crypto::MAX_WRAPPED_KEYS)), as a writer holding only the roles' public
/// keys, then verifies and opens as many (the first [`KEPT_RECORDS`] sealed, in turn) with the
/// secret of one role, timing the two halves separately. Opening also checks the content came back intact.
pub(crate) fn seal_open_throughput(content_bytes: usize, readers: usize, iterations: u32) -> Result<Throughput> {
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

    // Only the first few sealed records are kept for the open half, as a daemon keeps none: one
    // that kept every record (hundreds of MiB) would time the kernel zeroing fresh pages for each
    // new buffer instead of re-using freed ones (about 0.3 ms per MiB here, ADR 0010).
    let kept = (iterations as usize).min(KEPT_RECORDS);
    let mut encoded = Vec::with_capacity(kept);
    let start = Instant::now();
    for i in 0..iterations as usize {
        let record = seal_record(black_box(&content), &new, &reader_list, &author)?;
        let bytes = record.encode_to_vec();
        drop(record);
        if i < kept {
            encoded.push(bytes);
        } else {
            black_box(bytes);
        }
    }
    let seal_time = start.elapsed();

    let start = Instant::now();
    for bytes in encoded.iter().cycle().take(iterations as usize) {
        let verified = verify_record(black_box(bytes), max_size)?;
        let opened = open_verified(&verified, address, opener)?;
        if opened.content != content {
            bail!("benchmark content: the round trip changed it");
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

/// Time per operation of one building block of sealing or opening a record, from
/// [`primitive_costs`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrimitiveCost {
    /// What was timed.
    pub(crate) name: &'static str,
    /// Bytes each operation processes (0 for fixed-cost operations such as one DEK wrap).
    pub(crate) bytes: usize,
    /// Mean time of one operation.
    pub(crate) per_op: Duration,
}

#[cfg(test)]
impl PrimitiveCost {
    /// Bytes processed per second, if the operation processes bytes.
    pub(crate) fn bytes_per_sec(&self) -> Option<f64> {
        (self.bytes > 0 && !self.per_op.is_zero()).then(|| self.bytes as f64 / self.per_op.as_secs_f64())
    }
}

/// Times the pieces a record's seal and open are made of, each alone over `bytes` bytes (or once,
/// for the per-record fixed costs), `iterations` times: copying, XChaCha20-Poly1305 encryption
/// and decryption (RustCrypto's, and [`xchacha`]'s that records use), SHA-256, SHA-512, ed25519 over the whole buffer (what signing the ciphertext
/// itself would cost), prost encoding and decoding of a sealed record, one DEK wrap and unwrap,
/// one ed25519 signature and verification of a short message. For explaining the numbers of
/// [`seal_open_throughput`]; measure from a release build.
pub(crate) fn primitive_costs(bytes: usize, iterations: u32) -> Result<Vec<PrimitiveCost>> {
    let iterations = iterations.max(1);
    let data: Vec<u8> = (0..bytes).map(|i| (i * 131 + 17) as u8).collect();
    let aead = XChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = XNonce::from([9u8; 24]);
    let aad = [5u8; 200];
    let identity = Keypair::generate_ed25519();
    let public = identity.public();
    let role = RoleKey::generate();
    let new = NewRecord {
        address: "ucxl://bench:role-0@bzzz:primitives",
        role: "role-0",
        epoch: 1,
        created_ms: 0,
        tombstone: false,
    };
    let record = seal_record(&data, &new, &[("role-0", 1, &role.public())], &identity)?;
    let encoded = record.encode_to_vec();
    let big_signature = identity.sign(&data)?;
    let short_signature = identity.sign(&[1u8; 64])?;
    let sealed = seal_to(role.public().as_bytes(), b"info", b"aad", &[3u8; 32], "bench")?;

    let mut out = Vec::new();
    let mut time = |name: &'static str, bytes: usize, f: &mut dyn FnMut() -> Result<()>| {
        f()?; // warm up
        let start = Instant::now();
        for _ in 0..iterations {
            f()?;
        }
        out.push(PrimitiveCost {
            name,
            bytes,
            per_op: start.elapsed() / iterations,
        });
        Ok::<_, anyhow::Error>(())
    };
    let aead_failed = || anyhow!("benchmark AEAD failed");
    time("copy (Vec::to_vec)", bytes, &mut || {
        black_box(black_box(&data).to_vec());
        Ok(())
    })?;
    time("XChaCha20-Poly1305 encrypt (Aead::encrypt)", bytes, &mut || {
        let ct = aead
            .encrypt(
                &nonce,
                Payload {
                    msg: black_box(&data),
                    aad: &aad,
                },
            )
            .map_err(|_| aead_failed())?;
        black_box(ct);
        Ok(())
    })?;
    let mut buffer = data.clone();
    time("XChaCha20-Poly1305 encrypt in place (no copy)", bytes, &mut || {
        let tag = aead
            .encrypt_inout_detached(&nonce, &aad, black_box(buffer.as_mut_slice()).into())
            .map_err(|_| aead_failed())?;
        black_box(tag);
        Ok(())
    })?;
    let sealed_data = aead
        .encrypt(&nonce, Payload { msg: &data, aad: &aad })
        .map_err(|_| aead_failed())?;
    time("XChaCha20-Poly1305 decrypt (Aead::decrypt)", bytes, &mut || {
        let plain = aead
            .decrypt(
                &nonce,
                Payload {
                    msg: black_box(&sealed_data[..]),
                    aad: &aad,
                },
            )
            .map_err(|_| aead_failed())?;
        black_box(plain);
        Ok(())
    })?;
    time(
        "XChaCha20-Poly1305 encrypt (xchacha::seal: HChaCha20 + ring, what records use)",
        bytes,
        &mut || {
            let ct = xchacha::seal(&[7u8; 32], &[9u8; 24], &aad, black_box(&data)).map_err(|_| aead_failed())?;
            black_box(ct);
            Ok(())
        },
    )?;
    time(
        "XChaCha20-Poly1305 decrypt (xchacha::open, what records use)",
        bytes,
        &mut || {
            let plain =
                xchacha::open(&[7u8; 32], &[9u8; 24], &aad, black_box(&sealed_data[..])).map_err(|_| aead_failed())?;
            black_box(plain);
            Ok(())
        },
    )?;
    let forged_tag = Default::default();
    time("Poly1305 alone (decrypt refusing a forged tag)", bytes, &mut || {
        let refused = aead.decrypt_inout_detached(&nonce, &aad, black_box(buffer.as_mut_slice()).into(), &forged_tag);
        black_box(refused.is_err());
        Ok(())
    })?;
    time("SHA-256", bytes, &mut || {
        black_box(Sha256::digest(black_box(&data)));
        Ok(())
    })?;
    time("SHA-512", bytes, &mut || {
        black_box(Sha512::digest(black_box(&data)));
        Ok(())
    })?;
    time("ed25519 sign of the whole buffer", bytes, &mut || {
        black_box(identity.sign(black_box(&data))?);
        Ok(())
    })?;
    time("ed25519 verify of the whole buffer", bytes, &mut || {
        black_box(public.verify(black_box(&data), &big_signature));
        Ok(())
    })?;
    time("prost encode of a sealed record", bytes, &mut || {
        black_box(black_box(&record).encode_to_vec());
        Ok(())
    })?;
    time("prost decode of a sealed record", bytes, &mut || {
        let decoded = bzzz_protocol::wire::ContextRecord::decode(black_box(&encoded[..]))
            .map_err(|_| anyhow!("benchmark record does not decode"))?;
        black_box(decoded);
        Ok(())
    })?;
    time("wrap a DEK to one role (2 X25519, HKDF, AEAD)", 0, &mut || {
        black_box(seal_to(role.public().as_bytes(), b"info", b"aad", &[3u8; 32], "bench")?);
        Ok(())
    })?;
    time("unwrap a DEK (1 X25519, HKDF, AEAD)", 0, &mut || {
        let opened = role.open(&sealed.borrowed(), b"info", b"aad");
        black_box(opened.is_ok());
        Ok(())
    })?;
    time("ed25519 sign of 64 bytes", 0, &mut || {
        black_box(identity.sign(black_box(&[1u8; 64]))?);
        Ok(())
    })?;
    time("ed25519 verify of 64 bytes", 0, &mut || {
        black_box(public.verify(black_box(&[1u8; 64]), &short_signature));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints what each primitive costs on this machine (run with
    /// `cargo test --release -p bzzz-tests --bin bzzz-bench primitive_costs -- --nocapture` for meaningful numbers;
    /// a debug build runs the AEAD unoptimised).
    #[test]
    fn primitive_costs_run() {
        let (sizes, iterations) = if cfg!(debug_assertions) {
            (&[4096][..], 2)
        } else {
            (&[64 * 1024, 1024 * 1024][..], 200)
        };
        #[cfg(target_arch = "x86_64")]
        println!(
            "cpu features: avx2 {}, sha-ni {}, avx512f {}",
            std::arch::is_x86_feature_detected!("avx2"),
            std::arch::is_x86_feature_detected!("sha"),
            std::arch::is_x86_feature_detected!("avx512f")
        );
        for &size in sizes {
            let costs = primitive_costs(size, iterations).expect("primitives run");
            assert_eq!(costs.len(), 17);
            for c in costs {
                match c.bytes_per_sec() {
                    Some(rate) => println!("{size:>8} B  {:<48} {:>8.0} MB/s", c.name, rate / 1e6),
                    None => println!("{size:>8} B  {:<48} {:>8.1} us", c.name, c.per_op.as_secs_f64() * 1e6),
                }
            }
        }
    }

    /// The benchmark runs end to end and reports what it did (no timing is asserted).
    #[test]
    fn throughput_runs() {
        let t = seal_open_throughput(4096, 3, 3).expect("benchmark runs");
        assert_eq!((t.content_bytes, t.readers, t.iterations), (4096, 3, 3));
        assert!(t.seal_bytes_per_sec > 0.0 && t.open_bytes_per_sec > 0.0, "{t:?}");
    }
}
