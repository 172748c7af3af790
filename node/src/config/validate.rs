//! Checking a [`Config`]: each section validates its own fields (`fn validate(&self)`, returning
//! what it parsed), and [`Config::validate`] runs them in file order, adds the checks that span
//! sections, and assembles the parsed forms into [`Resolved`]. Every error names the field.

use std::net::SocketAddr;

use bzzz_bootstrap::BootstrapPeer;
use libp2p::Multiaddr;

use super::{
    AdmissionConfig, AgentConfig, ApiConfig, Config, ConfigError, ContextConfig, DhtConfig, ElectionConfig,
    GossipConfig, HealthConfig, LogConfig, NodeConfig, P2pConfig, RolesConfig, invalid,
};

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

impl Config {
    /// Checks every field and returns the parsed forms. The first problem found is returned,
    /// naming the field.
    pub fn validate(&self) -> Result<Resolved, ConfigError> {
        self.agent.validate()?;
        self.node.validate()?;
        let p2p = self.p2p.validate()?;
        self.admission.validate()?;
        self.gossip.validate()?;
        let put_quorum = self.dht.validate()?;
        let api_listen = self.api.validate()?;
        let health_listen = self.health.validate()?;
        if api_listen == health_listen && api_listen.port() != 0 {
            return Err(invalid("health.listen", "must differ from api.listen"));
        }
        self.election.validate()?;
        self.context.validate()?;
        self.roles.validate()?;
        bzzz_storage::raft::validate_role_name(&self.agent.role).map_err(|e| invalid("agent.role", e.to_string()))?;
        self.log.validate()?;
        // Last, so that a file with other mistakes names those first.
        if self.p2p.swarm_key_file.is_none() && !self.p2p.insecure_open_mesh {
            return Err(invalid(
                "p2p.swarm_key_file",
                "is required: every node of a mesh needs the same mesh key (create one with `bzzz keygen mesh-key --out mesh.key`); to run an open mesh that any host can connect to, set p2p.insecure_open_mesh: true (--insecure-open-mesh), never in production",
            ));
        }
        Ok(Resolved {
            listen: p2p.listen,
            external_addresses: p2p.external_addresses,
            bootstrap: p2p.bootstrap,
            api_listen,
            health_listen,
            put_quorum,
        })
    }
}

impl AdmissionConfig {
    /// Checks the handshake bound and that a certificate file is not given without a CA.
    fn validate(&self) -> Result<(), ConfigError> {
        if !(100..=60_000).contains(&self.handshake_timeout_ms) {
            return Err(invalid("admission.handshake_timeout_ms", "must be 100 to 60000"));
        }
        if !(1_000..=3_600_000).contains(&self.join_timeout_ms) {
            return Err(invalid("admission.join_timeout_ms", "must be 1000 to 3600000"));
        }
        for (field, path) in [
            ("admission.ca_cert_file", &self.ca_cert_file),
            ("admission.cert_file", &self.cert_file),
            ("admission.join_token_file", &self.join_token_file),
            ("admission.issuer_key_file", &self.issuer_key_file),
            ("admission.issuer_cert_file", &self.issuer_cert_file),
            ("admission.seed_join_token_file", &self.seed_join_token_file),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(field, "must not be empty (leave it unset instead)"));
            }
        }
        if let Some(fp) = &self.ca_fingerprint {
            bzzz_protocol::cert::ClusterId::parse(fp)
                .map_err(|e| invalid("admission.ca_fingerprint", e.to_string()))?;
        }
        let has_ca = self.ca_cert_file.is_some() || self.ca_fingerprint.is_some();
        for (field, set) in [
            ("admission.cert_file", self.cert_file.is_some()),
            ("admission.issuer_key_file", self.issuer_key_file.is_some()),
        ] {
            if set && !has_ca {
                return Err(invalid(
                    field,
                    "is set but neither admission.ca_cert_file nor admission.ca_fingerprint is: certificates are checked against the cluster CA",
                ));
            }
        }
        if self.join_token_file.is_some() && self.ca_fingerprint.is_none() {
            return Err(invalid(
                "admission.join_token_file",
                "needs admission.ca_fingerprint: a joining node presents its token only to a cluster it can recognise (`bzzz ca show` prints the fingerprint)",
            ));
        }
        if self.seed_join_token_file.is_some() && self.issuer_key_file.is_none() {
            return Err(invalid(
                "admission.seed_join_token_file",
                "needs the issuer (admission.issuer_key_file): only a voter that signs certificates seeds a join token",
            ));
        }
        if !(1..=1000).contains(&self.seed_join_token_uses) {
            return Err(invalid("admission.seed_join_token_uses", "must be 1 to 1000"));
        }
        if !(1..=720).contains(&self.seed_join_token_ttl_hours) {
            return Err(invalid(
                "admission.seed_join_token_ttl_hours",
                "must be 1 to 720 (30 days)",
            ));
        }
        if self.issuer_key_file.is_some() != self.issuer_cert_file.is_some() {
            return Err(invalid(
                "admission.issuer_key_file",
                "and admission.issuer_cert_file are set together (`bzzz ca issuer` writes both)",
            ));
        }
        Ok(())
    }
}

impl AgentConfig {
    /// Checks the lengths of the role and the id (whether the role is a valid role name is
    /// checked with the policy).
    fn validate(&self) -> Result<(), ConfigError> {
        if self.role.trim().is_empty() || self.role.len() > 64 {
            return Err(invalid("agent.role", "must be 1 to 64 characters"));
        }
        if self.id.len() > 128 {
            return Err(invalid("agent.id", "must be at most 128 characters"));
        }
        Ok(())
    }
}

impl NodeConfig {
    /// Checks the data dir is set.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("node.data_dir", "must not be empty"));
        }
        Ok(())
    }
}

/// The addresses of [`P2pConfig`], parsed.
struct P2pAddrs {
    /// `p2p.listen`.
    listen: Vec<Multiaddr>,
    /// `p2p.external_addresses`.
    external_addresses: Vec<Multiaddr>,
    /// `p2p.bootstrap_peers`.
    bootstrap: Vec<BootstrapPeer>,
}

impl P2pConfig {
    /// Parses the addresses and checks the connection limits and timings.
    fn validate(&self) -> Result<P2pAddrs, ConfigError> {
        if self.swarm_key_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(invalid(
                "p2p.swarm_key_file",
                "must not be empty (leave it unset instead)",
            ));
        }
        if self.listen.is_empty() {
            return Err(invalid(
                "p2p.listen",
                "needs at least one multiaddr, e.g. /ip4/0.0.0.0/tcp/9000",
            ));
        }
        let listen = parse_multiaddrs("p2p.listen", &self.listen)?;
        let external_addresses = parse_multiaddrs("p2p.external_addresses", &self.external_addresses)?;
        let bootstrap = self
            .bootstrap_peers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                BootstrapPeer::parse(s).map_err(|e| invalid(format!("p2p.bootstrap_peers[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        range("p2p.max_connections", u64::from(self.max_connections), 1, 100_000)?;
        range(
            "p2p.max_connections_per_peer",
            u64::from(self.max_connections_per_peer),
            1,
            64,
        )?;
        range(
            "p2p.idle_connection_timeout_secs",
            self.idle_connection_timeout_secs,
            1,
            86_400,
        )?;
        range("p2p.join_backoff_initial_ms", self.join_backoff_initial_ms, 10, 60_000)?;
        range(
            "p2p.join_backoff_max_ms",
            self.join_backoff_max_ms,
            self.join_backoff_initial_ms,
            3_600_000,
        )?;
        range(
            "p2p.join_check_interval_ms",
            self.join_check_interval_ms,
            100,
            3_600_000,
        )?;
        Ok(P2pAddrs {
            listen,
            external_addresses,
            bootstrap,
        })
    }
}

impl GossipConfig {
    /// Checks the limits and timings.
    fn validate(&self) -> Result<(), ConfigError> {
        range(
            "gossip.max_message_bytes",
            self.max_message_bytes as u64,
            1024,
            16 * 1024 * 1024,
        )?;
        range("gossip.max_age_ms", self.max_age_ms, 1_000, 3_600_000)?;
        range("gossip.max_clock_skew_ms", self.max_clock_skew_ms, 0, 600_000)?;
        range("gossip.replay_window", self.replay_window as u64, 1_024, 10_000_000)?;
        range("gossip.publish_wait_ms", self.publish_wait_ms, 0, 120_000)?;
        range("gossip.heartbeat_ms", self.heartbeat_ms, 50, 60_000)?;
        range("gossip.subscriber_queue", self.subscriber_queue as u64, 1, 1_000_000)?;
        Ok(())
    }
}

impl DhtConfig {
    /// Checks the limits and returns the parsed put quorum.
    fn validate(&self) -> Result<libp2p::kad::Quorum, ConfigError> {
        range(
            "dht.max_record_bytes",
            self.max_record_bytes as u64,
            1024,
            8 * 1024 * 1024,
        )?;
        range("dht.max_records", self.max_records as u64, 1, 1_000_000_000)?;
        range("dht.replication_factor", self.replication_factor as u64, 1, 256)?;
        range("dht.query_timeout_secs", self.query_timeout_secs, 1, 600)?;
        parse_quorum(&self.put_quorum)
    }
}

impl ApiConfig {
    /// Parses the listen address and checks the limits.
    fn validate(&self) -> Result<SocketAddr, ConfigError> {
        let listen = parse_socket("api.listen", &self.listen)?;
        range(
            "api.max_body_bytes",
            self.max_body_bytes as u64,
            1024,
            256 * 1024 * 1024,
        )?;
        range(
            "api.max_concurrent_requests",
            self.max_concurrent_requests as u64,
            1,
            100_000,
        )?;
        range("api.request_timeout_secs", self.request_timeout_secs, 1, 3_600)?;
        Ok(listen)
    }
}

impl HealthConfig {
    /// Parses the listen address and checks the timings.
    fn validate(&self) -> Result<SocketAddr, ConfigError> {
        let listen = parse_socket("health.listen", &self.listen)?;
        range("health.check_interval_ms", self.check_interval_ms, 100, 3_600_000)?;
        range("health.probe_timeout_ms", self.probe_timeout_ms, 50, 600_000)?;
        Ok(listen)
    }
}

impl ElectionConfig {
    /// Checks the cluster size and the Raft timings against each other.
    fn validate(&self) -> Result<(), ConfigError> {
        range("election.bootstrap_expect", u64::from(self.bootstrap_expect), 1, 9)?;
        range("election.max_voters", u64::from(self.max_voters), 1, 9)?;
        if self.max_voters < self.bootstrap_expect {
            return Err(invalid(
                "election.max_voters",
                "must be at least election.bootstrap_expect",
            ));
        }
        range("election.raft_heartbeat_ms", self.raft_heartbeat_ms, 10, 10_000)?;
        range(
            "election.election_timeout_min_ms",
            self.election_timeout_min_ms,
            self.raft_heartbeat_ms.saturating_mul(2),
            60_000,
        )?;
        range(
            "election.election_timeout_max_ms",
            self.election_timeout_max_ms,
            self.election_timeout_min_ms + 1,
            120_000,
        )?;
        range("election.heartbeat_interval_ms", self.heartbeat_interval_ms, 50, 60_000)?;
        range(
            "election.dead_voter_timeout_ms",
            self.dead_voter_timeout_ms,
            1_000,
            86_400_000,
        )?;
        Ok(())
    }
}

impl ContextConfig {
    /// Checks R, the write quorum (at most R) and the timings.
    fn validate(&self) -> Result<(), ConfigError> {
        range("context.replication_factor", u64::from(self.replication_factor), 1, 20)?;
        range(
            "context.write_quorum",
            u64::from(self.write_quorum),
            1,
            u64::from(self.replication_factor),
        )?;
        range("context.repair_interval_ms", self.repair_interval_ms, 1_000, 86_400_000)?;
        range("context.request_timeout_ms", self.request_timeout_ms, 100, 600_000)?;
        Ok(())
    }
}

impl RolesConfig {
    /// Checks the policy defines a role and is a valid policy.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.policy.is_empty() {
            return Err(invalid("roles.policy", "must define at least one role"));
        }
        self.to_policy()?;
        Ok(())
    }

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

impl LogConfig {
    /// Checks the format and that the level is a valid `tracing` filter.
    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.format.as_str(), "text" | "json") {
            return Err(invalid(
                "log.format",
                format!("`{}` is not one of: text, json", self.format),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a valid tracing filter", self.level),
            ));
        }
        Ok(())
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
