//! Iterators over the stored records and this node's provider records (the `RecordStore` trait's
//! `records()` and `provided()`), and [`LocalRecords`], the node's own access from other tasks.

use super::*;

/// Iterator over the live records of a [`SledRecordStore`] (decoded lazily).
pub struct RecordsIter<'a> {
    /// The store, for decoding and removing corrupt entries.
    pub(super) store: &'a SledRecordStore,
    /// The sled iterator over the records tree.
    pub(super) inner: sled::Iter,
    /// The time against which expiry is judged.
    pub(super) now_ms: u64,
}

impl std::fmt::Debug for RecordsIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsIter").finish_non_exhaustive()
    }
}

impl<'a> Iterator for RecordsIter<'a> {
    type Item = Cow<'a, Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (k, v) = match self.inner.next()? {
                Ok(kv) => kv,
                Err(e) => {
                    self.store.io_error(RECORDS_TREE, "iterate records", &e);
                    return None;
                }
            };
            match self.store.load_record(&k, &v, self.now_ms) {
                Loaded::Live(r) => return Some(Cow::Owned(r)),
                Loaded::Expired => {}
                Loaded::Corrupt(reason) => {
                    self.store.log_corrupt(RECORDS_TREE, &k, &reason);
                    self.store.remove_record_entry(&k, &v, Removal::Corrupt);
                }
            }
        }
    }
}

/// Iterator over the live provider records whose provider is the local node.
pub struct ProvidedIter<'a> {
    /// The store, for decoding and removing corrupt entries.
    pub(super) store: &'a SledRecordStore,
    /// The sled iterator over the providers tree.
    pub(super) inner: sled::Iter,
    /// The time against which expiry is judged.
    pub(super) now_ms: u64,
}

impl std::fmt::Debug for ProvidedIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedIter").finish_non_exhaustive()
    }
}

impl<'a> Iterator for ProvidedIter<'a> {
    type Item = Cow<'a, ProviderRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        let local = self.store.local_peer_bytes.as_slice();
        loop {
            let (k, v) = match self.inner.next()? {
                Ok(kv) => kv,
                Err(e) => {
                    self.store.io_error(PROVIDERS_TREE, "iterate provider records", &e);
                    return None;
                }
            };
            // Cheap filter on the key suffix before decoding anything.
            if !k.ends_with(local) {
                continue;
            }
            match self.store.load_provider(&k, &v, self.now_ms) {
                Loaded::Live(p) if p.provider == self.store.local_peer => {
                    return Some(Cow::Owned(p));
                }
                Loaded::Live(_) | Loaded::Expired => {}
                Loaded::Corrupt(reason) => {
                    self.store.log_corrupt(PROVIDERS_TREE, &k, &reason);
                    self.store.remove_provider_entry(&k, Some(&v), Removal::Corrupt);
                }
            }
        }
    }
}

/// This node's own access to its DHT records: the same trees, limits and counters as the
/// [`SledRecordStore`] inside the swarm. Cheap to clone, `Send + Sync`.
///
/// The count limit is checked before an insert, so writers racing on new keys may pass
/// `max_records` by at most one record each.
#[derive(Clone, Debug)]
pub struct LocalRecords(pub(super) SledRecordStore);

impl LocalRecords {
    /// The live value under `key`, if any (an expired or corrupt entry is removed and is `None`).
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        RecordStore::get(&self.0, &RecordKey::new(&key)).map(|r| r.value.clone())
    }

    /// Whether a live value is stored under `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Stores `record` under the store's limits (as a Kademlia put would).
    pub fn put(&self, record: Record) -> Result<()> {
        self.0.insert(record)
    }
}
