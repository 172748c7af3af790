//! [`Client`]: the cloneable handle to the network event loop. One method per operation; each
//! sends a typed [`Command`] and awaits the reply on a oneshot.

use std::time::{Duration, Instant};

use bzzz_protocol::envelope::{self, NONCE_LEN};
use bzzz_protocol::wire::{Kind, RaftRequest, RaftResponse, RpcRequest, RpcResponse};
use bzzz_storage::LocalRecords;
use bzzz_storage::util::now_unix_ms;
use libp2p::identity::Keypair;
use libp2p::kad::Quorum;
use libp2p::kad::Record;
use libp2p::{Multiaddr, PeerId};
use prost::Message;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Errors of network operations.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetworkError {
    /// The event loop has stopped: the node is shutting down.
    #[error("network is shut down")]
    Shutdown,
    /// No peer subscribed to the topic within the publish wait.
    #[error("no peer subscribed to topic {topic} within {waited_ms} ms")]
    InsufficientPeers {
        /// The topic.
        topic: String,
        /// How long the publish waited.
        waited_ms: u64,
    },
    /// The message could not be published.
    #[error("publish failed: {0}")]
    Publish(String),
    /// The topic name is not a bzzz topic.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The DHT has no record under the key.
    #[error("record not found")]
    NotFound,
    /// A DHT operation failed.
    #[error("dht {operation} failed: {reason}")]
    Dht {
        /// `put` or `get`.
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// The record is larger than the configured limit.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Size of the value.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A direct request failed.
    #[error("rpc to {peer} failed: {reason}")]
    Rpc {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// Too many operations are in flight; retry later.
    #[error("too many {0} operations in flight; retry later")]
    Busy(&'static str),
    /// The envelope could not be signed.
    #[error("cannot sign envelope: {0}")]
    Sign(String),
}

/// A gossip message that passed validation, as delivered to topic subscribers.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The topic it arrived on.
    pub topic: String,
    /// The verified sender.
    pub sender: PeerId,
    /// The peer that forwarded it to us.
    pub via: PeerId,
    /// The payload kind.
    pub kind: Kind,
    /// Sender timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A connected peer, as `/api/peers` shows it (the API's type).
pub use bzzz_client::types::PeerInfo;

/// A point-in-time view of the network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSnapshot {
    /// This node's peer id.
    pub peer_id: String,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
    /// Peers in the Kademlia routing table.
    pub routing_table_size: usize,
    /// Connected peers subscribed to the health topic (those a probe can reach).
    pub health_topic_peers: Vec<String>,
}

/// Outcome of a DHT put.
#[derive(Debug, Clone, Serialize)]
pub struct PutOutcome {
    /// Whether the quorum was reached by remote peers (false when the node is alone and the
    /// record was stored only locally).
    pub replicated: bool,
}

/// A command to the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), PublishFailure>>,
    },
    Subscribe {
        topic: String,
        sender: mpsc::Sender<GossipMessage>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, String>>,
    },
    PutRecord {
        key: Vec<u8>,
        value: Vec<u8>,
        quorum: Quorum,
        reply: oneshot::Sender<Result<PutOutcome, NetworkError>>,
    },
    GetRecord {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    },
    SendRpc {
        peer: PeerId,
        request: RpcRequest,
        reply: oneshot::Sender<Result<RpcResponse, NetworkError>>,
    },
    RespondRpc {
        channel: libp2p::request_response::ResponseChannel<RpcResponse>,
        response: RpcResponse,
    },
    StartProviding {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    ClosestPeers {
        key: Vec<u8>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    GetProviders {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<PeerId>, NetworkError>>,
    },
    SendRaft {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RaftRequest,
        reply: oneshot::Sender<Result<RaftResponse, NetworkError>>,
    },
    RespondRaft {
        channel: libp2p::request_response::ResponseChannel<RaftResponse>,
        response: RaftResponse,
    },
    Snapshot {
        reply: oneshot::Sender<NetworkSnapshot>,
    },
    KadBootstrap,
    ClearPeers {
        reply: oneshot::Sender<super::PeersCleared>,
    },
    CacheClearStep {
        pass: bzzz_storage::CachePass,
        after: Option<Vec<u8>>,
        limit: usize,
        reply: oneshot::Sender<bzzz_storage::CacheClearStep>,
    },
    ReprovideBatch {
        after: Option<Vec<u8>>,
        limit: usize,
        reply: oneshot::Sender<Result<super::ReprovideBatch, NetworkError>>,
    },
    SetBlocked {
        peer: PeerId,
        blocked: bool,
    },
}

/// Why one publish attempt failed.
#[derive(Debug)]
pub(crate) enum PublishFailure {
    /// No subscribed peer yet: worth waiting for.
    NoPeers,
    /// Anything else: final.
    Other(String),
}

/// Handle to the network event loop. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) key: Keypair,
    pub(crate) peer_id: PeerId,
    pub(crate) publish_wait: Duration,
    pub(crate) default_quorum: Quorum,
    pub(crate) max_record_bytes: usize,
    /// This node's own DHT records, read and written without the event loop.
    pub(crate) local: LocalRecords,
    pub(crate) subscriber_queue: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Client")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| NetworkError::Shutdown)?;
        rx.await.map_err(|_| NetworkError::Shutdown)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Seals `payload` in a signed envelope of `kind` and publishes it on `topic`, waiting up to
    /// the configured publish wait for a subscribed peer (a mesh that is still forming).
    /// Cancel-safe: dropping the future abandons the publish.
    pub async fn publish(&self, topic: &str, kind: Kind, payload: Vec<u8>) -> Result<(), NetworkError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let env = envelope::seal(&self.key, kind, payload, now_unix_ms(), nonce)
            .map_err(|e| NetworkError::Sign(e.to_string()))?;
        self.publish_raw(topic, env.encode_to_vec()).await
    }

    /// Publishes bytes as they are, without sealing them: for tooling and for tests that need
    /// to put malformed or forged envelopes on the wire. Receivers validate them like any other.
    /// Waits for subscribed peers like [`Client::publish`]. Cancel-safe.
    pub async fn publish_raw(&self, topic: &str, data: Vec<u8>) -> Result<(), NetworkError> {
        if !bzzz_protocol::topics::is_known(topic) {
            return Err(NetworkError::UnknownTopic(topic.to_string()));
        }
        let started = Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            let result = self
                .call(|reply| Command::Publish {
                    topic: topic.to_string(),
                    data: data.clone(),
                    reply,
                })
                .await?;
            match result {
                Ok(()) => return Ok(()),
                Err(PublishFailure::Other(e)) => return Err(NetworkError::Publish(e)),
                Err(PublishFailure::NoPeers) => {
                    let waited = started.elapsed();
                    if waited >= self.publish_wait {
                        return Err(NetworkError::InsufficientPeers {
                            topic: topic.to_string(),
                            waited_ms: waited.as_millis() as u64,
                        });
                    }
                    tokio::time::sleep(delay.min(self.publish_wait - waited)).await;
                    delay = (delay * 2).min(Duration::from_millis(250));
                }
            }
        }
    }

    /// The queue length long-lived topic subscribers use (`gossip.subscriber_queue`): pass it to
    /// [`Client::subscribe`].
    pub fn subscriber_queue(&self) -> usize {
        self.subscriber_queue
    }

    /// Subscribes to `topic`. Several subscribers per topic are allowed; each gets every
    /// verified message on its own bounded queue (messages beyond it are dropped and counted).
    pub async fn subscribe(&self, topic: &str, queue: usize) -> Result<mpsc::Receiver<GossipMessage>, NetworkError> {
        if !bzzz_protocol::topics::is_known(topic) {
            return Err(NetworkError::UnknownTopic(topic.to_string()));
        }
        let (tx, rx) = mpsc::channel(queue.max(1));
        self.call(|reply| Command::Subscribe {
            topic: topic.to_string(),
            sender: tx,
            reply,
        })
        .await??;
        Ok(rx)
    }

    /// Puts a record in the DHT with the configured quorum (or `quorum` if given). The record is
    /// stored locally first; on a node with no peers it stays local and `replicated` is false.
    pub async fn put_record(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        quorum: Option<Quorum>,
    ) -> Result<PutOutcome, NetworkError> {
        if value.len() > self.max_record_bytes {
            return Err(NetworkError::RecordTooLarge {
                size: value.len(),
                limit: self.max_record_bytes,
            });
        }
        let quorum = quorum.unwrap_or(self.default_quorum);
        self.call(|reply| Command::PutRecord {
            key,
            value,
            quorum,
            reply,
        })
        .await?
    }

    /// Gets a record's value from the DHT (this node's store first, then the network).
    pub async fn get_record(&self, key: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        self.call(|reply| Command::GetRecord { key, reply }).await?
    }

    /// Sends a direct request on `/bzzz/rpc/1`.
    pub async fn send_rpc(&self, peer: PeerId, request: RpcRequest) -> Result<RpcResponse, NetworkError> {
        self.call(|reply| Command::SendRpc { peer, request, reply }).await?
    }

    /// Answers an inbound request on `/bzzz/rpc/1` that the event loop handed to a service.
    pub async fn respond_rpc(
        &self,
        channel: libp2p::request_response::ResponseChannel<RpcResponse>,
        response: RpcResponse,
    ) -> Result<(), NetworkError> {
        self.commands
            .send(Command::RespondRpc { channel, response })
            .await
            .map_err(|_| NetworkError::Shutdown)
    }

    /// Keeps `value` under `key` in this node's DHT store with no expiry (publisher: this node),
    /// and with `provide`, announces this node as a provider of the key. The caller has validated
    /// the value. Also the tool tests use to plant a corrupted copy.
    pub async fn store_local(&self, key: Vec<u8>, value: Vec<u8>, provide: bool) -> Result<(), NetworkError> {
        if value.len() > self.max_record_bytes {
            return Err(NetworkError::RecordTooLarge {
                size: value.len(),
                limit: self.max_record_bytes,
            });
        }
        let mut record = Record::new(key.clone(), value);
        record.publisher = Some(self.peer_id);
        self.local.put(record).map_err(|e| NetworkError::Dht {
            operation: "store",
            reason: e.to_string(),
        })?;
        if provide {
            self.call(|reply| Command::StartProviding { key, reply }).await??;
        }
        Ok(())
    }

    /// The value under `key` in this node's own DHT store, if any (no network query).
    pub async fn local_get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, NetworkError> {
        Ok(self.local.get(&key))
    }

    /// Which of `keys` this node's own DHT store holds, in order.
    pub async fn local_has(&self, keys: Vec<Vec<u8>>) -> Result<Vec<bool>, NetworkError> {
        Ok(keys.iter().map(|k| self.local.contains(k)).collect())
    }

    /// This node and the peers of its routing table, nearest to `key` (Kademlia XOR distance)
    /// first.
    pub async fn closest_peers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, NetworkError> {
        self.call(|reply| Command::ClosestPeers { key, reply }).await
    }

    /// The peers that announce they hold `key` (a Kademlia provider query, this node included).
    pub async fn get_providers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, NetworkError> {
        self.call(|reply| Command::GetProviders { key, reply }).await?
    }

    /// Sends a Raft RPC on `/bzzz/raft/1`, dialling `addrs` if the peer is not connected.
    /// Cancel-safe: dropping the future abandons the answer.
    pub async fn send_raft(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RaftRequest,
    ) -> Result<RaftResponse, NetworkError> {
        self.call(|reply| Command::SendRaft {
            peer,
            addrs,
            request,
            reply,
        })
        .await?
    }

    /// Answers an inbound Raft RPC (see [`super::Event::InboundRaft`]).
    pub async fn respond_raft(
        &self,
        channel: libp2p::request_response::ResponseChannel<RaftResponse>,
        response: RaftResponse,
    ) -> Result<(), NetworkError> {
        self.commands
            .send(Command::RespondRaft { channel, response })
            .await
            .map_err(|_| NetworkError::Shutdown)
    }

    /// Blocks (`true`) or unblocks a peer: a blocked peer's connections are closed and new ones
    /// refused, both ways. Used for operator blocks and for partitions in tests.
    pub async fn set_blocked(&self, peer: PeerId, blocked: bool) -> Result<(), NetworkError> {
        self.commands
            .send(Command::SetBlocked { peer, blocked })
            .await
            .map_err(|_| NetworkError::Shutdown)
    }

    /// Forgets every peer: empties the Kademlia routing table, drops the addresses remembered
    /// for connected peers and closes every connection (blocked peers stay blocked). The node
    /// reconnects through its bootstrap peers and the peers that dial it.
    pub async fn clear_peers(&self) -> Result<super::PeersCleared, NetworkError> {
        self.call(|reply| Command::ClearPeers { reply }).await
    }

    /// Re-announces this node as provider of up to `limit` of the records it holds, those with
    /// keys after `after` (from the first when `None`), and republishes (puts again, with a fresh
    /// TTL) the non-context ones among them it published itself. The queries run in the
    /// background; `Busy` while too many of them are still running (wait and ask again). Walk
    /// the store by passing the answer's `next_after` until it is `None`.
    pub async fn reprovide_batch(
        &self,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<super::ReprovideBatch, NetworkError> {
        self.call(|reply| Command::ReprovideBatch { after, limit, reply })
            .await?
    }

    /// One step of clearing what this node merely caches from its DHT store (see
    /// [`bzzz_storage::SledRecordStore::clear_cache_step`]); context records are never removed.
    pub async fn clear_cache_step(
        &self,
        pass: bzzz_storage::CachePass,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<bzzz_storage::CacheClearStep, NetworkError> {
        self.call(|reply| Command::CacheClearStep {
            pass,
            after,
            limit,
            reply,
        })
        .await
    }

    /// A view of peers, addresses and routing table.
    pub async fn snapshot(&self) -> Result<NetworkSnapshot, NetworkError> {
        self.call(|reply| Command::Snapshot { reply }).await
    }
}

impl bzzz_bootstrap::Dialer for Client {
    async fn dial(&self, addr: Multiaddr) -> Result<PeerId, String> {
        match self.call(|reply| Command::Dial { addr, reply }).await {
            Ok(r) => r,
            Err(e) => Err(e.to_string()),
        }
    }

    async fn routing_table_size(&self) -> usize {
        self.snapshot().await.map(|s| s.routing_table_size).unwrap_or(0)
    }

    async fn connected_peers(&self) -> usize {
        self.snapshot().await.map(|s| s.peers.len()).unwrap_or(0)
    }

    async fn kad_bootstrap(&self) {
        let _ = self.commands.send(Command::KadBootstrap).await;
    }
}
