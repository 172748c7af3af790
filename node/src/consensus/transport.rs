//! openraft's network over a [`RaftTransport`]: outbound RPCs (openraft's and pre-votes) go
//! through the transport; inbound ones are answered by [`answer_request`] from the local
//! [`Raft`]. The daemon's transport is libp2p request-response ([`Libp2pTransport`], inbound RPCs
//! served by [`serve_inbound`]); the tests' is an in-memory router (`bzzz_tests::raft_router`)
//! that can make nodes unreachable or slow, as openraft's own test fixtures do.
//!
//! Framing is prost ([`RaftRequest`]/[`RaftResponse`]); each body is openraft's own serde type
//! encoded with the storage codec. Transport failures (no connection, dial failure, timeout) map
//! to openraft's `Unreachable`, which makes it back off; undecodable answers map to `Network`;
//! errors the remote Raft returned map to `RemoteError`, as in openraft's examples.

// openraft's traits fix the (large) error types; boxing them here would only unbox again.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::sync::Arc;

use bzzz_protocol::wire::{RaftFailure, RaftRequest, RaftResponse, raft_request, raft_response};
use bzzz_storage::codec;
use bzzz_storage::raft::{NodeInfo, TypeConfig, node_id_from_peer_bytes};
use libp2p::{Multiaddr, PeerId};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::metrics::{ElectionMetrics, Refused, RefusedReason};
use super::prevote::Responder;
use crate::admission::{Admission, VoterRefusal};
use crate::network::{Client, InboundRaft};

/// Who may send this node Raft RPCs: peers whose certificate gives the voter right (checked
/// here), claiming their own node id and voters of the current membership (checked by
/// [`answer_checked`]); refusals are counted.
#[derive(Clone, Debug)]
pub(crate) struct RaftGate {
    pub(crate) admission: Arc<Admission>,
    pub(crate) metrics: ElectionMetrics,
}

pub use bzzz_storage::raft::Raft;

/// Why a Raft RPC got no answer: the peer is unreachable, the connection failed or timed out,
/// or the node is shutting down. openraft backs off from an unreachable peer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// How this node's Raft RPCs (openraft's and pre-votes) reach another voter, by peer id and the
/// addresses the membership records for it. Cheap to clone.
pub trait RaftTransport: Clone + Send + Sync + 'static {
    /// Sends `request` to `peer` and waits for its answer. Cancel-safe: dropping the future
    /// abandons the request.
    fn send(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RaftRequest,
    ) -> impl Future<Output = Result<RaftResponse, TransportError>> + Send;
}

/// The daemon's transport: libp2p request-response on `/bzzz/raft/1`, through the event loop.
#[derive(Clone, Debug)]
pub struct Libp2pTransport(pub Client);

impl RaftTransport for Libp2pTransport {
    async fn send(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RaftRequest,
    ) -> Result<RaftResponse, TransportError> {
        self.0
            .send_raft(peer, addrs, request)
            .await
            .map_err(|e| TransportError(e.to_string()))
    }
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<u64, NodeInfo, RaftError<u64, E>>>;

/// Most inbound Raft RPCs handled at once; more wait in the event loop's bounded queue.
pub const MAX_INBOUND_IN_FLIGHT: usize = 64;

/// openraft's network factory: creates a [`RaftPeer`] per target, sending through `T`.
#[derive(Clone, Debug)]
pub struct RaftNet<T> {
    transport: T,
}

impl<T: RaftTransport> RaftNet<T> {
    /// A factory sending through `transport`.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }
}

impl<T: RaftTransport> RaftNetworkFactory<TypeConfig> for RaftNet<T> {
    type Network = RaftPeer<T>;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> RaftPeer<T> {
        RaftPeer {
            transport: self.transport.clone(),
            target,
            peer: node.peer_id.parse().ok(),
            addrs: node.addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            node: node.clone(),
        }
    }
}

/// The connection to one Raft peer.
#[derive(Debug)]
pub struct RaftPeer<T> {
    transport: T,
    target: u64,
    peer: Option<PeerId>,
    addrs: Vec<Multiaddr>,
    node: NodeInfo,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl<T: RaftTransport> RaftPeer<T> {
    async fn call<E>(
        &self,
        request: raft_request::Body,
    ) -> Result<raft_response::Body, RPCError<u64, NodeInfo, RaftError<u64, E>>>
    where
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let Some(peer) = self.peer else {
            return Err(RPCError::Unreachable(Unreachable::new(&Msg(format!(
                "node {} has no valid peer id `{}`",
                self.target, self.node.peer_id
            )))));
        };
        let response = self
            .transport
            .send(peer, self.addrs.clone(), RaftRequest { body: Some(request) })
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        match response.body {
            Some(raft_response::Body::Failure(f)) if f.kind == "raft" => {
                let err: RaftError<u64, E> =
                    codec::decode(&f.detail).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
                Err(RPCError::RemoteError(RemoteError::new_with_node(
                    self.target,
                    self.node.clone(),
                    err,
                )))
            }
            Some(raft_response::Body::Failure(f)) => Err(RPCError::Unreachable(Unreachable::new(&Msg(format!(
                "node {} cannot serve raft: {} ({})",
                self.target, f.message, f.kind
            ))))),
            Some(body) => Ok(body),
            None => Err(RPCError::Network(NetworkError::new(&Msg("empty raft response".into())))),
        }
    }
}

fn encode<T: serde::Serialize, E: std::error::Error>(
    v: &T,
) -> Result<Vec<u8>, RPCError<u64, NodeInfo, RaftError<u64, E>>> {
    codec::encode(v).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

fn decode<T: serde::de::DeserializeOwned, E: std::error::Error>(
    b: &[u8],
) -> Result<T, RPCError<u64, NodeInfo, RaftError<u64, E>>> {
    codec::decode(b).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

fn unexpected<E: std::error::Error>() -> RPCError<u64, NodeInfo, RaftError<u64, E>> {
    RPCError::Network(NetworkError::new(&Msg("raft response of the wrong kind".into())))
}

impl<T: RaftTransport> RaftNetwork<TypeConfig> for RaftPeer<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match self.call(raft_request::Body::AppendEntries(encode(&rpc)?)).await? {
            raft_response::Body::AppendEntries(b) => decode(&b),
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self.call(raft_request::Body::InstallSnapshot(encode(&rpc)?)).await? {
            raft_response::Body::InstallSnapshot(b) => decode(&b),
            _ => Err(unexpected()),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, _option: RPCOption) -> RpcResult<VoteResponse<u64>> {
        match self.call(raft_request::Body::Vote(encode(&rpc)?)).await? {
            raft_response::Body::Vote(b) => decode(&b),
            _ => Err(unexpected()),
        }
    }
}

fn failure(kind: &str, detail: Vec<u8>, message: String) -> RaftResponse {
    RaftResponse {
        body: Some(raft_response::Body::Failure(RaftFailure {
            kind: kind.into(),
            detail,
            message,
        })),
    }
}

fn answer<T: serde::Serialize, E: serde::Serialize + std::fmt::Display>(
    result: Result<T, E>,
    wrap: fn(Vec<u8>) -> raft_response::Body,
) -> RaftResponse {
    match result {
        Ok(v) => match codec::encode(&v) {
            Ok(b) => RaftResponse { body: Some(wrap(b)) },
            Err(e) => failure("decode", Vec::new(), e.to_string()),
        },
        Err(e) => failure("raft", codec::encode(&e).unwrap_or_default(), e.to_string()),
    }
}

/// Largest snapshot a peer may send, in bytes: a chunk whose end lies beyond it is refused
/// before openraft allocates a buffer up to its offset. The replicated state (members, role
/// policy, sealed keys, the context index) is far below this.
pub const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

/// Answers one inbound Raft RPC from `from` with this node's Raft (pre-votes by
/// [`super::prevote::answer`]); a node that is not a Raft member (`None`) refuses it, and so does
/// [`answer_checked`]'s sender check.
pub async fn answer_request(responder: Option<&Responder>, from: &PeerId, request: RaftRequest) -> RaftResponse {
    match answer_checked(responder, from, request).await {
        Ok(r) => r,
        Err(reason) => forbidden(reason),
    }
}

fn forbidden(reason: RefusedReason) -> RaftResponse {
    failure(
        "forbidden",
        Vec::new(),
        format!("refused: {}", crate::metrics::LabelValue::as_str(reason)),
    )
}

/// Checks that the node id a Raft RPC claims as its sender (the leader of an append or a
/// snapshot, the candidate of a vote or pre-vote) is `from`'s own, and, once this node belongs to
/// a cluster, a voter of its current membership; then answers it. A removed voter, a learner and
/// a node claiming another's id are refused before openraft sees the request.
pub(crate) async fn answer_checked(
    responder: Option<&Responder>,
    from: &PeerId,
    request: RaftRequest,
) -> Result<RaftResponse, RefusedReason> {
    let Some(responder) = responder else {
        return Ok(failure(
            "unavailable",
            Vec::new(),
            "this node is not a raft member".into(),
        ));
    };
    let raft = &responder.raft;
    let check = |claimed: Option<u64>| -> Result<(), RefusedReason> {
        let own = node_id_from_peer_bytes(&from.to_bytes());
        if claimed != Some(own) {
            return Err(RefusedReason::NodeIdMismatch);
        }
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let initialised = membership.voter_ids().next().is_some();
        if initialised && !membership.voter_ids().any(|v| v == own) {
            return Err(RefusedReason::NotMember);
        }
        Ok(())
    };
    Ok(match request.body {
        Some(raft_request::Body::PreVote(req)) => {
            check(Some(req.candidate))?;
            RaftResponse {
                body: Some(raft_response::Body::PreVote(
                    super::prevote::answer(responder, req).await,
                )),
            }
        }
        Some(raft_request::Body::AppendEntries(b)) => match codec::decode::<AppendEntriesRequest<TypeConfig>>(&b) {
            Ok(req) => {
                check(req.vote.leader_id().voted_for())?;
                answer(raft.append_entries(req).await, raft_response::Body::AppendEntries)
            }
            Err(e) => failure("decode", Vec::new(), e.to_string()),
        },
        Some(raft_request::Body::Vote(b)) => match codec::decode::<VoteRequest<u64>>(&b) {
            Ok(req) => {
                check(req.vote.leader_id().voted_for())?;
                answer(raft.vote(req).await, raft_response::Body::Vote)
            }
            Err(e) => failure("decode", Vec::new(), e.to_string()),
        },
        Some(raft_request::Body::InstallSnapshot(b)) => match codec::decode::<InstallSnapshotRequest<TypeConfig>>(&b) {
            Ok(req) => {
                check(req.vote.leader_id().voted_for())?;
                let end = req.offset.checked_add(req.data.len() as u64);
                if end.is_none_or(|end| end > MAX_SNAPSHOT_BYTES) {
                    return Err(RefusedReason::TooLarge);
                }
                answer(raft.install_snapshot(req).await, raft_response::Body::InstallSnapshot)
            }
            Err(e) => failure("decode", Vec::new(), e.to_string()),
        },
        None => failure("decode", Vec::new(), "empty or unknown raft request".into()),
    })
}

/// Serves inbound Raft RPCs until `shutdown`: each is handed to the responder's Raft (pre-votes
/// are answered by [`super::prevote::answer`]), or refused when this node is not a member, and
/// answered through the event loop.
pub(crate) async fn serve_inbound(
    client: Client,
    responder: Option<Responder>,
    mut inbound: mpsc::Receiver<InboundRaft>,
    gate: RaftGate,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_INBOUND_IN_FLIGHT));
    loop {
        let rpc = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = inbound.recv() => match r { Some(r) => r, None => break },
        };
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let client = client.clone();
        let responder = responder.clone();
        let gate = gate.clone();
        crate::logging::spawn(&tracker, "raft-rpc", async move {
            let _permit = permit;
            // The sender's quota slot is held until the answer is sent.
            let _ticket = rpc.ticket;
            let started = std::time::Instant::now();
            let checked = match gate.admission.voter_check(&rpc.peer, None) {
                Ok(()) => answer_checked(responder.as_ref(), &rpc.peer, rpc.request).await,
                Err(VoterRefusal::NotCertified) => Err(RefusedReason::NotCertified),
                Err(VoterRefusal::NotVoter) => Err(RefusedReason::NotVoter),
            };
            let response = checked.unwrap_or_else(|reason| {
                gate.metrics.refused(Refused::RaftRpc, reason);
                tracing::debug!(peer = %rpc.peer, reason = crate::metrics::LabelValue::as_str(reason), "refused a raft rpc");
                forbidden(reason)
            });
            if started.elapsed() > std::time::Duration::from_millis(100) {
                tracing::warn!(peer = %rpc.peer, took_ms = started.elapsed().as_millis() as u64, "slow inbound raft rpc");
            }
            if client.respond_raft(rpc.channel, response).await.is_err() {
                tracing::debug!(peer = %rpc.peer, "raft response not sent: network shut down");
            }
        });
    }
}
