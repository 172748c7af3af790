//! An in-memory Raft network for election tests: voters with real openraft cores, real sled
//! log stores and bzzz's real pre-vote timer, connected by a router instead of libp2p (the shape
//! of openraft's own test fixtures, `TypedRaftRouter`). The router can make a node unreachable
//! (both ways) and delay every RPC, so election properties are tested without full nodes, ports or
//! the global test lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bzzz_node::config::ElectionConfig;
use bzzz_node::consensus::prevote::{Campaign, Responder, campaign_loop};
use bzzz_node::consensus::transport::{RaftTransport, TransportError, answer_request};
use bzzz_node::consensus::{Raft, start_voter};
use bzzz_protocol::wire::{RaftRequest, RaftResponse};
use bzzz_storage::Store;
use bzzz_storage::raft::{NodeInfo, node_id_from_peer_bytes};
use libp2p::{Multiaddr, PeerId};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Default)]
struct Routes {
    nodes: HashMap<PeerId, Responder>,
    unreachable: HashSet<PeerId>,
    delay: Duration,
}

/// Connects in-memory voters. Cheap to clone.
#[derive(Clone, Default)]
pub struct RaftRouter {
    routes: Arc<Mutex<Routes>>,
}

impl std::fmt::Debug for RaftRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRouter").finish_non_exhaustive()
    }
}

/// One voter's way out through the router.
#[derive(Clone, Debug)]
pub struct RouterTransport {
    from: PeerId,
    router: RaftRouter,
}

impl RaftTransport for RouterTransport {
    async fn send(
        &self,
        peer: PeerId,
        _addrs: Vec<Multiaddr>,
        request: RaftRequest,
    ) -> Result<RaftResponse, TransportError> {
        let (responder, delay) = {
            let routes = self.router.routes.lock().unwrap_or_else(|p| p.into_inner());
            if routes.unreachable.contains(&self.from) || routes.unreachable.contains(&peer) {
                return Err(TransportError(format!("{peer} is unreachable from {}", self.from)));
            }
            let responder = routes
                .nodes
                .get(&peer)
                .cloned()
                .ok_or_else(|| TransportError(format!("no node {peer} on the router")))?;
            (responder, routes.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(answer_request(Some(&responder), &self.from, request).await)
    }
}

/// A voter on the router: a real Raft core, log store and state machine (sled in a temp dir) and
/// the daemon's pre-vote timer.
pub struct MemVoter {
    /// Its peer id (a fresh ed25519 identity).
    pub peer: PeerId,
    /// Its Raft node id, derived from the peer id as in the daemon.
    pub node_id: u64,
    /// Its Raft handle.
    pub raft: Raft,
    /// Pre-vote rounds its timer ran: `(won, lost)`.
    pub rounds: Arc<(AtomicU64, AtomicU64)>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    _dir: TempDir,
}

impl std::fmt::Debug for MemVoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemVoter")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl MemVoter {
    /// Pre-vote rounds won and lost so far.
    pub fn rounds(&self) -> (u64, u64) {
        (
            self.rounds.0.load(Ordering::Relaxed),
            self.rounds.1.load(Ordering::Relaxed),
        )
    }

    /// Stops its timer and its Raft core.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let _ = self.raft.shutdown().await;
    }
}

impl RaftRouter {
    /// A router with no nodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a voter with `config`'s election timings and puts it on the router.
    pub async fn add_voter(&self, config: &ElectionConfig) -> Result<MemVoter> {
        let dir = tempfile::Builder::new().prefix("bzzz-raft-mem-").tempdir()?;
        let store = Store::open(&dir.path().join("db"))?;
        let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id();
        let node_id = node_id_from_peer_bytes(&peer.to_bytes());
        let transport = RouterTransport {
            from: peer,
            router: self.clone(),
        };
        let (raft, _sm, responder) = start_voter(node_id, config, &store, transport.clone())
            .await
            .context("starting an in-memory voter")?;
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .nodes
            .insert(peer, responder.clone());
        let rounds = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let counted = rounds.clone();
        let campaign = Campaign {
            node_id,
            timeout_min: Duration::from_millis(config.election_timeout_min_ms),
            timeout_max: Duration::from_millis(config.election_timeout_max_ms),
            transport,
            on_round: Arc::new(move |won| {
                let c = if won { &counted.0 } else { &counted.1 };
                c.fetch_add(1, Ordering::Relaxed);
            }),
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(campaign_loop(campaign, responder, shutdown.clone()));
        Ok(MemVoter {
            peer,
            node_id,
            raft,
            rounds,
            shutdown,
            tracker,
            _dir: dir,
        })
    }

    /// The way out of the router for a sender `from` (a voter's, or a stranger's peer id), to
    /// send hand-made Raft requests.
    pub fn transport_from(&self, from: PeerId) -> RouterTransport {
        RouterTransport {
            from,
            router: self.clone(),
        }
    }

    /// Makes `peer` unreachable (`true`) or reachable again, both ways.
    pub fn set_unreachable(&self, peer: PeerId, unreachable: bool) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if unreachable {
            routes.unreachable.insert(peer);
        } else {
            routes.unreachable.remove(&peer);
        }
    }

    /// Delays every RPC by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).delay = delay;
    }
}

/// Initialises a cluster of `voters` (the first one proposes the membership).
pub async fn initialize(voters: &[MemVoter]) -> Result<()> {
    let members: BTreeMap<u64, NodeInfo> = voters
        .iter()
        .map(|v| {
            (
                v.node_id,
                NodeInfo {
                    peer_id: v.peer.to_string(),
                    addrs: Vec::new(),
                },
            )
        })
        .collect();
    voters
        .first()
        .context("no voters")?
        .raft
        .initialize(members)
        .await
        .context("initialising the in-memory cluster")?;
    Ok(())
}
