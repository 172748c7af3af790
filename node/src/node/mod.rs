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
mod start;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bzzz_bootstrap::JoinStatus;
use bzzz_storage::Store;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::api::{AppState, NodeInfo};
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
    /// `bzzz dev` could not create or load its throwaway credentials.
    #[error("bzzz dev credentials: {0}")]
    DevCredentials(String),
    /// Admission could not be set up (the CA or this node's certificate).
    #[error(transparent)]
    Admission(#[from] crate::admission::AdmissionError),
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
    admission: Arc<crate::admission::Admission>,
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

    /// The start sequence, one constructor per subsystem, in dependency order (see `start.rs`).
    async fn start_in_span(
        config: Config,
        source: ConfigSource,
        resolved: crate::config::Resolved,
        key: libp2p::identity::Keypair,
    ) -> Result<Node, NodeError> {
        let creds = start::Credentials::load(&config)?;
        let peer_id = key.public().to_peer_id();
        let store = Store::open(&config.node.data_dir.join("db"))?;

        let mut registry = Registry::default();
        let metrics = metrics::NodeMetrics::register(&mut registry, &config.node.mode.to_string());
        let open_mesh = config.p2p.swarm_key_file.is_none();
        metrics.admission.set_insecure_open_mesh(open_mesh);
        if open_mesh {
            tracing::warn!(
                "INSECURE OPEN MESH: no mesh key (p2p.swarm_key_file) is configured; any host that reaches the P2P port can connect. Create one with `bzzz keygen mesh-key`"
            );
        }
        let admission = Arc::new(crate::admission::Admission::load(
            peer_id,
            &crate::admission::AdmissionSettings::from_config(&config),
            metrics.admission.clone(),
        )?);
        if admission.joining() {
            network::join_with_token(
                &key,
                &config,
                &resolved,
                admission.clone(),
                Duration::from_millis(config.admission.join_timeout_ms),
            )
            .await?;
        }
        let revocations = admission.attach_store(store.tree(crate::admission::REVOCATIONS_TREE)?)?;
        if revocations > 0 {
            tracing::info!(
                lists = revocations,
                serials = admission.revoked_count(),
                "revocation lists applied"
            );
        }
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
            network::Gates {
                admission: admission.clone(),
                validator,
            },
        )?;
        let metrics_handle = MetricsHandle::new(registry, metrics.process.clone());

        let tasks = start::Tasks::new();
        // If start fails past this point, stop whatever was already spawned.
        let mut cleanup = tasks.stop_on_drop();
        tasks.run_network(net.event_loop);
        let client = net.client;
        let listen_addrs = start::listen_addrs(&client).await?;
        start::relay_every_topic(&client).await?;

        let services = &tasks.services;
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
            admission: admission.clone(),
        })
        .await?;
        let context = crate::context::ContextService::start(
            crate::context::ContextArgs {
                client: client.clone(),
                consensus: consensus.clone(),
                keyring: creds.keyring,
                config: config.context.clone(),
                requested_roles: requested_roles(&config, &admission),
                policy_seed: creds.policy_seed,
                operator_token: creds.operator.clone(),
                max_record_bytes: config.dht.max_record_bytes,
                metrics: metrics.context.clone(),
                admission: admission.clone(),
            },
            net.inbound.context,
            &duties,
            &services.1,
            services.0.clone(),
        );
        crate::logging::spawn(
            &services.1,
            "certificate-renewal",
            network::renewal::run(client.clone(), admission.clone(), services.0.clone()),
        );
        let join = start::join_loop(&config, &resolved, peer_id, &client, services, &metrics.network);
        let health = Health::default();
        let checker = Checker::new(CheckerArgs {
            health: health.clone(),
            client: client.clone(),
            prober: prober.clone(),
            store: store.clone(),
            join: join.status.clone(),
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
            gauges::store_stats(net.store_stats, metrics.network.clone(), services.0.clone()),
        );
        let ops = crate::ops::Ops::new(crate::ops::OpsArgs {
            source,
            running: config.clone(),
            auth: creds.operator.clone(),
            join_targets: join.targets,
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
            join: join.status.clone(),
            context: context.clone(),
            operator_token: creds.operator,
            ops: ops.clone(),
            info: Arc::new(NodeInfo {
                peer_id: peer_id.to_string(),
                agent_id: start::agent_id(&config, peer_id),
                role: config.agent.role.clone(),
                mode: config.node.mode,
                version: env!("CARGO_PKG_VERSION").into(),
                started: Instant::now(),
                mesh_key: config.p2p.swarm_key_file.is_some(),
                insecure_open_mesh: config.p2p.insecure_open_mesh && config.p2p.swarm_key_file.is_none(),
            }),
            admission: admission.clone(),
        };
        let (health_addr, api_addr) = tasks.serve_http(&config, &resolved, state).await?;

        cleanup.0.clear();
        tracing::info!(
            %peer_id,
            mode = %config.node.mode,
            p2p = ?listen_addrs,
            api = ?api_addr,
            health = %health_addr,
            "bzzz node started"
        );
        let start::Tasks {
            network,
            services,
            http,
            stopped,
        } = tasks;
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
            admission,
            store,
            join: join.status,
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

    /// Who is admitted, with their certificates; this node's own certificate and revocation
    /// list.
    pub fn admission(&self) -> &crate::admission::Admission {
        &self.admission
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

/// The roles a node asks the admin for: its `agent.role`, and with admission on every role its
/// certificate lists (the admin grants those at once; any other waits for an operator).
fn requested_roles(config: &Config, admission: &crate::admission::Admission) -> Vec<String> {
    let mut roles = vec![config.agent.role.clone()];
    if let Some(cert) = admission.local_certificate() {
        for role in cert.leaf.roles {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    roles.truncate(crate::context::MAX_REQUESTED_ROLES);
    roles
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
