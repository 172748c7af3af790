//! `/api/status`, `/api/peers` and `/api/election/*`.

use serde::{Deserialize, Serialize};

use super::health::HealthSummary;

/// How a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeMode {
    /// A full node: agent API, context, election.
    Agent,
    /// A bootstrap node: P2P services only, the mesh's entry point.
    Bootstrap,
}

impl std::fmt::Display for NodeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeMode::Agent => "agent",
            NodeMode::Bootstrap => "bootstrap",
        })
    }
}

/// `GET /api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's peer id.
    pub peer_id: String,
    /// Agent id from config (or derived from the peer id).
    pub agent_id: String,
    /// Role from config.
    pub role: String,
    /// Node mode.
    pub mode: NodeMode,
    /// bzzz version.
    pub version: String,
    /// P2P addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: usize,
    /// Peers in the Kademlia routing table.
    pub routing_table_size: usize,
    /// DHT records in the node's store.
    pub dht_records_stored: i64,
    /// Seconds since the node started.
    pub uptime_seconds: u64,
    /// How the bootstrap join is going.
    pub bootstrap: JoinStatus,
    /// Overall health.
    pub health: HealthSummary,
    /// The election as this node sees it.
    pub election: ElectionStatus,
    /// Who may connect to this node, and with which credential it connects.
    pub security: SecurityStatus,
}

/// The part of `/api/status` about admission (see `docs/security.md`). Names and dates only:
/// never a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityStatus {
    /// Whether the node requires the mesh key of every connection (libp2p private network).
    pub mesh_key: bool,
    /// Whether the operator chose to run without a mesh key (`--insecure-open-mesh`).
    pub insecure_open_mesh: bool,
    /// Whether admission checks certificates (a cluster CA is configured).
    pub admission: bool,
    /// The cluster id (the CA's fingerprint) when admission is on.
    pub cluster_id: Option<String>,
    /// This node's own certificate when admission is on.
    pub certificate: Option<CertificateSummary>,
    /// Peers admitted with a certificate right now.
    pub admitted_peers: usize,
    /// Certificate serials this node refuses (CA-signed revocation lists).
    pub revoked_serials: usize,
}

/// `POST /api/admission/revocations` (operator): a revocation list signed by the cluster CA
/// (`bzzz ca revoke`), in its text form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationSubmit {
    /// The `-----BEGIN BZZZ REVOCATION-----` block.
    pub revocation: String,
}

/// The answer to a revocation: what the node applied and gossiped to the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationApplied {
    /// The cluster the list belongs to.
    pub cluster_id: String,
    /// The serials it revokes (16 hex digits each).
    pub serials: Vec<String>,
    /// False when the node already held this list.
    pub new: bool,
    /// Serials this node now refuses in total.
    pub revoked_serials: usize,
    /// Whether the list was published to the mesh (the admin re-publishes it every 30 s anyway).
    pub published: bool,
}

/// `POST /api/admission/join-tokens` (operator): a new join token. The secret stays with the
/// caller; only its SHA-256 is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenCreate {
    /// The public id: 6 characters of a-z and 0-9.
    pub id: String,
    /// SHA-256 of the secret, 64 hex digits.
    pub secret_hash: String,
    /// Roles the certificates it gives list.
    pub roles: Vec<String>,
    /// Whether they give the voter right (the issuer must allow it).
    #[serde(default)]
    pub voter: bool,
    /// How long the token is accepted, in milliseconds.
    pub ttl_ms: u64,
    /// How many nodes may use it.
    pub uses: u32,
    /// How long the certificates it gives are valid, in milliseconds.
    pub cert_ttl_ms: u64,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// A join token as the cluster keeps it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenInfo {
    /// The public id.
    pub id: String,
    /// Roles the certificates it gives list.
    pub roles: Vec<String>,
    /// Whether they give the voter right.
    pub voter: bool,
    /// Their validity, in milliseconds.
    pub cert_ttl_ms: u64,
    /// Created, ms since the Unix epoch.
    pub created_ms: u64,
    /// Expires, ms since the Unix epoch.
    pub expires_ms: u64,
    /// Nodes it may admit.
    pub uses: u32,
    /// Peer ids of the nodes that used it.
    pub used_by: Vec<String>,
    /// Revoked by an operator.
    pub revoked: bool,
    /// `active`, `expired`, `used_up` or `revoked`.
    pub state: String,
    /// What it is for.
    pub description: String,
}

/// `GET /api/admission/join-tokens`: the cluster's join tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenList {
    /// The cluster (the fingerprint a joining node is given).
    pub cluster_id: String,
    /// Every token the cluster keeps, by id.
    pub tokens: Vec<JoinTokenInfo>,
}

/// What a node certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    /// Serial, 16 hex digits (what revocation names).
    pub serial: String,
    /// Name given at signing.
    pub name: String,
    /// Roles the node may hold.
    pub roles: Vec<String>,
    /// Whether the node may be a Raft voter.
    pub voter: bool,
    /// Expiry, ms since the Unix epoch.
    pub not_after_unix_ms: u64,
}

/// Where the node's bootstrap join stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinState {
    /// No bootstrap peers are configured (e.g. the first bootstrap node).
    Alone,
    /// A dial round is running.
    Joining,
    /// At least one bootstrap peer connected.
    Joined,
    /// Every address failed in the last round; backing off.
    Retrying,
}

impl std::fmt::Display for JoinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JoinState::Alone => "alone",
            JoinState::Joining => "joining",
            JoinState::Joined => "joined",
            JoinState::Retrying => "retrying",
        })
    }
}

/// How the node's bootstrap join is going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinStatus {
    /// Current state of the join.
    pub state: JoinState,
    /// The configured bootstrap peers, as the operator wrote them.
    pub configured_peers: Vec<String>,
    /// Dial rounds started so far.
    pub attempts: u64,
    /// Rounds in a row in which no address connected (0 once joined).
    pub consecutive_failures: u32,
    /// Most recent failure, naming the address.
    pub last_error: Option<String>,
    /// When a bootstrap dial last succeeded, ms since the Unix epoch.
    pub last_success_unix_ms: Option<u64>,
    /// While backing off: delay before the next round, ms.
    pub next_retry_in_ms: Option<u64>,
    /// Times the node went back to the bootstrap peers because it lost the mesh.
    pub rebootstraps: u64,
}

/// `GET /api/peers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerList {
    /// Connected peers.
    pub count: usize,
    /// Each connected peer, by peer id.
    pub peers: Vec<PeerInfo>,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer id.
    pub peer_id: String,
    /// Addresses known for it (connection endpoints and its identify listen addresses).
    pub addresses: Vec<String>,
    /// When the first current connection was established, ms since the Unix epoch.
    pub connected_since_unix_ms: u64,
    /// Last ping round-trip time in milliseconds, once measured.
    pub latency_ms: Option<f64>,
    /// The peer's agent version from identify, once received.
    pub agent_version: Option<String>,
    /// Its gossipsub score on this node: 0 for a well-behaved peer, negative once it relayed
    /// envelopes this node rejected (below -80 its gossip is ignored: graylisted).
    pub gossip_score: Option<f64>,
}

/// A node's part in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RaftRole {
    /// The Raft leader: the admin.
    Leader,
    /// A voter following the leader.
    Follower,
    /// A voter asking for votes.
    Candidate,
    /// A non-voting member (or an eligible node not yet a member).
    Learner,
    /// Not admin-eligible: follows the admin's heartbeats only.
    Observer,
    /// Raft has stopped on this node.
    Shutdown,
}

impl RaftRole {
    /// The role's name as the API writes it (`leader`, `follower`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RaftRole::Leader => "leader",
            RaftRole::Follower => "follower",
            RaftRole::Candidate => "candidate",
            RaftRole::Learner => "learner",
            RaftRole::Observer => "observer",
            RaftRole::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for RaftRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /api/election/status` (and `election` in `/api/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionStatus {
    /// Peer id of the admin, if one is known.
    pub admin: Option<String>,
    /// Raft node id of the admin.
    pub admin_node_id: Option<u64>,
    /// Term of the admin (the highest term heard of).
    pub term: u64,
    /// Whether this node is the admin.
    pub is_admin: bool,
    /// When this node first heard of this admin in this term, ms since the Unix epoch.
    pub since: Option<u64>,
    /// Milliseconds since the admin was last heard from (0 on the admin itself).
    pub last_heartbeat_ms_ago: Option<u64>,
    /// Raft voters (node ids).
    pub voters: Vec<u64>,
    /// Raft learners (node ids).
    pub learners: Vec<u64>,
    /// This node's part in the election.
    pub state: RaftRole,
    /// This node's Raft node id.
    pub node_id: u64,
    /// Whether this node is admin-eligible.
    pub eligible: bool,
    /// Eligible nodes that announced themselves recently (not yet Raft members).
    pub eligible_seen: usize,
}

/// `POST /api/election/trigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionTriggered {
    /// Always true (a failure is an error envelope).
    pub triggered: bool,
    /// The Raft node id of the node that stands as candidate.
    pub node_id: u64,
}
