//! The `bzzz` command line: `run` and `dev` start nodes; the other verbs talk to a node's HTTP API
//! through the typed [`bzzz_client::ApiClient`], one room per group of verbs: [`node`] (status,
//! peers, health, election, self-tests), [`context`], [`roles`], [`ops`] (the operator verbs,
//! backup and restore), [`identity`] and [`ca`] (key and certificate files, no node). [`print`] holds the shared output
//! helpers and the CLI's error type.

mod ca;
mod context;
mod identity;
mod node;
mod ops;
mod print;
mod roles;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bzzz_client::ApiClient;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
pub use ca::{AdmissionCommand, CaCommand, JoinTokenCommand, KeygenCommand};
pub use print::CliError;

/// bzzz: a peer-to-peer mesh daemon for AI agents.
#[derive(Debug, Parser)]
#[command(name = "bzzz", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Run(RunArgs),
    /// Run a local mesh of N nodes in one process (for development).
    Dev(crate::dev::DevArgs),
    /// Show the node's status.
    Status(ClientArgs),
    /// List the node's connected peers (`bzzz peers clear`: forget them and re-bootstrap).
    Peers(PeersArgs),
    /// Show the node's health; exit code 0 only when healthy.
    Health(HealthArgs),
    /// Publish a probe and report which peers received it.
    TestP2pMessage(TestP2pArgs),
    /// Put, get and verify a DHT record from the node, with latencies.
    TestDhtOperations(TestDhtArgs),
    /// Force a new admin election, with the node as candidate (it must be admin-eligible).
    TriggerElection(ClientArgs),
    /// Show the admin election as the node sees it.
    Election(ClientArgs),
    /// Read and write encrypted context at UCXL addresses.
    #[command(subcommand)]
    Context(ContextCommand),
    /// Show the role policy and grant roles.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Create or inspect node identity keys (e.g. fixed identities for bootstrap nodes).
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// The cluster CA and node certificates (files only; keep the CA directory offline).
    #[command(subcommand)]
    Ca(CaCommand),
    /// Create secrets: the mesh key.
    #[command(subcommand)]
    Keygen(KeygenCommand),
    /// Admission on a running node: apply CA-signed revocation lists (operator actions).
    #[command(subcommand)]
    Admission(AdmissionCommand),
    /// Join tokens: create, list and revoke the credentials with which new nodes obtain their
    /// certificates (operator actions on a voter holding the issuer key).
    #[command(subcommand)]
    JoinToken(JoinTokenCommand),
    /// Make the running node re-read its config file (like SIGHUP): applies log.level,
    /// api.operator_token_file (the token is re-read) and p2p.bootstrap_peers, and lists the
    /// changed fields that need a restart. A file that does not validate is refused.
    Reload(OperatorArgs),
    /// DHT maintenance on the node (operator actions).
    #[command(subcommand)]
    Dht(DhtCommand),
    /// Export the running node's sled database (every tree: DHT records, Raft log and cluster
    /// state) to a file, in a versioned, checksummed format; the node keeps running. The
    /// identity key (identity.key or node.identity_key_file) and the X25519 key (x25519.key) are
    /// NOT in the backup: back them up separately, as secrets.
    Backup(BackupArgs),
    /// Restore a backup into a stopped node's data dir (DIR/db), offline: the file is checked
    /// first and nothing is written if it is damaged; a database a running node uses, or one that
    /// holds data (unless --force), is refused. Put the identity and X25519 key files back into
    /// DIR separately.
    Restore(RestoreArgs),
}

/// Flags of `bzzz backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Operator and client flags (raise --timeout-secs for a large database).
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// The backup file to write (mode 0600). It is written under a temporary name, checked, and
    /// then renamed: FILE is either a complete, verified backup or untouched.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Flags of `bzzz restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file written by `bzzz backup`.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The stopped node's data dir; the database is restored to DIR/db.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Replace a database that holds data (it is renamed aside to db.replaced-<unix ms>, not
    /// deleted).
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The `bzzz dht` verbs.
#[derive(Debug, Subcommand)]
pub enum DhtCommand {
    /// Re-announce the node as provider of every record it holds, republish the non-context
    /// records it published, and have the admin check and repair context replication now: the
    /// runbook's "force re-provision of content" / "restart replication managers".
    Reprovide(OperatorArgs),
    /// The node's DHT cache.
    #[command(subcommand)]
    Cache(DhtCacheCommand),
}

/// The `bzzz dht cache` verbs.
#[derive(Debug, Subcommand)]
pub enum DhtCacheCommand {
    /// Remove what the node merely caches from its DHT store: expired records and provider
    /// records, plain records other nodes published, its provider announcements of records it no
    /// longer holds. Context records (its share of the R replicas) and records it published stay.
    /// Replaces the runbook's `rm -rf /app/data/dht/cache/*`.
    Clear(OperatorArgs),
}

/// The `bzzz identity` verbs. They work on files only and never talk to a node.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Write a new ed25519 identity key (libp2p protobuf encoding, mode 0600) and print its peer
    /// id. `--output -` writes the key to stdout (for `docker secret create NAME -`) and the peer
    /// id to stderr. Never replaces an existing file.
    New(IdentityNewArgs),
    /// Print the peer id of an identity key file.
    Show(IdentityShowArgs),
}

/// Flags of `bzzz identity new`.
#[derive(Debug, Args)]
pub struct IdentityNewArgs {
    /// Where to write the key; `-` for stdout.
    #[arg(long, short)]
    pub output: PathBuf,
}

/// Flags of `bzzz identity show`.
#[derive(Debug, Args)]
pub struct IdentityShowArgs {
    /// The key file.
    pub file: PathBuf,
}

/// The `bzzz context` verbs.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Write a new version at an address: the content of `--file`, or stdin.
    Put(ContextPutArgs),
    /// Print the content at an address (raw bytes) to stdout or `--output`.
    Get(ContextGetArgs),
    /// Delete an address (writes a tombstone version).
    Delete(ContextAddressArgs),
    /// List the versions of an address.
    History(ContextListArgs),
    /// List the addresses that match a pattern, with their latest versions.
    Discover(ContextListArgs),
}

/// The `bzzz roles` verbs.
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// List the roles, the grants and the pending role requests.
    List(ClientArgs),
    /// Grant a role to a peer (an operator action).
    Grant(RolesGrantArgs),
}

/// Flags of `bzzz run`; each overrides the config file and the environment.
#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// Config file (YAML).
    #[arg(long, env = "BZZZ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (identity and database).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// P2P listen multiaddr (repeatable).
    #[arg(long = "p2p-listen")]
    pub p2p_listen: Vec<String>,
    /// API listen address, host:port.
    #[arg(long)]
    pub api_listen: Option<String>,
    /// Health listen address, host:port.
    #[arg(long)]
    pub health_listen: Option<String>,
    /// Bootstrap peer multiaddr or host:port (repeatable).
    #[arg(long = "bootstrap")]
    pub bootstrap: Vec<String>,
    /// `agent` or `bootstrap`.
    #[arg(long)]
    pub mode: Option<String>,
    /// Identity key file (e.g. a Docker secret).
    #[arg(long)]
    pub identity_key_file: Option<PathBuf>,
    /// Agent id.
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Agent role.
    #[arg(long)]
    pub role: Option<String>,
    /// This node may become admin (joins the Raft cluster).
    #[arg(long)]
    pub admin_eligible: bool,
    /// How many eligible nodes form the cluster.
    #[arg(long)]
    pub bootstrap_expect: Option<u32>,
    /// The mesh key file (p2p.swarm_key_file; `bzzz keygen mesh-key`).
    #[arg(long)]
    pub swarm_key_file: Option<PathBuf>,
    /// Run without a mesh key: any host that reaches the P2P port can connect. Never in
    /// production (p2p.insecure_open_mesh).
    #[arg(long)]
    pub insecure_open_mesh: bool,
}

impl RunArgs {
    /// Loads the config file (if any), applies `BZZZ_*` variables, then these flags.
    pub fn load_config(&self) -> Result<Config, crate::config::ConfigError> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        c.apply_env(|k| std::env::var(k).ok())?;
        if let Some(v) = &self.data_dir {
            c.node.data_dir = v.clone();
        }
        if !self.p2p_listen.is_empty() {
            c.p2p.listen = self.p2p_listen.clone();
        }
        if let Some(v) = &self.api_listen {
            c.api.listen = v.clone();
        }
        if let Some(v) = &self.health_listen {
            c.health.listen = v.clone();
        }
        if !self.bootstrap.is_empty() {
            c.p2p.bootstrap_peers = self.bootstrap.clone();
        }
        if let Some(v) = &self.mode {
            c.node.mode =
                v.parse().map_err(
                    |e: bzzz_bootstrap::ParseModeError| crate::config::ConfigError::Invalid {
                        field: "--mode".into(),
                        problem: e.to_string(),
                    },
                )?;
        }
        if let Some(v) = &self.identity_key_file {
            c.node.identity_key_file = Some(v.clone());
        }
        if let Some(v) = &self.agent_id {
            c.agent.id = v.clone();
        }
        if let Some(v) = &self.role {
            c.agent.role = v.clone();
        }
        if self.admin_eligible {
            c.election.eligible = true;
        }
        if let Some(n) = self.bootstrap_expect {
            c.election.bootstrap_expect = n;
        }
        if let Some(v) = &self.swarm_key_file {
            c.p2p.swarm_key_file = Some(v.clone());
        }
        if self.insecure_open_mesh {
            c.p2p.insecure_open_mesh = true;
        }
        Ok(c)
    }
}

/// Flags of the client verbs.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The node's API URL.
    #[arg(long, env = "BZZZ_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// Flags of `bzzz health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Ask the health listener on this host (for Docker healthchecks): 127.0.0.1 and the port of
    /// `health.listen` from `--config`/`BZZZ_CONFIG`/`BZZZ_HEALTH_LISTEN`, default 8081.
    #[arg(long)]
    pub local: bool,
    /// Config file, to find the health port with `--local`.
    #[arg(long, env = "BZZZ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Exit non-zero from this status on: `degraded` (only a healthy node passes) or
    /// `unhealthy` (a degraded node passes: what container healthchecks use, so a node in a
    /// minority partition is not restarted for it).
    #[arg(long, value_enum, default_value_t = FailOn::Degraded)]
    pub fail_on: FailOn,
}

/// The status from which `bzzz health` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Degraded or unhealthy fails.
    Degraded,
    /// Only unhealthy fails.
    Unhealthy,
}

/// Flags of `bzzz test-p2p-message`.
#[derive(Debug, Args)]
pub struct TestP2pArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// How long to wait for acknowledgements, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

/// Flags of `bzzz test-dht-operations`.
#[derive(Debug, Args)]
pub struct TestDhtArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Size of the test record in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size_bytes: usize,
}

/// Flags of `bzzz context delete`.
#[derive(Debug, Args)]
pub struct ContextAddressArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The UCXL address, e.g. `ucxl://alice:agent@proj:task1/notes/a.md`.
    pub address: String,
}

/// Flags of `bzzz context put`.
#[derive(Debug, Args)]
pub struct ContextPutArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The UCXL address to write.
    pub address: String,
    /// Read the content from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// Flags of `bzzz context get`.
#[derive(Debug, Args)]
pub struct ContextGetArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The UCXL address to read (may name a version).
    pub address: String,
    /// Write the content to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Flags of `bzzz context history` (an address) and `bzzz context discover` (a pattern).
#[derive(Debug, Args)]
pub struct ContextListArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The UCXL address (`history`) or address pattern (`discover`).
    pub address: String,
    /// List at most this many entries (the node's default when unset).
    #[arg(long)]
    pub limit: Option<u32>,
}

/// Flags of `bzzz roles grant`.
#[derive(Debug, Args)]
pub struct RolesGrantArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The role to grant.
    pub role: String,
    /// The peer id to grant it to.
    #[arg(long)]
    pub peer: String,
    /// File holding the operator token, sent as `Authorization: Bearer <token>`.
    #[arg(long, env = "BZZZ_OPERATOR_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// `bzzz peers [clear]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PeersArgs {
    /// `clear`, or nothing to list the connected peers.
    #[command(subcommand)]
    pub command: Option<PeersCommand>,
    /// Client flags (listing).
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The `bzzz peers` verbs.
#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Forget every peer the node knows (Kademlia routing table, remembered addresses), close
    /// every connection and re-bootstrap from the configured bootstrap peers at once: the
    /// runbook's "clear peer store". An operator action.
    Clear(OperatorArgs),
}

/// Flags of the operator verbs (`reload`, `peers clear`, `dht …`, `backup`).
#[derive(Debug, Args, Clone)]
pub struct OperatorArgs {
    /// Client flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// File holding the operator token, sent as `Authorization: Bearer <token>` (needed when the
    /// node has `api.operator_token_file`).
    #[arg(long, env = "BZZZ_OPERATOR_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl ClientArgs {
    /// A client of the node at `--api`, with `--timeout-secs`.
    fn client(&self) -> Result<ApiClient, CliError> {
        Ok(ApiClient::with_timeout(
            &self.api,
            Duration::from_secs(self.timeout_secs.max(1)),
        )?)
    }
}

impl OperatorArgs {
    /// A client of the node at `--api` that sends the token of `--token-file`, if given.
    fn client(&self) -> Result<ApiClient, CliError> {
        let client = self.client.client()?;
        Ok(match read_token_file(self.token_file.as_ref())? {
            Some(token) => client.with_token(token),
            None => client,
        })
    }
}

/// The operator token from `file` (trimmed), if a file is given.
fn read_token_file(file: Option<&PathBuf>) -> Result<Option<String>, CliError> {
    match file {
        Some(f) => {
            let t = std::fs::read_to_string(f).map_err(|e| CliError::Local {
                what: format!("cannot read the operator token file {}", f.display()),
                reason: e.to_string(),
            })?;
            Ok(Some(t.trim().to_string()))
        }
        None => Ok(None),
    }
}

/// Runs a client verb; returns the process exit code.
pub async fn run_client(command: Command) -> ExitCode {
    let result = match command {
        Command::Status(a) => node::status(&a).await,
        Command::Peers(a) => match a.command {
            None => node::peers(&a.client).await,
            Some(PeersCommand::Clear(o)) => ops::peers_clear(&o).await,
        },
        Command::Health(a) => return node::health(a).await,
        Command::TestP2pMessage(a) => node::test_p2p(&a).await,
        Command::TestDhtOperations(a) => node::test_dht(&a).await,
        Command::TriggerElection(a) => node::trigger_election(&a).await,
        Command::Election(a) => node::election(&a).await,
        Command::Context(c) => match c {
            ContextCommand::Put(a) => context::put(&a).await,
            ContextCommand::Get(a) => context::get(&a).await,
            ContextCommand::Delete(a) => context::delete(&a).await,
            ContextCommand::History(a) => context::history(&a).await,
            ContextCommand::Discover(a) => context::discover(&a).await,
        },
        Command::Roles(c) => match c {
            RolesCommand::List(a) => roles::list(&a).await,
            RolesCommand::Grant(a) => roles::grant(&a).await,
        },
        Command::Identity(c) => identity::run(&c),
        Command::Ca(c) => ca::run(&c),
        Command::Keygen(c) => ca::keygen(&c),
        Command::Admission(c) => ca::admission(&c).await,
        Command::JoinToken(c) => ca::join_token(&c).await,
        Command::Reload(a) => ops::reload(&a).await,
        Command::Backup(a) => ops::backup(&a).await,
        Command::Restore(a) => ops::restore(&a).await,
        Command::Dht(c) => match c {
            DhtCommand::Reprovide(a) => ops::dht_reprovide(&a).await,
            DhtCommand::Cache(DhtCacheCommand::Clear(a)) => ops::dht_cache_clear(&a).await,
        },
        Command::Run(_) | Command::Dev(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
