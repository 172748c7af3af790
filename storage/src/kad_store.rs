//! [`SledRecordStore`]: a Kademlia [`RecordStore`] persisted in sled.
//!
//! Layout:
//! - tree [`RECORDS_TREE`]: record key bytes → encoded `StoredRecord`;
//! - tree [`PROVIDERS_TREE`]: 4-byte big-endian record-key length ‖ record key ‖
//!   provider `PeerId` bytes → encoded `StoredProvider`. The length prefix makes
//!   all providers of one key a contiguous, unambiguous prefix range.
//!
//! Expiry is stored as unix-epoch milliseconds, so it survives restarts; the
//! `Instant`s of libp2p are converted at the boundary. Entries that cannot be
//! decoded are logged with `warn!`, deleted (a DHT entry is a cache that the
//! network re-publishes) and otherwise treated as absent.
//!
//! Use one `SledRecordStore` per [`Store`]: the counters assume they see every
//! write to the two trees.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use libp2p::kad::store::{Error, RecordStore, Result};
use libp2p::kad::{K_VALUE, ProviderRecord, Record, RecordKey};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tracing::{debug, error, warn};

use crate::codec;
use crate::store::{StorageError, Store};
use crate::util::{error_chain, now_unix_ms};

mod cache;
mod entries;
mod iter;
mod stats;

pub use cache::{CacheClearReport, CacheClearStep, CachePass};
pub use iter::{LocalRecords, ProvidedIter, RecordsIter};
use stats::{Counters, dec, inc};
pub use stats::{RecordStoreStats, RecordStoreStatsHandle};

/// Name of the tree holding Kademlia value records.
pub const RECORDS_TREE: &str = "kad_records";
/// Name of the tree holding Kademlia provider records.
pub const PROVIDERS_TREE: &str = "kad_providers";

/// Largest accepted `max_value_bytes`: the codec limit minus room for the record's other fields.
pub const MAX_VALUE_BYTES_LIMIT: usize = codec::MAX_ENCODED_BYTES - 64 * 1024;

/// Limits of the persistent Kademlia record store.
#[derive(Debug, Clone)]
pub struct RecordStoreConfig {
    /// Largest accepted record value, in bytes; bigger values are rejected with `ValueTooLarge`.
    pub max_value_bytes: usize,
    /// Most value records stored; a put of a new key beyond it fails with `MaxRecords`.
    pub max_records: usize,
    /// Most remote providers kept per key; further ones are dropped silently.
    pub max_providers_per_key: usize,
    /// Most distinct keys with provider records; a provider for a new key beyond it fails with `MaxProvidedKeys`.
    pub max_provided_keys: usize,
}

impl Default for RecordStoreConfig {
    fn default() -> Self {
        Self {
            max_value_bytes: 1024 * 1024,
            max_records: 1_000_000,
            max_providers_per_key: K_VALUE.get(),
            max_provided_keys: 1_000_000,
        }
    }
}

/// A value record as persisted.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRecord {
    /// The record value.
    value: Vec<u8>,
    /// The publisher, as `PeerId::to_bytes`.
    publisher: Option<Vec<u8>>,
    /// Expiry, unix-epoch milliseconds.
    expires_unix_ms: Option<u64>,
}

/// A provider record as persisted (key and provider live in the tree key).
#[derive(Debug, Serialize, Deserialize)]
struct StoredProvider {
    /// The provider's addresses, as `Multiaddr::to_vec`.
    addresses: Vec<Vec<u8>>,
    /// Expiry, unix-epoch milliseconds.
    expires_unix_ms: Option<u64>,
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Converts a monotonic deadline to unix-epoch milliseconds, saturating.
fn instant_to_unix_ms(t: Instant) -> u64 {
    let now = Instant::now();
    let now_ms = now_unix_ms();
    if t >= now {
        now_ms.saturating_add(duration_ms(t - now))
    } else {
        now_ms.saturating_sub(duration_ms(now - t))
    }
}

/// Converts unix-epoch milliseconds to a monotonic deadline.
///
/// A past time maps to an instant no later than now (so it reads as expired);
/// a future time too far to represent maps to `None` (never expires).
fn unix_ms_to_instant(ms: u64) -> Option<Instant> {
    let now = Instant::now();
    let now_ms = now_unix_ms();
    if ms >= now_ms {
        now.checked_add(Duration::from_millis(ms - now_ms))
    } else {
        Some(now.checked_sub(Duration::from_millis(now_ms - ms)).unwrap_or(now))
    }
}

/// Whether an entry with this expiry is expired at `now_ms` (same rule as `Record::is_expired`).
fn is_expired(expires_unix_ms: Option<u64>, now_ms: u64) -> bool {
    expires_unix_ms.is_some_and(|t| now_ms >= t)
}

/// First bytes of a key in hex, for log lines.
fn hex_prefix(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(66);
    for byte in b.iter().take(32) {
        let _ = write!(s, "{byte:02x}");
    }
    if b.len() > 32 {
        s.push_str("..");
    }
    s
}

/// The providers-tree prefix of a record key: 4-byte big-endian length ‖ key.
fn provider_prefix(key: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(key.len()).ok()?;
    let mut v = Vec::with_capacity(4 + key.len() + 40);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(key);
    Some(v)
}

/// Splits a providers-tree key into its prefix length, record key and provider.
fn split_provider_key(k: &[u8]) -> Option<(usize, RecordKey, PeerId)> {
    let (len, rest) = k.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (key, peer) = rest.split_at(len);
    let peer = PeerId::from_bytes(peer).ok()?;
    Some((4 + len, RecordKey::new(&key), peer))
}

/// The outcome of reading one stored entry.
enum Loaded<T> {
    /// A live entry.
    Live(T),
    /// An entry past its expiry.
    Expired,
    /// An entry that cannot be decoded; the reason is for the log.
    Corrupt(String),
}

/// Why an entry is being deleted (selects the counter and the log line).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// The entry has expired.
    Expired,
    /// The entry cannot be decoded.
    Corrupt,
    /// The caller asked for the removal.
    Explicit,
}

/// Kademlia RecordStore persisted in sled: records survive restarts, expiry honoured.
///
/// Clones share the trees and the counters: the swarm owns one (Kademlia's store), and
/// [`LocalRecords`] handles read and write the same records from other tasks.
#[derive(Clone)]
pub struct SledRecordStore {
    /// Tree of value records.
    records: sled::Tree,
    /// Tree of provider records.
    providers: sled::Tree,
    /// The local node, whose provider records `provided()` returns.
    local_peer: PeerId,
    /// `local_peer.to_bytes()`, to match providers-tree key suffixes cheaply.
    local_peer_bytes: Vec<u8>,
    /// The limits.
    config: RecordStoreConfig,
    /// Counters shared with [`RecordStoreStatsHandle`]s.
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SledRecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledRecordStore")
            .field("local_peer", &self.local_peer)
            .field("config", &self.config)
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl SledRecordStore {
    /// Opens the record store's trees in `store`.
    ///
    /// Counts the records with `Tree::len` and scans the provider keys once
    /// (both O(n)), deleting provider entries whose key is malformed.
    pub fn new(
        store: &Store,
        local_peer: PeerId,
        config: RecordStoreConfig,
    ) -> std::result::Result<Self, StorageError> {
        if config.max_value_bytes > MAX_VALUE_BYTES_LIMIT {
            return Err(StorageError::InvalidConfig {
                what: format!(
                    "max_value_bytes is {}, over the {} byte limit of the codec",
                    config.max_value_bytes, MAX_VALUE_BYTES_LIMIT
                ),
            });
        }
        let records = store.tree(RECORDS_TREE)?;
        let providers = store.tree(PROVIDERS_TREE)?;
        let counters = Counters::default();
        counters.records.store(records.len() as u64, Ordering::Relaxed);

        let mut last_prefix: Option<Vec<u8>> = None;
        for entry in providers.iter().keys() {
            let k = entry.map_err(|source| StorageError::Io {
                tree: PROVIDERS_TREE.to_owned(),
                op: "scan provider keys",
                source,
            })?;
            match split_provider_key(&k) {
                Some((prefix_len, _, _)) => {
                    inc(&counters.provider_records);
                    let prefix = &k[..prefix_len];
                    if last_prefix.as_deref() != Some(prefix) {
                        inc(&counters.provider_keys);
                        last_prefix = Some(prefix.to_vec());
                    }
                }
                None => {
                    warn!(
                        tree = PROVIDERS_TREE,
                        key = %hex_prefix(&k),
                        "malformed provider entry key, removing it"
                    );
                    providers.remove(&k).map_err(|source| StorageError::Io {
                        tree: PROVIDERS_TREE.to_owned(),
                        op: "remove a malformed provider key",
                        source,
                    })?;
                    inc(&counters.corrupt_removed);
                }
            }
        }

        Ok(Self {
            records,
            providers,
            local_peer_bytes: local_peer.to_bytes(),
            local_peer,
            config,
            counters: Arc::new(counters),
        })
    }

    /// A handle on the same records for this node's own reads and writes, usable from any task
    /// (no trip through the task that owns the swarm).
    pub fn local(&self) -> LocalRecords {
        LocalRecords(self.clone())
    }

    /// Stores `r` under the limits. Takes `&self`: the trees and counters are shared, so the
    /// swarm's store and [`LocalRecords`] handles write through the same code.
    fn insert(&self, r: Record) -> Result<()> {
        let size = r.value.len();
        let limit = self.config.max_value_bytes;
        if size > limit {
            inc(&self.counters.rejected_too_large);
            warn!(size, limit, "kademlia record value too large, rejecting it");
            return Err(Error::ValueTooLarge);
        }
        let stored = StoredRecord {
            value: r.value,
            publisher: r.publisher.map(|p| p.to_bytes()),
            expires_unix_ms: r.expires.map(instant_to_unix_ms),
        };
        let bytes = match codec::encode(&stored) {
            Ok(b) => b,
            Err(e) => {
                // Unreachable with a validated config, but never panic on it.
                inc(&self.counters.rejected_too_large);
                warn!(size, limit, error = %error_chain(&e), "cannot encode kademlia record, rejecting it");
                return Err(Error::ValueTooLarge);
            }
        };
        let key = r.key.as_ref();
        let exists = match self.records.contains_key(key) {
            Ok(b) => b,
            Err(e) => {
                self.io_error(RECORDS_TREE, "look up a record", &e);
                return Err(Error::MaxRecords);
            }
        };
        let count = self.counters.records.load(Ordering::Relaxed);
        if !exists && count >= self.config.max_records as u64 {
            inc(&self.counters.rejected_full);
            debug!(
                count,
                limit = self.config.max_records,
                "kademlia record store full, rejecting record"
            );
            return Err(Error::MaxRecords);
        }
        match self.records.insert(key, bytes) {
            Ok(None) => {
                inc(&self.counters.records);
                Ok(())
            }
            Ok(Some(_)) => Ok(()),
            Err(e) => {
                self.io_error(RECORDS_TREE, "insert a record", &e);
                Err(Error::MaxRecords)
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RecordStoreStats {
        self.counters.snapshot()
    }

    /// A cloneable Send + Sync handle to the counters, readable while the store is owned elsewhere.
    pub fn stats_handle(&self) -> RecordStoreStatsHandle {
        RecordStoreStatsHandle(Arc::clone(&self.counters))
    }

    /// The limits in force.
    pub fn config(&self) -> &RecordStoreConfig {
        &self.config
    }

    /// Sweeps expired (and undecodable) records and provider records; returns how many entries were removed.
    pub fn remove_expired(&mut self) -> usize {
        let now_ms = now_unix_ms();
        let mut removed = 0;
        for entry in self.records.iter() {
            let (k, v) = match entry {
                Ok(kv) => kv,
                Err(e) => {
                    self.io_error(RECORDS_TREE, "sweep records", &e);
                    break;
                }
            };
            let why = match self.load_record(&k, &v, now_ms) {
                Loaded::Live(_) => continue,
                Loaded::Expired => Removal::Expired,
                Loaded::Corrupt(reason) => {
                    self.log_corrupt(RECORDS_TREE, &k, &reason);
                    Removal::Corrupt
                }
            };
            if self.remove_record_entry(&k, &v, why) {
                removed += 1;
            }
        }
        for entry in self.providers.iter() {
            let (k, v) = match entry {
                Ok(kv) => kv,
                Err(e) => {
                    self.io_error(PROVIDERS_TREE, "sweep provider records", &e);
                    break;
                }
            };
            let why = match self.load_provider(&k, &v, now_ms) {
                Loaded::Live(_) => continue,
                Loaded::Expired => Removal::Expired,
                Loaded::Corrupt(reason) => {
                    self.log_corrupt(PROVIDERS_TREE, &k, &reason);
                    Removal::Corrupt
                }
            };
            if self.remove_provider_entry(&k, Some(&v), why) {
                removed += 1;
            }
        }
        if removed > 0 {
            debug!(removed, "swept expired kademlia records");
        }
        removed
    }

    /// Up to `limit` live records whose keys sort after `after` (from the first key when `None`),
    /// in key order: walks the whole store in bounded batches (re-announcing, cache clearing).
    pub fn records_after(&self, after: Option<&[u8]>, limit: usize) -> Vec<Record> {
        use std::ops::Bound;
        let iter = match after {
            Some(a) => self.records.range::<&[u8], _>((Bound::Excluded(a), Bound::Unbounded)),
            None => self.records.iter(),
        };
        RecordsIter {
            store: self,
            inner: iter,
            now_ms: now_unix_ms(),
        }
        .take(limit)
        .map(Cow::into_owned)
        .collect()
    }
}

impl RecordStore for SledRecordStore {
    type RecordsIter<'a> = RecordsIter<'a>;
    type ProvidedIter<'a> = ProvidedIter<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        let v = match self.records.get(k.as_ref()) {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(e) => {
                self.io_error(RECORDS_TREE, "get a record", &e);
                return None;
            }
        };
        match self.load_record(k.as_ref(), &v, now_unix_ms()) {
            Loaded::Live(r) => Some(Cow::Owned(r)),
            Loaded::Expired => {
                self.remove_record_entry(k.as_ref(), &v, Removal::Expired);
                None
            }
            Loaded::Corrupt(reason) => {
                self.log_corrupt(RECORDS_TREE, k.as_ref(), &reason);
                self.remove_record_entry(k.as_ref(), &v, Removal::Corrupt);
                None
            }
        }
    }

    fn put(&mut self, r: Record) -> Result<()> {
        self.insert(r)
    }

    fn remove(&mut self, k: &RecordKey) {
        match self.records.remove(k.as_ref()) {
            Ok(Some(_)) => dec(&self.counters.records),
            Ok(None) => {}
            Err(e) => self.io_error(RECORDS_TREE, "remove a record", &e),
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        RecordsIter {
            store: self,
            inner: self.records.iter(),
            now_ms: now_unix_ms(),
        }
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        let Some(prefix) = provider_prefix(record.key.as_ref()) else {
            inc(&self.counters.rejected_too_large);
            warn!(
                size = record.key.as_ref().len(),
                "kademlia provider record key too long, rejecting it"
            );
            return Err(Error::ValueTooLarge);
        };
        let mut entry_key = prefix.clone();
        entry_key.extend_from_slice(&record.provider.to_bytes());
        let stored = StoredProvider {
            addresses: record.addresses.iter().map(|a| a.to_vec()).collect(),
            expires_unix_ms: record.expires.map(instant_to_unix_ms),
        };
        let bytes = match codec::encode(&stored) {
            Ok(b) => b,
            Err(e) => {
                inc(&self.counters.rejected_too_large);
                warn!(error = %error_chain(&e), "cannot encode kademlia provider record, rejecting it");
                return Err(Error::ValueTooLarge);
            }
        };

        let exists = match self.providers.contains_key(&entry_key) {
            Ok(b) => b,
            Err(e) => {
                self.io_error(PROVIDERS_TREE, "look up a provider record", &e);
                return Err(Error::MaxProvidedKeys);
            }
        };
        let mut new_key = false;
        if !exists {
            let Some(live) = self.live_providers(&prefix, now_unix_ms()) else {
                return Err(Error::MaxProvidedKeys);
            };
            new_key = live.is_empty();
            let keys = self.counters.provider_keys.load(Ordering::Relaxed);
            if new_key && keys >= self.config.max_provided_keys as u64 {
                inc(&self.counters.rejected_full);
                debug!(
                    keys,
                    limit = self.config.max_provided_keys,
                    "kademlia provider store full, rejecting provider record"
                );
                return Err(Error::MaxProvidedKeys);
            }
            // Like MemoryStore, a full key ignores new providers (Sybil
            // mitigation) - except the local node, which must always be able
            // to record that it provides a key.
            let is_local = record.provider == self.local_peer;
            if !is_local && live.len() >= self.config.max_providers_per_key {
                debug!(
                    providers = live.len(),
                    limit = self.config.max_providers_per_key,
                    "provider list of key full, ignoring new provider"
                );
                return Ok(());
            }
        }
        match self.providers.insert(entry_key, bytes) {
            Ok(None) => {
                inc(&self.counters.provider_records);
                if new_key {
                    inc(&self.counters.provider_keys);
                }
                Ok(())
            }
            Ok(Some(_)) => Ok(()),
            Err(e) => {
                self.io_error(PROVIDERS_TREE, "insert a provider record", &e);
                Err(Error::MaxProvidedKeys)
            }
        }
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let Some(prefix) = provider_prefix(key.as_ref()) else {
            return Vec::new();
        };
        self.live_providers(&prefix, now_unix_ms()).unwrap_or_default()
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        ProvidedIter {
            store: self,
            inner: self.providers.iter(),
            now_ms: now_unix_ms(),
        }
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        let Some(mut entry_key) = provider_prefix(k.as_ref()) else {
            return;
        };
        entry_key.extend_from_slice(&p.to_bytes());
        self.remove_provider_entry(&entry_key, None, Removal::Explicit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a record store with `config` on a fresh Store.
    fn temp_kad(local: PeerId, config: RecordStoreConfig) -> (tempfile::TempDir, Store, SledRecordStore) {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = Store::open(dir.path()).expect("open a store in a fresh directory");
        let kad = SledRecordStore::new(&store, local, config).expect("open the record store");
        (dir, store, kad)
    }

    /// Converting a deadline to unix milliseconds and back lands within a few milliseconds.
    #[test]
    fn instant_unix_ms_round_trip() {
        for offset in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(48 * 3600),
        ] {
            let t = Instant::now() + offset;
            let back = unix_ms_to_instant(instant_to_unix_ms(t));
            let Some(back) = back else {
                panic!("expected Some(instant) for offset {offset:?}, got None");
            };
            let diff = if back > t { back - t } else { t - back };
            assert!(
                diff < Duration::from_millis(50),
                "expected a round trip within 50 ms for offset {offset:?}, got {diff:?} off"
            );
        }
    }

    /// Extreme unix times convert without panicking: 0 is expired, u64::MAX is far future or never.
    #[test]
    fn unix_ms_extremes_do_not_panic() {
        let now = Instant::now();
        let past = unix_ms_to_instant(0);
        assert!(
            past.is_some_and(|t| t <= Instant::now()),
            "expected an instant no later than now for 0 ms, got {past:?}"
        );
        let future = unix_ms_to_instant(u64::MAX);
        assert!(
            future.is_none_or(|t| t > now + Duration::from_secs(365 * 24 * 3600)),
            "expected None or a far future instant for u64::MAX ms, got {future:?}"
        );
        let ms = instant_to_unix_ms(now + Duration::from_secs(3600));
        assert!(
            ms > now_unix_ms(),
            "expected a future unix time, got {ms} (now {})",
            now_unix_ms()
        );
        assert!(
            is_expired(Some(0), now_unix_ms()),
            "expected expiry at 0 ms to be expired"
        );
        assert!(!is_expired(None, u64::MAX), "expected no expiry to never be expired");
    }

    /// Walking the store in batches visits every live record once, in key order, skipping
    /// expired ones.
    #[test]
    fn records_after_walks_in_batches() {
        let (_dir, _store, mut kad) = temp_kad(PeerId::random(), RecordStoreConfig::default());
        for k in ["a", "b", "c", "d", "e"] {
            let mut r = Record::new(RecordKey::new(&k), k.as_bytes().to_vec());
            if k == "c" {
                r.expires = Some(Instant::now() - Duration::from_secs(1));
            }
            kad.put(r).expect("put");
        }
        let mut seen = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = kad.records_after(after.as_deref(), 2);
            if batch.is_empty() {
                break;
            }
            after = batch.last().map(|r| r.key.to_vec());
            seen.extend(
                batch
                    .into_iter()
                    .map(|r| String::from_utf8_lossy(r.key.as_ref()).into_owned()),
            );
        }
        assert_eq!(seen, ["a", "b", "d", "e"], "expected every live record once");
    }

    /// A providers-tree key splits back into its record key and provider; malformed keys give None.
    #[test]
    fn provider_key_split() {
        let peer = PeerId::random();
        let key = RecordKey::new(&b"some key");
        let mut k = provider_prefix(key.as_ref()).expect("a short key has a prefix");
        let prefix_len = k.len();
        k.extend_from_slice(&peer.to_bytes());
        let got = split_provider_key(&k);
        assert!(
            matches!(&got, Some((l, rk, p)) if *l == prefix_len && *rk == key && *p == peer),
            "expected Some(({prefix_len}, {key:?}, {peer})), got {got:?}"
        );
        for bad in [
            &[][..],
            &[0, 0, 1][..],
            &[0, 0, 0, 9, 1, 2][..],
            &[0, 0, 0, 1, b'k', 0xff, 0xff][..],
        ] {
            let got = split_provider_key(bad);
            assert!(got.is_none(), "expected None for {bad:?}, got {got:?}");
        }
    }

    /// A max_value_bytes the codec cannot round-trip is refused at construction.
    #[test]
    fn oversized_value_limit_is_refused() {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = Store::open(dir.path()).expect("open a store in a fresh directory");
        let config = RecordStoreConfig {
            max_value_bytes: MAX_VALUE_BYTES_LIMIT + 1,
            ..RecordStoreConfig::default()
        };
        let got = SledRecordStore::new(&store, PeerId::random(), config);
        assert!(
            matches!(got, Err(StorageError::InvalidConfig { .. })),
            "expected Err(InvalidConfig), got {:?}",
            got.map(|_| ())
        );
    }

    /// The default limits are the documented ones.
    #[test]
    fn default_config() {
        let c = RecordStoreConfig::default();
        let got = (
            c.max_value_bytes,
            c.max_records,
            c.max_providers_per_key,
            c.max_provided_keys,
        );
        let want = (1024 * 1024, 1_000_000, 20, 1_000_000);
        assert_eq!(got, want, "expected {want:?}, got {got:?}");
    }

    /// An expired provider record is hidden from providers() and provided(), and removed by the sweep.
    #[test]
    fn expired_provider_hidden_and_swept() {
        let local = PeerId::random();
        let (_dir, _store, mut kad) = temp_kad(local, RecordStoreConfig::default());
        let key = RecordKey::new(&"k");
        let mut mine = ProviderRecord::new(key.clone(), local, vec![]);
        mine.expires = Some(Instant::now());
        let mut theirs = ProviderRecord::new(RecordKey::new(&"other"), PeerId::random(), vec![]);
        theirs.expires = Some(Instant::now());
        kad.add_provider(mine).expect("add the local provider record");
        kad.add_provider(theirs).expect("add the remote provider record");

        let provided = kad.provided().count();
        assert_eq!(provided, 0, "expected nothing provided, got {provided}");
        let swept = kad.remove_expired();
        assert_eq!(swept, 2, "expected 2 provider records swept, got {swept}");
        let stats = kad.stats();
        let got = (stats.provider_records, stats.provider_keys, stats.expired_removed);
        assert_eq!(
            got,
            (0, 0, 2),
            "expected (records, keys, expired_removed) = (0, 0, 2), got {got:?}"
        );
        let listed = kad.providers(&key);
        assert!(listed.is_empty(), "expected no providers, got {listed:?}");
    }

    /// A record whose stored publisher is not a valid peer id is treated as corrupt and removed.
    #[test]
    fn bad_publisher_is_corrupt() {
        let (_dir, store, kad) = temp_kad(PeerId::random(), RecordStoreConfig::default());
        let stored = StoredRecord {
            value: b"v".to_vec(),
            publisher: Some(vec![0xff; 5]),
            expires_unix_ms: None,
        };
        let bytes = codec::encode(&stored).expect("encode a small record");
        store
            .tree(RECORDS_TREE)
            .expect("open the records tree")
            .insert(b"k", bytes)
            .expect("insert the record");
        let got = kad.get(&RecordKey::new(&"k"));
        assert!(got.is_none(), "expected None, got {got:?}");
        let removed = kad.stats().corrupt_removed;
        assert_eq!(removed, 1, "expected corrupt_removed 1, got {removed}");
    }
}
