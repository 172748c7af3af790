//! The operator actions: `/api/config/reload`, `/api/peers/clear`, `/api/dht/reprovide`,
//! `/api/dht/cache/clear` (and `/api/backup`, which answers with the backup's bytes).

use serde::{Deserialize, Serialize};

use super::context::ReplicationReport;

/// Answer of `POST /api/config/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Where the configuration was read from.
    pub source: String,
    /// Changed fields now in force.
    pub applied: Vec<String>,
    /// Changed fields that keep their running value until the node restarts.
    pub needs_restart: Vec<String>,
    /// Changed live fields that could not be applied, with why.
    pub not_applied: Vec<String>,
    /// What happened to the operator token: `re-read from <path>` or `none configured`.
    pub operator_token: String,
}

/// Answer of `POST /api/peers/clear`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersCleared {
    /// Peers removed from the Kademlia routing table.
    pub routing_table_peers_forgotten: usize,
    /// Connected peers that were disconnected (their remembered addresses are forgotten).
    pub peers_disconnected: usize,
    /// Connections open when they were closed.
    pub connections_closed: usize,
    /// Bootstrap peers the re-bootstrap dials (0: none configured; peers reconnect to this node).
    pub bootstrap_peers: usize,
    /// What happens next, in words.
    pub rebootstrap: String,
}

/// Answer of `POST /api/dht/reprovide`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReprovideReport {
    /// Live records in this node's store.
    pub records: usize,
    /// Of those, context records.
    pub context_records: usize,
    /// Provider announcements started (one per record).
    pub provider_announcements: usize,
    /// Non-context records this node published that were put again.
    pub republished: usize,
    /// Announcements or puts that could not start (see the node's log).
    pub failed: usize,
    /// The admin's replication check.
    pub replication_check: ReplicationCheck,
}

/// What the admin's replication check did for a reprovide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReplicationCheck {
    /// The admin ran a check (and repair) now.
    Ran {
        /// The check's report.
        report: ReplicationReport,
    },
    /// Nothing to ask: the mesh has no admin-eligible node, so no context index.
    Skipped {
        /// Why.
        reason: String,
    },
    /// The admin could not be asked or did not answer in time.
    Failed {
        /// Why.
        error: String,
    },
}

/// Answer of `POST /api/dht/cache/clear`: what was removed and kept, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheClearReport {
    /// Records past their expiry.
    pub expired_records_removed: u64,
    /// Live records another node published (copies this node kept for the DHT).
    pub cached_records_removed: u64,
    /// Records and provider records that could not be decoded.
    pub corrupt_entries_removed: u64,
    /// Provider records past their expiry.
    pub expired_provider_records_removed: u64,
    /// This node's provider announcements for keys it no longer holds.
    pub orphan_provider_records_removed: u64,
    /// Context records (never removed).
    pub context_records_kept: u64,
    /// Records this node published.
    pub own_records_kept: u64,
    /// Live provider records kept.
    pub provider_records_kept: u64,
}
