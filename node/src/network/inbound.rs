//! Inbound P2P requests, delivered to the service that owns each kind.
//!
//! The event loop answers nothing itself that belongs to a service: it validates the framing and
//! pushes each request into the bounded queue of its kind. Each service takes its receiver from
//! [`Inbound`] at start and drains it on its own task. A full queue drops the request (counted
//! as an error; the sender sees a failure and retries), so a flood from one kind never blocks the
//! swarm or another kind.

use bzzz_protocol::wire::{ContextRequest, JoinCluster, RaftRequest, RaftResponse, RpcResponse};
use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use tokio::sync::mpsc;

/// Queue of inbound context requests (the context service bounds their concurrency itself).
pub(crate) const CONTEXT_QUEUE: usize = 1024;
/// Queue of probe acknowledgements for the prober.
pub(crate) const PROBE_ACK_QUEUE: usize = 1024;
/// Queue of requests to join the Raft cluster (only the admin acts on them).
pub(crate) const JOIN_QUEUE: usize = 64;
/// Queue of inbound Raft RPCs for the consensus task.
pub(crate) const RAFT_QUEUE: usize = 1024;

/// A context-service request from a peer, answered with [`super::Client::respond_rpc`].
#[derive(Debug)]
pub struct InboundContext {
    /// Who sent it (authenticated by the transport).
    pub peer: PeerId,
    /// The request.
    pub request: ContextRequest,
    /// Where the answer goes.
    pub channel: ResponseChannel<RpcResponse>,
    /// Counts the request against its peer's quota until it is answered (dropped).
    pub(crate) ticket: crate::ratelimit::QuotaTicket,
}

/// A Raft RPC from a peer, answered with [`super::Client::respond_raft`].
#[derive(Debug)]
pub struct InboundRaft {
    /// Who sent it.
    pub peer: PeerId,
    /// The request.
    pub request: RaftRequest,
    /// Where the answer goes.
    pub channel: ResponseChannel<RaftResponse>,
    /// Counts the request against its peer's quota until it is answered (dropped).
    pub(crate) ticket: crate::ratelimit::QuotaTicket,
}

/// A peer acknowledged one of this node's health probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAck {
    /// Who acknowledged.
    pub from: PeerId,
    /// Which probe.
    pub probe_id: Vec<u8>,
}

/// A peer asks to join the Raft cluster.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Who asked.
    pub from: PeerId,
    /// Its node id and addresses.
    pub join: JoinCluster,
}

/// The receiving ends, one per kind; each service takes its own.
#[derive(Debug)]
pub struct Inbound {
    /// Context requests, for the context service.
    pub context: mpsc::Receiver<InboundContext>,
    /// Probe acknowledgements, for the prober.
    pub probe_acks: mpsc::Receiver<ProbeAck>,
    /// Join requests, for consensus.
    pub joins: mpsc::Receiver<JoinRequest>,
    /// Raft RPCs, for consensus.
    pub raft: mpsc::Receiver<InboundRaft>,
}

/// The sending ends, held by the event loop.
#[derive(Debug)]
pub(crate) struct InboundSenders {
    pub(crate) context: mpsc::Sender<InboundContext>,
    pub(crate) probe_acks: mpsc::Sender<ProbeAck>,
    pub(crate) joins: mpsc::Sender<JoinRequest>,
    pub(crate) raft: mpsc::Sender<InboundRaft>,
}

/// The bounded queues of every inbound kind.
pub(crate) fn channels() -> (InboundSenders, Inbound) {
    let (context_tx, context) = mpsc::channel(CONTEXT_QUEUE);
    let (probe_tx, probe_acks) = mpsc::channel(PROBE_ACK_QUEUE);
    let (join_tx, joins) = mpsc::channel(JOIN_QUEUE);
    let (raft_tx, raft) = mpsc::channel(RAFT_QUEUE);
    (
        InboundSenders {
            context: context_tx,
            probe_acks: probe_tx,
            joins: join_tx,
            raft: raft_tx,
        },
        Inbound {
            context,
            probe_acks,
            joins,
            raft,
        },
    )
}

/// What a [`RecordValidator`] says about a record a peer put with Kademlia `PUT_VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a record the validator knows: stored as any DHT record (it expires with its TTL).
    Ordinary,
    /// A valid record of the validator's kind: stored without expiry (its owner decides its life).
    Keep,
    /// Refused, with the reason (logged at debug; the validator counts it).
    Reject(String),
}

/// Decides which records peers may put into this node's DHT store. The network knows no record
/// format: the context service injects the validator of its records.
pub trait RecordValidator: Send + Sync + std::fmt::Debug + 'static {
    /// Judges the record `value` a peer put under `key`.
    fn validate(&self, key: &[u8], value: &[u8]) -> Verdict;
}
