//! The P2P network: [`new`] builds the swarm and returns a cloneable [`Client`], a stream of
//! [`Event`]s for the node, and the [`EventLoop`] that alone owns the swarm.

pub mod behaviour;
pub mod client;
pub mod codec;
pub mod event_loop;

use std::num::NonZeroUsize;
use std::time::Duration;

use bzzz_protocol::envelope::EnvelopeLimits;
use bzzz_storage::{RecordStoreConfig, RecordStoreStatsHandle, SledRecordStore, Store};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, SwarmBuilder, noise, tcp, yamux};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

pub use client::{Client, GossipMessage, NetworkError, NetworkSnapshot, PeerInfo, PutOutcome};
pub use event_loop::{
    Event, EventLoop, InboundContext, InboundRaft, MAX_MAINTENANCE_QUERIES, PeersCleared, ReprovideBatch,
};

use crate::config::{Config, Resolved};
use crate::metrics::Metrics;

/// Queue of commands from clients to the event loop.
const COMMAND_QUEUE: usize = 256;
/// Queue of events from the event loop to the node.
const EVENT_QUEUE: usize = 1024;
/// Queue of inbound Raft RPCs waiting for the consensus task.
const RAFT_INBOUND_QUEUE: usize = 1024;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Building the transport failed.
    #[error("cannot build transport: {0}")]
    Transport(String),
    /// The persistent DHT store could not be opened.
    #[error("cannot open dht store: {0}")]
    Store(#[from] bzzz_storage::StorageError),
    /// The behaviour configuration was rejected.
    #[error(transparent)]
    Behaviour(#[from] behaviour::BehaviourError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// What [`new`] returns.
pub struct Network {
    /// Handle for the node's tasks.
    pub client: Client,
    /// Events for the node.
    pub events: mpsc::Receiver<Event>,
    /// The loop to spawn.
    pub event_loop: EventLoop,
    /// Live counts of the DHT store, for metrics.
    pub store_stats: RecordStoreStatsHandle,
    /// Inbound Raft RPCs.
    pub raft_inbound: mpsc::Receiver<InboundRaft>,
}

/// Builds the swarm for `key`, starts listening on the configured addresses and returns the
/// pieces. Listening has started (addresses are bound asynchronously by the transport; the first
/// `NewListenAddr` events follow).
pub fn new(
    key: Keypair,
    config: &Config,
    resolved: &Resolved,
    store: &Store,
    registry: &mut Registry,
    metrics: Metrics,
) -> Result<Network, StartError> {
    let peer_id = key.public().to_peer_id();
    let record_store = SledRecordStore::new(
        store,
        peer_id,
        RecordStoreConfig {
            max_value_bytes: config.dht.max_record_bytes,
            max_records: config.dht.max_records,
            ..RecordStoreConfig::default()
        },
    )?;
    let store_stats = record_store.stats_handle();

    let bcfg = behaviour::BehaviourConfig {
        max_connections: config.p2p.max_connections,
        max_connections_per_peer: config.p2p.max_connections_per_peer,
        gossip_heartbeat: Duration::from_millis(config.gossip.heartbeat_ms),
        // Carry up to twice the envelope limit so oversized envelopes reach validation and are
        // counted by reason instead of vanishing in the transport.
        gossip_max_transmit: config.gossip.max_message_bytes.saturating_mul(2),
        kad_replication: NonZeroUsize::new(config.dht.replication_factor).unwrap_or(NonZeroUsize::MIN),
        kad_query_timeout: Duration::from_secs(config.dht.query_timeout_secs),
        record_ttl: (config.dht.record_ttl_secs > 0).then(|| Duration::from_secs(config.dht.record_ttl_secs)),
        kad_max_packet: config.dht.max_record_bytes + 64 * 1024,
        raft_request_timeout: Duration::from_secs(10),
    };
    let behaviour = behaviour::Behaviour::new(&key, record_store, &bcfg)?;

    let p2p_metrics = libp2p::metrics::Metrics::new(registry);
    let mut swarm = SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| StartError::Transport(e.to_string()))?
        .with_dns()
        .map_err(|e| StartError::Transport(format!("dns: {e}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| StartError::Transport(e.to_string()))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(config.p2p.idle_connection_timeout_secs))
        })
        .build();

    for addr in &resolved.listen {
        swarm.listen_on(addr.clone()).map_err(|e| StartError::Listen {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    }
    for addr in &resolved.external_addresses {
        swarm.add_external_address(addr.clone());
    }

    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    let (raft_tx, raft_rx) = mpsc::channel(RAFT_INBOUND_QUEUE);
    let limits = EnvelopeLimits {
        max_bytes: config.gossip.max_message_bytes,
        max_age_ms: config.gossip.max_age_ms,
        max_future_ms: config.gossip.max_clock_skew_ms,
    };
    let event_loop = EventLoop::new(
        swarm,
        cmd_rx,
        ev_tx,
        metrics,
        p2p_metrics,
        event_loop::LoopSettings {
            limits,
            replay_window: config.gossip.replay_window,
            record_ttl: bcfg.record_ttl,
            max_record_bytes: config.dht.max_record_bytes,
        },
        raft_tx,
    );
    let client = Client {
        commands: cmd_tx,
        key,
        peer_id,
        publish_wait: Duration::from_millis(config.gossip.publish_wait_ms),
        default_quorum: resolved.put_quorum,
        max_record_bytes: config.dht.max_record_bytes,
    };
    Ok(Network {
        client,
        events: ev_rx,
        event_loop,
        store_stats,
        raft_inbound: raft_rx,
    })
}
