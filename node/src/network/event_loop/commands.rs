//! The event loop's answers to [`Command`]s from [`super::super::Client`] handles.

use super::*;

impl EventLoop {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(IdentTopic::new(&topic), data);
                let result = match result {
                    Ok(_) => {
                        self.metrics.pubsub(&topic, PubsubOutcome::Published);
                        Ok(())
                    }
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
                    | Err(gossipsub::PublishError::AllQueuesFull(_)) => Err(PublishFailure::NoPeers),
                    Err(e) => {
                        self.metrics.pubsub(&topic, PubsubOutcome::PublishFailed);
                        self.metrics.error(ErrorComponent::Pubsub);
                        Err(PublishFailure::Other(e.to_string()))
                    }
                };
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, sender, reply } => {
                let result = self.subscribe(topic, sender);
                let _ = reply.send(result);
            }
            Command::Dial { addr, reply } => {
                if self.pending_dials.len() >= MAX_PENDING {
                    let _ = reply.send(Err("too many dials in flight".into()));
                    return;
                }
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(format!("dial {addr}: {e}")));
                    }
                }
            }
            Command::PutRecord {
                key,
                value,
                quorum,
                reply,
            } => {
                if self.pending_puts.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("dht put")));
                    return;
                }
                let mut record = Record::new(RecordKey::new(&key), value);
                let started = Instant::now();
                if self.peers.is_empty() {
                    // Alone: store locally (with the TTL and publisher kad would set), report it
                    // was not replicated.
                    record.publisher = Some(*self.swarm.local_peer_id());
                    record.expires = self.record_ttl.map(|ttl| started + ttl);
                    let result =
                        libp2p::kad::store::RecordStore::put(self.swarm.behaviour_mut().kad.store_mut(), record)
                            .map(|()| PutOutcome { replicated: false })
                            .map_err(|e| NetworkError::Dht {
                                operation: "put",
                                reason: e.to_string(),
                            });
                    self.metrics
                        .dht_op(DhtOperation::Put, result.is_ok(), started.elapsed().as_secs_f64());
                    let _ = reply.send(result);
                    return;
                }
                match self.swarm.behaviour_mut().kad.put_record(record, quorum) {
                    Ok(id) => {
                        self.pending_puts.insert(id, (reply, started));
                    }
                    Err(e) => {
                        self.metrics
                            .dht_op(DhtOperation::Put, false, started.elapsed().as_secs_f64());
                        let _ = reply.send(Err(NetworkError::Dht {
                            operation: "put",
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::GetRecord { key, reply } => {
                if self.pending_gets.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("dht get")));
                    return;
                }
                let id = self.swarm.behaviour_mut().kad.get_record(RecordKey::new(&key));
                self.pending_gets.insert(id, PendingGet::Waiting(reply, Instant::now()));
            }
            Command::SendRpc { peer, request, reply } => {
                if self.pending_rpcs.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("rpc")));
                    return;
                }
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                self.pending_rpcs.insert(id, reply);
            }
            Command::SendRaft {
                peer,
                addrs,
                request,
                reply,
            } => {
                if self.pending_raft.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("raft rpc")));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .raft
                    .send_request_with_addresses(&peer, request, addrs);
                self.pending_raft.insert(id, reply);
            }
            Command::RespondRpc { channel, response } => {
                if self.swarm.behaviour_mut().rpc.send_response(channel, response).is_err() {
                    tracing::debug!("rpc response not sent: stream closed");
                }
            }
            Command::StartProviding { key, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(RecordKey::new(&key))
                    .map(|_| ())
                    .map_err(|e| NetworkError::Dht {
                        operation: "provide",
                        reason: e.to_string(),
                    });
                let _ = reply.send(result);
            }
            Command::ClosestPeers { key, reply } => {
                let target = kad::KBucketKey::new(RecordKey::new(&key));
                let local = *self.swarm.local_peer_id();
                let me = kad::KBucketKey::from(local);
                let mut peers: Vec<PeerId> = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_closest_local_peers(&target)
                    .map(|k| *k.preimage())
                    .collect();
                let my_distance = me.distance(&target);
                let at = peers
                    .iter()
                    .position(|p| kad::KBucketKey::from(*p).distance(&target) > my_distance)
                    .unwrap_or(peers.len());
                peers.insert(at, local);
                let _ = reply.send(peers);
            }
            Command::GetProviders { key, reply } => {
                if self.pending_providers.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetworkError::Busy("dht providers")));
                    return;
                }
                let id = self.swarm.behaviour_mut().kad.get_providers(RecordKey::new(&key));
                self.pending_providers.insert(id, (reply, HashSet::new()));
            }
            Command::RespondRaft { channel, response } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .raft
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("raft response not sent: stream closed");
                }
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Command::SetBlocked { peer, blocked } => {
                let list = &mut self.swarm.behaviour_mut().blocked;
                if blocked {
                    list.block_peer(peer);
                } else {
                    list.unblock_peer(peer);
                }
            }
            Command::CacheClearStep {
                pass,
                after,
                limit,
                reply,
            } => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let step = store.clear_cache_step(pass, after.as_deref(), limit, DHT_KEY_PREFIX);
                let _ = reply.send(step);
            }
            Command::ReprovideBatch { after, limit, reply } => {
                let _ = reply.send(self.reprovide_batch(after.as_deref(), limit));
            }
            Command::ClearPeers { reply } => {
                let _ = reply.send(self.clear_peers());
            }
            Command::KadBootstrap => {
                if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
                    tracing::debug!(error = %e, "kademlia bootstrap not started");
                }
            }
        }
    }

    pub(super) fn subscribe(&mut self, topic: String, sender: mpsc::Sender<GossipMessage>) -> Result<(), NetworkError> {
        let subs = self.subscribers.entry(topic.clone()).or_default();
        subs.retain(|s| !s.is_closed());
        if subs.len() >= MAX_SUBSCRIBERS_PER_TOPIC {
            return Err(NetworkError::Busy("subscription"));
        }
        subs.push(sender);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&IdentTopic::new(&topic))
            .map(|_| ())
            .map_err(|e| NetworkError::Publish(format!("subscribe {topic}: {e}")))
    }

    pub(super) fn snapshot(&mut self) -> NetworkSnapshot {
        let health = IdentTopic::new(topics::HEALTH).hash();
        let health_topic_peers = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, ts)| ts.contains(&&health))
            .map(|(p, _)| p.to_string())
            .collect();
        let routing_table_size = self.routing_table_size();
        let gossip = &self.swarm.behaviour().gossipsub;
        let scores: std::collections::HashMap<PeerId, Option<f64>> =
            self.peers.keys().map(|id| (*id, gossip.peer_score(id))).collect();
        NetworkSnapshot {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
            peers: self
                .peers
                .iter()
                .map(|(id, p)| PeerInfo {
                    peer_id: id.to_string(),
                    addresses: p.addresses.iter().map(|a| a.to_string()).collect(),
                    connected_since_unix_ms: p.connected_since_unix_ms,
                    latency_ms: p.latency_ms,
                    agent_version: p.agent_version.clone(),
                    gossip_score: scores.get(id).copied().flatten(),
                })
                .collect(),
            routing_table_size,
            health_topic_peers,
        }
    }

    pub(super) fn routing_table_size(&mut self) -> usize {
        self.swarm.behaviour_mut().kad.kbuckets().map(|b| b.num_entries()).sum()
    }
}
