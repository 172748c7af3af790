//! The [`Node`] supervisor: starts every task of a bzzz daemon, and stops them in a fixed order.
//!
//! `Node::start(config)` returns once the P2P listeners and the HTTP listeners are bound;
//! [`Node::join`] returns when any task ends; [`Node::shutdown`] is idempotent and stops HTTP,
//! then the node's services, then the network, then flushes sled. Tests start nodes the same way
//! `main` does.
//!
//! Rooms: [`metrics`] registers every subsystem's metrics at start; [`gauges`] holds the gauge
//! tasks (join progress, DHT store counts).

mod gauges;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bzzz_bootstrap::{BackoffConfig, JoinConfig, JoinStatus, JoinTargets, Mode};
use bzzz_storage::Store;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::api::{self, AppState, NodeInfo};
use crate::config::{Config, ConfigError};
use crate::consensus::duties::DutyRegistry;
use crate::consensus::{Consensus, ConsensusError, StartArgs};
use crate::health::{Checker, CheckerArgs, Health, Prober};
use crate::metrics::MetricsHandle;
use crate::network::{self, Client};
use crate::ops::ConfigSource;

/// How long `start` waits for the P2P listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        /// The dir.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Storage(#[from] bzzz_storage::StorageError),
    /// The network could not start.
    #[error(transparent)]
    Network(#[from] network::StartError),
    /// An HTTP listener could not be bound.
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        /// `api` or `health`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A network operation failed during start.
    #[error("network failed during start: {0}")]
    Start(#[from] network::NetworkError),
    /// The election subsystem could not start.
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    /// The X25519 keyring could not be loaded or created.
    #[error("keyring: {0}")]
    Keyring(#[from] crate::crypto::CryptoError),
    /// The operator token file could not be read.
    #[error("cannot read operator token file {path}: {reason}")]
    OperatorToken {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The P2P listeners did not come up.
    #[error("p2p listeners did not report an address within {0:?}")]
    ListenTimeout(Duration),
}

/// A running bzzz node.
#[derive(Debug)]
pub struct Node {
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    api_addr: Option<SocketAddr>,
    health_addr: SocketAddr,
    client: Client,
    prober: Prober,
    health: Health,
    checker: Checker,
    consensus: Consensus,
    context: crate::context::ContextService,
    ops: crate::ops::Ops,
    duties: DutyRegistry,
    metrics: MetricsHandle,
    store: Store,
    join: watch::Receiver<JoinStatus>,
    http: (CancellationToken, TaskTracker),
    services: (CancellationToken, TaskTracker),
    network: (CancellationToken, TaskTracker),
    /// Cancelled when any task ends or shutdown begins.
    stopped: CancellationToken,
    shutdown_done: Mutex<bool>,
}

impl Node {
    /// Validates `config`, opens the data dir, starts the network, the health checks and the
    /// HTTP listeners. Returns once every listener is bound. A config reload re-validates this
    /// same configuration and re-reads its operator token file ([`ConfigSource::fixed`]).
    pub async fn start(config: Config) -> Result<Node, NodeError> {
        Self::start_with(config.clone(), ConfigSource::fixed(config)).await
    }

    /// Like [`Node::start`], with `source` as where a config reload (`SIGHUP`,
    /// `POST /api/config/reload`) reads the configuration again; `config` is what `source` gave
    /// at start.
    pub async fn start_with(config: Config, source: ConfigSource) -> Result<Node, NodeError> {
        let resolved = config.validate()?;
        std::fs::create_dir_all(&config.node.data_dir).map_err(|source| NodeError::DataDir {
            path: config.node.data_dir.clone(),
            source,
        })?;
        let key = crate::identity::load_or_create(&config.node.data_dir, config.node.identity_key_file.as_deref())?;
        // Every task of this node runs inside this span (see `logging::spawn`), so its log lines
        // name the node even when several nodes share a process (tests, `bzzz dev`).
        let peer = key.public().to_peer_id().to_string();
        let span = tracing::info_span!("bzzz", peer = %&peer[peer.len().saturating_sub(8)..]);
        Self::start_in_span(config, source, resolved, key)
            .instrument(span)
            .await
    }

    async fn start_in_span(
        config: Config,
        source: ConfigSource,
        resolved: crate::config::Resolved,
        key: libp2p::identity::Keypair,
    ) -> Result<Node, NodeError> {
        let keyring = crate::crypto::Keyring::load_or_create(&config.node.data_dir)?;
        let operator_token = match &config.api.operator_token_file {
            None => None,
            Some(path) => {
                Some(
                    crate::auth::OperatorToken::read_file(path).map_err(|reason| NodeError::OperatorToken {
                        path: path.clone(),
                        reason,
                    })?,
                )
            }
        };
        let operator_token = crate::auth::OperatorAuth::new(operator_token);
        let policy_seed = config.roles.to_policy()?;
        let peer_id = key.public().to_peer_id();
        let store = Store::open(&config.node.data_dir.join("db"))?;

        let mut registry = Registry::default();
        let metrics = metrics::NodeMetrics::register(&mut registry, &config.node.mode.to_string());
        let validator = Arc::new(crate::context::ContextRecordValidator::new(
            config.dht.max_record_bytes,
            metrics.context.clone(),
        ));
        let net = network::new(
            key,
            &config,
            &resolved,
            &store,
            &mut registry,
            metrics.network.clone(),
            validator,
        )?;
        let store_stats = net.store_stats.clone();
        let metrics_handle = MetricsHandle::new(registry, metrics.process.clone());

        let stopped = CancellationToken::new();
        let network = (CancellationToken::new(), TaskTracker::new());
        let services = (CancellationToken::new(), TaskTracker::new());
        let http = (CancellationToken::new(), TaskTracker::new());
        // If start fails past this point, stop whatever was already spawned.
        let mut cleanup = StopOnDrop(vec![http.0.clone(), services.0.clone(), network.0.clone()]);

        {
            let token = network.0.clone();
            let stopped = stopped.clone();
            let event_loop = net.event_loop;
            crate::logging::spawn(&network.1, "event-loop", async move {
                event_loop.run(token).await;
                stopped.cancel();
            });
        }
        let client = net.client;

        // Wait for the listeners to report addresses, so callers (tests, dev) can dial them.
        let started = Instant::now();
        let listen_addrs = loop {
            let snap = client.snapshot().await?;
            if !snap.listen_addrs.is_empty() {
                break snap
                    .listen_addrs
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .collect::<Vec<Multiaddr>>();
            }
            if started.elapsed() > LISTEN_TIMEOUT {
                return Err(NodeError::ListenTimeout(LISTEN_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };

        // Every node relays every topic; handlers subscribe to what they need.
        for topic in bzzz_protocol::topics::ALL {
            // The relay subscription's queue is read by nobody: size 1, drops are expected.
            drop(client.subscribe(topic, 1).await?);
        }
        let prober = Prober::start(
            client.clone(),
            net.inbound.probe_acks,
            &services.1,
            services.0.clone(),
            metrics.health.clone(),
        )
        .await?;
        let duties = DutyRegistry::default();
        let consensus = Consensus::start(StartArgs {
            config: config.election.clone(),
            client: client.clone(),
            store: &store,
            metrics: metrics.election.clone(),
            inbound: net.inbound.raft,
            joins: net.inbound.joins,
            addrs: listen_addrs.iter().map(|a| a.to_string()).collect(),
            tracker: services.1.clone(),
            shutdown: services.0.clone(),
            duties: duties.clone(),
        })
        .await?;
        let context = crate::context::ContextService::start(
            crate::context::ContextArgs {
                client: client.clone(),
                consensus: consensus.clone(),
                keyring,
                config: config.context.clone(),
                requested_roles: vec![config.agent.role.clone()],
                policy_seed,
                operator_token: operator_token.clone(),
                max_record_bytes: config.dht.max_record_bytes,
                metrics: metrics.context.clone(),
            },
            net.inbound.context,
            &duties,
            &services.1,
            services.0.clone(),
        );
        // Bootstrap join; the targets change on config reload and `peers clear`.
        let (join_tx, join_rx) = watch::channel(JoinStatus::new(&resolved.bootstrap));
        // A bootstrap service's peer list may name this node itself; never dial ourselves.
        let peers: Vec<_> = resolved
            .bootstrap
            .iter()
            .filter(|p| p.peer_id() != Some(peer_id))
            .cloned()
            .collect();
        let (targets_tx, targets_rx) = watch::channel(JoinTargets {
            peers: peers.clone(),
            rejoin: 0,
        });
        {
            let join_cfg = JoinConfig {
                peers,
                backoff: BackoffConfig {
                    initial: Duration::from_millis(config.p2p.join_backoff_initial_ms),
                    max: Duration::from_millis(config.p2p.join_backoff_max_ms),
                    ..BackoffConfig::default()
                },
                check_interval: Duration::from_millis(config.p2p.join_check_interval_ms),
            };
            let token = services.0.clone();
            crate::logging::spawn(
                &services.1,
                "join-loop",
                bzzz_bootstrap::run_join_loop_with_targets(client.clone(), join_cfg, targets_rx, join_tx, async move {
                    token.cancelled().await
                }),
            );
        }
        crate::logging::spawn(
            &services.1,
            "join-gauges",
            gauges::join_progress(join_rx.clone(), metrics.network.clone(), services.0.clone()),
        );

        let health = Health::default();
        let checker = Checker::new(CheckerArgs {
            health: health.clone(),
            client: client.clone(),
            prober: prober.clone(),
            store: store.clone(),
            join: join_rx.clone(),
            metrics: metrics.health.clone(),
            probe_timeout: Duration::from_millis(config.health.probe_timeout_ms),
            consensus: consensus.clone(),
            repair_interval: Duration::from_millis(config.context.repair_interval_ms),
        });
        crate::logging::spawn(
            &services.1,
            "health-checks",
            checker.clone().run(
                Duration::from_millis(config.health.check_interval_ms),
                services.0.clone(),
            ),
        );
        crate::logging::spawn(
            &services.1,
            "store-gauges",
            gauges::store_stats(store_stats, metrics.network.clone(), services.0.clone()),
        );

        let agent_id = if config.agent.id.is_empty() {
            format!(
                "agent-{}",
                &peer_id.to_string()[peer_id.to_string().len().saturating_sub(8)..]
            )
        } else {
            config.agent.id.clone()
        };
        let ops = crate::ops::Ops::new(crate::ops::OpsArgs {
            source,
            running: config.clone(),
            auth: operator_token.clone(),
            join_targets: targets_tx,
            client: client.clone(),
            metrics: metrics.ops.clone(),
            context: context.clone(),
            consensus: consensus.clone(),
            tracker: services.1.clone(),
            store: store.clone(),
        });
        let state = AppState {
            consensus: consensus.clone(),
            client: client.clone(),
            prober: prober.clone(),
            health: health.clone(),
            metrics: metrics_handle.clone(),
            network_metrics: metrics.network.clone(),
            join: join_rx.clone(),
            context: context.clone(),
            operator_token,
            ops: ops.clone(),
            info: Arc::new(NodeInfo {
                peer_id: peer_id.to_string(),
                agent_id,
                role: config.agent.role.clone(),
                mode: config.node.mode,
                version: env!("CARGO_PKG_VERSION").into(),
                started: Instant::now(),
            }),
        };
        let timeout = Duration::from_secs(config.api.request_timeout_secs);
        let health_router = api::with_limits(
            api::health_router(state.clone()),
            timeout,
            config.api.max_concurrent_requests,
        );
        let health_addr = serve(&http, &stopped, "health", resolved.health_listen, health_router).await?;
        let api_addr = if config.node.mode == Mode::Agent {
            let router = api::with_limits(
                api::api_router(state, config.api.max_body_bytes),
                timeout,
                config.api.max_concurrent_requests,
            );
            Some(serve(&http, &stopped, "api", resolved.api_listen, router).await?)
        } else {
            None
        };

        cleanup.0.clear();
        tracing::info!(
            %peer_id,
            mode = %config.node.mode,
            p2p = ?listen_addrs,
            api = ?api_addr,
            health = %health_addr,
            "bzzz node started"
        );
        Ok(Node {
            peer_id,
            listen_addrs,
            api_addr,
            health_addr,
            client,
            prober,
            health,
            checker,
            consensus,
            context,
            ops,
            duties,
            metrics: metrics_handle,
            store,
            join: join_rx,
            http,
            services,
            network,
            stopped,
            shutdown_done: Mutex::new(false),
        })
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The P2P addresses the node listens on, with `/p2p/<peer id>` appended.
    pub fn p2p_addrs(&self) -> Vec<Multiaddr> {
        self.listen_addrs
            .iter()
            .map(|a| a.clone().with(libp2p::multiaddr::Protocol::P2p(self.peer_id)))
            .collect()
    }

    /// The bound API address (`None` in bootstrap mode).
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The bound health address.
    pub fn health_addr(&self) -> SocketAddr {
        self.health_addr
    }

    /// The network handle.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The probe service.
    pub fn prober(&self) -> &Prober {
        &self.prober
    }

    /// Latest health.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Runs every health check once, now.
    pub async fn check_health_now(&self) {
        self.checker.run_once().await;
    }

    /// The election subsystem.
    pub fn consensus(&self) -> &Consensus {
        &self.consensus
    }

    /// The context service.
    pub fn context(&self) -> &crate::context::ContextService {
        &self.context
    }

    /// Operator actions: config reload, and the maintenance the runbook asks for.
    pub fn ops(&self) -> &crate::ops::Ops {
        &self.ops
    }

    /// Duties run while this node is admin; register before it becomes admin.
    pub fn duties(&self) -> &DutyRegistry {
        &self.duties
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &MetricsHandle {
        &self.metrics
    }

    /// Bootstrap join progress.
    pub fn join_status(&self) -> JoinStatus {
        self.join.borrow().clone()
    }

    /// The node's database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves when any task of the node ends (a failure) or shutdown begins.
    pub async fn join(&self) {
        self.stopped.cancelled().await;
    }

    /// Stops the node: HTTP first (no new requests), then services, then the network, then a
    /// final sled flush. Idempotent; a second call waits for the first to finish.
    pub async fn shutdown(&self) {
        let mut done = self.shutdown_done.lock().await;
        if *done {
            return;
        }
        self.stopped.cancel();
        for (token, tracker) in [&self.http, &self.services, &self.network] {
            token.cancel();
            tracker.close();
            if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("tasks did not stop within 5 s; continuing shutdown");
            }
        }
        if let Err(e) = self.store.flush_async().await {
            tracing::error!(error = %e, "final flush failed");
        }
        *done = true;
        tracing::info!(peer_id = %self.peer_id, "bzzz node stopped");
    }
}

/// Cancels its tokens when dropped (unless emptied): stops the tasks of a failed start.
struct StopOnDrop(Vec<CancellationToken>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.cancel();
        }
    }
}

async fn serve(
    http: &(CancellationToken, TaskTracker),
    stopped: &CancellationToken,
    what: &'static str,
    addr: SocketAddr,
    router: axum::Router,
) -> Result<SocketAddr, NodeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NodeError::Bind { what, addr, source })?;
    let token = http.0.clone();
    let stopped = stopped.clone();
    crate::logging::spawn(&http.1, "http", async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(listener = what, error = %e, "http server failed");
        }
        stopped.cancel();
    });
    Ok(bound)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
