//! Node configuration: `config.yaml`, then `BZZZ_*` environment variables, then command-line flags.
//!
//! Every field has a default suitable for development, so an empty file (or no file) is a valid
//! configuration. [`Config::validate`] runs once at start; an invalid value stops the daemon with a
//! message naming the field and the problem. The documented example is `docs/config.example.yaml`.
//!
//! - this module: [`Config`], its sections and their defaults (types only), and reading a file;
//! - `env`: the `BZZZ_*` overrides ([`ENV_VARS`], [`Config::apply_env`]);
//! - `validate`: each section's checks, assembled by [`Config::validate`] into [`Resolved`];
//! - `diff`: what a reload compares ([`Config::changed_fields`], [`RELOADABLE_FIELDS`]).

use std::path::{Path, PathBuf};

use bzzz_bootstrap::Mode;
use serde::{Deserialize, Serialize};

mod diff;
mod env;
mod validate;

pub use diff::RELOADABLE_FIELDS;
pub use env::ENV_VARS;
pub use validate::{Resolved, parse_quorum};

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
    /// Who may connect: the cluster CA and this node's certificate.
    pub admission: AdmissionConfig,
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

/// Admission: every P2P connection exchanges certificates (`/bzzz/admit/1`) and is dropped unless
/// the peer holds a certificate of this cluster (see `docs/security.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// The cluster CA certificate (`ca.crt` from `bzzz ca init`; the Docker secret
    /// `bzzz_ca_cert`). Unset: admission is off and any peer that can connect is trusted (a
    /// warning at start, `bzzz_admission_enabled 0`).
    pub ca_cert_file: Option<PathBuf>,
    /// This node's certificate chain (`bzzz ca sign`, or obtained with a join token). Unset:
    /// `<data_dir>/node.crt`.
    pub cert_file: Option<PathBuf>,
    /// The cluster fingerprint (`bzzz ca show` prints it; 64 hex digits, `sha256:` optional). A
    /// node joining with a token trusts only voters whose certificates chain to the CA with this
    /// fingerprint, and learns the CA certificate from them (kept in `<data_dir>/ca.crt`). With
    /// `ca_cert_file` also set, that file must have this fingerprint.
    pub ca_fingerprint: Option<String>,
    /// A file holding a join token (`id.secret`, from `bzzz join-token create`). Used only while
    /// this node has no valid certificate: it presents the token to a voter and receives one.
    pub join_token_file: Option<PathBuf>,
    /// How long a node with a join token tries to obtain its certificate before it gives up, in
    /// milliseconds.
    pub join_timeout_ms: u64,
    /// The issuer's private key (`bzzz ca issuer`): a voter holding it signs certificates for
    /// nodes that present a join token. Set with `issuer_cert_file`, on voters only.
    pub issuer_key_file: Option<PathBuf>,
    /// The issuer's certificate, signed by the CA: the roles (and whether the voter right) the
    /// online path may give.
    pub issuer_cert_file: Option<PathBuf>,
    /// On voters: a join token (`id.secret`) the admin adds to the cluster if it does not hold
    /// it yet, so nodes can join with it before anyone could call `bzzz join-token create` (the
    /// Docker secret `bzzz_join_token` of a fresh deployment). Added once: revoking or expiring
    /// it is final. Needs the issuer files.
    pub seed_join_token_file: Option<PathBuf>,
    /// Roles the seed token gives (within the issuer's scope).
    pub seed_join_token_roles: Vec<String>,
    /// How many nodes may use the seed token (1 to 1000).
    pub seed_join_token_uses: u32,
    /// How long the seed token is accepted after the admin adds it, in hours (1 to 720).
    pub seed_join_token_ttl_hours: u64,
    /// Bound on a new connection's certificate exchange, in milliseconds; a peer that has not
    /// finished by then is dropped.
    pub handshake_timeout_ms: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            ca_cert_file: None,
            cert_file: None,
            ca_fingerprint: None,
            join_token_file: None,
            join_timeout_ms: 120_000,
            issuer_key_file: None,
            issuer_cert_file: None,
            seed_join_token_file: None,
            seed_join_token_roles: vec!["agent".into()],
            seed_join_token_uses: 100,
            seed_join_token_ttl_hours: 720,
            handshake_timeout_ms: 2_000,
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
    /// The mesh key: a libp2p pre-shared key file (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex
    /// digits; `bzzz keygen mesh-key`, the Docker secret `bzzz_swarm_key`). The node only talks
    /// to nodes with the same key (libp2p private network). Required unless
    /// `insecure_open_mesh` is set.
    pub swarm_key_file: Option<PathBuf>,
    /// Run without a mesh key: any host that reaches the P2P port can connect (admission
    /// still checks certificates when a CA is configured). Logged loudly at start, shown in
    /// `/api/status` and `bzzz_p2p_insecure_open_mesh`. Never in production.
    pub insecure_open_mesh: bool,
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
            insecure_open_mesh: false,
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
    /// Queue length of each long-lived topic subscriber (the admin-topic listener, the health
    /// probe responder); messages beyond it are dropped and counted.
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
    /// On an open mesh (no cluster CA), whether the admin grants this role to any node that
    /// asks (`agent.role`). With admission on it is ignored: a node gets the roles its
    /// certificate lists, and an operator grants any other.
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
}

#[cfg(test)]
mod tests;
