//! `bzzz peers clear`: the runbook's "clear peer store if corrupted". Forgets what the node knows
//! about peers (the Kademlia routing table and the addresses remembered for connected peers),
//! closes every connection, and re-bootstraps from the configured bootstrap peers at once.
//!
//! Not touched: the block list; the Raft membership's node addresses (cluster state, the way
//! voters reach each other); libp2p identify's in-memory address cache (no API clears it; it
//! only supplies addresses when a peer is dialled by id). Nothing about peers is persisted on
//! disk, so a restart starts from the bootstrap peers as well.

use super::Inner;
use crate::network::NetworkError;

/// The answer of `POST /api/peers/clear`.
pub(crate) use bzzz_client::types::PeersCleared as ClearReport;

pub(crate) async fn clear(inner: &Inner) -> Result<ClearReport, NetworkError> {
    let cleared = inner.client.clear_peers().await?;
    let mut bootstrap_peers = 0;
    inner.join_targets.send_modify(|t| {
        t.rejoin = t.rejoin.wrapping_add(1);
        bootstrap_peers = t.peers.len();
    });
    let rebootstrap = if bootstrap_peers == 0 {
        "no bootstrap peers configured: other nodes reconnect to this one".to_string()
    } else {
        format!("dialling {bootstrap_peers} bootstrap peers now")
    };
    Ok(ClearReport {
        routing_table_peers_forgotten: cleared.routing_table_peers_forgotten,
        peers_disconnected: cleared.peers_disconnected,
        connections_closed: cleared.connections_closed,
        bootstrap_peers,
        rebootstrap,
    })
}
