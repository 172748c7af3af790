//! Operator maintenance run inside the event loop (it alone owns the swarm): forgetting peers.

use libp2p::PeerId;
use serde::Serialize;

use super::EventLoop;

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
        self.metrics.p2p_connected_peers.set(0);
        self.metrics.dht_routing_table_peers.set(0);
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
