//! Forming the cluster and growing it: eligible nodes announce themselves until
//! `bootstrap_expect` of them see each other (the lowest id initialises Raft), and later eligible
//! nodes ask the admin to join as learners.

use super::*;

impl Consensus {
    /// Announces this node while it is not a member; initialises the cluster or asks to join.
    pub(super) async fn formation_loop(self, raft: Raft, info: NodeInfo, shutdown: CancellationToken) {
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
                certificate: self.inner.admission.chain(),
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

    /// On the admin: adds joining eligible nodes as learners (the voter-management duty
    /// promotes them).
    pub(super) async fn join_loop(
        self,
        raft: Raft,
        mut requests: mpsc::Receiver<JoinRequest>,
        shutdown: CancellationToken,
    ) {
        loop {
            let JoinRequest { from, join } = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = requests.recv() => match r { Some(r) => r, None => break },
            };
            // The id must be the sender's own: nobody can enrol another node. And only a node
            // whose certificate gives the voter right may join the voters' cluster.
            if join.peer_id != from.to_string() || join.node_id != node_id_from_peer_bytes(&from.to_bytes()) {
                self.inner.metrics.refused(Refused::Join, RefusedReason::NodeIdMismatch);
                continue;
            }
            if let Err(r) = self.inner.admission.voter_check(&from, None) {
                self.inner.metrics.refused(Refused::Join, refusal(r));
                tracing::info!(peer = %from, reason = ?r, "refused a join request");
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
