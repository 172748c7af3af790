//! Integration tests of the persistent Kademlia record store.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bzzz_storage::kad_store::{PROVIDERS_TREE, RECORDS_TREE};
use bzzz_storage::{RecordStoreConfig, SledRecordStore, StorageError, Store};
use libp2p::kad::store::{Error, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::{Multiaddr, PeerId};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Opens a record store with the default config on a fresh Store in `dir`.
fn open(dir: &std::path::Path, peer: PeerId) -> Result<(Store, SledRecordStore), StorageError> {
    open_with(dir, peer, RecordStoreConfig::default())
}

/// Opens a record store with `config` on a Store in `dir`.
fn open_with(
    dir: &std::path::Path,
    peer: PeerId,
    config: RecordStoreConfig,
) -> Result<(Store, SledRecordStore), StorageError> {
    let store = Store::open(dir)?;
    let kad = SledRecordStore::new(&store, peer, config)?;
    Ok((store, kad))
}

/// A record with the given key, value, a publisher and an expiry one hour ahead.
fn record(key: &str, value: &[u8]) -> Record {
    let mut r = Record::new(RecordKey::new(&key), value.to_vec());
    r.publisher = Some(PeerId::random());
    r.expires = Some(Instant::now() + Duration::from_secs(3600));
    r
}

/// Whether two optional instants are within one second of each other.
fn close(a: Option<Instant>, b: Option<Instant>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let d = if a > b { a - b } else { b - a };
            d < Duration::from_secs(1)
        }
        _ => false,
    }
}

/// A record put into the store is returned by get with the same value, publisher and expiry.
#[test]
fn put_get_round_trip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, mut kad) = open(dir.path(), PeerId::random())?;
    let r = record("alpha", b"hello");
    kad.put(r.clone())?;
    let got = kad.get(&r.key).map(Cow::into_owned);
    let Some(got) = got else {
        panic!("expected Some(record), got None");
    };
    assert_eq!(got.key, r.key, "expected key {:?}, got {:?}", r.key, got.key);
    assert_eq!(got.value, r.value, "expected value {:?}, got {:?}", r.value, got.value);
    assert_eq!(
        got.publisher, r.publisher,
        "expected publisher {:?}, got {:?}",
        r.publisher, got.publisher
    );
    assert!(
        close(got.expires, r.expires),
        "expected expiry ~{:?}, got {:?}",
        r.expires,
        got.expires
    );
    kad.remove(&r.key);
    let after = kad.get(&r.key);
    assert!(after.is_none(), "expected None after remove, got {after:?}");
    assert_eq!(
        kad.stats().records,
        0,
        "expected 0 records after remove, got {}",
        kad.stats().records
    );
    Ok(())
}

/// Records survive dropping and reopening the Store at the same path: same bytes, publisher and expiry.
#[test]
fn records_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let peer = PeerId::random();
    let with_expiry = record("with-expiry", b"\x00\x01binary\xff");
    let mut without_expiry = record("no-expiry", b"forever");
    without_expiry.expires = None;
    without_expiry.publisher = None;
    {
        let (store, mut kad) = open(dir.path(), peer)?;
        kad.put(with_expiry.clone())?;
        kad.put(without_expiry.clone())?;
        store.flush()?;
    }
    let (_store, kad) = open(dir.path(), peer)?;
    assert_eq!(
        kad.stats().records,
        2,
        "expected 2 records after reopen, got {}",
        kad.stats().records
    );
    for want in [&with_expiry, &without_expiry] {
        let got = kad.get(&want.key).map(Cow::into_owned);
        let Some(got) = got else {
            panic!("expected record {:?} after reopen, got None", want.key);
        };
        assert_eq!(
            got.value, want.value,
            "expected value {:?}, got {:?}",
            want.value, got.value
        );
        assert_eq!(
            got.publisher, want.publisher,
            "expected publisher {:?}, got {:?}",
            want.publisher, got.publisher
        );
        assert!(
            close(got.expires, want.expires),
            "expected expiry ~{:?}, got {:?}",
            want.expires,
            got.expires
        );
    }
    Ok(())
}

/// 5000 records are all stored and readable (no 1024 cap as in MemoryStore) and counted.
#[test]
fn five_thousand_records_no_1024_cap() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, mut kad) = open(dir.path(), PeerId::random())?;
    for i in 0..5000u32 {
        kad.put(Record::new(RecordKey::new(&i.to_be_bytes()), i.to_le_bytes().to_vec()))?;
    }
    let count = kad.stats().records;
    assert_eq!(count, 5000, "expected records stat 5000, got {count}");
    for i in 0..5000u32 {
        let got = kad.get(&RecordKey::new(&i.to_be_bytes())).map(|r| r.value.clone());
        assert_eq!(
            got.as_deref(),
            Some(i.to_le_bytes().as_slice()),
            "expected value of record {i}, got {got:?}"
        );
    }
    let listed = kad.records().count();
    assert_eq!(listed, 5000, "expected records() to yield 5000, got {listed}");
    Ok(())
}

/// An expired record is not returned by records() nor get(), and remove_expired deletes it.
#[test]
fn expired_record_hidden_and_swept() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, mut kad) = open(dir.path(), PeerId::random())?;
    let mut expired = record("old", b"stale");
    expired.expires = Some(Instant::now());
    let mut expired2 = record("old2", b"stale too");
    expired2.expires = Some(Instant::now());
    let live = record("new", b"fresh");
    kad.put(expired.clone())?;
    kad.put(expired2.clone())?;
    kad.put(live.clone())?;

    let listed: Vec<RecordKey> = kad.records().map(|r| r.key.clone()).collect();
    assert_eq!(
        listed,
        vec![live.key.clone()],
        "expected only the live key, got {listed:?}"
    );

    let got = kad.get(&expired.key);
    assert!(
        got.is_none(),
        "expected get of an expired record to be None, got {got:?}"
    );
    let records = kad.stats().records;
    assert_eq!(
        records, 2,
        "expected get to delete the expired record (2 left), got {records}"
    );

    let removed = kad.remove_expired();
    assert_eq!(removed, 1, "expected remove_expired to remove 1 record, got {removed}");
    let stats = kad.stats();
    assert_eq!(stats.records, 1, "expected 1 record left, got {}", stats.records);
    assert_eq!(
        stats.expired_removed, 2,
        "expected expired_removed 2, got {}",
        stats.expired_removed
    );
    let again = kad.remove_expired();
    assert_eq!(again, 0, "expected a second sweep to remove 0, got {again}");
    Ok(())
}

/// A value over max_value_bytes is rejected with ValueTooLarge and counted; a smaller one is accepted.
#[test]
fn oversized_value_rejected_and_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = RecordStoreConfig {
        max_value_bytes: 1024,
        ..RecordStoreConfig::default()
    };
    let (_store, mut kad) = open_with(dir.path(), PeerId::random(), config)?;
    let got = kad.put(record("big", &[7u8; 1025]));
    assert!(
        matches!(got, Err(Error::ValueTooLarge)),
        "expected Err(ValueTooLarge), got {got:?}"
    );
    let stats = kad.stats();
    assert_eq!(
        stats.rejected_too_large, 1,
        "expected rejected_too_large 1, got {}",
        stats.rejected_too_large
    );
    assert_eq!(stats.records, 0, "expected 0 records, got {}", stats.records);
    kad.put(record("exact", &[7u8; 1024]))?;
    kad.put(record("small", b"ok"))?;
    let records = kad.stats().records;
    assert_eq!(records, 2, "expected 2 records, got {records}");
    Ok(())
}

/// max_records is enforced for new keys, while replacing an existing key still works and does not count twice.
#[test]
fn max_records_enforced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = RecordStoreConfig {
        max_records: 3,
        ..RecordStoreConfig::default()
    };
    let (_store, mut kad) = open_with(dir.path(), PeerId::random(), config)?;
    for k in ["a", "b", "c"] {
        kad.put(record(k, b"v"))?;
    }
    let got = kad.put(record("d", b"v"));
    assert!(
        matches!(got, Err(Error::MaxRecords)),
        "expected Err(MaxRecords), got {got:?}"
    );
    kad.put(record("a", b"replaced"))?;
    let value = kad.get(&RecordKey::new(&"a")).map(|r| r.value.clone());
    assert_eq!(
        value.as_deref(),
        Some(b"replaced".as_slice()),
        "expected the replaced value, got {value:?}"
    );
    let stats = kad.stats();
    assert_eq!(stats.records, 3, "expected 3 records, got {}", stats.records);
    assert_eq!(
        stats.rejected_full, 1,
        "expected rejected_full 1, got {}",
        stats.rejected_full
    );
    kad.remove(&RecordKey::new(&"b"));
    kad.put(record("d", b"v"))?;
    Ok(())
}

/// Providers can be added, listed and removed, and provided() only returns the local node's records.
#[test]
fn providers_add_list_remove_and_provided_is_local_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let local = PeerId::random();
    let remote = PeerId::random();
    let (_store, mut kad) = open(dir.path(), local)?;
    let key = RecordKey::new(&"content");
    let addr: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse()?;
    let mut mine = ProviderRecord::new(key.clone(), local, vec![addr.clone()]);
    mine.expires = Some(Instant::now() + Duration::from_secs(3600));
    let theirs = ProviderRecord::new(key.clone(), remote, vec![]);
    let other_key = ProviderRecord::new(RecordKey::new(&"elsewhere"), remote, vec![]);
    kad.add_provider(mine.clone())?;
    kad.add_provider(theirs.clone())?;
    kad.add_provider(other_key.clone())?;
    // Replacing an existing entry does not add a second one.
    kad.add_provider(theirs.clone())?;

    let listed = kad.providers(&key);
    assert_eq!(listed.len(), 2, "expected 2 providers of the key, got {listed:?}");
    assert!(
        listed.contains(&mine) && listed.contains(&theirs),
        "expected mine and theirs, got {listed:?}"
    );
    let got_mine = listed.iter().find(|p| p.provider == local);
    assert_eq!(
        got_mine.map(|p| p.addresses.clone()),
        Some(vec![addr]),
        "expected the local provider's address back, got {got_mine:?}"
    );

    let provided: Vec<ProviderRecord> = kad.provided().map(Cow::into_owned).collect();
    assert_eq!(
        provided,
        vec![mine.clone()],
        "expected only the local record, got {provided:?}"
    );

    let stats = kad.stats();
    assert_eq!(
        stats.provider_records, 3,
        "expected 3 provider records, got {}",
        stats.provider_records
    );
    assert_eq!(
        stats.provider_keys, 2,
        "expected 2 provider keys, got {}",
        stats.provider_keys
    );

    kad.remove_provider(&key, &local);
    let provided = kad.provided().count();
    assert_eq!(provided, 0, "expected nothing provided after removal, got {provided}");
    kad.remove_provider(&key, &remote);
    let listed = kad.providers(&key);
    assert!(listed.is_empty(), "expected no providers left, got {listed:?}");
    let stats = kad.stats();
    assert_eq!(
        stats.provider_records, 1,
        "expected 1 provider record, got {}",
        stats.provider_records
    );
    assert_eq!(
        stats.provider_keys, 1,
        "expected 1 provider key, got {}",
        stats.provider_keys
    );
    Ok(())
}

/// Remote providers beyond max_providers_per_key are dropped silently, but the local node is always recorded.
#[test]
fn providers_per_key_limit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let local = PeerId::random();
    let config = RecordStoreConfig {
        max_providers_per_key: 2,
        ..RecordStoreConfig::default()
    };
    let (_store, mut kad) = open_with(dir.path(), local, config)?;
    let key = RecordKey::new(&"popular");
    for _ in 0..3 {
        kad.add_provider(ProviderRecord::new(key.clone(), PeerId::random(), vec![]))?;
    }
    let n = kad.providers(&key).len();
    assert_eq!(n, 2, "expected 2 providers kept, got {n}");
    kad.add_provider(ProviderRecord::new(key.clone(), local, vec![]))?;
    let n = kad.providers(&key).len();
    assert_eq!(n, 3, "expected the local provider added past the limit (3), got {n}");
    let provided = kad.provided().count();
    assert_eq!(provided, 1, "expected 1 provided record, got {provided}");
    Ok(())
}

/// A provider for a new key beyond max_provided_keys fails with MaxProvidedKeys; existing keys still take providers.
#[test]
fn max_provided_keys_enforced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = RecordStoreConfig {
        max_provided_keys: 2,
        ..RecordStoreConfig::default()
    };
    let local = PeerId::random();
    let (_store, mut kad) = open_with(dir.path(), local, config)?;
    kad.add_provider(ProviderRecord::new(RecordKey::new(&"k1"), local, vec![]))?;
    kad.add_provider(ProviderRecord::new(RecordKey::new(&"k2"), local, vec![]))?;
    let got = kad.add_provider(ProviderRecord::new(RecordKey::new(&"k3"), local, vec![]));
    assert!(
        matches!(got, Err(Error::MaxProvidedKeys)),
        "expected Err(MaxProvidedKeys), got {got:?}"
    );
    kad.add_provider(ProviderRecord::new(RecordKey::new(&"k1"), PeerId::random(), vec![]))?;
    let stats = kad.stats();
    assert_eq!(
        stats.rejected_full, 1,
        "expected rejected_full 1, got {}",
        stats.rejected_full
    );
    Ok(())
}

/// Provider records survive dropping and reopening the Store, and the counters are rebuilt.
#[test]
fn provider_records_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let local = PeerId::random();
    let key = RecordKey::new(&"persisted");
    let addr: Multiaddr = "/dns4/example.org/tcp/443".parse()?;
    let mut mine = ProviderRecord::new(key.clone(), local, vec![addr.clone()]);
    mine.expires = Some(Instant::now() + Duration::from_secs(600));
    let theirs = ProviderRecord::new(key.clone(), PeerId::random(), vec![]);
    {
        let (store, mut kad) = open(dir.path(), local)?;
        kad.add_provider(mine.clone())?;
        kad.add_provider(theirs.clone())?;
        store.flush()?;
    }
    let (_store, kad) = open(dir.path(), local)?;
    let stats = kad.stats();
    assert_eq!(
        stats.provider_records, 2,
        "expected 2 provider records after reopen, got {}",
        stats.provider_records
    );
    assert_eq!(
        stats.provider_keys, 1,
        "expected 1 provider key after reopen, got {}",
        stats.provider_keys
    );
    let listed = kad.providers(&key);
    assert_eq!(listed.len(), 2, "expected 2 providers after reopen, got {listed:?}");
    let provided: Vec<ProviderRecord> = kad.provided().map(Cow::into_owned).collect();
    assert_eq!(provided.len(), 1, "expected 1 provided record, got {provided:?}");
    let got = &provided[0];
    assert_eq!(
        got.addresses,
        vec![addr],
        "expected the address back, got {:?}",
        got.addresses
    );
    assert!(
        close(got.expires, mine.expires),
        "expected expiry ~{:?}, got {:?}",
        mine.expires,
        got.expires
    );
    Ok(())
}

/// A writer appending to a shared buffer, to capture log output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut inner = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("capture buffer poisoned"))?;
        inner.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// The captured text.
    fn text(&self) -> String {
        let inner = self.0.lock().expect("capture buffer not poisoned");
        String::from_utf8_lossy(&inner).into_owned()
    }
}

/// A corrupt value written directly into the trees is skipped without panicking and logged with a warning.
#[test]
fn corrupt_entries_are_skipped_and_logged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let local = PeerId::random();
    let (store, mut kad) = open(dir.path(), local)?;
    kad.put(record("good", b"fine"))?;
    store
        .tree(RECORDS_TREE)?
        .insert(b"bad", &[0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff][..])?;
    let key = RecordKey::new(&"provided");
    kad.add_provider(ProviderRecord::new(key.clone(), local, vec![]))?;
    // Overwrite the local provider entry's value with garbage.
    let providers = store.tree(PROVIDERS_TREE)?;
    let entry = providers.iter().keys().next().ok_or("expected a provider entry")??;
    providers.insert(entry, &[0xfeu8; 3][..])?;
    drop(kad);
    // Reopen so the bad record is counted from tree.len().
    let mut kad = SledRecordStore::new(&store, local, RecordStoreConfig::default())?;

    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let (bad, listed, provided) = tracing::subscriber::with_default(subscriber, || {
        let bad = kad.get(&RecordKey::new(&"bad")).map(Cow::into_owned);
        let listed: Vec<RecordKey> = kad.records().map(|r| r.key.clone()).collect();
        let provided = kad.provided().count();
        (bad, listed, provided)
    });
    assert!(
        bad.is_none(),
        "expected get of a corrupt record to be None, got {bad:?}"
    );
    assert_eq!(
        listed,
        vec![RecordKey::new(&"good")],
        "expected only the good record, got {listed:?}"
    );
    assert_eq!(
        provided, 0,
        "expected the corrupt provider record skipped, got {provided}"
    );
    let logs = capture.text();
    assert!(
        logs.contains("WARN") && logs.contains("corrupt kademlia store entry"),
        "expected a WARN line about the corrupt entry, got {logs:?}"
    );
    let stats = kad.stats();
    assert_eq!(
        stats.corrupt_removed, 2,
        "expected corrupt_removed 2, got {}",
        stats.corrupt_removed
    );
    assert_eq!(stats.records, 1, "expected 1 record left, got {}", stats.records);
    assert_eq!(
        stats.provider_records, 0,
        "expected 0 provider records left, got {}",
        stats.provider_records
    );
    kad.put(record("bad", b"rewritten"))?;
    let value = kad.get(&RecordKey::new(&"bad")).map(|r| r.value.clone());
    assert_eq!(
        value.as_deref(),
        Some(b"rewritten".as_slice()),
        "expected the rewritten value, got {value:?}"
    );
    Ok(())
}

/// The stats handle is Send + Sync + Clone and sees updates made through the store; the store is Send + 'static.
#[test]
fn stats_handle_tracks_store() -> TestResult {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn assert_send_static<T: Send + 'static>(_: &T) {}
    let dir = tempfile::tempdir()?;
    let (_store, mut kad) = open(dir.path(), PeerId::random())?;
    let handle = kad.stats_handle();
    assert_send_sync(&handle);
    assert_send_static(&kad);
    kad.put(record("x", b"y"))?;
    let seen = std::thread::spawn(move || handle.stats().records)
        .join()
        .map_err(|_| "stats thread panicked")?;
    assert_eq!(seen, 1, "expected the handle to see 1 record, got {seen}");
    Ok(())
}

/// Store::probe succeeds on a fresh database.
#[test]
fn store_probe_succeeds() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let took = store.probe()?;
    assert!(
        took < Duration::from_secs(30),
        "expected the probe to finish in < 30 s, got {took:?}"
    );
    Ok(())
}
