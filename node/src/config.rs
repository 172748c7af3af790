//! Node configuration: `config.yaml`, then `BZZZ_*` environment variables, then command-line flags.
//!
//! Every field has a default suitable for development, so an empty file (or no file) is a valid
//! configuration. [`Config::validate`] runs once at start; an invalid value stops the daemon with a
//! message naming the field and the problem. The documented example is `docs/config.example.yaml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bzzz_bootstrap::{BootstrapPeer, Mode};
use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

/// A configuration problem, naming the field (as a YAML path) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML for this schema (unknown field, wrong type, ...).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field has an invalid value.
    #[error("invalid config field `{field}`: {problem}")]
    Invalid {
        /// YAML path of the field, e.g. `p2p.listen[0]`.
        field: String,
        /// What is wrong, and what is expected.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The whole node configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The agent this node serves.
    pub agent: AgentConfig,
    /// Node-local settings: data dir, mode, identity.
    pub node: NodeConfig,
    /// Peer-to-peer transport and bootstrap.
    pub p2p: P2pConfig,
    /// Gossipsub limits.
    pub gossip: GossipConfig,
    /// Kademlia DHT settings.
    pub dht: DhtConfig,
    /// The agent-facing HTTP API.
    pub api: ApiConfig,
    /// The health-only HTTP listener and health check timings.
    pub health: HealthConfig,
    /// Admin election (Raft).
    pub election: ElectionConfig,
    /// Encrypted, replicated context (UCXL).
    pub context: ContextConfig,
    /// Roles and who reads whose context: the seed of the cluster's role policy.
    pub roles: RolesConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The agent this node serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Agent id shown in `/api/status`; empty means "derive from the peer id".
    pub id: String,
    /// Role the agent requests (the runbook reads `.agent.role`).
    pub role: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            role: "agent".into(),
        }
    }
}

/// Node-local settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory holding the identity key and the sled database.
    pub data_dir: PathBuf,
    /// `agent` (full node) or `bootstrap` (P2P services only).
    pub mode: Mode,
    /// A libp2p protobuf-encoded ed25519 key file to use instead of `<data_dir>/identity.key`
    /// (for Docker secrets). Never created or modified by the node.
    pub identity_key_file: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            mode: Mode::Agent,
            identity_key_file: None,
        }
    }
}

/// Peer-to-peer transport and bootstrap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Multiaddrs to listen on (TCP).
    pub listen: Vec<String>,
    /// Addresses to advertise to peers in addition to the observed ones (NAT, Swarm VIPs).
    pub external_addresses: Vec<String>,
    /// Bootstrap peers: multiaddrs (`/dns4/tasks.dht-bootstrap/tcp/9101`) or `host:port`.
    /// Empty means this node starts alone, which is healthy.
    pub bootstrap_peers: Vec<String>,
    /// Most established connections in total; further ones are refused.
    pub max_connections: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Seconds an idle connection is kept open.
    pub idle_connection_timeout_secs: u64,
    /// First dial retry delay in milliseconds (doubles up to `join_backoff_max_ms`).
    pub join_backoff_initial_ms: u64,
    /// Longest dial retry delay in milliseconds.
    pub join_backoff_max_ms: u64,
    /// How often, once joined, the node checks it still has peers, in milliseconds.
    pub join_check_interval_ms: u64,
    /// A libp2p pre-shared key file (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits; e.g.
    /// the Docker secret `bzzz_swarm_key`). When set, the node only talks to nodes with the same
    /// key (libp2p private network); unset, it talks to any bzzz node.
    pub swarm_key_file: Option<PathBuf>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/9000".into()],
            external_addresses: Vec::new(),
            bootstrap_peers: Vec::new(),
            max_connections: 512,
            max_connections_per_peer: 4,
            idle_connection_timeout_secs: 120,
            join_backoff_initial_ms: 250,
            join_backoff_max_ms: 30_000,
            join_check_interval_ms: 5_000,
            swarm_key_file: None,
        }
    }
}

/// Gossipsub limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GossipConfig {
    /// Largest envelope accepted, in bytes; larger ones are rejected and counted.
    pub max_message_bytes: usize,
    /// Oldest envelope accepted, in milliseconds before now.
    pub max_age_ms: u64,
    /// Largest clock skew accepted (envelope from the future), in milliseconds.
    pub max_clock_skew_ms: u64,
    /// How many (sender, nonce) pairs the replay window remembers.
    pub replay_window: usize,
    /// How long a publish waits for a subscribed peer before failing, in milliseconds.
    pub publish_wait_ms: u64,
    /// Gossipsub heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// Queue length of each topic subscriber; messages beyond it are dropped and counted.
    pub subscriber_queue: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_age_ms: 60_000,
            max_clock_skew_ms: 10_000,
            replay_window: 65_536,
            publish_wait_ms: 5_000,
            heartbeat_ms: 700,
            subscriber_queue: 1_024,
        }
    }
}

/// Kademlia DHT settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DhtConfig {
    /// Largest record value stored, in bytes; larger puts are refused with a clear error.
    pub max_record_bytes: usize,
    /// Most records this node stores.
    pub max_records: usize,
    /// Lifetime of a record put through this node, in seconds (0 = never expires).
    pub record_ttl_secs: u64,
    /// Kademlia replication factor (k): how many closest peers a put goes to.
    pub replication_factor: usize,
    /// How many peers must confirm a put: `one`, `majority`, `all` or a number.
    pub put_quorum: String,
    /// Timeout of one DHT query, in seconds.
    pub query_timeout_secs: u64,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: 1024 * 1024,
            max_records: 1_000_000,
            record_ttl_secs: 36 * 3600,
            replication_factor: 20,
            put_quorum: "one".into(),
            query_timeout_secs: 10,
        }
    }
}

/// The agent-facing HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address, `host:port`.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most requests handled at once; more wait.
    pub max_concurrent_requests: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// File holding the operator token (e.g. a Docker secret). When set, operator actions
    /// (`POST /api/roles/{role}/grant`, config reload, peers clear, DHT maintenance, backup) need
    /// `Authorization: Bearer <token>`, and the admin checks the token forwarded with a grant
    /// against its own. Re-read on every config reload. Unset: no token is asked for.
    pub operator_token_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            max_body_bytes: 2 * 1024 * 1024,
            max_concurrent_requests: 256,
            request_timeout_secs: 30,
            operator_token_file: None,
        }
    }
}

/// Health listener and check timings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Listen address of the health-only listener (`/health*`, `/metrics`), `host:port`.
    pub listen: String,
    /// How often the checks run, in milliseconds.
    pub check_interval_ms: u64,
    /// How long an active probe waits for an answer, in milliseconds.
    pub probe_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8081".into(),
            check_interval_ms: 15_000,
            probe_timeout_ms: 5_000,
        }
    }
}

/// Admin election: Raft among the admin-eligible nodes; the leader is the admin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ElectionConfig {
    /// Whether this node may become admin (is a Raft member).
    pub eligible: bool,
    /// How many eligible nodes form the cluster: when this many see each other, the lowest id
    /// initialises Raft with them as voters.
    pub bootstrap_expect: u32,
    /// Most voters; further eligible nodes stay learners until a voter is replaced.
    pub max_voters: u32,
    /// Raft heartbeat (leader → followers), in milliseconds.
    pub raft_heartbeat_ms: u64,
    /// Shortest Raft election timeout, in milliseconds.
    pub election_timeout_min_ms: u64,
    /// Longest Raft election timeout, in milliseconds.
    pub election_timeout_max_ms: u64,
    /// Admin heartbeat on `bzzz/admin/v1`, in milliseconds (the leader also publishes at once
    /// when elected).
    pub heartbeat_interval_ms: u64,
    /// A voter unreachable this long is replaced by a healthy learner, in milliseconds.
    pub dead_voter_timeout_ms: u64,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        Self {
            eligible: false,
            bootstrap_expect: 3,
            max_voters: 5,
            raft_heartbeat_ms: 50,
            election_timeout_min_ms: 120,
            election_timeout_max_ms: 180,
            heartbeat_interval_ms: 1_000,
            dead_voter_timeout_ms: 30_000,
        }
    }
}

/// Encrypted, replicated context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    /// Live copies of every context record the cluster keeps (R); the admin re-replicates
    /// records that fall below it.
    pub replication_factor: u32,
    /// Copies a write waits for before it returns (at most `replication_factor`).
    pub write_quorum: u32,
    /// How often the admin checks replication, in milliseconds.
    pub repair_interval_ms: u64,
    /// Longest a context read or write may take, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            replication_factor: 3,
            write_quorum: 3,
            repair_interval_ms: 30_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// One role of the policy seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoleConfig {
    /// Authority level: a role reads the context of every role with a lower level.
    pub authority: u32,
    /// Whether the admin grants this role to any node that asks (`agent.role`); otherwise an
    /// operator grants it.
    pub self_service: bool,
    /// Roles whose context this role reads besides those of lower authority.
    pub can_read: Vec<String>,
}

/// Roles and who reads whose context. The first admin writes this policy into the cluster state
/// when the cluster has none; after that the cluster's policy is authoritative.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RolesConfig {
    /// Role name → definition.
    pub policy: std::collections::BTreeMap<String, RoleConfig>,
}

impl Default for RolesConfig {
    fn default() -> Self {
        let mut policy = std::collections::BTreeMap::new();
        policy.insert(
            "agent".to_string(),
            RoleConfig {
                authority: 10,
                self_service: true,
                can_read: Vec::new(),
            },
        );
        policy.insert(
            "operator".to_string(),
            RoleConfig {
                authority: 100,
                self_service: false,
                can_read: Vec::new(),
            },
        );
        Self { policy }
    }
}

impl RolesConfig {
    /// The policy in the cluster state's form, validated.
    pub fn to_policy(&self) -> Result<bzzz_storage::raft::RolePolicy, ConfigError> {
        let policy = bzzz_storage::raft::RolePolicy {
            roles: self
                .policy
                .iter()
                .map(|(name, r)| {
                    (
                        name.clone(),
                        bzzz_storage::raft::RoleDef {
                            authority: r.authority,
                            self_service: r.self_service,
                            can_read: r.can_read.iter().cloned().collect(),
                        },
                    )
                })
                .collect(),
        };
        policy.validate().map_err(|e| invalid("roles.policy", e.to_string()))?;
        Ok(policy)
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `bzzz_node=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Settings derived from a validated [`Config`], in the types the node uses.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Parsed listen multiaddrs.
    pub listen: Vec<Multiaddr>,
    /// Parsed external addresses.
    pub external_addresses: Vec<Multiaddr>,
    /// Parsed bootstrap peers.
    pub bootstrap: Vec<BootstrapPeer>,
    /// API listen address.
    pub api_listen: SocketAddr,
    /// Health listen address.
    pub health_listen: SocketAddr,
    /// Put quorum.
    pub put_quorum: libp2p::kad::Quorum,
}

/// The environment variables that override config fields, with the field they set.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("BZZZ_AGENT_ID", "agent.id"),
    ("BZZZ_AGENT_ROLE", "agent.role"),
    ("BZZZ_DATA_DIR", "node.data_dir"),
    ("BZZZ_MODE", "node.mode"),
    ("BZZZ_IDENTITY_KEY_FILE", "node.identity_key_file"),
    ("BZZZ_SWARM_KEY_FILE", "p2p.swarm_key_file"),
    ("BZZZ_P2P_LISTEN", "p2p.listen (comma-separated)"),
    ("BZZZ_EXTERNAL_ADDRESSES", "p2p.external_addresses (comma-separated)"),
    ("BZZZ_BOOTSTRAP_PEERS", "p2p.bootstrap_peers (comma-separated)"),
    ("BZZZ_API_LISTEN", "api.listen"),
    ("BZZZ_OPERATOR_TOKEN_FILE", "api.operator_token_file"),
    ("BZZZ_HEALTH_LISTEN", "health.listen"),
    ("BZZZ_LOG_LEVEL", "log.level"),
    ("BZZZ_LOG_FORMAT", "log.format"),
];

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl Config {
    /// Reads a YAML file. Unknown fields are errors, so typos do not pass silently.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_yaml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses YAML text; an empty document is the default configuration.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })
    }

    /// Applies `BZZZ_*` variables from `lookup` (pass `|k| std::env::var(k).ok()`).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = lookup("BZZZ_AGENT_ID") {
            self.agent.id = v;
        }
        if let Some(v) = lookup("BZZZ_AGENT_ROLE") {
            self.agent.role = v;
        }
        if let Some(v) = lookup("BZZZ_DATA_DIR") {
            self.node.data_dir = PathBuf::from(v);
        }
        if let Some(v) = lookup("BZZZ_MODE") {
            self.node.mode = v
                .parse()
                .map_err(|e: bzzz_bootstrap::ParseModeError| invalid("BZZZ_MODE", e.to_string()))?;
        }
        if let Some(v) = lookup("BZZZ_IDENTITY_KEY_FILE") {
            self.node.identity_key_file = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = lookup("BZZZ_SWARM_KEY_FILE") {
            self.p2p.swarm_key_file = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = lookup("BZZZ_P2P_LISTEN") {
            self.p2p.listen = split_list(&v);
        }
        if let Some(v) = lookup("BZZZ_EXTERNAL_ADDRESSES") {
            self.p2p.external_addresses = split_list(&v);
        }
        if let Some(v) = lookup("BZZZ_BOOTSTRAP_PEERS") {
            self.p2p.bootstrap_peers = split_list(&v);
        }
        if let Some(v) = lookup("BZZZ_API_LISTEN") {
            self.api.listen = v;
        }
        if let Some(v) = lookup("BZZZ_OPERATOR_TOKEN_FILE") {
            self.api.operator_token_file = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = lookup("BZZZ_HEALTH_LISTEN") {
            self.health.listen = v;
        }
        if let Some(v) = lookup("BZZZ_LOG_LEVEL") {
            self.log.level = v;
        }
        if let Some(v) = lookup("BZZZ_LOG_FORMAT") {
            self.log.format = v;
        }
        Ok(())
    }

    /// Checks every field and returns the parsed forms. The first problem found is returned,
    /// naming the field.
    pub fn validate(&self) -> Result<Resolved, ConfigError> {
        if self.agent.role.trim().is_empty() || self.agent.role.len() > 64 {
            return Err(invalid("agent.role", "must be 1 to 64 characters"));
        }
        if self.agent.id.len() > 128 {
            return Err(invalid("agent.id", "must be at most 128 characters"));
        }
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(invalid("node.data_dir", "must not be empty"));
        }
        if self.p2p.listen.is_empty() {
            return Err(invalid(
                "p2p.listen",
                "needs at least one multiaddr, e.g. /ip4/0.0.0.0/tcp/9000",
            ));
        }
        let listen = parse_multiaddrs("p2p.listen", &self.p2p.listen)?;
        let external_addresses = parse_multiaddrs("p2p.external_addresses", &self.p2p.external_addresses)?;
        let bootstrap = self
            .p2p
            .bootstrap_peers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                BootstrapPeer::parse(s).map_err(|e| invalid(format!("p2p.bootstrap_peers[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        range("p2p.max_connections", self.p2p.max_connections as u64, 1, 100_000)?;
        range(
            "p2p.max_connections_per_peer",
            self.p2p.max_connections_per_peer as u64,
            1,
            64,
        )?;
        range(
            "p2p.idle_connection_timeout_secs",
            self.p2p.idle_connection_timeout_secs,
            1,
            86_400,
        )?;
        range(
            "p2p.join_backoff_initial_ms",
            self.p2p.join_backoff_initial_ms,
            10,
            60_000,
        )?;
        range(
            "p2p.join_backoff_max_ms",
            self.p2p.join_backoff_max_ms,
            self.p2p.join_backoff_initial_ms,
            3_600_000,
        )?;
        range(
            "p2p.join_check_interval_ms",
            self.p2p.join_check_interval_ms,
            100,
            3_600_000,
        )?;

        range(
            "gossip.max_message_bytes",
            self.gossip.max_message_bytes as u64,
            1024,
            16 * 1024 * 1024,
        )?;
        range("gossip.max_age_ms", self.gossip.max_age_ms, 1_000, 3_600_000)?;
        range("gossip.max_clock_skew_ms", self.gossip.max_clock_skew_ms, 0, 600_000)?;
        range(
            "gossip.replay_window",
            self.gossip.replay_window as u64,
            1_024,
            10_000_000,
        )?;
        range("gossip.publish_wait_ms", self.gossip.publish_wait_ms, 0, 120_000)?;
        range("gossip.heartbeat_ms", self.gossip.heartbeat_ms, 50, 60_000)?;
        range(
            "gossip.subscriber_queue",
            self.gossip.subscriber_queue as u64,
            1,
            1_000_000,
        )?;

        range(
            "dht.max_record_bytes",
            self.dht.max_record_bytes as u64,
            1024,
            8 * 1024 * 1024,
        )?;
        range("dht.max_records", self.dht.max_records as u64, 1, 1_000_000_000)?;
        range("dht.replication_factor", self.dht.replication_factor as u64, 1, 256)?;
        range("dht.query_timeout_secs", self.dht.query_timeout_secs, 1, 600)?;
        let put_quorum = parse_quorum(&self.dht.put_quorum)?;

        let api_listen = parse_socket("api.listen", &self.api.listen)?;
        let health_listen = parse_socket("health.listen", &self.health.listen)?;
        if api_listen == health_listen && api_listen.port() != 0 {
            return Err(invalid("health.listen", "must differ from api.listen"));
        }
        range(
            "api.max_body_bytes",
            self.api.max_body_bytes as u64,
            1024,
            256 * 1024 * 1024,
        )?;
        range(
            "api.max_concurrent_requests",
            self.api.max_concurrent_requests as u64,
            1,
            100_000,
        )?;
        range("api.request_timeout_secs", self.api.request_timeout_secs, 1, 3_600)?;
        range(
            "health.check_interval_ms",
            self.health.check_interval_ms,
            100,
            3_600_000,
        )?;
        range("health.probe_timeout_ms", self.health.probe_timeout_ms, 50, 600_000)?;

        let e = &self.election;
        range("election.bootstrap_expect", e.bootstrap_expect as u64, 1, 9)?;
        range("election.max_voters", e.max_voters as u64, 1, 9)?;
        if e.max_voters < e.bootstrap_expect {
            return Err(invalid(
                "election.max_voters",
                "must be at least election.bootstrap_expect",
            ));
        }
        range("election.raft_heartbeat_ms", e.raft_heartbeat_ms, 10, 10_000)?;
        range(
            "election.election_timeout_min_ms",
            e.election_timeout_min_ms,
            e.raft_heartbeat_ms.saturating_mul(2),
            60_000,
        )?;
        range(
            "election.election_timeout_max_ms",
            e.election_timeout_max_ms,
            e.election_timeout_min_ms + 1,
            120_000,
        )?;
        range("election.heartbeat_interval_ms", e.heartbeat_interval_ms, 50, 60_000)?;
        range(
            "election.dead_voter_timeout_ms",
            e.dead_voter_timeout_ms,
            1_000,
            86_400_000,
        )?;

        let c = &self.context;
        range("context.replication_factor", c.replication_factor as u64, 1, 20)?;
        range(
            "context.write_quorum",
            c.write_quorum as u64,
            1,
            c.replication_factor as u64,
        )?;
        range("context.repair_interval_ms", c.repair_interval_ms, 1_000, 86_400_000)?;
        range("context.request_timeout_ms", c.request_timeout_ms, 100, 600_000)?;
        if self.roles.policy.is_empty() {
            return Err(invalid("roles.policy", "must define at least one role"));
        }
        self.roles.to_policy()?;
        bzzz_storage::raft::validate_role_name(&self.agent.role).map_err(|e| invalid("agent.role", e.to_string()))?;

        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid(
                "log.format",
                format!("`{}` is not one of: text, json", self.log.format),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a valid tracing filter", self.log.level),
            ));
        }
        Ok(Resolved {
            listen,
            external_addresses,
            bootstrap,
            api_listen,
            health_listen,
            put_quorum,
        })
    }
}

/// The fields a running node applies on a config reload (`SIGHUP`, `POST /api/config/reload`);
/// a change to any other field is reported as needing a restart.
pub const RELOADABLE_FIELDS: [&str; 3] = ["log.level", "api.operator_token_file", "p2p.bootstrap_peers"];

impl Config {
    /// The fields (YAML paths such as `dht.max_records` or `roles.policy.dev`) whose values differ
    /// between `self` and `other`. Lists compare whole; maps and sections field by field.
    pub fn changed_fields(&self, other: &Config) -> Vec<String> {
        let mut out = Vec::new();
        match (serde_json::to_value(self), serde_json::to_value(other)) {
            (Ok(a), Ok(b)) => diff_values("", &a, &b, &mut out),
            // Unreachable for this plain data type; never hide a change if it happens.
            _ => out.push("<config>".into()),
        }
        out
    }
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_values(&sub, va, vb, out),
                    _ => out.push(sub),
                }
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

fn range(field: &str, v: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if v < min || v > max {
        return Err(invalid(field, format!("{v} is out of range {min}..={max}")));
    }
    Ok(())
}

fn parse_multiaddrs(field: &str, list: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Multiaddr>()
                .map_err(|e| invalid(format!("{field}[{i}]"), format!("`{s}` is not a multiaddr: {e}")))
        })
        .collect()
}

fn parse_socket(field: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        invalid(
            field,
            format!("`{s}` is not an address of the form host:port, e.g. 0.0.0.0:8080"),
        )
    })
}

/// Parses `one`, `majority`, `all` or a positive number.
pub fn parse_quorum(s: &str) -> Result<libp2p::kad::Quorum, ConfigError> {
    use libp2p::kad::Quorum;
    match s.trim().to_ascii_lowercase().as_str() {
        "one" | "1" => Ok(Quorum::One),
        "majority" => Ok(Quorum::Majority),
        "all" => Ok(Quorum::All),
        n => n
            .parse::<usize>()
            .ok()
            .and_then(std::num::NonZeroUsize::new)
            .map(Quorum::N)
            .ok_or_else(|| {
                invalid(
                    "dht.put_quorum",
                    format!("`{s}` is not one of: one, majority, all, or a positive number"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default configuration (an empty file) is valid.
    #[test]
    fn empty_file_is_default_and_valid() {
        let c = Config::from_yaml("").expect("empty yaml is the default");
        assert_eq!(c, Config::default());
        c.validate().expect("defaults validate");
    }

    /// The documented example config parses and validates, so the docs cannot drift from the code.
    #[test]
    fn documented_example_is_valid() {
        let text = include_str!("../../docs/config.example.yaml");
        let c = Config::from_yaml(text).expect("docs/config.example.yaml parses");
        c.validate().expect("docs/config.example.yaml validates");
        let d = Config::default();
        assert_eq!(c.election, d.election, "the example documents the election defaults");
        assert_eq!(c.context, d.context, "the example documents the context defaults");
        assert_eq!(c.roles, d.roles, "the example documents the default role policy");
    }

    /// Context and role settings are checked, and errors name the field.
    #[test]
    fn context_and_roles_are_validated() {
        let mut c = Config::default();
        c.context.write_quorum = 4;
        let e = c.validate().expect_err("quorum above R");
        assert!(e.to_string().contains("context.write_quorum"), "got {e}");

        let mut c = Config::default();
        c.context.replication_factor = 0;
        let e = c.validate().expect_err("R = 0");
        assert!(e.to_string().contains("context.replication_factor"), "got {e}");

        let c = Config::from_yaml("roles:\n  policy:\n    dev:\n      authority: 1\n      can_read: [ghost]\n")
            .expect("parses");
        let e = c.validate().expect_err("unknown can_read role");
        assert!(
            e.to_string().contains("roles.policy") && e.to_string().contains("ghost"),
            "got {e}"
        );

        let e = Config::from_yaml("roles:\n  policy:\n    dev:\n      authorty: 1\n").expect_err("typo");
        assert!(e.to_string().contains("authorty"), "got {e}");

        let mut c = Config::default();
        c.roles.policy.clear();
        let e = c.validate().expect_err("empty policy");
        assert!(e.to_string().contains("roles.policy"), "got {e}");

        let mut c = Config::default();
        c.agent.role = "any".into();
        let e = c.validate().expect_err("reserved role name");
        assert!(e.to_string().contains("agent.role"), "got {e}");

        let c = Config::from_yaml("roles:\n  policy:\n    dev:\n      authority: 5\n      self_service: true\n")
            .expect("parses");
        let policy = c.roles.to_policy().expect("valid");
        assert!(policy.roles["dev"].self_service);
    }

    /// Unknown fields, bad values and bad addresses are errors that name the field.
    #[test]
    fn errors_name_the_field() {
        let e = Config::from_yaml("p2p:\n  listn: []\n").expect_err("typo must fail");
        assert!(e.to_string().contains("listn"), "got {e}");

        let mut c = Config::default();
        c.p2p.listen = vec!["not-an-addr".into()];
        let e = c.validate().expect_err("bad multiaddr must fail");
        assert!(e.to_string().contains("p2p.listen[0]"), "got {e}");

        let mut c = Config::default();
        c.p2p.bootstrap_peers = vec!["/ip4/1.2.3.4/udp/1".into()];
        let e = c.validate().expect_err("udp bootstrap must fail");
        assert!(e.to_string().contains("p2p.bootstrap_peers[0]"), "got {e}");

        let mut c = Config::default();
        c.api.listen = "8080".into();
        let e = c.validate().expect_err("port-only api listen must fail");
        assert!(e.to_string().contains("api.listen"), "got {e}");

        let mut c = Config::default();
        c.dht.put_quorum = "most".into();
        let e = c.validate().expect_err("bad quorum must fail");
        assert!(e.to_string().contains("dht.put_quorum"), "got {e}");

        let mut c = Config::default();
        c.gossip.max_message_bytes = 1;
        let e = c.validate().expect_err("tiny message limit must fail");
        assert!(e.to_string().contains("gossip.max_message_bytes"), "got {e}");
    }

    /// A reload's comparison names each changed field by its YAML path, sections and maps
    /// field by field, lists whole.
    #[test]
    fn changed_fields_are_named() {
        let a = Config::default();
        assert!(a.changed_fields(&a.clone()).is_empty());
        let mut b = a.clone();
        b.log.level = "debug".into();
        b.dht.max_records = 5;
        b.p2p.bootstrap_peers = vec!["/ip4/10.0.0.1/tcp/9000".into()];
        b.api.operator_token_file = Some("/run/secrets/t".into());
        b.roles.policy.insert(
            "dev".into(),
            RoleConfig {
                authority: 1,
                ..RoleConfig::default()
            },
        );
        assert_eq!(
            a.changed_fields(&b),
            vec![
                "api.operator_token_file",
                "dht.max_records",
                "log.level",
                "p2p.bootstrap_peers",
                "roles.policy.dev"
            ]
        );
    }

    /// Environment variables override the file.
    #[test]
    fn env_overrides() {
        let mut c = Config::from_yaml("agent:\n  role: reviewer\n").expect("parses");
        c.apply_env(|k| match k {
            "BZZZ_AGENT_ROLE" => Some("architect".into()),
            "BZZZ_BOOTSTRAP_PEERS" => Some("/ip4/127.0.0.1/tcp/9101, localhost:9102".into()),
            "BZZZ_OPERATOR_TOKEN_FILE" => Some("/run/secrets/bzzz_operator_token".into()),
            _ => None,
        })
        .expect("valid env");
        assert_eq!(c.agent.role, "architect");
        assert_eq!(
            c.api.operator_token_file.as_deref(),
            Some(std::path::Path::new("/run/secrets/bzzz_operator_token"))
        );
        assert_eq!(c.p2p.bootstrap_peers.len(), 2);
        c.validate().expect("valid");
        let e = c
            .apply_env(|k| (k == "BZZZ_MODE").then(|| "queen".to_string()))
            .expect_err("bad mode must fail");
        assert!(e.to_string().contains("BZZZ_MODE"), "got {e}");
    }
}
