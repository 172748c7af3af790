//! Pre-vote and the election timer, on top of openraft 0.9 (which has no pre-vote).
//!
//! openraft's own timer-driven elections are switched off (`Config::enable_elect = false`). In
//! their place, [`campaign_loop`] watches when this voter last accepted the leader (openraft's
//! vote "last modified" time, the basis of its leader lease) and, once that is older than the lease
//! (`election_timeout_max`) plus a random spread of up to `election_timeout_max -
//! election_timeout_min`, asks the other voters whether they would vote for it
//! ([`PreVoteRequest`]). Only when a majority says yes does it start a real election
//! (`raft.trigger().elect()`).
//!
//! A voter answers yes ([`answer`]) exactly when openraft would grant the vote, without changing
//! anything: it is not the leader, its leader lease has expired (it has not accepted the leader
//! for `election_timeout_max`), and the candidate's last log id is at least its own.
//!
//! Why: without pre-vote, a voter that restarts, or is cut off and comes back, times out, raises
//! the term and makes the healthy admin step down when its higher term reaches it. With pre-vote
//! such a node loses the pre-vote round and the term stays where it is. It also lets the timer be
//! tight: a would-be candidate that is early only loses a pre-vote round, which changes nothing.

use std::sync::Arc;
use std::time::Duration;

use bzzz_protocol::wire::{PreVoteRequest, PreVoteResponse, RaftRequest, raft_request, raft_response};
use bzzz_storage::codec;
use bzzz_storage::raft::SledLogStore;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::{Multiaddr, PeerId};
use openraft::storage::RaftLogStorage;
use openraft::{LogId, ServerState};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::transport::{Raft, RaftTransport};

/// What answers pre-vote requests on a Raft member.
#[derive(Clone)]
pub struct Responder {
    /// This node's Raft.
    pub raft: Raft,
    /// This node's log store (for its last log id).
    pub log: SledLogStore,
    /// The leader lease followers honour: `election_timeout_max`.
    pub lease: Duration,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// What a voter's election timer needs besides its [`Responder`].
#[derive(Clone)]
pub struct Campaign<T> {
    /// This node's Raft node id.
    pub node_id: u64,
    /// `election.election_timeout_min_ms`: the shortest wait before a pre-vote round.
    pub timeout_min: Duration,
    /// `election.election_timeout_max_ms`: waits are spread up to it.
    pub timeout_max: Duration,
    /// How pre-vote requests reach the other voters.
    pub transport: T,
    /// Called after each pre-vote round with whether it was won (the daemon counts them in
    /// `bzzz_election_prevote_rounds_total`).
    pub on_round: Arc<dyn Fn(bool) + Send + Sync>,
}

impl<T> std::fmt::Debug for Campaign<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaign")
            .field("node_id", &self.node_id)
            .field("timeout_min", &self.timeout_min)
            .field("timeout_max", &self.timeout_max)
            .finish_non_exhaustive()
    }
}

/// How often the campaign loop looks at the election timer.
const TICK: Duration = Duration::from_millis(5);

/// Whether openraft's vote is committed (granted to an established leader) and when it was last
/// refreshed by the leader; `None` when the Raft core has stopped.
async fn vote_state(raft: &Raft) -> Option<(bool, Option<Instant>)> {
    raft.with_raft_state(|st| (st.vote_ref().is_committed(), st.vote_last_modified()))
        .await
        .ok()
}

async fn last_log_id(log: &SledLogStore) -> Result<Option<LogId<u64>>, String> {
    let mut log = log.clone();
    log.get_log_state()
        .await
        .map(|s| s.last_log_id)
        .map_err(|e| e.to_string())
}

fn deny(reason: impl Into<String>) -> PreVoteResponse {
    PreVoteResponse {
        granted: false,
        reason: reason.into(),
    }
}

/// Answers a pre-vote request: granted exactly when openraft would grant this candidate a vote
/// now. Changes nothing.
pub async fn answer(responder: &Responder, request: PreVoteRequest) -> PreVoteResponse {
    let candidate_last: Option<LogId<u64>> = match codec::decode(&request.last_log_id) {
        Ok(l) => l,
        Err(e) => return deny(format!("undecodable last_log_id: {e}")),
    };
    if responder.raft.metrics().borrow().state == ServerState::Leader {
        return deny("this node is the leader");
    }
    let Some((committed, utime)) = vote_state(&responder.raft).await else {
        return deny("raft is shutting down");
    };
    if committed && let Some(t) = utime {
        let since = t.elapsed();
        if since <= responder.lease {
            return deny(format!("heard from the leader {} ms ago", since.as_millis()));
        }
    }
    match last_log_id(&responder.log).await {
        Ok(mine) if candidate_last >= mine => PreVoteResponse {
            granted: true,
            reason: String::new(),
        },
        Ok(mine) => deny(format!("candidate log {candidate_last:?} is behind {mine:?}")),
        Err(e) => deny(format!("cannot read the log: {e}")),
    }
}

/// Runs the election timer of a voter until `shutdown`: pre-vote, then elect.
pub async fn campaign_loop<T: RaftTransport>(campaign: Campaign<T>, responder: Responder, shutdown: CancellationToken) {
    let min = campaign.timeout_min;
    let spread = campaign.timeout_max.saturating_sub(min).as_millis() as u64;
    let jitter = || Duration::from_millis(rand::thread_rng().gen_range(0..=spread));
    let started = Instant::now();
    let mut wait_extra = jitter();
    let mut not_before = started;
    // The vote `not_before` was computed under; `None` holds until `not_before` whatever happens.
    // A deadline only moves later while the vote stays the same (the leader refreshes it), so
    // openraft's state is only asked again at the deadline or when the vote changes.
    let mut deadline_vote: Option<openraft::Vote<u64>> = None;
    let metrics = responder.raft.metrics();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let me = campaign.node_id;
        let (candidate_ok, vote, term) = {
            let m = metrics.borrow();
            let voter = m.membership_config.membership().voter_ids().any(|v| v == me);
            (m.state != ServerState::Leader && voter, m.vote, m.current_term)
        };
        if !candidate_ok {
            continue;
        }
        let now = Instant::now();
        if now < not_before && deadline_vote.is_none_or(|v| v == vote) {
            continue;
        }
        let Some((committed, utime)) = vote_state(&responder.raft).await else {
            return;
        };
        // Like openraft: a vote granted to a leader waits out its lease; a vote in an election that
        // has not produced a leader only waits a timeout. A node that has heard nothing since it
        // started counts from its start.
        let base = utime.map_or(started, |t| t.max(started));
        let wait = if committed {
            responder.lease + wait_extra
        } else {
            min + wait_extra
        };
        if now < base + wait {
            not_before = base + wait;
            deadline_vote = Some(vote);
            continue;
        }
        deadline_vote = None;
        let membership = metrics.borrow().membership_config.membership().clone();
        let won = pre_vote_round(&campaign, &responder, &membership, min).await;
        (campaign.on_round)(won);
        wait_extra = jitter();
        if won {
            tracing::info!(term, "pre-vote won; starting an election");
            if let Err(e) = responder.raft.trigger().elect().await {
                tracing::warn!(error = %e, "could not start an election");
            }
            // Give the election time to finish before asking again.
            not_before = Instant::now() + min + wait_extra;
        } else {
            // Others may still be inside their lease by a few ms; ask again soon.
            let retry = rand::thread_rng().gen_range(min.as_millis() as u64 / 8..=min.as_millis() as u64 / 4);
            not_before = Instant::now() + Duration::from_millis(retry.max(1));
        }
    }
}

/// Asks every other voter; true once a majority of voters (counting this one) would vote for it.
async fn pre_vote_round<T: RaftTransport>(
    campaign: &Campaign<T>,
    responder: &Responder,
    membership: &openraft::Membership<u64, bzzz_storage::raft::NodeInfo>,
    timeout: Duration,
) -> bool {
    let me = campaign.node_id;
    let voters: Vec<u64> = membership.voter_ids().collect();
    let needed = voters.len() / 2 + 1;
    let mut granted = 1; // this node
    if granted >= needed {
        return true;
    }
    let last = match last_log_id(&responder.log)
        .await
        .and_then(|l| codec::encode(&l).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "pre-vote skipped: cannot read the log");
            return false;
        }
    };
    let mut asks = FuturesUnordered::new();
    for id in voters.iter().copied().filter(|v| *v != me) {
        let Some(node) = membership.get_node(&id) else {
            continue;
        };
        let Ok(peer) = node.peer_id.parse::<PeerId>() else {
            continue;
        };
        let addrs: Vec<Multiaddr> = node.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        let request = RaftRequest {
            body: Some(raft_request::Body::PreVote(PreVoteRequest {
                candidate: me,
                last_log_id: last.clone(),
            })),
        };
        let transport = campaign.transport.clone();
        asks.push(async move {
            let answer = tokio::time::timeout(timeout, transport.send(peer, addrs, request)).await;
            (id, answer)
        });
    }
    while let Some((id, answer)) = asks.next().await {
        match answer {
            Ok(Ok(response)) => match response.body {
                Some(raft_response::Body::PreVote(r)) if r.granted => {
                    granted += 1;
                    if granted >= needed {
                        return true;
                    }
                }
                Some(raft_response::Body::PreVote(r)) => {
                    tracing::debug!(voter = id, reason = %r.reason, "pre-vote denied");
                }
                _ => tracing::debug!(voter = id, "pre-vote: unexpected answer"),
            },
            Ok(Err(e)) => tracing::debug!(voter = id, error = %e, "pre-vote: voter unreachable"),
            Err(_) => tracing::debug!(voter = id, "pre-vote: no answer in time"),
        }
    }
    false
}
