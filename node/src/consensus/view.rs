//! What this node believes about the admin: the admin heartbeats it hears on `bzzz/admin/v1`
//! (`AdminSeen`), and the election status and freshness answers built from them.

use super::*;

impl Consensus {
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

    /// Whether this node is the acting admin now (Raft leader within its lease). Cheaper than
    /// [`Self::status`]: reads Raft's metrics only.
    pub fn is_admin(&self) -> bool {
        self.inner
            .raft
            .as_ref()
            .is_some_and(|r| self.acting(&r.metrics().borrow()))
    }

    /// The admin this node would send admin requests to now: itself while it acts as admin, else
    /// the admin whose heartbeat it heard within [`Self::admin_timeout`]; `None` without one.
    pub fn admin(&self) -> Option<PeerId> {
        if self.is_admin() {
            return Some(self.inner.peer_id);
        }
        let timeout = self.admin_timeout();
        let admin = self.inner.admin.read().ok()?;
        admin
            .as_ref()
            .filter(|a| a.last_heard.elapsed() <= timeout)
            .and_then(|a| a.peer_id.parse().ok())
    }

    /// Whether this node sees a mesh without election at all: it is not eligible, and it has
    /// heard of no admin, no eligible node and no voter. Such a mesh has no context index.
    pub fn mesh_without_election(&self) -> bool {
        let s = self.status();
        s.admin.is_none() && !s.eligible && s.eligible_seen == 0 && s.voters.is_empty()
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
        if self.is_admin() {
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

    pub(super) fn record_admin(&self, hb: &AdminHeartbeat) {
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
            _ => now_unix_ms(),
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

    /// Whether a heartbeat from `sender` may be followed: a certified voter's message in its own
    /// name ([`Self::admit_voter_message`]) and, on a voter whose Raft knows the leader, from
    /// that leader.
    fn admit_heartbeat(&self, sender: &PeerId, hb: &AdminHeartbeat) -> Result<(), RefusedReason> {
        self.admit_voter_message(sender, hb.node_id, &hb.peer_id, hb.certificate.as_ref())?;
        if let Some(raft) = &self.inner.raft {
            let m = raft.metrics().borrow().clone();
            if m.current_leader.is_some_and(|leader| leader != hb.node_id) && hb.term <= m.current_term {
                return Err(RefusedReason::NotLeader);
            }
        }
        Ok(())
    }

    /// Whether a message on the admin topic that names `node_id` and `peer_id` and carries
    /// `chain` speaks for its signer `sender` (the envelope is signed by `sender`, so nobody can
    /// speak for another node) and comes from a certified voter of this cluster.
    fn admit_voter_message(
        &self,
        sender: &PeerId,
        node_id: u64,
        peer_id: &str,
        chain: Option<&bzzz_protocol::wire::CertificateChain>,
    ) -> Result<(), RefusedReason> {
        if peer_id != sender.to_string() || node_id != node_id_from_peer_bytes(&sender.to_bytes()) {
            return Err(RefusedReason::NodeIdMismatch);
        }
        self.inner.admission.voter_check(sender, chain).map_err(refusal)
    }

    pub(super) async fn listen_admin_topic(
        self,
        mut inbox: mpsc::Receiver<GossipMessage>,
        shutdown: CancellationToken,
    ) {
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
                Some(admin_message::Body::Heartbeat(hb)) => match self.admit_heartbeat(&msg.sender, &hb) {
                    Ok(()) => self.record_admin(&hb),
                    Err(reason) => {
                        self.inner.metrics.refused(Refused::Heartbeat, reason);
                        tracing::debug!(sender = %msg.sender, ?reason, "ignored an admin heartbeat");
                    }
                },
                Some(admin_message::Body::Announce(mut a)) => {
                    let check = self.admit_voter_message(&msg.sender, a.node_id, &a.peer_id, a.certificate.as_ref());
                    if let Err(reason) = check {
                        self.inner.metrics.refused(Refused::Announce, reason);
                        continue;
                    }
                    a.certificate = None; // verified; not kept
                    if let Ok(mut map) = self.inner.announces.write() {
                        map.retain(|_, (_, at)| at.elapsed() < ANNOUNCE_TTL);
                        if map.len() < MAX_ANNOUNCES || map.contains_key(&a.node_id) {
                            map.insert(a.node_id, (a, Instant::now()));
                        }
                    }
                }
                Some(admin_message::Body::Revocation(r)) => {
                    // Signed by the CA: whoever relayed it, it verifies or it is counted invalid.
                    if self.inner.admission.enabled()
                        && let Err(e) = self.inner.admission.apply_revocation(&r)
                    {
                        tracing::debug!(via = %msg.sender, error = %e, "ignored a revocation list");
                    }
                }
                _ => self.inner.metrics.error(ErrorComponent::Election),
            }
        }
    }
}
