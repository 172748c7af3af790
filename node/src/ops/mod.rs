//! Operator actions on a running node, the commands the runbook uses: config reload
//! ([`reload`]), forgetting peers and re-bootstrapping ([`peers`]), DHT maintenance ([`dht`]),
//! backups of the sled database ([`backup`]). `crate::api::ops` exposes them over HTTP to
//! `bzzz <verb>`; every route needs the operator token when one is configured. Nothing here
//! knows HTTP.
//!
//! [`Ops`] is a cheap, cloneable handle held by the API state and by `main` (which reloads on
//! `SIGHUP`).

pub(crate) mod backup;
pub(crate) mod dht;
pub(crate) mod metrics;
pub(crate) mod peers;
pub(crate) mod reload;

use std::sync::Arc;

use bzzz_bootstrap::JoinTargets;
use tokio::sync::{Mutex, watch};

pub use metrics::OpsMetrics;
pub use reload::{ConfigSource, ReloadError, ReloadReport};

use tokio_util::task::TaskTracker;

use crate::auth::OperatorAuth;
use crate::config::Config;
use crate::consensus::Consensus;
use crate::context::ContextService;
use crate::network::Client;

/// What [`Ops::new`] needs.
pub struct OpsArgs {
    /// Where the configuration is re-read from on reload.
    pub source: ConfigSource,
    /// The configuration the node started with.
    pub running: Config,
    /// The operator token in force (a reload replaces it).
    pub auth: OperatorAuth,
    /// The join loop's targets (a reload changes the peers; `peers clear` asks for a rejoin).
    pub join_targets: watch::Sender<JoinTargets>,
    /// Network handle.
    pub client: Client,
    /// Operator-action metrics.
    pub metrics: OpsMetrics,
    /// The context service (asks the admin for a replication check).
    pub context: ContextService,
    /// The election (whether this mesh has an admin at all).
    pub consensus: Consensus,
    /// The node's service tasks: long operator actions run there, so they finish (or stop at
    /// shutdown) even when the HTTP request that started them times out.
    pub tracker: TaskTracker,
    /// The node's database (backups).
    pub store: bzzz_storage::Store,
}

impl std::fmt::Debug for OpsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsArgs").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub source: ConfigSource,
    /// The configuration in force; held for the whole of a reload, so reloads run one at a time.
    pub running: Mutex<Config>,
    pub auth: OperatorAuth,
    pub join_targets: watch::Sender<JoinTargets>,
    pub client: Client,
    pub metrics: OpsMetrics,
    pub context: ContextService,
    pub consensus: Consensus,
    pub tracker: TaskTracker,
    /// Held while a reprovide runs: one at a time.
    pub reprovide_running: Mutex<()>,
    pub store: bzzz_storage::Store,
    /// One permit: one backup at a time.
    pub backup_running: Arc<tokio::sync::Semaphore>,
}

/// Operator actions of one node. Cheap to clone.
#[derive(Clone)]
pub struct Ops {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("source", &self.inner.source.describe())
            .finish_non_exhaustive()
    }
}

impl Ops {
    /// Creates the handle.
    pub fn new(args: OpsArgs) -> Ops {
        Ops {
            inner: Arc::new(Inner {
                source: args.source,
                running: Mutex::new(args.running),
                auth: args.auth,
                join_targets: args.join_targets,
                client: args.client,
                metrics: args.metrics,
                context: args.context,
                consensus: args.consensus,
                tracker: args.tracker,
                reprovide_running: Mutex::new(()),
                store: args.store,
                backup_running: Arc::new(tokio::sync::Semaphore::new(1)),
            }),
        }
    }

    /// Re-reads the configuration from where the node got it, validates all of it, applies the
    /// fields that can change while running and reports the others as needing a restart. A
    /// configuration that does not validate (or names an unreadable token file) is refused as a
    /// whole: the running configuration stays. Logged, and counted in
    /// `bzzz_config_reloads_total{outcome}`. Reloads run one at a time. Cancel-safe: dropping
    /// the future before it finishes applies nothing or only some live fields (each is
    /// consistent on its own).
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        reload::reload(&self.inner).await
    }

    /// Forgets every peer this node knows (routing table, remembered addresses), closes every
    /// connection and re-bootstraps from the configured bootstrap peers at once.
    pub async fn clear_peers(&self) -> Result<peers::ClearReport, crate::network::NetworkError> {
        peers::clear(&self.inner).await
    }

    /// Starts a backup of the node's whole sled database (a consistent cut of the Raft state) and
    /// returns its bytes as a stream, in the format of [`bzzz_storage::backup`]. One at a time.
    pub fn backup(
        &self,
    ) -> Result<impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static, backup::BackupBusy> {
        backup::stream(&self.inner)
    }

    /// Removes from this node's DHT store what it merely caches: expired records and provider
    /// records, plain (non-context) records another node published, and this node's provider
    /// announcements of records it no longer holds. Context records are never removed. Runs on
    /// the node's service tasks: dropping this future does not stop it.
    pub async fn clear_dht_cache(&self) -> Result<bzzz_storage::CacheClearReport, crate::network::NetworkError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ops = self.clone();
        crate::logging::spawn(&self.inner.tracker, "ops", async move {
            let _ = tx.send(dht::clear_cache(&ops.inner).await);
        });
        rx.await.map_err(|_| crate::network::NetworkError::Shutdown)?
    }

    /// Re-announces this node as provider of every record it holds, republishes the non-context
    /// records it published, then asks the admin to check and repair context replication now
    /// (`token`: the operator token presented, checked by the admin). Runs on the node's service
    /// tasks: dropping this future does not stop it. One at a time.
    pub async fn reprovide(&self, token: Option<String>) -> Result<dht::ReprovideReport, dht::ReprovideError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ops = self.clone();
        crate::logging::spawn(&self.inner.tracker, "ops", async move {
            let _ = tx.send(dht::reprovide(&ops.inner, token).await);
        });
        rx.await
            .map_err(|_| dht::ReprovideError::Network(crate::network::NetworkError::Shutdown))?
    }
}
