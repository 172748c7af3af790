//! `/health`, `/health/live`, `/health/ready` and `/health/checks`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Status of one check, one component or the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working partly (some peers missing, mesh still forming).
    Degraded,
    /// Not working.
    Unhealthy,
    /// Not run yet (a check only; a node with a pending check is not healthy).
    Pending,
}

impl HealthStatus {
    /// The status as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::Pending => "pending",
        }
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /health`: answered with HTTP 503 when the node is unhealthy, 200 otherwise; the body is
/// the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Mean of the check scores (healthy 1, degraded 0.5, otherwise 0), 0 to 1.
    pub score: f64,
    /// The node's peer id.
    pub peer_id: String,
    /// The node's bzzz version.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_seconds: u64,
    /// Status per component (`p2p`, `pubsub`, `dht`, `storage`, `election`, `replication`).
    pub components: BTreeMap<String, HealthStatus>,
}

/// The node's overall health, as `/api/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSummary {
    /// Overall status.
    pub status: HealthStatus,
    /// Mean of the check scores, 0 to 1.
    pub score: f64,
    /// Status per component.
    pub components: BTreeMap<String, HealthStatus>,
}

/// `GET /health/live`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    /// Always `alive`.
    pub status: String,
}

/// `GET /health/ready`: HTTP 200 when ready, 503 when not; the body is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether the node serves (listening, and connected or alone by configuration).
    pub ready: bool,
    /// Why, for a human.
    pub reason: String,
}

/// `GET /health/checks`: the overall status and the latest result of every check, by name
/// (`p2p-connectivity`, `pubsub-health`, `dht-health`, `storage-health`, `election-health`,
/// `replication-health`). Every check is listed, `pending` until it first runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthChecks {
    /// Overall status (as in `/health`).
    pub status: HealthStatus,
    /// Every check by name.
    pub checks: BTreeMap<String, CheckResult>,
}

/// The latest result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Outcome of the latest run.
    pub status: HealthStatus,
    /// How long the latest run took, in milliseconds.
    pub latency_ms: f64,
    /// When the check last passed (healthy or degraded), ms since the Unix epoch.
    pub last_success: Option<u64>,
    /// When the check last ran, ms since the Unix epoch (`null` while the check is `pending`).
    pub last_run: Option<u64>,
    /// What the check saw, for a human.
    pub message: String,
}
