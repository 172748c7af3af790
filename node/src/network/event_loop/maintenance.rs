//! Operator maintenance run inside the event loop (it alone owns the swarm): forgetting peers,
//! re-announcing and republishing records.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::kad::{QueryId, QueryResult, Quorum};
use serde::Serialize;

use super::EventLoop;
use crate::network::NetworkError;

/// Most provider announcements and republications an operator's `dht reprovide` keeps running
/// at once; a batch that could exceed it is answered `Busy`.
pub const MAX_MAINTENANCE_QUERIES: usize = 256;

/// What one [`EventLoop::reprovide_batch`] started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReprovideBatch {
    /// Key to continue after; `None` once the store has been walked to its end.
    pub next_after: Option<Vec<u8>>,
    /// Live records visited.
    pub records: usize,
    /// Of those, context records (`/bzzz/ctx/1/` keys).
    pub context_records: usize,
    /// Provider announcements started (one per record).
    pub provider_announcements: usize,
    /// Non-context records this node published that were put again.
    pub republished: usize,
    /// Announcements or puts that could not start (the reason is logged).
    pub failed: usize,
}

/// What [`EventLoop::clear_peers`] forgot and closed.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PeersCleared {
    /// Peers removed from the Kademlia routing table.
    pub routing_table_peers_forgotten: usize,
    /// Connected peers that were disconnected (their remembered addresses are forgotten).
    pub peers_disconnected: usize,
    /// Connections open (established) when they were closed.
    pub connections_closed: usize,
}

impl EventLoop {
    /// Removes every peer from the Kademlia routing table, forgets the addresses remembered for
    /// connected peers and closes every connection. Blocked peers stay blocked.
    pub(super) fn clear_peers(&mut self) -> PeersCleared {
        let kad = &mut self.swarm.behaviour_mut().kad;
        let in_table: Vec<PeerId> = kad
            .kbuckets()
            .flat_map(|b| b.iter().map(|e| *e.node.key.preimage()).collect::<Vec<_>>())
            .collect();
        for peer in &in_table {
            kad.remove_peer(peer);
        }
        let connections = self.swarm.network_info().connection_counters().num_established() as usize;
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in &connected {
            // Err only when the peer is not connected (any more): nothing to close.
            let _ = self.swarm.disconnect_peer_id(*peer);
        }
        self.peers.clear();
        self.metrics.set_connected_peers(0);
        self.metrics.set_routing_table_peers(0);
        tracing::warn!(
            routing_table_peers = in_table.len(),
            peers = connected.len(),
            connections,
            "operator cleared the peer store: routing table emptied, connections closed"
        );
        PeersCleared {
            routing_table_peers_forgotten: in_table.len(),
            peers_disconnected: connected.len(),
            connections_closed: connections,
        }
    }
}

impl EventLoop {
    /// See [`crate::network::Client::reprovide_batch`].
    pub(super) fn reprovide_batch(
        &mut self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<ReprovideBatch, NetworkError> {
        let limit = limit.clamp(1, MAX_MAINTENANCE_QUERIES / 2);
        if self.maintenance_queries.len() + 2 * limit > MAX_MAINTENANCE_QUERIES {
            return Err(NetworkError::Busy("dht reprovide"));
        }
        let local = *self.swarm.local_peer_id();
        let ttl = self.record_ttl;
        let kad = &mut self.swarm.behaviour_mut().kad;
        let records = kad.store_mut().records_after(after, limit);
        let mut batch = ReprovideBatch {
            next_after: (records.len() == limit)
                .then(|| records.last().map(|r| r.key.to_vec()))
                .flatten(),
            records: records.len(),
            ..ReprovideBatch::default()
        };
        for mut record in records {
            let context = bzzz_protocol::context::is_context_key(record.key.as_ref());
            if context {
                batch.context_records += 1;
            }
            match kad.start_providing(record.key.clone()) {
                Ok(id) => {
                    self.maintenance_queries.insert(id);
                    batch.provider_announcements += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "provider announcement not started");
                    batch.failed += 1;
                }
            }
            if !context && record.publisher == Some(local) {
                // A republication refreshes the record's lifetime, as the publisher's own put did.
                record.expires = ttl.map(|t| Instant::now() + t);
                match kad.put_record(record, Quorum::One) {
                    Ok(id) => {
                        self.maintenance_queries.insert(id);
                        batch.republished += 1;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "record republication not started");
                        batch.failed += 1;
                    }
                }
            }
        }
        Ok(batch)
    }
}

impl EventLoop {
    /// Progress of a query [`EventLoop::reprovide_batch`] started: forgotten when it ends.
    pub(super) fn on_maintenance_progress(&mut self, id: QueryId, result: &QueryResult, last: bool) {
        if last {
            self.maintenance_queries.remove(&id);
            log_result(result);
        }
    }
}

/// Logs how a maintenance query ended (failures are expected on a mesh without peers).
fn log_result(result: &QueryResult) {
    match result {
        QueryResult::StartProviding(Err(e)) => tracing::debug!(error = %e, "provider announcement failed"),
        QueryResult::PutRecord(Err(e)) => tracing::debug!(error = %e, "record republication failed"),
        QueryResult::StartProviding(Ok(_)) | QueryResult::PutRecord(Ok(_)) => {}
        other => tracing::debug!(result = ?std::mem::discriminant(other), "unexpected maintenance query result"),
    }
}
