//! DHT maintenance: `bzzz dht reprovide` (the runbook's "force re-provision of content" and
//! "restart replication managers") and `bzzz dht cache clear` (instead of the runbook's
//! `rm -rf /app/data/dht/cache/*`: what is removed and kept is listed in
//! [`bzzz_storage::SledRecordStore::clear_cache_step`]'s module docs).
//!
//! A reprovide walks this node's sled Kademlia store in batches: for every live record it
//! re-announces this node as a provider, and it puts again (with a fresh TTL) the non-context
//! records this node published itself. Context records (`/bzzz/ctx/1/`) are not re-put: their
//! placement on R holders is the admin's job, so the admin is then asked to run its replication
//! check and repair now (forwarded over the context RPC when this node is not the admin).

use std::time::{Duration, Instant};

use super::Inner;
use crate::network::NetworkError;

/// Records per batch handed to the event loop.
const REPROVIDE_BATCH: usize = 64;
/// Store entries the event loop looks at per cache-clear step.
const CACHE_CLEAR_STEP: usize = 1024;
/// How long a reprovide waits for earlier maintenance queries to drain before giving up.
const BUSY_GIVE_UP: Duration = Duration::from_secs(120);

/// Why a reprovide did not run.
#[derive(Debug, thiserror::Error)]
pub enum ReprovideError {
    /// Another reprovide is running on this node.
    #[error("a dht reprovide is already running on this node; wait for it to finish")]
    AlreadyRunning,
    /// The network failed or is shutting down.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The maintenance queries did not drain.
    #[error("earlier dht maintenance queries did not finish within {0:?}; try again later")]
    Stuck(Duration),
}

pub(crate) use bzzz_client::types::{ReplicationCheck, ReprovideReport};

pub(crate) async fn reprovide(inner: &Inner, token: Option<String>) -> Result<ReprovideReport, ReprovideError> {
    let _running = inner
        .reprovide_running
        .try_lock()
        .map_err(|_| ReprovideError::AlreadyRunning)?;
    let mut report = ReprovideReport {
        records: 0,
        context_records: 0,
        provider_announcements: 0,
        republished: 0,
        failed: 0,
        replication_check: ReplicationCheck::Skipped { reason: String::new() },
    };
    let mut after: Option<Vec<u8>> = None;
    let mut busy_since: Option<Instant> = None;
    loop {
        match inner.client.reprovide_batch(after.clone(), REPROVIDE_BATCH).await {
            Ok(b) => {
                busy_since = None;
                report.records += b.records;
                report.context_records += b.context_records;
                report.provider_announcements += b.provider_announcements;
                report.republished += b.republished;
                report.failed += b.failed;
                match b.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            Err(NetworkError::Busy(_)) => {
                let since = *busy_since.get_or_insert_with(Instant::now);
                if since.elapsed() > BUSY_GIVE_UP {
                    return Err(ReprovideError::Stuck(BUSY_GIVE_UP));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    report.replication_check = if inner.consensus.mesh_without_election() {
        ReplicationCheck::Skipped {
            reason: "no admin-eligible node on this mesh, so no context index to check".into(),
        }
    } else {
        match inner.context.check_replication_now(token).await {
            Ok(report) => ReplicationCheck::Ran { report },
            Err(e) => ReplicationCheck::Failed { error: e.to_string() },
        }
    };
    tracing::info!(
        records = report.records,
        context_records = report.context_records,
        provider_announcements = report.provider_announcements,
        republished = report.republished,
        failed = report.failed,
        replication_check = ?report.replication_check,
        "dht reprovide finished"
    );
    Ok(report)
}

/// Removes from this node's DHT store what it merely caches, walking both trees in steps;
/// context records are never removed.
pub(crate) async fn clear_cache(inner: &Inner) -> Result<bzzz_storage::CacheClearReport, NetworkError> {
    let mut total = bzzz_storage::CacheClearReport::default();
    for pass in [bzzz_storage::CachePass::Records, bzzz_storage::CachePass::Providers] {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let step = inner
                .client
                .clear_cache_step(pass, after.take(), CACHE_CLEAR_STEP)
                .await?;
            total.add(&step.report);
            match step.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    tracing::info!(report = ?total, "dht cache cleared");
    Ok(total)
}
