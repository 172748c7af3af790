//! Clearing what a node merely caches from its Kademlia store (`bzzz dht cache clear`), in
//! bounded steps so the network event loop that owns the store is never blocked for long.
//!
//! Removed: expired (and undecodable) records and provider records; records this node did not
//! publish itself (copies other nodes' puts left here); this node's own provider announcements
//! for keys it no longer holds. Kept: every record under the caller's protected prefix (the
//! context records, this node's share of the R replicas) whatever its state; records this node
//! published; other peers' live provider records (the DHT's directory for keys near this node,
//! which their providers republish).

use std::ops::Bound;

use serde::Serialize;

use super::{Loaded, PROVIDERS_TREE, RECORDS_TREE, Removal, SledRecordStore, now_unix_ms};

/// Which tree a [`SledRecordStore::clear_cache_step`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePass {
    /// Value records.
    Records,
    /// Provider records (run it after the records pass: it checks which records remain).
    Providers,
}

/// What a cache clear removed and kept, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheClearReport {
    /// Records past their expiry.
    pub expired_records_removed: u64,
    /// Live records another node published (copies this node kept for the DHT).
    pub cached_records_removed: u64,
    /// Records and provider records that could not be decoded.
    pub corrupt_entries_removed: u64,
    /// Provider records past their expiry.
    pub expired_provider_records_removed: u64,
    /// This node's provider announcements for keys it no longer holds.
    pub orphan_provider_records_removed: u64,
    /// Records under the protected prefix (context records).
    pub context_records_kept: u64,
    /// Records this node published.
    pub own_records_kept: u64,
    /// Live provider records kept.
    pub provider_records_kept: u64,
}

impl CacheClearReport {
    /// Adds the counts of `other` to these.
    pub fn add(&mut self, other: &CacheClearReport) {
        self.expired_records_removed += other.expired_records_removed;
        self.cached_records_removed += other.cached_records_removed;
        self.corrupt_entries_removed += other.corrupt_entries_removed;
        self.expired_provider_records_removed += other.expired_provider_records_removed;
        self.orphan_provider_records_removed += other.orphan_provider_records_removed;
        self.context_records_kept += other.context_records_kept;
        self.own_records_kept += other.own_records_kept;
        self.provider_records_kept += other.provider_records_kept;
    }
}

/// One step of a cache clear: its counts and where the next step starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheClearStep {
    /// What this step removed and kept.
    pub report: CacheClearReport,
    /// Tree key to continue after; `None` once the pass reached the end of its tree.
    pub next_after: Option<Vec<u8>>,
}

impl SledRecordStore {
    /// Looks at up to `limit` entries of the `pass` tree after `after` (from the first when
    /// `None`) and removes those the node merely caches (see the module docs); records whose key
    /// starts with `protected_prefix` are never removed. Walk a tree by passing the answer's
    /// `next_after` until it is `None`; run [`CachePass::Records`] before
    /// [`CachePass::Providers`]. Entries changed concurrently are left alone.
    pub fn clear_cache_step(
        &mut self,
        pass: CachePass,
        after: Option<&[u8]>,
        limit: usize,
        protected_prefix: &[u8],
    ) -> CacheClearStep {
        let limit = limit.max(1);
        let (tree, name) = match pass {
            CachePass::Records => (&self.records, RECORDS_TREE),
            CachePass::Providers => (&self.providers, PROVIDERS_TREE),
        };
        let iter = match after {
            Some(a) => tree.range::<&[u8], _>((Bound::Excluded(a), Bound::Unbounded)),
            None => tree.iter(),
        };
        let now_ms = now_unix_ms();
        let mut step = CacheClearStep::default();
        let mut seen = 0;
        for entry in iter {
            let (k, v) = match entry {
                Ok(kv) => kv,
                Err(e) => {
                    self.io_error(name, "walk the store to clear the cache", &e);
                    return step;
                }
            };
            match pass {
                CachePass::Records => self.clear_record(&k, &v, now_ms, protected_prefix, &mut step.report),
                CachePass::Providers => self.clear_provider(&k, &v, now_ms, &mut step.report),
            }
            seen += 1;
            if seen == limit {
                step.next_after = Some(k.to_vec());
                break;
            }
        }
        step
    }

    fn clear_record(&self, k: &[u8], v: &[u8], now_ms: u64, protected: &[u8], report: &mut CacheClearReport) {
        if k.starts_with(protected) {
            report.context_records_kept += 1;
            return;
        }
        match self.load_record(k, v, now_ms) {
            Loaded::Live(r) if r.publisher == Some(self.local_peer) => report.own_records_kept += 1,
            Loaded::Live(_) => {
                if self.remove_record_entry(k, v, Removal::Explicit) {
                    report.cached_records_removed += 1;
                }
            }
            Loaded::Expired => {
                if self.remove_record_entry(k, v, Removal::Expired) {
                    report.expired_records_removed += 1;
                }
            }
            Loaded::Corrupt(reason) => {
                self.log_corrupt(RECORDS_TREE, k, &reason);
                if self.remove_record_entry(k, v, Removal::Corrupt) {
                    report.corrupt_entries_removed += 1;
                }
            }
        }
    }

    fn clear_provider(&self, k: &[u8], v: &[u8], now_ms: u64, report: &mut CacheClearReport) {
        match self.load_provider(k, v, now_ms) {
            Loaded::Live(p) if p.provider == self.local_peer => {
                let held = match self.records.contains_key(p.key.as_ref()) {
                    Ok(held) => held,
                    Err(e) => {
                        self.io_error(RECORDS_TREE, "look up a provided record", &e);
                        true
                    }
                };
                if held {
                    report.provider_records_kept += 1;
                } else if self.remove_provider_entry(k, Some(v), Removal::Explicit) {
                    report.orphan_provider_records_removed += 1;
                }
            }
            Loaded::Live(_) => report.provider_records_kept += 1,
            Loaded::Expired => {
                if self.remove_provider_entry(k, Some(v), Removal::Expired) {
                    report.expired_provider_records_removed += 1;
                }
            }
            Loaded::Corrupt(reason) => {
                self.log_corrupt(PROVIDERS_TREE, k, &reason);
                if self.remove_provider_entry(k, Some(v), Removal::Corrupt) {
                    report.corrupt_entries_removed += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use libp2p::PeerId;
    use libp2p::kad::store::RecordStore;
    use libp2p::kad::{ProviderRecord, Record, RecordKey};

    use super::*;
    use crate::kad_store::RecordStoreConfig;
    use crate::store::Store;

    const CTX: &[u8] = bzzz_protocol::context::DHT_KEY_PREFIX;

    fn record(key: &str, publisher: Option<PeerId>, expired: bool) -> Record {
        let mut r = Record::new(RecordKey::new(&key), b"v".to_vec());
        r.publisher = publisher;
        if expired {
            r.expires = Some(Instant::now() - Duration::from_secs(1));
        }
        r
    }

    fn provider(key: &str, provider: PeerId, expired: bool) -> ProviderRecord {
        let mut p = ProviderRecord::new(RecordKey::new(&key), provider, Vec::new());
        if expired {
            p.expires = Some(Instant::now() - Duration::from_secs(1));
        }
        p
    }

    /// Runs both passes to the end in steps of `limit`.
    fn clear_all(kad: &mut SledRecordStore, limit: usize) -> CacheClearReport {
        let mut total = CacheClearReport::default();
        for pass in [CachePass::Records, CachePass::Providers] {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let step = kad.clear_cache_step(pass, after.as_deref(), limit, CTX);
                total.add(&step.report);
                match step.next_after {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        total
    }

    /// Cached, expired and orphaned entries go; context records (even expired or foreign), the
    /// node's own records, its announcements of records it holds and other peers' live provider
    /// records stay. Small steps give the same result as one big one.
    #[test]
    fn clear_cache_removes_only_what_is_cached() {
        for limit in [1, 1000] {
            let me = PeerId::random();
            let other = PeerId::random();
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(dir.path()).expect("open store");
            let mut kad = SledRecordStore::new(&store, me, RecordStoreConfig::default()).expect("record store");
            let ctx_key = "/bzzz/ctx/1/00aa";
            for r in [
                record(ctx_key, Some(other), false),
                record("/bzzz/ctx/1/00bb", None, true),
                record("/bzzz/test/mine", Some(me), false),
                record("/bzzz/test/theirs", Some(other), false),
                record("/bzzz/test/anonymous", None, false),
                record("/bzzz/test/stale", Some(me), true),
            ] {
                kad.put(r).expect("put record");
            }
            for p in [
                provider(ctx_key, me, false),
                provider("/bzzz/test/mine", me, false),
                provider("/bzzz/test/gone", me, false),
                provider("/bzzz/test/elsewhere", other, false),
                provider("/bzzz/test/old", other, true),
            ] {
                kad.add_provider(p).expect("add provider");
            }
            let report = clear_all(&mut kad, limit);
            assert_eq!(
                report,
                CacheClearReport {
                    expired_records_removed: 1,
                    cached_records_removed: 2,
                    corrupt_entries_removed: 0,
                    expired_provider_records_removed: 1,
                    orphan_provider_records_removed: 1,
                    context_records_kept: 2,
                    own_records_kept: 1,
                    provider_records_kept: 3,
                },
                "step size {limit}"
            );
            let keys: Vec<String> = kad
                .records
                .iter()
                .keys()
                .map(|k| String::from_utf8_lossy(&k.expect("key")).into_owned())
                .collect();
            assert_eq!(keys, ["/bzzz/ctx/1/00aa", "/bzzz/ctx/1/00bb", "/bzzz/test/mine"]);
            let stats = kad.stats();
            assert_eq!(
                (stats.records, stats.provider_records),
                (3, 3),
                "counters follow: {stats:?}"
            );
            assert!(kad.providers(&RecordKey::new(&"/bzzz/test/gone")).is_empty());
            assert_eq!(kad.providers(&RecordKey::new(&"/bzzz/test/elsewhere")).len(), 1);
        }
    }
}
