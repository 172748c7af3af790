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

pub mod autopilot;
pub mod duties;
pub mod metrics;
pub mod prevote;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bzzz_protocol::topics;
use bzzz_protocol::wire::{
    AdminHeartbeat, AdminMessage, EligibleAnnounce, JoinCluster, Kind, ReplicationSummary, RpcRequest, admin_message,
    rpc_request,
};
use bzzz_storage::Store;
use bzzz_storage::raft::{NodeInfo, SledLogStore, SledStateMachine, node_id_from_peer_bytes};
use libp2p::PeerId;
use openraft::ServerState;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ElectionConfig;
use crate::network::{Client, GossipMessage, InboundRaft, NetworkError};
pub use metrics::ElectionMetrics;
use metrics::{ElectionState, ErrorComponent};
pub use transport::Raft;

/// Most eligible-node announcements remembered.
pub const MAX_ANNOUNCES: usize = 256;
/// Queue of join requests waiting for the admin.
pub const JOIN_QUEUE: usize = 64;
/// How long an announcement counts as "this node is around".
const ANNOUNCE_TTL: Duration = Duration::from_secs(5);
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    /// This node's P2P addresses (advertised in its node info).
    pub addrs: Vec<String>,
    /// Where tasks are spawned.
    pub tracker: TaskTracker,
    /// Stops every task.
    pub shutdown: CancellationToken,
    /// Duties to run while admin.
    pub duties: duties::DutyRegistry,
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

impl Consensus {
    /// Starts Raft (if eligible) and the election tasks. Returns the join-request sender the
    /// node's event dispatcher feeds.
    pub async fn start(
        args: StartArgs<'_>,
    ) -> Result<(Consensus, mpsc::Sender<(PeerId, JoinCluster)>), ConsensusError> {
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
        });
        let consensus = Consensus { inner };

        args.tracker.spawn(transport::serve_inbound(
            args.client.clone(),
            responder.clone(),
            args.inbound,
            args.tracker.clone(),
            args.shutdown.clone(),
        ));
        let admin_inbox = args.client.subscribe(topics::ADMIN, 1024).await?;
        args.tracker
            .spawn(consensus.clone().listen_admin_topic(admin_inbox, args.shutdown.clone()));

        let (join_tx, join_rx) = mpsc::channel(JOIN_QUEUE);
        if let Some(raft) = raft {
            let max_voters = args.config.max_voters as usize;
            let dead_after = Duration::from_millis(args.config.dead_voter_timeout_ms);
            consensus.inner.duties.register("voter-management", move |ctx| {
                autopilot::run(ctx, max_voters, dead_after)
            });
            let info = NodeInfo {
                peer_id: peer_id.to_string(),
                addrs: args.addrs,
            };
            args.tracker.spawn(
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
                args.tracker
                    .spawn(prevote::campaign_loop(campaign, responder, args.shutdown.clone()));
            }
            args.tracker.spawn(consensus.clone().leadership_loop(
                raft.clone(),
                args.tracker.clone(),
                args.shutdown.clone(),
            ));
            args.tracker.spawn(
                consensus
                    .clone()
                    .join_loop(raft.clone(), join_rx, args.shutdown.clone()),
            );
            let shutdown = args.shutdown.clone();
            args.tracker.spawn(async move {
                shutdown.cancelled().await;
                if let Err(e) = raft.shutdown().await {
                    tracing::warn!(error = %e, "raft shutdown failed");
                }
            });
        } else {
            drop(join_rx);
            consensus.inner.metrics.set_state(ElectionState::Observer, false);
        }
        Ok((consensus, join_tx))
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
    fn acting(&self, m: &openraft::RaftMetrics<u64, NodeInfo>) -> bool {
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

    /// Whether an admin was heard from within the election-health window.
    pub fn admin_is_fresh(&self) -> bool {
        self.status()
            .last_heartbeat_ms_ago
            .is_some_and(|ms| ms <= self.admin_timeout().as_millis() as u64)
    }

    /// How long this node has been without a live admin: since the last heartbeat of the admin it
    /// knows, or since start if it never knew one. Zero on the acting admin.
    pub fn without_admin_for(&self) -> Duration {
        let s = self.status();
        match s.last_heartbeat_ms_ago {
            Some(ms) => Duration::from_millis(ms),
            None => self.inner.started.elapsed(),
        }
    }

    /// How long without an admin heartbeat before the admin counts as lost.
    pub fn admin_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.heartbeat_interval_ms * 3 + self.inner.config.election_timeout_max_ms)
    }

    /// The election as this node sees it.
    pub fn status(&self) -> ElectionStatus {
        let inner = &self.inner;
        let admin = inner.admin.read().ok().and_then(|a| a.clone());
        let raft_metrics = inner.raft.as_ref().map(|r| r.metrics().borrow().clone());
        let (state, is_leader, voters, learners, raft_term) = match &raft_metrics {
            Some(m) => {
                let membership = m.membership_config.membership();
                let voters: Vec<u64> = membership.voter_ids().collect();
                let learners: Vec<u64> = membership.learner_ids().collect();
                let state = match m.state {
                    ServerState::Leader => RaftRole::Leader,
                    ServerState::Candidate => RaftRole::Candidate,
                    ServerState::Follower if voters.contains(&inner.node_id) => RaftRole::Follower,
                    ServerState::Follower | ServerState::Learner => RaftRole::Learner,
                    ServerState::Shutdown => RaftRole::Shutdown,
                };
                (state, self.acting(m), voters, learners, m.current_term)
            }
            None => (
                RaftRole::Observer,
                false,
                admin.as_ref().map(|a| a.voters.clone()).unwrap_or_default(),
                admin.as_ref().map(|a| a.learners.clone()).unwrap_or_default(),
                0,
            ),
        };
        let (admin_peer, admin_id, term, since, ago) = match (&admin, is_leader) {
            (_, true) => (
                Some(inner.peer_id.to_string()),
                Some(inner.node_id),
                raft_term,
                admin
                    .as_ref()
                    .filter(|a| a.node_id == inner.node_id)
                    .map(|a| a.since_unix_ms),
                Some(0),
            ),
            (Some(a), false) => (
                Some(a.peer_id.clone()),
                Some(a.node_id),
                a.term.max(raft_term),
                Some(a.since_unix_ms),
                Some(a.last_heard.elapsed().as_millis() as u64),
            ),
            (None, false) => (None, None, raft_term, None, None),
        };
        ElectionStatus {
            admin: admin_peer,
            admin_node_id: admin_id,
            term,
            is_admin: is_leader,
            since,
            last_heartbeat_ms_ago: ago,
            voters,
            learners,
            state,
            node_id: inner.node_id,
            eligible: inner.raft.is_some(),
            eligible_seen: inner
                .announces
                .read()
                .map(|a| a.values().filter(|(_, at)| at.elapsed() < ANNOUNCE_TTL).count())
                .unwrap_or(0),
        }
    }

    /// Records this node's latest context replication check (the admin publishes it in its
    /// heartbeats).
    pub fn set_replication_summary(&self, summary: ReplicationSummary) {
        if let Ok(mut r) = self.inner.replication.write() {
            *r = Some(summary);
        }
    }

    /// The latest replication check of the current admin: this node's own while it is the admin,
    /// else the one the live admin published in its heartbeat.
    pub fn replication_summary(&self) -> Option<ReplicationSummary> {
        if self.status().is_admin {
            return self.inner.replication.read().ok().and_then(|r| *r);
        }
        if !self.admin_is_fresh() {
            return None;
        }
        self.inner
            .admin
            .read()
            .ok()
            .and_then(|a| a.as_ref().and_then(|a| a.replication))
    }

    /// Forces an election with this node as candidate. Fails on a node that is not eligible.
    pub async fn trigger_election(&self) -> Result<(), ConsensusError> {
        let raft = self
            .inner
            .raft
            .as_ref()
            .ok_or_else(|| ConsensusError::Raft("this node is not admin-eligible".into()))?;
        raft.trigger()
            .elect()
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))
    }

    fn record_admin(&self, hb: &AdminHeartbeat) {
        let Ok(mut admin) = self.inner.admin.write() else {
            return;
        };
        let newer = match admin.as_ref() {
            None => true,
            Some(a) => hb.term > a.term || (hb.term == a.term && hb.node_id == a.node_id),
        };
        if !newer {
            return;
        }
        let changed = admin
            .as_ref()
            .is_none_or(|a| a.node_id != hb.node_id || a.term != hb.term);
        let since = match admin.as_ref() {
            Some(a) if !changed => a.since_unix_ms,
            _ => now_ms(),
        };
        if changed {
            self.inner.metrics.leader_changed();
            tracing::info!(admin = %hb.peer_id, node_id = hb.node_id, term = hb.term, "admin changed");
        }
        *admin = Some(AdminSeen {
            node_id: hb.node_id,
            peer_id: hb.peer_id.clone(),
            term: hb.term,
            since_unix_ms: since,
            last_heard: Instant::now(),
            voters: hb.voters.clone(),
            learners: hb.learners.clone(),
            replication: hb.replication,
        });
        self.inner.metrics.set_term(hb.term);
    }

    async fn listen_admin_topic(self, mut inbox: mpsc::Receiver<GossipMessage>, shutdown: CancellationToken) {
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = inbox.recv() => match m { Some(m) => m, None => break },
            };
            if msg.kind != Kind::Admin {
                continue;
            }
            let Ok(admin) = AdminMessage::decode(msg.payload.as_slice()) else {
                self.inner.metrics.error(ErrorComponent::Election);
                continue;
            };
            match admin.body {
                // A heartbeat only counts from the node it names: the envelope is signed by
                // its sender, so nobody can speak for another admin.
                Some(admin_message::Body::Heartbeat(hb))
                    if hb.peer_id == msg.sender.to_string()
                        && hb.node_id == node_id_from_peer_bytes(&msg.sender.to_bytes()) =>
                {
                    self.record_admin(&hb);
                }
                Some(admin_message::Body::Announce(a))
                    if a.peer_id == msg.sender.to_string()
                        && a.node_id == node_id_from_peer_bytes(&msg.sender.to_bytes()) =>
                {
                    if let Ok(mut map) = self.inner.announces.write() {
                        map.retain(|_, (_, at)| at.elapsed() < ANNOUNCE_TTL);
                        if map.len() < MAX_ANNOUNCES || map.contains_key(&a.node_id) {
                            map.insert(a.node_id, (a, Instant::now()));
                        }
                    }
                }
                _ => self.inner.metrics.error(ErrorComponent::Election),
            }
        }
    }

    /// Announces this node while it is not a member; initialises the cluster or asks to join.
    async fn formation_loop(self, raft: Raft, info: NodeInfo, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.inner.config.heartbeat_interval_ms.min(500));
        let mut tick = tokio::time::interval(interval);
        let mut last_join_request: Option<Instant> = None;
        // The voter set this node would initialise with, and since when it has not changed.
        let mut choice: Option<(Vec<u64>, Instant)> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let m = raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            let is_member = membership.get_node(&self.inner.node_id).is_some();
            if is_member {
                continue;
            }
            let initialized = raft.is_initialized().await.unwrap_or(true);
            let announce = EligibleAnnounce {
                node_id: self.inner.node_id,
                peer_id: info.peer_id.clone(),
                addrs: info.addrs.clone(),
                has_cluster: initialized,
                bootstrap_expect: self.inner.config.bootstrap_expect,
            };
            let payload = AdminMessage {
                body: Some(admin_message::Body::Announce(announce)),
            }
            .encode_to_vec();
            if let Err(e) = self.inner.client.publish(topics::ADMIN, Kind::Admin, payload).await {
                tracing::debug!(error = %e, "eligible announcement not published");
            }

            let admin = self.inner.admin.read().ok().and_then(|a| a.clone());
            let fresh_admin = admin.filter(|a| a.last_heard.elapsed() < self.admin_timeout());
            if let Some(admin) = fresh_admin {
                if last_join_request.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                    && let Ok(peer) = admin.peer_id.parse::<PeerId>()
                {
                    last_join_request = Some(Instant::now());
                    let request = RpcRequest {
                        body: Some(rpc_request::Body::JoinCluster(JoinCluster {
                            node_id: self.inner.node_id,
                            peer_id: info.peer_id.clone(),
                            addrs: info.addrs.clone(),
                        })),
                    };
                    if let Err(e) = self.inner.client.send_rpc(peer, request).await {
                        tracing::debug!(error = %e, "join request to the admin failed");
                    }
                }
                continue;
            }
            if initialized {
                continue;
            }
            let expect = self.inner.config.bootstrap_expect as usize;
            let mut candidates: BTreeMap<u64, NodeInfo> = BTreeMap::new();
            candidates.insert(self.inner.node_id, info.clone());
            if let Ok(map) = self.inner.announces.read() {
                for (id, (a, at)) in map.iter() {
                    if !a.has_cluster && at.elapsed() < ANNOUNCE_TTL {
                        candidates.insert(
                            *id,
                            NodeInfo {
                                peer_id: a.peer_id.clone(),
                                addrs: a.addrs.clone(),
                            },
                        );
                    }
                }
            }
            if candidates.len() < expect {
                continue;
            }
            // Every node computes the same set once they all see each other: the `expect` lowest
            // ids. Each member of that set initialises with it once it has been stable for
            // FORMATION_SETTLE; openraft accepts initialisation on several nodes with an
            // identical membership, so views that agree cannot form two clusters.
            let members: BTreeMap<u64, NodeInfo> = candidates.into_iter().take(expect).collect();
            let ids: Vec<u64> = members.keys().copied().collect();
            let stable_since = match &choice {
                Some((c, since)) if *c == ids => *since,
                _ => {
                    choice = Some((ids.clone(), Instant::now()));
                    Instant::now()
                }
            };
            if !ids.contains(&self.inner.node_id) || stable_since.elapsed() < FORMATION_SETTLE {
                continue;
            }
            tracing::info!(voters = ?ids, "initialising the raft cluster");
            if let Err(e) = raft.initialize(members).await {
                tracing::warn!(error = %e, "cluster initialisation failed");
            }
        }
    }

    /// Follows Raft leadership: publishes heartbeats and runs duties while leader.
    async fn leadership_loop(self, raft: Raft, tracker: TaskTracker, shutdown: CancellationToken) {
        let mut metrics_rx = raft.metrics();
        let mut leading: Option<(u64, CancellationToken)> = None;
        // Metrics do not change while a leader is cut off, so the lease is also checked on a timer.
        let mut lease_check = tokio::time::interval(Duration::from_millis(self.inner.config.raft_heartbeat_ms));
        lease_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let m = metrics_rx.borrow_and_update().clone();
            let is_leader = self.acting(&m);
            let state = match m.state {
                ServerState::Leader => ElectionState::Leader,
                ServerState::Candidate => ElectionState::Candidate,
                ServerState::Follower
                    if m.membership_config
                        .membership()
                        .voter_ids()
                        .any(|v| v == self.inner.node_id) =>
                {
                    ElectionState::Follower
                }
                _ => ElectionState::Learner,
            };
            self.inner.metrics.set_state(state, is_leader);
            self.inner.metrics.raise_term(m.current_term);
            match (&leading, is_leader) {
                (Some((term, token)), true) if *term != m.current_term => {
                    token.cancel();
                    leading = Some(self.begin_leadership(&raft, m.current_term, &tracker, &shutdown));
                }
                (None, true) => {
                    leading = Some(self.begin_leadership(&raft, m.current_term, &tracker, &shutdown));
                }
                (Some((term, token)), false) => {
                    if m.state == ServerState::Leader && m.current_term == *term {
                        // Still leader, but no quorum acknowledged it within the lease.
                        self.inner.metrics.lease_lapsed();
                        tracing::warn!(
                            term,
                            millis_since_quorum_ack = ?m.millis_since_quorum_ack,
                            "admin lease lapsed (no quorum acknowledgement); stopping admin duties"
                        );
                    }
                    tracing::info!(term, "no longer admin; stopping admin duties");
                    token.cancel();
                    leading = None;
                }
                _ => {}
            }
            if let Some(lag) = m.replication.as_ref() {
                for (follower, matched) in lag {
                    let behind = m
                        .last_log_index
                        .unwrap_or(0)
                        .saturating_sub(matched.map(|l| l.index).unwrap_or(0));
                    self.inner.metrics.replication_lag(*follower, behind);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = metrics_rx.changed() => if r.is_err() { break },
                _ = lease_check.tick() => {}
            }
        }
        if let Some((_, token)) = leading {
            token.cancel();
        }
    }

    fn begin_leadership(
        &self,
        raft: &Raft,
        term: u64,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> (u64, CancellationToken) {
        tracing::info!(term, node_id = self.inner.node_id, "this node is now the admin");
        let token = shutdown.child_token();
        // Heartbeats: at once, then every interval, until leadership ends.
        {
            let me = self.clone();
            let raft = raft.clone();
            let token = token.clone();
            tracker.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(me.inner.config.heartbeat_interval_ms));
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => me.publish_heartbeat(&raft, term).await,
                    }
                }
            });
        }
        self.inner.duties.start_all(
            duties::DutyContext {
                term,
                node_id: self.inner.node_id,
                raft: raft.clone(),
                client: self.inner.client.clone(),
                token: token.clone(),
                metrics: self.inner.metrics.clone(),
            },
            tracker,
        );
        (term, token)
    }

    async fn publish_heartbeat(&self, raft: &Raft, term: u64) {
        let m = raft.metrics().borrow().clone();
        if m.current_term != term || !self.acting(&m) {
            return; // leadership moved on or lapsed; the loop stops us
        }
        let membership = m.membership_config.membership();
        let hb = AdminHeartbeat {
            term,
            node_id: self.inner.node_id,
            peer_id: self.inner.peer_id.to_string(),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            committed_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            replication: self.inner.replication.read().ok().and_then(|r| *r),
        };
        self.record_admin(&hb);
        let payload = AdminMessage {
            body: Some(admin_message::Body::Heartbeat(hb)),
        }
        .encode_to_vec();
        if let Err(e) = self.inner.client.publish(topics::ADMIN, Kind::Admin, payload).await {
            tracing::debug!(error = %e, "admin heartbeat not published");
        }
    }

    /// On the admin: adds joining eligible nodes as learners (the voter-management duty
    /// promotes them).
    async fn join_loop(
        self,
        raft: Raft,
        mut requests: mpsc::Receiver<(PeerId, JoinCluster)>,
        shutdown: CancellationToken,
    ) {
        loop {
            let (from, join) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = requests.recv() => match r { Some(r) => r, None => break },
            };
            // The id must be the sender's own: nobody can enrol another node.
            if join.peer_id != from.to_string() || join.node_id != node_id_from_peer_bytes(&from.to_bytes()) {
                self.inner.metrics.error(ErrorComponent::Election);
                continue;
            }
            let m = raft.metrics().borrow().clone();
            if m.current_leader != Some(self.inner.node_id) {
                continue;
            }
            let membership = m.membership_config.membership().clone();
            let info = NodeInfo {
                peer_id: join.peer_id.clone(),
                addrs: join.addrs.iter().take(8).cloned().collect(),
            };
            if membership.get_node(&join.node_id).is_none() {
                tracing::info!(node_id = join.node_id, peer = %from, "adding learner");
                if let Err(e) = raft.add_learner(join.node_id, info, true).await {
                    tracing::warn!(node_id = join.node_id, error = %e, "add learner failed");
                    continue;
                }
            }
            // Promotion to voter is the voter-management duty's job (autopilot).
        }
    }
}
