//! The libp2p behaviour of a bzzz node: every protocol it speaks, composed.

// `#[derive(NetworkBehaviour)]` generates `BehaviourEvent` with undocumented variants (one per
// field of `Behaviour`, each documented there).
#![allow(missing_docs)]

use std::num::NonZeroUsize;
use std::time::Duration;

use bzzz_protocol::wire::{RaftRequest, RaftResponse, RpcRequest, RpcResponse};
use bzzz_protocol::{protocols, topics};
use bzzz_storage::SledRecordStore;
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, kad, ping, request_response};

use super::codec::{MAX_RPC_BYTES, ProstCodec};

/// Codec of `/bzzz/rpc/1`.
pub(crate) type RpcCodec = ProstCodec<RpcRequest, RpcResponse>;
/// Codec of `/bzzz/raft/1`.
pub(crate) type RaftCodec = ProstCodec<RaftRequest, RaftResponse>;

/// How often every connection is pinged.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A ping unanswered this long closes the connection (see the event loop): a silently cut
/// connection is noticed within `PING_INTERVAL + PING_TIMEOUT`.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Every protocol a bzzz node runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Peers this node refuses to talk to (operator blocks, test partitions).
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Caps established and pending connections.
    pub limits: connection_limits::Behaviour,
    /// Coordination messages.
    pub gossipsub: gossipsub::Behaviour,
    /// The DHT, in server mode, on the persistent sled store.
    pub kad: kad::Behaviour<SledRecordStore>,
    /// Exchange of listen addresses and protocol versions.
    pub identify: identify::Behaviour,
    /// Liveness and round-trip time.
    pub ping: ping::Behaviour,
    /// Direct node-to-node requests on `/bzzz/rpc/1`.
    pub rpc: request_response::Behaviour<RpcCodec>,
    /// Raft RPCs on `/bzzz/raft/1`.
    pub raft: request_response::Behaviour<RaftCodec>,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour").finish_non_exhaustive()
    }
}

/// Gossip message id: the first 20 bytes of the SHA-256 of the payload (a signed envelope with a
/// random nonce, so distinct messages never collide and an attacker cannot forge a collision).
fn content_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&m.data);
    gossipsub::MessageId::from(digest[..20].to_vec())
}

/// Score below which a peer's gossip is not forwarded to it and no gossip is asked of it.
pub(crate) const GOSSIP_THRESHOLD: f64 = -10.0;
/// Score below which this node does not publish to the peer.
pub(crate) const PUBLISH_THRESHOLD: f64 = -50.0;
/// Score below which everything the peer sends on gossipsub is ignored (graylisted), before any
/// validation: a flood of rejected messages costs the receiver nothing after the first few.
pub(crate) const GRAYLIST_THRESHOLD: f64 = -80.0;

/// Gossipsub peer scoring fed only by this node's own validation verdicts (P4, invalid message
/// deliveries: every envelope the event loop rejects counts against the peer that relayed it,
/// squared, so three rejected messages in a second graylist it; the count halves every second,
/// so an honest peer that relayed one bad message recovers at once). The positive and mesh
/// delivery terms are off: admission decides who is a member, and a quiet member must not drift
/// toward a penalty. IP colocation is off: every node of a test, or behind one NAT, shares an
/// address, and admission already bounds who may connect.
fn peer_scoring() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.5,
        ..gossipsub::TopicScoreParams::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: topics::ALL
            .iter()
            .map(|t| (gossipsub::IdentTopic::new(*t).hash(), topic.clone()))
            .collect(),
        ip_colocation_factor_weight: 0.0,
        app_specific_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..gossipsub::PeerScoreThresholds::default()
    };
    (params, thresholds)
}

/// Settings the behaviour is built from.
#[derive(Debug, Clone)]
pub(crate) struct BehaviourConfig {
    /// Most established connections.
    pub max_connections: u32,
    /// Most established connections per peer.
    pub max_connections_per_peer: u32,
    /// Gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
    /// Largest gossip message the transport carries (above the envelope limit, so oversized
    /// envelopes reach validation and are counted).
    pub gossip_max_transmit: usize,
    /// Kademlia replication factor.
    pub kad_replication: NonZeroUsize,
    /// Kademlia query timeout.
    pub kad_query_timeout: Duration,
    /// Record TTL for puts from this node.
    pub record_ttl: Option<Duration>,
    /// Largest Kademlia packet (above the record limit).
    pub kad_max_packet: usize,
    /// Timeout of one Raft RPC at the transport (openraft applies its own, shorter, per call).
    pub raft_request_timeout: Duration,
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid network behaviour configuration: {0}")]
pub struct BehaviourError(pub String);

impl Behaviour {
    /// Builds the behaviour for `key` with the given persistent store.
    pub(crate) fn new(key: &Keypair, store: SledRecordStore, cfg: &BehaviourConfig) -> Result<Self, BehaviourError> {
        let peer_id = key.public().to_peer_id();

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(cfg.max_connections))
            .with_max_established_per_peer(Some(cfg.max_connections_per_peer))
            .with_max_pending_incoming(Some(128))
            .with_max_pending_outgoing(Some(128));

        // Gossipsub itself neither signs nor verifies: every payload is a bzzz envelope signed by
        // its sender and verified once per unique message in the event loop (ADR 0004). Message
        // ids are content hashes, so the envelope nonce keeps distinct messages distinct.
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(cfg.gossip_heartbeat)
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(content_id)
            .validate_messages()
            .max_transmit_size(cfg.gossip_max_transmit)
            .build()
            .map_err(|e| BehaviourError(format!("gossipsub: {e}")))?;
        let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|e| BehaviourError(format!("gossipsub: {e}")))?;
        let (params, thresholds) = peer_scoring();
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(|e| BehaviourError(format!("gossipsub peer scoring: {e}")))?;

        let mut kad_config = kad::Config::new(StreamProtocol::new(protocols::KAD));
        kad_config
            .set_replication_factor(cfg.kad_replication)
            .set_query_timeout(cfg.kad_query_timeout)
            .set_record_ttl(cfg.record_ttl)
            .set_max_packet_size(cfg.kad_max_packet)
            // Inbound records and provider records reach the event loop first, which validates
            // context records before storing anything (`EventLoop::on_inbound_put`).
            .set_record_filtering(kad::StoreInserts::FilterBoth);
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        // Client mode (the default until an external address is confirmed) makes puts fail with
        // QuorumFailed on small meshes: every bzzz node serves the DHT.
        kad.set_mode(Some(kad::Mode::Server));

        let identify = identify::Behaviour::new(
            identify::Config::new(protocols::IDENTIFY.to_string(), key.public())
                .with_agent_version(format!("bzzz/{}", env!("CARGO_PKG_VERSION")))
                .with_cache_size(256),
        );

        let ping = ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_INTERVAL)
                .with_timeout(PING_TIMEOUT),
        );

        let rpc = request_response::Behaviour::with_codec(
            RpcCodec::new(MAX_RPC_BYTES),
            [(
                StreamProtocol::new(protocols::RPC),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(256),
        );

        // Snapshots travel in chunks on this protocol too, so its limit is the codec's maximum.
        let raft = request_response::Behaviour::with_codec(
            RaftCodec::new(MAX_RPC_BYTES),
            [(
                StreamProtocol::new(protocols::RAFT),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(cfg.raft_request_timeout)
                .with_max_concurrent_streams(256),
        );

        Ok(Behaviour {
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(limits),
            gossipsub,
            kad,
            identify,
            ping,
            rpc,
            raft,
        })
    }
}
