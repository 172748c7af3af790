//! The pieces of [`super::Node::start`]: credentials from disk, the three task groups and their
//! ordered stop, the wait for the P2P listeners, the topic relays, the bootstrap join loop and the
//! HTTP listeners.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bzzz_bootstrap::{BackoffConfig, JoinConfig, JoinStatus, JoinTargets, Mode};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{LISTEN_TIMEOUT, NodeError, gauges};
use crate::api::{self, AppState};
use crate::auth::{OperatorAuth, OperatorToken};
use crate::config::{Config, Resolved};
use crate::network::{Client, EventLoop, NetworkMetrics};

/// What the node reads from its data dir and config before anything starts.
pub(super) struct Credentials {
    /// The X25519 keyring that opens role keys sealed to this node.
    pub(super) keyring: crate::crypto::Keyring,
    /// The operator token, if one is configured.
    pub(super) operator: OperatorAuth,
    /// The role policy the first admin seeds the cluster with.
    pub(super) policy_seed: bzzz_storage::raft::RolePolicy,
}

impl Credentials {
    pub(super) fn load(config: &Config) -> Result<Self, NodeError> {
        let keyring = crate::crypto::Keyring::load_or_create(&config.node.data_dir)?;
        let token = match &config.api.operator_token_file {
            None => None,
            Some(path) => Some(
                OperatorToken::read_file(path).map_err(|reason| NodeError::OperatorToken {
                    path: path.clone(),
                    reason,
                })?,
            ),
        };
        Ok(Credentials {
            keyring,
            operator: OperatorAuth::new(token),
            policy_seed: config.roles.to_policy()?,
        })
    }
}

/// One group of tasks: a token that stops them and a tracker that waits for them.
pub(super) type Group = (CancellationToken, TaskTracker);

/// The node's task groups, stopped in the order HTTP, services, network.
pub(super) struct Tasks {
    pub(super) network: Group,
    pub(super) services: Group,
    pub(super) http: Group,
    /// Cancelled when any task ends or shutdown begins.
    pub(super) stopped: CancellationToken,
}

impl Tasks {
    pub(super) fn new() -> Self {
        Tasks {
            network: (CancellationToken::new(), TaskTracker::new()),
            services: (CancellationToken::new(), TaskTracker::new()),
            http: (CancellationToken::new(), TaskTracker::new()),
            stopped: CancellationToken::new(),
        }
    }

    /// A guard that stops every group when dropped, unless emptied (a failed start).
    pub(super) fn stop_on_drop(&self) -> StopOnDrop {
        StopOnDrop(vec![
            self.http.0.clone(),
            self.services.0.clone(),
            self.network.0.clone(),
        ])
    }

    /// Runs the event loop; its end (a failure) stops the node.
    pub(super) fn run_network(&self, event_loop: EventLoop) {
        let token = self.network.0.clone();
        let stopped = self.stopped.clone();
        crate::logging::spawn(&self.network.1, "event-loop", async move {
            event_loop.run(token).await;
            stopped.cancel();
        });
    }

    /// Binds the health listener and, in agent mode, the API listener.
    pub(super) async fn serve_http(
        &self,
        config: &Config,
        resolved: &Resolved,
        state: AppState,
    ) -> Result<(SocketAddr, Option<SocketAddr>), NodeError> {
        let timeout = Duration::from_secs(config.api.request_timeout_secs);
        let limits = |router| api::with_limits(router, timeout, config.api.max_concurrent_requests);
        let health = self
            .serve(
                "health",
                resolved.health_listen,
                limits(api::health_router(state.clone())),
            )
            .await?;
        let api = if config.node.mode == Mode::Agent {
            let router = limits(api::api_router(state, config.api.max_body_bytes));
            Some(self.serve("api", resolved.api_listen, router).await?)
        } else {
            None
        };
        Ok((health, api))
    }

    async fn serve(&self, what: &'static str, addr: SocketAddr, router: api::Router) -> Result<SocketAddr, NodeError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Bind { what, addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| NodeError::Bind { what, addr, source })?;
        let token = self.http.0.clone();
        let stopped = self.stopped.clone();
        crate::logging::spawn(&self.http.1, "http", async move {
            if let Err(e) = api::serve(listener, router, token).await {
                tracing::error!(listener = what, error = %e, "http server failed");
            }
            stopped.cancel();
        });
        Ok(bound)
    }
}

/// Cancels its tokens when dropped (unless emptied): stops the tasks of a failed start.
pub(super) struct StopOnDrop(pub(super) Vec<CancellationToken>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.cancel();
        }
    }
}

/// Waits for the P2P listeners to report addresses, so callers (tests, dev) can dial them.
pub(super) async fn listen_addrs(client: &Client) -> Result<Vec<Multiaddr>, NodeError> {
    let started = Instant::now();
    loop {
        let snap = client.snapshot().await?;
        if !snap.listen_addrs.is_empty() {
            return Ok(snap.listen_addrs.iter().filter_map(|a| a.parse().ok()).collect());
        }
        if started.elapsed() > LISTEN_TIMEOUT {
            return Err(NodeError::ListenTimeout(LISTEN_TIMEOUT));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every node relays every topic; handlers subscribe to what they need.
pub(super) async fn relay_every_topic(client: &Client) -> Result<(), NodeError> {
    for topic in bzzz_protocol::topics::ALL {
        // The relay subscription's queue is read by nobody: size 1, drops are expected.
        drop(client.subscribe(topic, 1).await?);
    }
    Ok(())
}

/// The bootstrap join loop's two ends the node keeps.
pub(super) struct Join {
    /// Its progress (health checks, `/api/status`).
    pub(super) status: watch::Receiver<JoinStatus>,
    /// Its targets, changed on config reload and `peers clear`.
    pub(super) targets: watch::Sender<JoinTargets>,
}

/// Starts the bootstrap join loop and the gauge task that follows its progress.
pub(super) fn join_loop(
    config: &Config,
    resolved: &Resolved,
    peer_id: PeerId,
    client: &Client,
    services: &Group,
    metrics: &NetworkMetrics,
) -> Join {
    let (status_tx, status) = watch::channel(JoinStatus::new(&resolved.bootstrap));
    // A bootstrap service's peer list may name this node itself; never dial ourselves.
    let peers: Vec<_> = resolved
        .bootstrap
        .iter()
        .filter(|p| p.peer_id() != Some(peer_id))
        .cloned()
        .collect();
    let (targets, targets_rx) = watch::channel(JoinTargets {
        peers: peers.clone(),
        rejoin: 0,
    });
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
        bzzz_bootstrap::run_join_loop_with_targets(client.clone(), join_cfg, targets_rx, status_tx, async move {
            token.cancelled().await
        }),
    );
    crate::logging::spawn(
        &services.1,
        "join-gauges",
        gauges::join_progress(status.clone(), metrics.clone(), services.0.clone()),
    );
    Join { status, targets }
}

/// The agent id shown in `/api/status`: the configured one, else derived from the peer id.
pub(super) fn agent_id(config: &Config, peer_id: PeerId) -> String {
    if config.agent.id.is_empty() {
        let peer = peer_id.to_string();
        format!("agent-{}", &peer[peer.len().saturating_sub(8)..])
    } else {
        config.agent.id.clone()
    }
}
