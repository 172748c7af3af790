//! What every handler can reach: [`AppState`] (cloneable handles, no state of its own) and the
//! node's fixed facts.

use std::sync::Arc;
use std::time::Instant;

use bzzz_bootstrap::{JoinStatus, Mode};
use tokio::sync::watch;

use crate::auth::OperatorAuth;
use crate::consensus::Consensus;
use crate::context::ContextService;
use crate::health::{Health, Prober};
use crate::metrics::MetricsHandle;
use crate::network::{Client, NetworkMetrics};
use crate::ops::Ops;

/// Handles the API needs. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    /// The election.
    pub consensus: Consensus,
    /// Network handle.
    pub client: Client,
    /// Probe service.
    pub prober: Prober,
    /// Latest health.
    pub health: Health,
    /// Metrics registry.
    pub metrics: MetricsHandle,
    /// The network's metrics (`/api/status` reports the DHT store's record count).
    pub network_metrics: NetworkMetrics,
    /// Bootstrap progress.
    pub join: watch::Receiver<JoinStatus>,
    /// The context service.
    pub context: ContextService,
    /// The operator token in force (replaced by a config reload). Never shown.
    pub operator_token: OperatorAuth,
    /// Operator actions: reload, peers clear, DHT maintenance, backup.
    pub ops: Ops,
    /// Static facts about the node.
    pub info: Arc<NodeInfo>,
    /// Admission: this node's certificate and the admitted peers.
    pub admission: Arc<crate::admission::Admission>,
}

/// Facts about the node that do not change while it runs.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    /// Peer id.
    pub peer_id: String,
    /// Agent id from config (or derived from the peer id).
    pub agent_id: String,
    /// Role from config.
    pub role: String,
    /// Node mode.
    pub mode: Mode,
    /// bzzz version.
    pub version: String,
    /// When the node started.
    pub started: Instant,
    /// Whether a mesh key is configured.
    pub mesh_key: bool,
    /// Whether the operator chose to run without one.
    pub insecure_open_mesh: bool,
}
