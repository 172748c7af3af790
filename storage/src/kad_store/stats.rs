//! The record store's counters: shared atomics behind a cloneable [`RecordStoreStatsHandle`], read
//! as [`RecordStoreStats`] snapshots (the daemon exports them as metrics).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the record store's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordStoreStats {
    /// Value records currently stored (including not yet swept expired ones).
    pub records: u64,
    /// Provider records currently stored.
    pub provider_records: u64,
    /// Distinct keys that have at least one provider record.
    pub provider_keys: u64,
    /// Puts rejected because the value exceeded `max_value_bytes`.
    pub rejected_too_large: u64,
    /// Puts or provider adds rejected because the store was full.
    pub rejected_full: u64,
    /// sled I/O errors met inside record store operations.
    pub io_errors: u64,
    /// Expired records and provider records deleted.
    pub expired_removed: u64,
    /// Undecodable entries deleted.
    pub corrupt_removed: u64,
}

/// The shared atomic counters behind [`RecordStoreStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// See [`RecordStoreStats::records`].
    pub(super) records: AtomicU64,
    /// See [`RecordStoreStats::provider_records`].
    pub(super) provider_records: AtomicU64,
    /// See [`RecordStoreStats::provider_keys`].
    pub(super) provider_keys: AtomicU64,
    /// See [`RecordStoreStats::rejected_too_large`].
    pub(super) rejected_too_large: AtomicU64,
    /// See [`RecordStoreStats::rejected_full`].
    pub(super) rejected_full: AtomicU64,
    /// See [`RecordStoreStats::io_errors`].
    pub(super) io_errors: AtomicU64,
    /// See [`RecordStoreStats::expired_removed`].
    pub(super) expired_removed: AtomicU64,
    /// See [`RecordStoreStats::corrupt_removed`].
    pub(super) corrupt_removed: AtomicU64,
}

impl Counters {
    /// Reads every counter.
    pub(super) fn snapshot(&self) -> RecordStoreStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecordStoreStats {
            records: get(&self.records),
            provider_records: get(&self.provider_records),
            provider_keys: get(&self.provider_keys),
            rejected_too_large: get(&self.rejected_too_large),
            rejected_full: get(&self.rejected_full),
            io_errors: get(&self.io_errors),
            expired_removed: get(&self.expired_removed),
            corrupt_removed: get(&self.corrupt_removed),
        }
    }
}

/// Adds one to a counter.
pub(super) fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Subtracts one from a counter, stopping at zero.
pub(super) fn dec(a: &AtomicU64) {
    // The closure never returns None, so fetch_update cannot fail.
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(1)));
}

/// A cloneable, thread-safe handle to a [`SledRecordStore`]'s counters.
#[derive(Debug, Clone)]
pub struct RecordStoreStatsHandle(pub(super) Arc<Counters>);

impl RecordStoreStatsHandle {
    /// Reads the current counters.
    pub fn stats(&self) -> RecordStoreStats {
        self.0.snapshot()
    }
}
