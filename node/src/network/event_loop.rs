//! The event loop: the only owner of the libp2p [`Swarm`]. It takes [`Command`]s from clients,
//! drives the swarm, validates every gossip message before any subscriber sees it, and matches
//! query results to the commands that started them by libp2p's own ids.
//!
//! It never awaits anything that could wait on itself: deliveries to subscribers and events to
//! the node use `try_send` and count what they drop.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bzzz_protocol::envelope::{self, EnvelopeLimits, RejectReason};
use bzzz_protocol::wire::{
    Ack, ContextRequest, JoinCluster, RaftRequest, RaftResponse, RpcError, RpcRequest, RpcResponse, rpc_request,
    rpc_response,
};
use bzzz_protocol::{ReplayWindow, topics};
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

mod maintenance;

pub use maintenance::{MAX_MAINTENANCE_QUERIES, PeersCleared, ReprovideBatch};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::client::{Command, GossipMessage, NetworkError, NetworkSnapshot, PeerInfo, PublishFailure, PutOutcome};
use super::metrics::{DhtOperation, ErrorComponent, NetworkMetrics, PubsubOutcome};

/// Most DHT queries, dials and RPCs in flight at once, each; more are refused with `Busy`.
pub const MAX_PENDING: usize = 1024;
/// Most subscribers per topic.
pub const MAX_SUBSCRIBERS_PER_TOPIC: usize = 64;
/// Most addresses remembered per peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// How often expired DHT records are swept.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

/// Events the network reports to the node.
#[derive(Debug)]
pub enum Event {
    /// A peer acknowledged one of our probes.
    ProbeAck {
        /// Who acknowledged.
        from: PeerId,
        /// Which probe.
        probe_id: Vec<u8>,
    },
    /// A peer asks to join the Raft cluster (only meaningful on the admin).
    JoinCluster {
        /// Who asked.
        from: PeerId,
        /// Its node id and addresses.
        join: JoinCluster,
    },
    /// A context-service request, to be answered with [`super::Client::respond_rpc`].
    Context(InboundContext),
}

/// A context-service request from a peer.
#[derive(Debug)]
pub struct InboundContext {
    /// Who sent it (authenticated by the transport).
    pub peer: PeerId,
    /// The request.
    pub request: ContextRequest,
    /// Where the answer goes.
    pub channel: request_response::ResponseChannel<RpcResponse>,
}

/// A Raft RPC from a peer, to be answered with [`super::Client::respond_raft`].
#[derive(Debug)]
pub struct InboundRaft {
    /// Who sent it.
    pub peer: PeerId,
    /// The request.
    pub request: RaftRequest,
    /// Where the answer goes.
    pub channel: request_response::ResponseChannel<RaftResponse>,
}

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
    /// Largest context record accepted from a peer, in bytes.
    pub max_record_bytes: usize,
}

/// Owns the swarm. Built by [`super::new`]; run with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    metrics: NetworkMetrics,
    p2p_metrics: libp2p::metrics::Metrics,
    limits: EnvelopeLimits,
    record_ttl: Option<Duration>,
    max_record_bytes: usize,
    replay: ReplayWindow,
    subscribers: HashMap<String, Vec<mpsc::Sender<GossipMessage>>>,
    peers: HashMap<PeerId, PeerState>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, String>>>,
    pending_puts: HashMap<QueryId, (oneshot::Sender<Result<PutOutcome, NetworkError>>, Instant)>,
    pending_gets: HashMap<QueryId, PendingGet>,
    pending_providers: HashMap<QueryId, PendingProviders>,
    pending_rpcs: Pending<RpcResponse>,
    pending_raft: Pending<RaftResponse>,
    raft_inbound: mpsc::Sender<InboundRaft>,
    /// Provider announcements and republications an operator started (`dht reprovide`), until
    /// their queries finish; bounded by [`MAX_MAINTENANCE_QUERIES`].
    maintenance_queries: HashSet<QueryId>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        metrics: NetworkMetrics,
        p2p_metrics: libp2p::metrics::Metrics,
        settings: LoopSettings,
        raft_inbound: mpsc::Sender<InboundRaft>,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            metrics,
            p2p_metrics,
            limits: settings.limits,
            record_ttl: settings.record_ttl,
            max_record_bytes: settings.max_record_bytes,
            replay: ReplayWindow::new(settings.replay_window),
            subscribers: HashMap::new(),
            peers: HashMap::new(),
            pending_dials: HashMap::new(),
            pending_puts: HashMap::new(),
            pending_gets: HashMap::new(),
            pending_providers: HashMap::new(),
            pending_rpcs: HashMap::new(),
            pending_raft: HashMap::new(),
            raft_inbound,
            maintenance_queries: HashSet::new(),
        }
    }

    /// Runs until `shutdown` is cancelled or every client is dropped.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(EXPIRY_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
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

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(IdentTopic::new(&topic), data);
                let result = match result {
                    Ok(_) => {
                        self.metrics.pubsub(&topic, PubsubOutcome::Published);
                        Ok(())
                    }
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
                    | Err(gossipsub::PublishError::AllQueuesFull(_)) => Err(PublishFailure::NoPeers),
                    Err(e) => {
                        self.metrics.pubsub(&topic, PubsubOutcome::PublishFailed);
                        self.metrics.error(ErrorComponent::Pubsub);
                        Err(PublishFailure::Other(e.to_string()))
                    }
                };
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, sender, reply } => {
                let result = self.subscribe(topic, sender);
                let _ = reply.send(result);
            }
            Command::Dial { addr, reply } => {
                if self.pending_dials.len() >= MAX_PENDING {
                    let _ = reply.send(Err("too many dials in flight".into()));
                    return;
                }
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(format!("dial {addr}: {e}")));
                    }
                }
            }
            Command::PutRecord {
                key,
                value,
                quorum,
                reply,
            } => {
                if self.pending_puts.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("dht put")));
                    return;
                }
                let mut record = Record::new(RecordKey::new(&key), value);
                let started = Instant::now();
                if self.peers.is_empty() {
                    // Alone: store locally (with the TTL and publisher kad would set), report it
                    // was not replicated.
                    record.publisher = Some(*self.swarm.local_peer_id());
                    record.expires = self.record_ttl.map(|ttl| started + ttl);
                    let result =
                        libp2p::kad::store::RecordStore::put(self.swarm.behaviour_mut().kad.store_mut(), record)
                            .map(|()| PutOutcome { replicated: false })
                            .map_err(|e| NetworkError::Dht {
                                operation: "put",
                                reason: e.to_string(),
                            });
                    self.metrics
                        .dht_op(DhtOperation::Put, result.is_ok(), started.elapsed().as_secs_f64());
                    let _ = reply.send(result);
                    return;
                }
                match self.swarm.behaviour_mut().kad.put_record(record, quorum) {
                    Ok(id) => {
                        self.pending_puts.insert(id, (reply, started));
                    }
                    Err(e) => {
                        self.metrics
                            .dht_op(DhtOperation::Put, false, started.elapsed().as_secs_f64());
                        let _ = reply.send(Err(NetworkError::Dht {
                            operation: "put",
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::GetRecord { key, reply } => {
                if self.pending_gets.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("dht get")));
                    return;
                }
                let id = self.swarm.behaviour_mut().kad.get_record(RecordKey::new(&key));
                self.pending_gets.insert(id, PendingGet::Waiting(reply, Instant::now()));
            }
            Command::SendRpc { peer, request, reply } => {
                if self.pending_rpcs.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("rpc")));
                    return;
                }
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                self.pending_rpcs.insert(id, reply);
            }
            Command::SendRaft {
                peer,
                addrs,
                request,
                reply,
            } => {
                if self.pending_raft.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("raft rpc")));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .raft
                    .send_request_with_addresses(&peer, request, addrs);
                self.pending_raft.insert(id, reply);
            }
            Command::RespondRpc { channel, response } => {
                if self.swarm.behaviour_mut().rpc.send_response(channel, response).is_err() {
                    tracing::debug!("rpc response not sent: stream closed");
                }
            }
            Command::StoreLocal { record, provide, reply } => {
                let key = record.key.clone();
                let kad = &mut self.swarm.behaviour_mut().kad;
                let mut result =
                    libp2p::kad::store::RecordStore::put(kad.store_mut(), record).map_err(|e| NetworkError::Dht {
                        operation: "store",
                        reason: e.to_string(),
                    });
                if result.is_ok()
                    && provide
                    && let Err(e) = kad.start_providing(key)
                {
                    result = Err(NetworkError::Dht {
                        operation: "provide",
                        reason: e.to_string(),
                    });
                }
                let _ = reply.send(result);
            }
            Command::LocalGet { key, reply } => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let value = libp2p::kad::store::RecordStore::get(store, &RecordKey::new(&key)).map(|r| r.value.clone());
                let _ = reply.send(value);
            }
            Command::LocalHas { keys, reply } => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let held = keys
                    .iter()
                    .map(|k| libp2p::kad::store::RecordStore::get(store, &RecordKey::new(k)).is_some())
                    .collect();
                let _ = reply.send(held);
            }
            Command::ClosestPeers { key, reply } => {
                let target = kad::KBucketKey::new(RecordKey::new(&key));
                let local = *self.swarm.local_peer_id();
                let me = kad::KBucketKey::from(local);
                let mut peers: Vec<PeerId> = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_closest_local_peers(&target)
                    .map(|k| *k.preimage())
                    .collect();
                let my_distance = me.distance(&target);
                let at = peers
                    .iter()
                    .position(|p| kad::KBucketKey::from(*p).distance(&target) > my_distance)
                    .unwrap_or(peers.len());
                peers.insert(at, local);
                let _ = reply.send(peers);
            }
            Command::GetProviders { key, reply } => {
                if self.pending_providers.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("dht providers")));
                    return;
                }
                let id = self.swarm.behaviour_mut().kad.get_providers(RecordKey::new(&key));
                self.pending_providers.insert(id, (reply, HashSet::new()));
            }
            Command::RespondRaft { channel, response } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .raft
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("raft response not sent: stream closed");
                }
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Command::SetBlocked { peer, blocked } => {
                let list = &mut self.swarm.behaviour_mut().blocked;
                if blocked {
                    list.block_peer(peer);
                } else {
                    list.unblock_peer(peer);
                }
            }
            Command::CacheClearStep {
                pass,
                after,
                limit,
                reply,
            } => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let step = store.clear_cache_step(pass, after.as_deref(), limit, crate::crypto::DHT_KEY_PREFIX);
                let _ = reply.send(step);
            }
            Command::ReprovideBatch { after, limit, reply } => {
                let _ = reply.send(self.reprovide_batch(after.as_deref(), limit));
            }
            Command::ClearPeers { reply } => {
                let _ = reply.send(self.clear_peers());
            }
            Command::KadBootstrap => {
                if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
                    tracing::debug!(error = %e, "kademlia bootstrap not started");
                }
            }
        }
    }

    fn subscribe(&mut self, topic: String, sender: mpsc::Sender<GossipMessage>) -> Result<(), NetworkError> {
        let subs = self.subscribers.entry(topic.clone()).or_default();
        subs.retain(|s| !s.is_closed());
        if subs.len() >= MAX_SUBSCRIBERS_PER_TOPIC {
            return Err(NetworkError::Busy("subscription"));
        }
        subs.push(sender);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&IdentTopic::new(&topic))
            .map(|_| ())
            .map_err(|e| NetworkError::Publish(format!("subscribe {topic}: {e}")))
    }

    fn snapshot(&mut self) -> NetworkSnapshot {
        let health = IdentTopic::new(topics::HEALTH).hash();
        let health_topic_peers = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, ts)| ts.contains(&&health))
            .map(|(p, _)| p.to_string())
            .collect();
        let routing_table_size = self.routing_table_size();
        NetworkSnapshot {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
            peers: self
                .peers
                .iter()
                .map(|(id, p)| PeerInfo {
                    peer_id: id.to_string(),
                    addresses: p.addresses.iter().map(|a| a.to_string()).collect(),
                    connected_since_unix_ms: p.connected_since_unix_ms,
                    latency_ms: p.latency_ms,
                    agent_version: p.agent_version.clone(),
                })
                .collect(),
            routing_table_size,
            health_topic_peers,
        }
    }

    fn routing_table_size(&mut self) -> usize {
        self.swarm.behaviour_mut().kad.kbuckets().map(|b| b.num_entries()).sum()
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
                    connected_since_unix_ms: now_ms(),
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
        let verdict = envelope::open(&message.data, &self.limits, now_ms())
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

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed { id, result, step, .. } if self.maintenance_queries.contains(&id) => {
                self.on_maintenance_progress(id, &result, step.last);
            }
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => match result {
                QueryResult::PutRecord(r) => {
                    if let Some((reply, started)) = self.pending_puts.remove(&id) {
                        let ok = r.is_ok();
                        self.metrics
                            .dht_op(DhtOperation::Put, ok, started.elapsed().as_secs_f64());
                        let _ = reply.send(match r {
                            Ok(_) => Ok(PutOutcome { replicated: true }),
                            Err(e) => Err(NetworkError::Dht {
                                operation: "put",
                                reason: e.to_string(),
                            }),
                        });
                    }
                }
                QueryResult::GetRecord(r) => self.on_get_progress(id, r, step.last),
                QueryResult::GetProviders(r) => {
                    if let Some((_, found)) = self.pending_providers.get_mut(&id)
                        && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &r
                    {
                        found.extend(providers.iter().copied());
                    }
                    if step.last
                        && let Some((reply, found)) = self.pending_providers.remove(&id)
                    {
                        let answer = match r {
                            Err(e) if found.is_empty() => Err(NetworkError::Dht {
                                operation: "providers",
                                reason: e.to_string(),
                            }),
                            _ => Ok(found.into_iter().collect()),
                        };
                        let _ = reply.send(answer);
                    }
                }
                QueryResult::Bootstrap(Err(e)) => tracing::debug!(error = %e, "kademlia bootstrap step failed"),
                _ => {}
            },
            kad::Event::RoutingUpdated { .. } => {
                let n = self.routing_table_size();
                self.metrics.set_routing_table_peers(n);
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => self.on_inbound_put(source, record),
            kad::Event::InboundRequest {
                request: kad::InboundRequest::AddProvider { record: Some(record) },
            } => {
                if let Err(e) =
                    libp2p::kad::store::RecordStore::add_provider(self.swarm.behaviour_mut().kad.store_mut(), record)
                {
                    tracing::debug!(error = %e, "provider record not stored");
                }
            }
            _ => {}
        }
    }

    /// A record a peer put with Kademlia `PUT_VALUE` (filtered: nothing is stored unless this
    /// accepts it). Context records (keys under `/bzzz/ctx/1/`) must be valid, signed records whose
    /// hash is their key; they never expire here (the Raft index decides their life).
    fn on_inbound_put(&mut self, source: PeerId, mut record: Record) {
        if record.key.as_ref().starts_with(crate::crypto::DHT_KEY_PREFIX) {
            let valid = crate::crypto::record::parse_dht_key(record.key.as_ref())
                .ok_or_else(|| "malformed context record key".to_string())
                .and_then(|key| {
                    let v = crate::crypto::verify_record(&record.value, self.max_record_bytes)
                        .map_err(|e| e.to_string())?;
                    if v.record_key() == key {
                        Ok(())
                    } else {
                        Err("record does not hash to its key".to_string())
                    }
                });
            if let Err(reason) = valid {
                self.metrics.context_record_rejected();
                tracing::debug!(peer = %source, %reason, "context record from a dht put rejected");
                return;
            }
            record.expires = None;
        }
        if let Err(e) = libp2p::kad::store::RecordStore::put(self.swarm.behaviour_mut().kad.store_mut(), record) {
            tracing::debug!(peer = %source, error = %e, "dht record from a peer not stored");
        }
    }

    fn on_get_progress(&mut self, id: QueryId, result: Result<GetRecordOk, kad::GetRecordError>, last: bool) {
        let answer = match result {
            Ok(GetRecordOk::FoundRecord(r)) => Ok(r.record.value),
            Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(kad::GetRecordError::NotFound { .. }) => {
                Err(NetworkError::NotFound)
            }
            Err(e) => Err(NetworkError::Dht {
                operation: "get",
                reason: e.to_string(),
            }),
        };
        // Answer the first result only; later progress of the same query is ignored.
        let waiting = match self.pending_gets.get_mut(&id) {
            Some(pending @ PendingGet::Waiting(..)) => std::mem::replace(pending, PendingGet::Answered),
            _ => PendingGet::Answered,
        };
        if let PendingGet::Waiting(reply, started) = waiting {
            let ok = answer.is_ok();
            self.metrics
                .dht_op(DhtOperation::Get, ok, started.elapsed().as_secs_f64());
            let _ = reply.send(answer);
            if ok && let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                // First record is enough: stop the query instead of waiting for more.
                q.finish();
            }
        }
        if last {
            self.pending_gets.remove(&id);
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

    fn on_rpc(&mut self, event: request_response::Event<RpcRequest, RpcResponse>) {
        if let Some((peer, request, channel)) = split_event(event, &mut self.pending_rpcs, "rpc") {
            if let Some(rpc_request::Body::Context(request)) = request.body {
                let inbound = InboundContext { peer, request, channel };
                if let Err(e) = self.events.try_send(Event::Context(inbound)) {
                    // The request's stream closes unanswered; the sender sees a failure and retries.
                    self.metrics.error(ErrorComponent::EventsDropped);
                    tracing::debug!(%peer, reason = %e, "context request dropped: queue full");
                }
                return;
            }
            let response = self.on_rpc_request(peer, request);
            if self.swarm.behaviour_mut().rpc.send_response(channel, response).is_err() {
                tracing::debug!(%peer, "rpc response not sent: stream closed");
            }
        }
    }

    fn on_raft(&mut self, event: request_response::Event<RaftRequest, RaftResponse>) {
        if let Some((peer, request, channel)) = split_event(event, &mut self.pending_raft, "raft") {
            // Full queues drop the request; the sender's Raft retries.
            if let Err(e) = self.raft_inbound.try_send(InboundRaft { peer, request, channel }) {
                self.metrics.error(ErrorComponent::RaftInboundDropped);
                tracing::debug!(%peer, reason = %e, "inbound raft rpc dropped");
            }
        }
    }

    fn on_rpc_request(&mut self, peer: PeerId, request: RpcRequest) -> RpcResponse {
        match request.body {
            Some(rpc_request::Body::ProbeAck(ack)) if ack.probe_id.len() == bzzz_protocol::envelope::NONCE_LEN => {
                let event = Event::ProbeAck {
                    from: peer,
                    probe_id: ack.probe_id,
                };
                if self.events.try_send(event).is_err() {
                    self.metrics.error(ErrorComponent::EventsDropped);
                }
                RpcResponse {
                    body: Some(rpc_response::Body::Ack(Ack {})),
                }
            }
            Some(rpc_request::Body::ProbeAck(_)) => rpc_error("bad_request", "probe id must be 16 bytes"),
            // Routed to the context service before this; never answered here.
            Some(rpc_request::Body::Context(_)) => rpc_error("unsupported", "context request not routed"),
            Some(rpc_request::Body::JoinCluster(join)) => {
                if self.events.try_send(Event::JoinCluster { from: peer, join }).is_err() {
                    self.metrics.error(ErrorComponent::EventsDropped);
                }
                RpcResponse {
                    body: Some(rpc_response::Body::Ack(Ack {})),
                }
            }
            None => rpc_error("unsupported", "empty or unknown rpc request"),
        }
    }
}

/// A provider lookup: who asked, and the providers found so far.
type PendingProviders = (oneshot::Sender<Result<Vec<PeerId>, NetworkError>>, HashSet<PeerId>);

type Pending<Resp> = HashMap<OutboundRequestId, oneshot::Sender<Result<Resp, NetworkError>>>;

/// Settles the outbound side of a request-response event (answers and failures go to the waiting
/// caller) and hands an inbound request back to be answered.
fn split_event<Req, Resp>(
    event: request_response::Event<Req, Resp>,
    pending: &mut Pending<Resp>,
    protocol: &'static str,
) -> Option<(PeerId, Req, request_response::ResponseChannel<Resp>)> {
    match event {
        request_response::Event::Message { peer, message, .. } => match message {
            request_response::Message::Request { request, channel, .. } => Some((peer, request, channel)),
            request_response::Message::Response { request_id, response } => {
                if let Some(reply) = pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
                None
            }
        },
        request_response::Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Err(NetworkError::Rpc {
                    peer,
                    reason: error.to_string(),
                }));
            }
            None
        }
        request_response::Event::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, protocol, "inbound request failed");
            None
        }
        request_response::Event::ResponseSent { .. } => None,
    }
}

fn rpc_error(code: &str, message: &str) -> RpcResponse {
    RpcResponse {
        body: Some(rpc_response::Body::Error(RpcError {
            code: code.into(),
            message: message.into(),
        })),
    }
}
