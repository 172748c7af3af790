//! Reading and removing single entries of the two trees: decoding with expiry and corruption
//! handling, removals that keep the counters true, and the I/O-error and corruption logs.

use super::*;

impl SledRecordStore {
    /// Logs a sled error and counts it.
    pub(super) fn io_error(&self, tree: &'static str, op: &'static str, e: &sled::Error) {
        inc(&self.counters.io_errors);
        error!(tree, op, error = %error_chain(e), "kademlia record store i/o error");
    }

    /// Logs an undecodable entry.
    pub(super) fn log_corrupt(&self, tree: &'static str, key: &[u8], reason: &str) {
        warn!(
            tree,
            key = %hex_prefix(key),
            reason,
            "corrupt kademlia store entry, removing it"
        );
    }

    /// Decodes a records-tree entry.
    pub(super) fn load_record(&self, key: &[u8], value: &[u8], now_ms: u64) -> Loaded<Record> {
        let stored: StoredRecord = match codec::decode(value) {
            Ok(s) => s,
            Err(e) => return Loaded::Corrupt(error_chain(&e)),
        };
        if is_expired(stored.expires_unix_ms, now_ms) {
            return Loaded::Expired;
        }
        let publisher = match stored.publisher.as_deref().map(PeerId::from_bytes) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return Loaded::Corrupt(format!("bad publisher peer id: {e}")),
        };
        Loaded::Live(Record {
            key: RecordKey::new(&key),
            value: stored.value,
            publisher,
            expires: stored.expires_unix_ms.and_then(unix_ms_to_instant),
        })
    }

    /// Decodes a providers-tree entry.
    pub(super) fn load_provider(&self, key: &[u8], value: &[u8], now_ms: u64) -> Loaded<ProviderRecord> {
        let Some((_, record_key, provider)) = split_provider_key(key) else {
            return Loaded::Corrupt("malformed provider entry key".to_owned());
        };
        let stored: StoredProvider = match codec::decode(value) {
            Ok(s) => s,
            Err(e) => return Loaded::Corrupt(error_chain(&e)),
        };
        if is_expired(stored.expires_unix_ms, now_ms) {
            return Loaded::Expired;
        }
        let mut addresses = Vec::with_capacity(stored.addresses.len());
        for a in stored.addresses {
            match Multiaddr::try_from(a) {
                Ok(a) => addresses.push(a),
                Err(e) => return Loaded::Corrupt(format!("bad provider address: {e}")),
            }
        }
        Loaded::Live(ProviderRecord {
            key: record_key,
            provider,
            expires: stored.expires_unix_ms.and_then(unix_ms_to_instant),
            addresses,
        })
    }

    /// Deletes a records-tree entry if it still holds `expected`; returns whether it did.
    pub(super) fn remove_record_entry(&self, key: &[u8], expected: &[u8], why: Removal) -> bool {
        match self.records.compare_and_swap(key, Some(expected), None::<&[u8]>) {
            Ok(Ok(())) => {
                dec(&self.counters.records);
                self.count_removal(why);
                true
            }
            // Replaced or removed meanwhile: nothing to do.
            Ok(Err(_)) => false,
            Err(e) => {
                self.io_error(RECORDS_TREE, "remove a record", &e);
                false
            }
        }
    }

    /// Deletes a providers-tree entry (only if it still holds `expected`, when given); returns whether it did.
    pub(super) fn remove_provider_entry(&self, key: &[u8], expected: Option<&[u8]>, why: Removal) -> bool {
        let removed = match expected {
            Some(expected) => self
                .providers
                .compare_and_swap(key, Some(expected), None::<&[u8]>)
                .map(|r| r.is_ok()),
            None => self.providers.remove(key).map(|old| old.is_some()),
        };
        match removed {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                self.io_error(PROVIDERS_TREE, "remove a provider record", &e);
                return false;
            }
        }
        dec(&self.counters.provider_records);
        self.count_removal(why);
        if let Some((prefix_len, _, _)) = split_provider_key(key) {
            match self.providers.scan_prefix(&key[..prefix_len]).next() {
                None => dec(&self.counters.provider_keys),
                Some(Ok(_)) => {}
                Some(Err(e)) => self.io_error(PROVIDERS_TREE, "scan providers of a key", &e),
            }
        }
        true
    }

    /// Counts a removal under its reason (explicit removals count under neither).
    pub(super) fn count_removal(&self, why: Removal) {
        match why {
            Removal::Expired => inc(&self.counters.expired_removed),
            Removal::Corrupt => inc(&self.counters.corrupt_removed),
            Removal::Explicit => {}
        }
    }

    /// Live providers of the key with this prefix, deleting expired and corrupt ones on the way.
    ///
    /// `None` on an I/O error (already logged and counted).
    pub(super) fn live_providers(&self, prefix: &[u8], now_ms: u64) -> Option<Vec<ProviderRecord>> {
        let mut live = Vec::new();
        for entry in self.providers.scan_prefix(prefix) {
            let (k, v) = match entry {
                Ok(kv) => kv,
                Err(e) => {
                    self.io_error(PROVIDERS_TREE, "scan providers of a key", &e);
                    return None;
                }
            };
            match self.load_provider(&k, &v, now_ms) {
                Loaded::Live(p) => live.push(p),
                Loaded::Expired => {
                    self.remove_provider_entry(&k, Some(&v), Removal::Expired);
                }
                Loaded::Corrupt(reason) => {
                    self.log_corrupt(PROVIDERS_TREE, &k, &reason);
                    self.remove_provider_entry(&k, Some(&v), Removal::Corrupt);
                }
            }
        }
        Some(live)
    }
}
