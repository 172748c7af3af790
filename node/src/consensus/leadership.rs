//! Being the admin: the leadership loop follows Raft's leader and its lease, starts and stops the
//! admin duties, publishes admin heartbeats, and hands leadership over on request.

use super::*;

impl Consensus {
    /// Follows Raft leadership: publishes heartbeats and runs duties while leader.
    pub(super) async fn leadership_loop(self, raft: Raft, tracker: TaskTracker, shutdown: CancellationToken) {
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

    pub(super) fn begin_leadership(
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
            crate::logging::spawn(tracker, "heartbeats", async move {
                let mut tick = tokio::time::interval(Duration::from_millis(me.inner.config.heartbeat_interval_ms));
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => me.publish_heartbeat(&raft, term).await,
                    }
                }
            });
        }
        // Revocation lists: at once, then every REVOCATION_REPUBLISH, so nodes that missed one
        // (offline, joined later) catch up.
        if self.inner.admission.enabled() {
            let me = self.clone();
            let token = token.clone();
            crate::logging::spawn(tracker, "revocation-republish", async move {
                let mut tick = tokio::time::interval(REVOCATION_REPUBLISH);
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => me.publish_revocations().await,
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

    /// Publishes one revocation list (which this node applied) on the admin topic, for every
    /// node of the mesh.
    pub async fn publish_revocation(&self, r: bzzz_protocol::wire::Revocation) -> Result<(), NetworkError> {
        let payload = AdminMessage {
            body: Some(admin_message::Body::Revocation(r)),
        }
        .encode_to_vec();
        self.inner.client.publish(topics::ADMIN, Kind::Admin, payload).await
    }

    /// Publishes every revocation list this node holds on the admin topic.
    pub(super) async fn publish_revocations(&self) {
        for r in self.inner.admission.revocations() {
            if let Err(e) = self.publish_revocation(r).await {
                tracing::debug!(error = %e, "revocation list not published");
            }
        }
    }

    pub(super) async fn publish_heartbeat(&self, raft: &Raft, term: u64) {
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
            certificate: self.inner.admission.chain(),
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
}
