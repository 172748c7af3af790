//! Voter management (an admin duty): promotes learners while there are fewer voters than
//! `election.max_voters`, and replaces a voter that has been unreachable for longer than
//! `election.dead_voter_timeout_ms` with a caught-up learner.
//!
//! "Unreachable" means lagging behind the admin's log. So that a silent cluster still shows who
//! is gone, the autopilot appends a `Noop` entry every quarter of the timeout: a live member
//! matches it within a heartbeat, a dead one falls behind and stays behind.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ChangeMembers;

use bzzz_storage::raft::{Command, Request};

use super::duties::DutyContext;
use crate::admission::Admission;

/// How often the autopilot looks at the cluster.
const TICK: Duration = Duration::from_millis(500);

/// Runs until `ctx.token` is cancelled. Only learners whose certificate gives the voter right
/// (`admission`) are promoted, whatever they sent.
pub(crate) async fn run(ctx: DutyContext, max_voters: usize, dead_after: Duration, admission: Arc<Admission>) {
    let mut unhealthy_since: HashMap<u64, Instant> = HashMap::new();
    let probe_every = (dead_after / 4).max(Duration::from_millis(250));
    let mut last_probe: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => return,
            _ = tick.tick() => {}
        }
        if last_probe.is_none_or(|t| t.elapsed() >= probe_every) {
            last_probe = Some(Instant::now());
            let write = ctx.raft.client_write(Request::new(Command::Noop, ctx.term));
            let started = Instant::now();
            let written = tokio::select! {
                _ = ctx.token.cancelled() => return,
                r = tokio::time::timeout(TICK, write) => r,
            };
            match written {
                Ok(Ok(_)) => ctx.metrics.commit_latency(started.elapsed().as_secs_f64()),
                Ok(Err(e)) => tracing::debug!(error = %e, "autopilot probe write failed"),
                Err(_) => tracing::debug!("autopilot probe write not committed within a tick"),
            }
        }
        let m = ctx.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners: BTreeSet<u64> = membership.learner_ids().collect();
        let last = m.last_log_index.unwrap_or(0);
        let matched = |id: u64| {
            m.replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index)
                .unwrap_or(0)
        };
        // A member within a few entries of the admin is keeping up.
        let healthy = |id: u64| id == ctx.node_id || matched(id) + 2 >= last;

        let now = Instant::now();
        for id in voters.iter().chain(learners.iter()) {
            if healthy(*id) {
                unhealthy_since.remove(id);
            } else {
                tracing::debug!(node_id = id, matched = matched(*id), last, "member is behind");
                unhealthy_since.entry(*id).or_insert(now);
            }
        }
        unhealthy_since.retain(|id, _| voters.contains(id) || learners.contains(id));

        let certified_voter = |id: u64| {
            membership
                .get_node(&id)
                .and_then(|n| n.peer_id.parse::<libp2p::PeerId>().ok())
                .is_some_and(|p| admission.voter_check(&p, None).is_ok())
        };
        let spare: Vec<u64> = learners
            .iter()
            .copied()
            .filter(|l| healthy(*l) && certified_voter(*l))
            .collect();
        let dead: Vec<u64> = voters
            .iter()
            .copied()
            .filter(|v| {
                unhealthy_since
                    .get(v)
                    .is_some_and(|t| now.duration_since(*t) >= dead_after)
            })
            .collect();

        let change = if let (Some(dead), Some(spare)) = (dead.first(), spare.first()) {
            // Replace one dead voter by one healthy learner: one change at a time.
            let mut next = voters.clone();
            next.remove(dead);
            next.insert(*spare);
            tracing::warn!(dead_voter = dead, replacement = spare, "replacing an unreachable voter");
            Some(ChangeMembers::ReplaceAllVoters(next))
        } else if voters.len() < max_voters && !spare.is_empty() {
            let add: BTreeSet<u64> = spare.iter().copied().take(max_voters - voters.len()).collect();
            tracing::info!(?add, "promoting learners to voters");
            Some(ChangeMembers::AddVoterIds(add))
        } else {
            None
        };
        if let Some(change) = change {
            // Demoted voters stay learners (retain = true) so they can come back as spares.
            let result = tokio::select! {
                _ = ctx.token.cancelled() => return,
                r = ctx.raft.change_membership(change, true) => r,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "membership change failed");
            }
        }
    }
}
