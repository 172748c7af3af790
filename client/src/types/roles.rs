//! `/api/roles`.

use serde::{Deserialize, Serialize};

/// `GET /api/roles`: the role policy, the grants and the pending role requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolesView {
    /// Whether the cluster state holds a role policy yet.
    pub has_policy: bool,
    /// The roles of the policy.
    pub roles: Vec<RoleInfo>,
    /// Roles granted to peers.
    pub grants: Vec<RoleGrant>,
    /// Role requests waiting for an operator.
    pub pending: Vec<PendingRequest>,
}

/// A role of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// The role's name.
    pub name: String,
    /// Its authority level.
    pub authority: u32,
    /// Whether the admin grants it to any node that asks.
    pub self_service: bool,
    /// Roles whose content this role can read.
    pub can_read: Vec<String>,
    /// The role's current key epoch.
    pub epoch: u64,
}

/// A role granted to a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGrant {
    /// The role.
    pub role: String,
    /// The peer id.
    pub peer_id: String,
    /// Who granted it: `auto` (the policy marks the role self-service) or `operator`.
    pub source: String,
    /// When, ms since the Unix epoch.
    pub granted_at_ms: u64,
}

/// A role request waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The role asked for.
    pub role: String,
    /// The peer that asked.
    pub peer_id: String,
    /// When, ms since the Unix epoch.
    pub requested_at_ms: u64,
}

/// Body of `POST /api/roles/{role}/grant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The peer to grant the role to.
    pub peer_id: String,
}

/// Answer of `POST /api/roles/{role}/grant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGranted {
    /// The role.
    pub role: String,
    /// The peer id, canonical.
    pub peer_id: String,
    /// Always true (a failure is an error envelope).
    pub granted: bool,
}
