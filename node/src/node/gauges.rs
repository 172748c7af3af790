//! The node's gauge tasks: values read from elsewhere on a schedule and set into the network's
//! metrics — bootstrap join progress (on every change) and the DHT store's counts (every second).

use std::time::Duration;

use bzzz_bootstrap::JoinStatus;
use bzzz_storage::RecordStoreStatsHandle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::network::NetworkMetrics;
use crate::network::metrics::StoreReject;

/// How often the DHT store's counts are read.
const STORE_INTERVAL: Duration = Duration::from_secs(1);

/// Sets `bzzz_bootstrap_dial_attempts_total` and `bzzz_bootstrap_consecutive_failures` from
/// the join loop's status, on every change, until `shutdown`.
pub(crate) async fn join_progress(
    mut join: watch::Receiver<JoinStatus>,
    metrics: NetworkMetrics,
    shutdown: CancellationToken,
) {
    let mut last_attempts = 0;
    loop {
        {
            let s = join.borrow_and_update();
            metrics.bootstrap_progress(
                s.attempts.saturating_sub(last_attempts),
                u64::from(s.consecutive_failures),
            );
            last_attempts = s.attempts;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = join.changed() => if r.is_err() { break },
        }
    }
}

/// Sets the DHT store's record counts, and adds its new refusals and I/O errors, every second
/// until `shutdown`.
pub(crate) async fn store_stats(stats: RecordStoreStatsHandle, metrics: NetworkMetrics, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(STORE_INTERVAL);
    let (mut too_large, mut full, mut io_errors) = (0, 0, 0);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let s = stats.stats();
                metrics.set_store_counts(s.records, s.provider_records);
                metrics.store_rejected(StoreReject::TooLarge, s.rejected_too_large.saturating_sub(too_large));
                metrics.store_rejected(StoreReject::StoreFull, s.rejected_full.saturating_sub(full));
                metrics.store_errors(s.io_errors.saturating_sub(io_errors));
                too_large = s.rejected_too_large;
                full = s.rejected_full;
                io_errors = s.io_errors;
            }
        }
    }
}
