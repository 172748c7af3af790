//! The P2P network: [`new`] builds the swarm and returns a cloneable [`Client`], the typed
//! queues of [`Inbound`] requests (one per owning service), and the [`EventLoop`] that alone owns
//! the swarm.

pub(crate) mod behaviour;
pub(crate) mod client;
pub(crate) mod codec;
pub(crate) mod event_loop;
pub(crate) mod inbound;
pub(crate) mod metrics;
pub(crate) mod renewal;

use std::num::NonZeroUsize;
use std::time::Duration;

use bzzz_protocol::envelope::EnvelopeLimits;
use bzzz_storage::{RecordStoreConfig, RecordStoreStatsHandle, SledRecordStore, Store};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, SwarmBuilder, noise, tcp};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

pub use client::{Client, GossipMessage, NetworkError, NetworkSnapshot, PeerInfo, PutOutcome};
pub use event_loop::{EventLoop, MAX_MAINTENANCE_QUERIES, MAX_PENDING, PeersCleared, ReprovideBatch};
pub use inbound::{Inbound, InboundContext, InboundRaft, JoinRequest, ProbeAck, RecordValidator, Verdict};

pub use metrics::NetworkMetrics;

use crate::admission::Admission;
use crate::admission::handshake::AdmitUpgrade;
use crate::config::{Config, Resolved};

/// Queue of commands from clients to the event loop.
const COMMAND_QUEUE: usize = 256;

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
    /// The swarm key file could not be read or is not a libp2p pre-shared key.
    #[error("swarm key file {path}: {reason}")]
    SwarmKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why (never the key itself).
        reason: String,
    },
    /// A node with a join token could not obtain its certificate.
    #[error("cannot join the cluster: {0}")]
    Join(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Who may do what on this node's network, injected by the services that decide it: which peers
/// are admitted (and what their certificates say), and which records peers may put.
#[derive(Debug, Clone)]
pub struct Gates {
    /// Admission: certificates of connecting peers.
    pub admission: std::sync::Arc<Admission>,
    /// Judges records peers put into this node's DHT store.
    pub validator: std::sync::Arc<dyn RecordValidator>,
}

/// What [`new`] returns.
pub struct Network {
    /// Handle for the node's tasks.
    pub client: Client,
    /// Inbound requests, one queue per owning service.
    pub inbound: Inbound,
    /// The loop to spawn.
    pub event_loop: EventLoop,
    /// Live counts of the DHT store, for metrics.
    pub store_stats: RecordStoreStatsHandle,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").finish_non_exhaustive()
    }
}

/// Builds the swarm for `key`, starts listening on the configured addresses and returns the
/// pieces. Connections are admitted and records peers put into the DHT judged by `gates`. Listening has started (addresses are bound asynchronously by the transport; the first
/// `NewListenAddr` events follow).
pub fn new(
    key: Keypair,
    config: &Config,
    resolved: &Resolved,
    store: &Store,
    registry: &mut Registry,
    metrics: NetworkMetrics,
    gates: Gates,
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
    let local = record_store.local();

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
    let idle = Duration::from_secs(config.p2p.idle_connection_timeout_secs);
    let psk = config.p2p.swarm_key_file.as_deref().map(load_swarm_key).transpose()?;
    if let Some(psk) = &psk {
        tracing::info!(fingerprint = %psk.fingerprint(), "private network: only peers with this swarm key can connect");
    }
    let transport = transport(&key, psk, gates.admission.clone())?;
    let mut swarm = SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_other_transport(|_| transport)
        .map_err(|e| StartError::Transport(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| StartError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
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
    let (inbound_tx, inbound) = inbound::channels();
    let limits = EnvelopeLimits {
        max_bytes: config.gossip.max_message_bytes,
        max_age_ms: config.gossip.max_age_ms,
        max_future_ms: config.gossip.max_clock_skew_ms,
    };
    let event_loop = EventLoop::new(
        swarm,
        cmd_rx,
        metrics,
        p2p_metrics,
        event_loop::LoopSettings {
            limits,
            replay_window: config.gossip.replay_window,
            record_ttl: bcfg.record_ttl,
        },
        inbound_tx,
        gates,
    );
    let client = Client {
        commands: cmd_tx,
        key,
        peer_id,
        publish_wait: Duration::from_millis(config.gossip.publish_wait_ms),
        default_quorum: resolved.put_quorum,
        max_record_bytes: config.dht.max_record_bytes,
        local,
        subscriber_queue: config.gossip.subscriber_queue,
    };
    Ok(Network {
        client,
        inbound,
        event_loop,
        store_stats,
    })
}

/// A transport whose connections have passed every handshake, with DNS resolution.
type Upgraded = libp2p::core::transport::Boxed<(libp2p::PeerId, libp2p::core::muxing::StreamMuxerBox)>;

/// One transport for every configuration: TCP; then, on a private network, the pre-shared key
/// proof (libp2p pnet, XSalsa20 over the socket), so peers without the mesh key fail before any
/// bzzz protocol runs; then noise, which authenticates the peer id; then admission
/// (`/bzzz/admit/1`: certificates both ways, or a join), which alone hands the connection to
/// yamux. A connection exists for the swarm only once all of them passed.
fn transport(
    key: &Keypair,
    psk: Option<libp2p::pnet::PreSharedKey>,
    admission: std::sync::Arc<crate::admission::Admission>,
) -> Result<Upgraded, StartError> {
    use futures::future::Either;
    use libp2p::Transport as _;
    let noise = noise::Config::new(key).map_err(|e| StartError::Transport(format!("noise: {e}")))?;
    let upgraded = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .and_then(move |socket, _| async move {
            match psk {
                Some(psk) => libp2p::pnet::PnetConfig::new(psk)
                    .handshake(socket)
                    .await
                    .map(Either::Left),
                None => Ok(Either::Right(socket)),
            }
        })
        .upgrade(libp2p::core::upgrade::Version::V1Lazy)
        .authenticate(noise)
        .multiplex_ext(move |peer, _| AdmitUpgrade::new(admission.clone(), *peer))
        .timeout(UPGRADE_TIMEOUT);
    let resolving =
        libp2p::dns::tokio::Transport::system(upgraded).map_err(|e| StartError::Transport(format!("dns: {e}")))?;
    Ok(resolving
        .map(|(peer, muxer), _| (peer, libp2p::core::muxing::StreamMuxerBox::new(muxer)))
        .boxed())
}

/// Obtains this node's certificate with its join token before the node starts (ADR 0014):
/// dials the bootstrap peers in turn, each connection running the join instead of admission,
/// until a voter issues a certificate, a voter refuses the token (expired, used up, revoked,
/// unknown: another voter would say the same), or `timeout` passes.
pub async fn join_with_token(
    key: &Keypair,
    config: &Config,
    resolved: &Resolved,
    admission: std::sync::Arc<crate::admission::Admission>,
    timeout: Duration,
) -> Result<(), StartError> {
    use crate::admission::JoinAttempt;
    use libp2p::Transport as _;
    use libp2p::core::transport::{DialOpts, PortUse};
    if resolved.bootstrap.is_empty() {
        return Err(StartError::Join(
            "this node has a join token but no certificate, and p2p.bootstrap_peers names no voter to present it to"
                .into(),
        ));
    }
    let psk = config.p2p.swarm_key_file.as_deref().map(load_swarm_key).transpose()?;
    let mut transport = transport(key, psk, admission.clone())?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(250);
    let mut last = String::from("no attempt finished");
    loop {
        for peer in &resolved.bootstrap {
            let addr = peer.addr().clone();
            let dialed = transport.dial(
                addr.clone(),
                DialOpts {
                    role: libp2p::core::Endpoint::Dialer,
                    port_use: PortUse::New,
                },
            );
            let error = match dialed {
                Err(e) => format!("{addr}: {e}"),
                Ok(connecting) => match connecting.await {
                    Ok(_) => format!("{addr}: connected without a join"),
                    Err(e) => format!("{addr}: {e}"),
                },
            };
            match admission.take_join_attempt() {
                Some(JoinAttempt::Joined) => return Ok(()),
                Some(JoinAttempt::Fatal(message)) => return Err(StartError::Join(message)),
                Some(JoinAttempt::Retry(message)) => last = message,
                None => last = error,
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StartError::Join(format!(
                    "no voter issued a certificate within {} s (admission.join_timeout_ms); last: {last}",
                    timeout.as_secs()
                )));
            }
        }
        tracing::info!(retry_in = ?delay, last = %last, "join: no certificate yet; trying the bootstrap peers again");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Longest a new connection may take to finish its pnet, noise, admission and yamux handshakes
/// (admission has its own, shorter bound: `admission.handshake_timeout_ms`). About four round
/// trips; 5 s leaves room for a 1 s RTT. A peer with another mesh key is never told so (pnet has
/// no key check): noise reads garbage and can wait for a frame that never comes, so this bound is
/// how long such a dial hangs before the join loop retries.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a libp2p pre-shared key file. Errors name the file and the problem, never the key.
pub fn load_swarm_key(path: &std::path::Path) -> Result<libp2p::pnet::PreSharedKey, StartError> {
    let err = |reason: String| StartError::SwarmKey {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    text.trim().parse::<libp2p::pnet::PreSharedKey>().map_err(|_| {
        err("not a libp2p pre-shared key: expected the lines /key/swarm/psk/1.0.0/, /base16/ and 64 hex digits".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A swarm key file in libp2p's format loads; a malformed one is refused with an error that
    /// names the file and the expected format, and never echoes the file's content.
    #[test]
    fn swarm_key_file_is_parsed_and_errors_never_show_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.key");
        std::fs::write(&good, format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", "0f".repeat(32))).expect("write");
        load_swarm_key(&good).expect("a well-formed key loads");

        let bad = dir.path().join("bad.key");
        let secret = "5ec7e7".repeat(10);
        std::fs::write(&bad, format!("/key/swarm/psk/1.0.0/\n/base16/\n{secret}\n")).expect("write");
        let msg = load_swarm_key(&bad)
            .expect_err("60 hex digits must be refused")
            .to_string();
        assert!(
            msg.contains("bad.key") && msg.contains("/key/swarm/psk/1.0.0/"),
            "got {msg}"
        );
        assert!(
            !msg.contains(&secret),
            "the error must not contain the key material: {msg}"
        );

        let missing = load_swarm_key(&dir.path().join("none.key"))
            .expect_err("missing file")
            .to_string();
        assert!(missing.contains("none.key"), "got {missing}");
    }
}
