//! The event loop: the only owner of the libp2p [`Swarm`]. It takes [`Command`]s from clients,
//! drives the swarm, validates every gossip message before any subscriber sees it, and matches
//! query results to the commands that started them by libp2p's own ids.
//!
//! It never awaits anything that could wait on itself: deliveries to subscribers and events to
//! the node use `try_send` and count what they drop.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bzzz_protocol::context::DHT_KEY_PREFIX;
use bzzz_protocol::envelope::{self, EnvelopeLimits, RejectReason};
use bzzz_protocol::wire::{
    Ack, RaftRequest, RaftResponse, RpcError, RpcRequest, RpcResponse, rpc_request, rpc_response,
};
use bzzz_protocol::{ReplayWindow, topics};
use bzzz_storage::util::now_unix_ms;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::kad::{self, GetRecordOk, QueryId, QueryResult, Record, RecordKey};
use libp2p::metrics::Recorder;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

mod commands;
mod dht;
mod maintenance;
mod requests;

pub use maintenance::{MAX_MAINTENANCE_QUERIES, PeersCleared, ReprovideBatch};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::client::{Command, GossipMessage, NetworkError, NetworkSnapshot, PeerInfo, PublishFailure, PutOutcome};
use super::inbound::{InboundContext, InboundRaft, InboundSenders, JoinRequest, ProbeAck, RecordValidator, Verdict};
use super::metrics::{DhtOperation, ErrorComponent, NetworkMetrics, PubsubOutcome};

/// Most DHT queries, dials and RPCs in flight at once, each; more are refused with `Busy`.
pub const MAX_PENDING: usize = 1024;
/// Most subscribers per topic.
pub(crate) const MAX_SUBSCRIBERS_PER_TOPIC: usize = 64;
/// Most addresses remembered per peer.
pub(crate) const MAX_ADDRS_PER_PEER: usize = 8;
/// How often expired DHT records are swept.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);
/// How often admitted peers' certificates are checked for expiry and revocation.
const ADMISSION_CHECK: Duration = Duration::from_secs(1);

struct PeerState {
    addresses: Vec<Multiaddr>,
    connected_since_unix_ms: u64,
    latency_ms: Option<f64>,
    agent_version: Option<String>,
}

impl PeerState {
    fn add_addr(&mut self, a: Multiaddr) {
        if !self.addresses.contains(&a) && self.addresses.len() < MAX_ADDRS_PER_PEER {
            self.addresses.push(a);
        }
    }
}

enum PendingGet {
    Waiting(oneshot::Sender<Result<Vec<u8>, NetworkError>>, Instant),
    Answered,
}

/// Validation and storage settings of the event loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoopSettings {
    /// Envelope size and clock limits.
    pub limits: EnvelopeLimits,
    /// (sender, nonce) pairs remembered for replay detection.
    pub replay_window: usize,
    /// TTL of records put by this node.
    pub record_ttl: Option<Duration>,
}

/// Owns the swarm. Built by [`super::new`]; run with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    metrics: NetworkMetrics,
    p2p_metrics: libp2p::metrics::Metrics,
    limits: EnvelopeLimits,
    record_ttl: Option<Duration>,
    replay: ReplayWindow,
    subscribers: HashMap<String, Vec<mpsc::Sender<GossipMessage>>>,
    peers: HashMap<PeerId, PeerState>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, String>>>,
    pending_puts: HashMap<QueryId, (oneshot::Sender<Result<PutOutcome, NetworkError>>, Instant)>,
    pending_gets: HashMap<QueryId, PendingGet>,
    pending_providers: HashMap<QueryId, PendingProviders>,
    pending_rpcs: Pending<RpcResponse>,
    pending_raft: Pending<RaftResponse>,
    inbound: InboundSenders,
    validator: std::sync::Arc<dyn RecordValidator>,
    /// Who is admitted, with their certificates (filled by the transport's admission upgrade).
    admission: std::sync::Arc<crate::admission::Admission>,
    /// Provider announcements and republications an operator started (`dht reprovide`), until
    /// their queries finish; bounded by [`MAX_MAINTENANCE_QUERIES`].
    maintenance_queries: HashSet<QueryId>,
    /// Raft RPCs each peer may have queued or in progress (M5): a flood from one peer cannot
    /// take the whole Raft queue and push the voters' heartbeats out.
    raft_quota: std::sync::Arc<crate::ratelimit::PeerQuota>,
    /// Context requests each peer may have queued or in progress (M5).
    context_quota: std::sync::Arc<crate::ratelimit::PeerQuota>,
    /// Kademlia records and provider records each peer may store here per second (M5).
    kad_stores: crate::ratelimit::PeerLimiter,
}

/// Kademlia `PUT_VALUE`s and `ADD_PROVIDER`s one peer may make here per second, and in a burst
/// (a reprovide of a full store is spread by the sender's own query limit).
pub(crate) const KAD_STORES_PER_SECOND: f64 = 100.0;
pub(crate) const KAD_STORE_BURST: f64 = 1_000.0;

/// Raft RPCs one peer may have queued or in progress (the queue holds
/// [`super::inbound::RAFT_QUEUE`]).
pub(crate) const RAFT_PER_PEER: usize = 64;
/// Context requests one peer may have queued or in progress (the service answers 64 at once).
pub(crate) const CONTEXT_PER_PEER: usize = 16;
/// Peers tracked by each quota.
const QUOTA_PEERS: usize = 4096;

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").finish_non_exhaustive()
    }
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        metrics: NetworkMetrics,
        p2p_metrics: libp2p::metrics::Metrics,
        settings: LoopSettings,
        inbound: InboundSenders,
        gates: super::Gates,
    ) -> Self {
        Self {
            swarm,
            commands,
            metrics,
            p2p_metrics,
            limits: settings.limits,
            record_ttl: settings.record_ttl,
            replay: ReplayWindow::new(settings.replay_window),
            subscribers: HashMap::new(),
            peers: HashMap::new(),
            pending_dials: HashMap::new(),
            pending_puts: HashMap::new(),
            pending_gets: HashMap::new(),
            pending_providers: HashMap::new(),
            pending_rpcs: HashMap::new(),
            pending_raft: HashMap::new(),
            inbound,
            validator: gates.validator,
            admission: gates.admission,
            maintenance_queries: HashSet::new(),
            raft_quota: crate::ratelimit::PeerQuota::new(RAFT_PER_PEER, QUOTA_PEERS),
            context_quota: crate::ratelimit::PeerQuota::new(CONTEXT_PER_PEER, QUOTA_PEERS),
            kad_stores: crate::ratelimit::PeerLimiter::new(KAD_STORES_PER_SECOND, KAD_STORE_BURST, QUOTA_PEERS),
        }
    }

    /// Runs until `shutdown` is cancelled or every client is dropped.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(EXPIRY_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut admission_check = tokio::time::interval(ADMISSION_CHECK);
        admission_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                _ = admission_check.tick() => self.disconnect_invalid(),
                _ = sweep.tick() => {
                    let removed = self.swarm.behaviour_mut().kad.store_mut().remove_expired();
                    if removed > 0 {
                        tracing::debug!(removed, "swept expired dht records");
                    }
                }
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.p2p_metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => {
                self.p2p_metrics.record(&e);
                self.on_gossip(e);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => {
                self.p2p_metrics.record(&e);
                self.on_kad(e);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => {
                self.p2p_metrics.record(&e);
                self.on_identify(e);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => {
                self.p2p_metrics.record(&e);
                match e.result {
                    Ok(rtt) => {
                        if let Some(p) = self.peers.get_mut(&e.peer) {
                            p.latency_ms = Some(rtt.as_secs_f64() * 1000.0);
                        }
                    }
                    // libp2p keeps a connection whose pings fail open. On a cut network (a
                    // container disconnected, a silent partition) no RST ever arrives, so both
                    // sides would go on believing they are connected and never redial. Close it:
                    // the join loop and Kademlia redial whatever is reachable.
                    Err(failure) => {
                        tracing::info!(peer = %e.peer, error = %failure, "ping failed; closing the connection");
                        self.metrics.error(ErrorComponent::P2pPingFailed);
                        self.swarm.close_connection(e.connection);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(e)) => self.on_rpc(e),
            SwarmEvent::Behaviour(BehaviourEvent::Raft(e)) => self.on_raft(e),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(never)) => match never {},
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if self.admission.peer(&peer_id).is_none() {
                    // Admitted by the transport, but the close of an older connection to the
                    // same peer forgot it before this one was reported: never keep a
                    // connection admission does not know. The peer redials and is judged again.
                    tracing::debug!(peer = %peer_id, "connection without admission record; closing");
                    self.swarm.close_connection(connection_id);
                    return;
                }
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                let addr = endpoint.get_remote_address().clone();
                if let ConnectedPoint::Dialer { .. } = endpoint {
                    // We reached it at this address: good enough for the routing table until
                    // identify tells us its listen addresses.
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
                }
                let entry = self.peers.entry(peer_id).or_insert_with(|| PeerState {
                    addresses: Vec::new(),
                    connected_since_unix_ms: now_unix_ms(),
                    latency_ms: None,
                    agent_version: None,
                });
                entry.add_addr(addr);
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, "peer connected");
                }
                self.metrics.set_connected_peers(self.peers.len());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    self.admission.forget(&peer_id);
                    tracing::debug!(peer = %peer_id, "peer disconnected");
                }
                self.metrics.set_connected_peers(self.peers.len());
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                peer_id,
                ..
            } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(error.to_string()));
                } else {
                    tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                self.metrics.error(ErrorComponent::P2p);
                tracing::warn!(%error, "listener error");
            }
            _ => {}
        }
    }

    /// Disconnects every peer whose certificate expired or was revoked since it was admitted
    /// (Nebula's `disconnect_invalid`), and counts each.
    fn disconnect_invalid(&mut self) {
        for (peer, reason) in self.admission.invalid_peers(now_unix_ms()) {
            tracing::info!(%peer, reason = crate::metrics::LabelValue::as_str(reason), "certificate no longer valid; disconnecting");
            self.admission.forget(&peer);
            self.admission.count_disconnect(reason);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let topic = message.topic.as_str().to_string();
        let verdict = envelope::open(&message.data, &self.limits, now_unix_ms())
            .and_then(|v| self.replay.check_and_insert(v.sender, &v.nonce).map(|()| v));
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        match verdict {
            Ok(v) => {
                gossip.report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                self.metrics.pubsub(&topic, PubsubOutcome::Received);
                let msg = GossipMessage {
                    topic: topic.clone(),
                    sender: v.sender,
                    via: propagation_source,
                    kind: v.kind,
                    timestamp_ms: v.timestamp_ms,
                    payload: v.payload,
                };
                if let Some(subs) = self.subscribers.get_mut(&topic) {
                    subs.retain(|s| !s.is_closed());
                    for s in subs.iter() {
                        if s.try_send(msg.clone()).is_err() {
                            self.metrics.pubsub(&topic, PubsubOutcome::Dropped);
                        }
                    }
                }
            }
            Err(reason) => {
                // Stale and replayed messages can be honest duplicates: drop without penalty.
                let acceptance = match reason {
                    RejectReason::TooOld | RejectReason::Replayed => MessageAcceptance::Ignore,
                    _ => MessageAcceptance::Reject,
                };
                gossip.report_message_validation_result(&message_id, &propagation_source, acceptance);
                self.metrics.pubsub(&topic, PubsubOutcome::Rejected);
                self.metrics.pubsub_rejected(reason);
                tracing::debug!(%topic, via = %propagation_source, %reason, "rejected gossip envelope");
            }
        }
    }

    fn on_identify(&mut self, event: libp2p::identify::Event) {
        let libp2p::identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != bzzz_protocol::protocols::IDENTIFY {
            tracing::warn!(peer = %peer_id, version = %info.protocol_version, "peer speaks another protocol version; disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        let kad_proto = libp2p::StreamProtocol::new(bzzz_protocol::protocols::KAD);
        let serves_kad = info.protocols.contains(&kad_proto);
        for addr in info.listen_addrs.iter().take(MAX_ADDRS_PER_PEER) {
            if serves_kad {
                self.swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
            }
            if let Some(p) = self.peers.get_mut(&peer_id) {
                p.add_addr(addr.clone());
            }
        }
        if let Some(p) = self.peers.get_mut(&peer_id) {
            let mut v = info.agent_version;
            v.truncate(64);
            p.agent_version = Some(v);
        }
    }
}

/// A provider lookup: who asked, and the providers found so far.
type PendingProviders = (oneshot::Sender<Result<Vec<PeerId>, NetworkError>>, HashSet<PeerId>);

type Pending<Resp> = HashMap<OutboundRequestId, oneshot::Sender<Result<Resp, NetworkError>>>;
