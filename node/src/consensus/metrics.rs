//! [`ElectionMetrics`]: the election's state, term and admin changes, pre-vote rounds, the
//! admin lease, Raft commit latency and follower lag, built from the registry at start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::metrics::{ErrorFamily, Errors, LabelValue, label_enum, latency_histogram, precreate};

label_enum! {
    /// `component` values of `bzzz_errors_total` counted by the election.
    pub enum ErrorComponent {
        /// A malformed or forged admin message, or a forged join request.
        Election => "election",
    }
}

label_enum! {
    /// `outcome` of `bzzz_election_prevote_rounds_total`.
    pub(crate) enum PrevoteOutcome {
        /// A majority granted the pre-vote: the election went ahead.
        Won => "won",
        /// No majority: no election.
        Lost => "lost",
    }
}

label_enum! {
    /// `what` of `bzzz_consensus_refused_total`: the consensus input refused.
    pub(crate) enum Refused {
        /// A Raft RPC (append entries, vote, install snapshot, pre-vote).
        RaftRpc => "raft_rpc",
        /// A request to join the cluster.
        Join => "join",
        /// An eligible node's formation announcement.
        Announce => "announce",
        /// An admin heartbeat.
        Heartbeat => "heartbeat",
    }
}

label_enum! {
    /// `reason` of `bzzz_consensus_refused_total`.
    pub(crate) enum RefusedReason {
        /// The sender holds no valid certificate of this cluster.
        NotCertified => "not_certified",
        /// The sender's certificate does not give the voter right.
        NotVoter => "not_voter",
        /// The node id the message claims is not the sender's own.
        NodeIdMismatch => "node_id_mismatch",
        /// The sender is not a voter of this node's current membership.
        NotMember => "not_member",
        /// A snapshot chunk beyond the size bound.
        TooLarge => "too_large",
        /// A heartbeat from another node than the leader Raft knows.
        NotLeader => "not_leader",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    what: Refused,
    reason: RefusedReason,
}

/// The (what, reason) series of `bzzz_consensus_refused_total`.
fn refused_series() -> Vec<RefusedLabels> {
    use RefusedReason::*;
    let mut out = Vec::new();
    for &what in Refused::ALL {
        let reasons: &[RefusedReason] = match what {
            Refused::RaftRpc => &[NotCertified, NotVoter, NodeIdMismatch, NotMember, TooLarge],
            Refused::Join => &[NotCertified, NotVoter, NodeIdMismatch],
            Refused::Announce => &[NotCertified, NotVoter, NodeIdMismatch],
            Refused::Heartbeat => &[NotCertified, NotVoter, NodeIdMismatch, NotLeader],
        };
        out.extend(reasons.iter().map(|&reason| RefusedLabels { what, reason }));
    }
    out
}

/// The values of `bzzz_election_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionState {
    /// Not admin-eligible.
    Observer,
    /// An eligible node not yet a voter.
    Learner,
    /// A voter following the leader.
    Follower,
    /// A voter campaigning.
    Candidate,
    /// The leader (the acting admin).
    Leader,
}

impl ElectionState {
    /// Every state, in gauge order.
    pub const ALL: [ElectionState; 5] = [
        ElectionState::Observer,
        ElectionState::Learner,
        ElectionState::Follower,
        ElectionState::Candidate,
        ElectionState::Leader,
    ];

    /// The gauge value: 0 observer … 4 leader.
    pub fn value(self) -> i64 {
        match self {
            ElectionState::Observer => 0,
            ElectionState::Learner => 1,
            ElectionState::Follower => 2,
            ElectionState::Candidate => 3,
            ElectionState::Leader => 4,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrevoteLabel {
    outcome: PrevoteOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabel {
    follower: String,
}

/// The election's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ElectionMetrics {
    state: Gauge,
    term: Gauge,
    leader_changes: Counter,
    admin_is_self: Gauge,
    lease_lapses: Counter,
    prevote_rounds: Family<PrevoteLabel, Counter>,
    commit_latency: Histogram,
    replication_lag: Family<FollowerLabel, Gauge>,
    refused: Family<RefusedLabels, Counter>,
    errors: Errors<ErrorComponent>,
}

impl ElectionMetrics {
    /// Registers the election's families in `registry` and pre-creates their series (follower
    /// lag has one series per follower, created when the admin first sees it).
    pub fn new(registry: &mut Registry, errors: &ErrorFamily) -> Self {
        let m = ElectionMetrics {
            state: Gauge::default(),
            term: Gauge::default(),
            leader_changes: Counter::default(),
            admin_is_self: Gauge::default(),
            lease_lapses: Counter::default(),
            prevote_rounds: Family::default(),
            commit_latency: latency_histogram(),
            replication_lag: Family::default(),
            refused: Family::default(),
            errors: errors.scoped(),
        };
        let r = registry;
        r.register(
            "bzzz_election_state",
            "Election state of this node: 0 observer (not eligible), 1 learner, 2 follower, 3 candidate, 4 leader",
            m.state.clone(),
        );
        r.register(
            "bzzz_election_term",
            "Highest Raft term this node knows",
            m.term.clone(),
        );
        r.register(
            "bzzz_election_leader_changes",
            "Admin changes observed by this node",
            m.leader_changes.clone(),
        );
        r.register(
            "bzzz_admin_is_self",
            "1 while this node is the admin, else 0",
            m.admin_is_self.clone(),
        );
        r.register(
            "bzzz_admin_lease_lapses",
            "Times this node, still Raft leader, stopped acting as admin for lack of a quorum acknowledgement",
            m.lease_lapses.clone(),
        );
        r.register(
            "bzzz_election_prevote_rounds",
            "Pre-vote rounds this node ran before starting an election, by outcome (won, lost)",
            m.prevote_rounds.clone(),
        );
        r.register(
            "bzzz_raft_commit_latency_seconds",
            "Time from proposing a Raft command to its commit, in seconds",
            m.commit_latency.clone(),
        );
        r.register(
            "bzzz_raft_replication_lag_entries",
            "On the admin: log entries each follower is behind",
            m.replication_lag.clone(),
        );
        r.register(
            "bzzz_consensus_refused",
            "Consensus inputs refused before Raft or the election saw them, by what (raft_rpc, join, announce, heartbeat) and reason",
            m.refused.clone(),
        );
        precreate(&m.refused, refused_series());
        precreate(
            &m.prevote_rounds,
            PrevoteOutcome::ALL.iter().map(|&outcome| PrevoteLabel { outcome }),
        );
        m
    }

    /// Counts an error of `component`.
    pub fn error(&self, component: ErrorComponent) {
        self.errors.inc(component);
    }

    /// Counts a refused consensus input.
    pub(crate) fn refused(&self, what: Refused, reason: RefusedReason) {
        self.refused.get_or_create(&RefusedLabels { what, reason }).inc();
    }

    /// Sets this node's election state and whether it is the acting admin.
    pub fn set_state(&self, state: ElectionState, acting_admin: bool) {
        self.state.set(state.value());
        self.admin_is_self.set(i64::from(acting_admin));
    }

    /// Sets the highest known term to `term` (a heartbeat's).
    pub fn set_term(&self, term: u64) {
        self.term.set(term as i64);
    }

    /// Raises the highest known term to `term` if it is higher.
    pub fn raise_term(&self, term: u64) {
        if term as i64 > self.term.get() {
            self.term.set(term as i64);
        }
    }

    /// Counts an admin change.
    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// Counts an admin lease lapse.
    pub fn lease_lapsed(&self) {
        self.lease_lapses.inc();
    }

    /// Counts a pre-vote round: won or lost.
    pub fn prevote_round(&self, won: bool) {
        let outcome = if won { PrevoteOutcome::Won } else { PrevoteOutcome::Lost };
        self.prevote_rounds.get_or_create(&PrevoteLabel { outcome }).inc();
    }

    /// Records a Raft commit's latency.
    pub fn commit_latency(&self, seconds: f64) {
        self.commit_latency.observe(seconds);
    }

    /// Sets how many entries `follower` is behind (on the admin).
    pub fn replication_lag(&self, follower: u64, entries: u64) {
        self.replication_lag
            .get_or_create(&FollowerLabel {
                follower: follower.to_string(),
            })
            .set(entries as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series pre-created at start are exactly those the methods can emit (follower lag
    /// aside: one series per follower the admin sees).
    #[test]
    fn precreated_series_are_the_emitted_series() {
        let mut registry = Registry::default();
        let errors = ErrorFamily::register(&mut registry);
        let m = ElectionMetrics::new(&mut registry, &errors);
        let before = crate::metrics::series(&registry);
        for &c in ErrorComponent::ALL {
            m.error(c);
        }
        for s in ElectionState::ALL {
            m.set_state(s, true);
        }
        m.set_term(1);
        m.raise_term(2);
        m.leader_changed();
        m.lease_lapsed();
        m.prevote_round(true);
        m.prevote_round(false);
        m.commit_latency(0.01);
        for l in refused_series() {
            m.refused(l.what, l.reason);
        }
        crate::metrics::assert_precreated_is_emitted(&before, &crate::metrics::series(&registry));
        m.replication_lag(7, 3);
        assert!(crate::metrics::series(&registry).contains_key("bzzz_raft_replication_lag_entries{follower=\"7\"}"));
    }

    /// The state gauge's values follow the documented order, and the term only rises.
    #[test]
    fn state_values_and_term() {
        let values: Vec<i64> = ElectionState::ALL.iter().map(|s| s.value()).collect();
        assert_eq!(values, [0, 1, 2, 3, 4]);
        let mut registry = Registry::default();
        let errors = ErrorFamily::register(&mut registry);
        let m = ElectionMetrics::new(&mut registry, &errors);
        m.raise_term(5);
        m.raise_term(3);
        assert_eq!(m.term.get(), 5);
    }
}
