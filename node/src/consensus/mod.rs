//! Admin election: openraft among the admin-eligible nodes; the Raft leader is the admin.
//!
//! - Formation (`election.bootstrap_expect = N`): eligible nodes that are not Raft members
//!   announce themselves on `bzzz/admin/v1`; when N of them without a cluster see each other and no
//!   admin is known, each of the N lowest node ids initialises Raft with exactly those N as voters
//!   once that set has been stable for a second (openraft accepts identical initialisation on
//!   several nodes). A node with a persisted log never initialises again.
//! - Later eligible nodes ask the admin to join ([`JoinCluster`] over `/bzzz/rpc/1`); the admin
//!   adds them as learners and promotes them while there are fewer than `election.max_voters`.
//! - The admin publishes a signed [`AdminHeartbeat`] at once when elected, then every
//!   `election.heartbeat_interval_ms`. Every node (eligible or not) tracks the admin of the
//!   highest term it has heard from.
//! - Admin duties run only while this node is the leader ([`duties`]).
//! - Only certified voters take part (ADR 0013): Raft RPCs, pre-votes and join requests are
//!   accepted only from peers whose certificate gives the voter right and whose node id is their
//!   own (and, once a cluster exists, a voter of it: [`transport::answer_checked`]);
//!   announcements and heartbeats carry the sender's certificate chain and count only when it
//!   verifies as a voter's. A voter follows only the heartbeats of the leader its Raft knows.
//!   Every refusal is counted in `bzzz_consensus_refused_total{what,reason}`.

pub(crate) mod autopilot;
pub(crate) mod duties;
mod formation;
mod leadership;
pub(crate) mod metrics;
pub mod prevote;
pub mod transport;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bzzz_protocol::topics;
use bzzz_protocol::wire::{
    AdminHeartbeat, AdminMessage, EligibleAnnounce, JoinCluster, Kind, ReplicationSummary, RpcRequest, admin_message,
    rpc_request,
};
use bzzz_storage::Store;
use bzzz_storage::raft::typ::RaftMetrics;
use bzzz_storage::raft::{NodeInfo, SledLogStore, SledStateMachine, node_id_from_peer_bytes};
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;
use openraft::ServerState;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, VoterRefusal};
use crate::config::ElectionConfig;
use crate::network::{Client, GossipMessage, InboundRaft, JoinRequest, NetworkError};
pub use metrics::ElectionMetrics;
use metrics::{ElectionState, ErrorComponent, Refused, RefusedReason};
pub use transport::Raft;

/// Most eligible-node announcements remembered.
pub const MAX_ANNOUNCES: usize = 256;
/// How long an announcement counts as "this node is around".
const ANNOUNCE_TTL: Duration = Duration::from_secs(5);
/// How often the admin re-publishes the CA-signed revocation lists it holds.
const REVOCATION_REPUBLISH: Duration = Duration::from_secs(30);
/// How long the chosen initial voter set must stay the same before a node initialises with it.
const FORMATION_SETTLE: Duration = Duration::from_millis(1_000);

/// Why consensus could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The Raft storage could not be opened.
    #[error("raft storage: {0}")]
    Storage(#[from] bzzz_storage::StorageError),
    /// openraft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
    /// The network failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// The admin a node currently believes in.
#[derive(Debug, Clone)]
struct AdminSeen {
    node_id: u64,
    peer_id: String,
    term: u64,
    since_unix_ms: u64,
    last_heard: Instant,
    voters: Vec<u64>,
    learners: Vec<u64>,
    replication: Option<ReplicationSummary>,
}

/// What `/api/election/status` shows (the API's type).
pub use bzzz_client::types::{ElectionStatus, RaftRole};

struct Inner {
    node_id: u64,
    peer_id: PeerId,
    config: ElectionConfig,
    client: Client,
    raft: Option<Raft>,
    state_machine: Option<SledStateMachine>,
    admin: RwLock<Option<AdminSeen>>,
    announces: RwLock<HashMap<u64, (EligibleAnnounce, Instant)>>,
    metrics: ElectionMetrics,
    duties: duties::DutyRegistry,
    started: Instant,
    /// This node's last replication check, published in its heartbeats while admin.
    replication: RwLock<Option<ReplicationSummary>>,
    /// Certificates: who may vote, announce, join and be followed as admin.
    admission: Arc<Admission>,
}

/// Handle to the election subsystem. Cheap to clone.
#[derive(Clone)]
pub struct Consensus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

/// Everything [`Consensus::start`] needs.
pub struct StartArgs<'a> {
    /// Election settings.
    pub config: ElectionConfig,
    /// Network handle.
    pub client: Client,
    /// The node's database.
    pub store: &'a Store,
    /// The election's metrics.
    pub metrics: ElectionMetrics,
    /// Inbound Raft RPCs from the event loop.
    pub inbound: mpsc::Receiver<InboundRaft>,
    /// Requests to join the cluster (acted on while this node leads).
    pub joins: mpsc::Receiver<JoinRequest>,
    /// This node's P2P addresses (advertised in its node info).
    pub addrs: Vec<String>,
    /// Where tasks are spawned.
    pub tracker: TaskTracker,
    /// Stops every task.
    pub shutdown: CancellationToken,
    /// Duties to run while admin.
    pub duties: duties::DutyRegistry,
    /// Who is admitted and with which certificate: only certified voters take part.
    pub admission: Arc<Admission>,
}

impl std::fmt::Debug for StartArgs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartArgs")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// openraft's configuration for these election settings. Elections are started by bzzz's
/// pre-vote timer ([`prevote::campaign_loop`]), so openraft's own timer is off.
pub fn raft_config(config: &ElectionConfig) -> Result<openraft::Config, ConsensusError> {
    openraft::Config {
        cluster_name: "bzzz".into(),
        heartbeat_interval: config.raft_heartbeat_ms,
        election_timeout_min: config.election_timeout_min_ms,
        election_timeout_max: config.election_timeout_max_ms,
        enable_elect: false,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ConsensusError::Raft(e.to_string()))
}

/// Opens this voter's Raft log and state machine in `store` and starts its Raft core, sending
/// through `transport`; returns the Raft handle, the state machine and the [`prevote::Responder`]
/// that answers inbound RPCs. The daemon passes libp2p, the tests an in-memory router.
pub async fn start_voter<T: transport::RaftTransport>(
    node_id: u64,
    config: &ElectionConfig,
    store: &Store,
    transport: T,
) -> Result<(Raft, SledStateMachine, prevote::Responder), ConsensusError> {
    let log = SledLogStore::new(store)?;
    let sm = SledStateMachine::new(store)?;
    let raft = Raft::new(
        node_id,
        Arc::new(raft_config(config)?),
        transport::RaftNet::new(transport),
        log.clone(),
        sm.clone(),
    )
    .await
    .map_err(|e| ConsensusError::Raft(e.to_string()))?;
    let responder = prevote::Responder {
        raft: raft.clone(),
        log,
        lease: Duration::from_millis(config.election_timeout_max_ms),
    };
    Ok((raft, sm, responder))
}

fn refusal(r: VoterRefusal) -> RefusedReason {
    match r {
        VoterRefusal::NotCertified => RefusedReason::NotCertified,
        VoterRefusal::NotVoter => RefusedReason::NotVoter,
    }
}

impl Consensus {
    /// Starts Raft (if eligible) and the election tasks.
    pub async fn start(args: StartArgs<'_>) -> Result<Consensus, ConsensusError> {
        let peer_id = args.client.local_peer_id();
        let node_id = node_id_from_peer_bytes(&peer_id.to_bytes());
        let (raft, state_machine, responder) = if args.config.eligible {
            let (raft, sm, responder) = start_voter(
                node_id,
                &args.config,
                args.store,
                transport::Libp2pTransport(args.client.clone()),
            )
            .await?;
            (Some(raft), Some(sm), Some(responder))
        } else {
            (None, None, None)
        };
        let inner = Arc::new(Inner {
            node_id,
            peer_id,
            config: args.config.clone(),
            client: args.client.clone(),
            raft: raft.clone(),
            state_machine,
            admin: RwLock::new(None),
            announces: RwLock::new(HashMap::new()),
            metrics: args.metrics.clone(),
            duties: args.duties,
            started: Instant::now(),
            replication: RwLock::new(None),
            admission: args.admission.clone(),
        });
        let consensus = Consensus { inner };

        crate::logging::spawn(
            &args.tracker,
            "raft-inbound",
            transport::serve_inbound(
                args.client.clone(),
                responder.clone(),
                args.inbound,
                transport::RaftGate {
                    admission: args.admission.clone(),
                    metrics: args.metrics.clone(),
                },
                args.tracker.clone(),
                args.shutdown.clone(),
            ),
        );
        let admin_inbox = args
            .client
            .subscribe(topics::ADMIN, args.client.subscriber_queue())
            .await?;
        crate::logging::spawn(
            &args.tracker,
            "admin-topic",
            consensus.clone().listen_admin_topic(admin_inbox, args.shutdown.clone()),
        );

        if let Some(raft) = raft {
            let max_voters = args.config.max_voters as usize;
            let dead_after = Duration::from_millis(args.config.dead_voter_timeout_ms);
            let admission = args.admission.clone();
            consensus.inner.duties.register("voter-management", move |ctx| {
                autopilot::run(ctx, max_voters, dead_after, admission.clone())
            });
            let info = NodeInfo {
                peer_id: peer_id.to_string(),
                addrs: args.addrs,
            };
            crate::logging::spawn(
                &args.tracker,
                "formation",
                consensus
                    .clone()
                    .formation_loop(raft.clone(), info, args.shutdown.clone()),
            );
            if let Some(responder) = responder {
                let metrics = consensus.inner.metrics.clone();
                let campaign = prevote::Campaign {
                    node_id,
                    timeout_min: Duration::from_millis(args.config.election_timeout_min_ms),
                    timeout_max: Duration::from_millis(args.config.election_timeout_max_ms),
                    transport: transport::Libp2pTransport(args.client.clone()),
                    on_round: Arc::new(move |won| metrics.prevote_round(won)),
                };
                crate::logging::spawn(
                    &args.tracker,
                    "prevote",
                    prevote::campaign_loop(campaign, responder, args.shutdown.clone()),
                );
            }
            crate::logging::spawn(
                &args.tracker,
                "leadership",
                consensus
                    .clone()
                    .leadership_loop(raft.clone(), args.tracker.clone(), args.shutdown.clone()),
            );
            crate::logging::spawn(
                &args.tracker,
                "join-requests",
                consensus
                    .clone()
                    .join_loop(raft.clone(), args.joins, args.shutdown.clone()),
            );
            let shutdown = args.shutdown.clone();
            crate::logging::spawn(&args.tracker, "raft-shutdown", async move {
                shutdown.cancelled().await;
                if let Err(e) = raft.shutdown().await {
                    tracing::warn!(error = %e, "raft shutdown failed");
                }
            });
        } else {
            // Not a voter: join requests are never acted on here (the queue closes).
            drop(args.joins);
            consensus.inner.metrics.set_state(ElectionState::Observer, false);
        }
        Ok(consensus)
    }

    /// Whether these Raft metrics make this node the *acting* admin: the leader, acknowledged by a
    /// quorum within the lease (`election_timeout_max - raft_heartbeat`).
    ///
    /// openraft 0.9 measures the quorum acknowledgement from the time the acknowledged request was
    /// *sent*, and a follower refuses to vote for anyone for `election_timeout_max` (its leader
    /// lease) after it last accepted the leader's heartbeat, which arrived after that send time.
    /// So no other leader can exist until `election_timeout_max` after the acknowledged send; the
    /// admin stops acting one Raft heartbeat before that, the margin for clock-rate differences
    /// and for the moment between this check and what the admin does next.
    fn acting(&self, m: &RaftMetrics) -> bool {
        let lease = self
            .inner
            .config
            .election_timeout_max_ms
            .saturating_sub(self.inner.config.raft_heartbeat_ms);
        m.state == ServerState::Leader
            && m.current_leader == Some(self.inner.node_id)
            && m.millis_since_quorum_ack.is_some_and(|ms| ms < lease)
    }

    /// While this node is the acting admin (a quorum acknowledged it within the lease): the index
    /// of the last entry in its log. No other admin can commit anything before the lease ends, so
    /// once the state machine has applied this index a read of it is linearizable (a lease read,
    /// ADR 0007). `None` when this node is not the acting admin.
    pub fn lease_read_index(&self) -> Option<u64> {
        let raft = self.inner.raft.as_ref()?;
        let m = raft.metrics().borrow().clone();
        self.acting(&m).then(|| m.last_log_index.unwrap_or(0))
    }

    /// This node's Raft node id.
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// The Raft handle (eligible nodes only).
    pub fn raft(&self) -> Option<&Raft> {
        self.inner.raft.as_ref()
    }

    /// The replicated state machine (eligible nodes only).
    pub fn state_machine(&self) -> Option<&SledStateMachine> {
        self.inner.state_machine.as_ref()
    }
}
