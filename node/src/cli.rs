//! The `bzzz` command line: `run` and `dev` start nodes; the other verbs talk to a node's HTTP API
//! (the operator verbs are in [`ops`]).

mod ops;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::config::Config;

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

/// A client-side failure, printed to stderr.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot reach the bzzz node at {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node answered with an error envelope.
    #[error("{code}: {message}")]
    Api {
        /// Stable error code.
        code: String,
        /// Message.
        message: String,
    },
    /// The node's answer was not what the client expected.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A local file or stream could not be read or written.
    #[error("{what}: {reason}")]
    Local {
        /// What was read or written.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

/// What a request sends.
enum Payload {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// Raw bytes (`application/octet-stream`).
    Raw(Vec<u8>),
}

/// Sends one request: the one place that builds the client and maps connection errors. Returns
/// the URL (for error messages) and the response.
async fn send(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    payload: Payload,
    bearer: Option<&str>,
) -> Result<(String, reqwest::Response), ClientError> {
    let url = format!("{}{}", args.api.trim_end_matches('/'), path);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs.max(1)))
        .build()
        .map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let mut req = client.request(method, &url);
    match payload {
        Payload::Empty => {}
        Payload::Json(b) => req = req.json(&b),
        Payload::Raw(b) => {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b);
        }
    }
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| ClientError::Unreachable {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    Ok((url, resp))
}

/// The status and JSON body of a response.
async fn read_json(url: &str, resp: reqwest::Response) -> Result<(u16, Value), ClientError> {
    let status = resp.status().as_u16();
    let value: Value = resp.json().await.map_err(|e| ClientError::Protocol {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    Ok((status, value))
}

async fn request(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), ClientError> {
    let payload = body.map_or(Payload::Empty, Payload::Json);
    let (url, resp) = send(args, method, path, payload, None).await?;
    read_json(&url, resp).await
}

/// A response read as raw bytes.
struct RawAnswer {
    url: String,
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl RawAnswer {
    /// The body as JSON.
    fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Protocol {
            url: self.url.clone(),
            reason: format!("http {}: {e}", self.status),
        })
    }

    /// The error of a non-2xx answer: the node's error envelope when it sent one.
    fn error(&self) -> ClientError {
        match self.json() {
            Ok(v) if v.get("error").is_some() => api_error(&v),
            _ => ClientError::Protocol {
                url: self.url.clone(),
                reason: format!("http {} without an error envelope", self.status),
            },
        }
    }

    /// A response header as text (`?` when missing).
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("?")
    }
}

/// Like [`request`], with an optional raw-bytes body and the answer kept as raw bytes.
async fn request_raw(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<RawAnswer, ClientError> {
    let payload = body.map_or(Payload::Empty, Payload::Raw);
    let (url, resp) = send(args, method, path, payload, None).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| ClientError::Protocol {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    Ok(RawAnswer {
        url,
        status,
        headers,
        body: body.to_vec(),
    })
}

/// Percent-encodes a query value: everything but the unreserved characters `A-Z a-z 0-9 - _ . ~`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?name=value[&limit=N]`, with the value percent-encoded.
fn query_path(path: &str, name: &str, value: &str, limit: Option<u32>) -> String {
    let mut p = format!("{path}?{name}={}", percent_encode(value));
    if let Some(n) = limit {
        p.push_str(&format!("&limit={n}"));
    }
    p
}

/// A Unix time in milliseconds as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn format_time_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// A JSON time in milliseconds, formatted, or `?`.
fn time_of(v: &Value) -> String {
    v.as_u64().map(format_time_ms).unwrap_or_else(|| "?".into())
}

/// Asks the node; a status other than 200 is the node's error envelope. With `--json` prints the
/// answer and returns `None`; otherwise returns it for the verb's text output.
async fn answer(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Option<Value>, ClientError> {
    let (code, v) = request(args, method, path, body).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if args.json {
        print_json(&v);
        return Ok(None);
    }
    Ok(Some(v))
}

fn api_error(v: &Value) -> ClientError {
    ClientError::Api {
        code: v["error"]["code"].as_str().unwrap_or("BZZZ-???").to_string(),
        message: v["error"]["message"].as_str().unwrap_or("no message").to_string(),
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// Runs a client verb; returns the process exit code.
pub async fn run_client(command: Command) -> ExitCode {
    let result = match command {
        Command::Status(a) => status(&a).await,
        Command::Peers(a) => match a.command {
            None => peers(&a.client).await,
            Some(PeersCommand::Clear(o)) => ops::peers_clear(&o).await,
        },
        Command::Health(a) => return health(a).await,
        Command::TestP2pMessage(a) => test_p2p(&a).await,
        Command::TestDhtOperations(a) => test_dht(&a).await,
        Command::TriggerElection(a) => trigger_election(&a).await,
        Command::Election(a) => election(&a).await,
        Command::Context(c) => match c {
            ContextCommand::Put(a) => context_put(&a).await,
            ContextCommand::Get(a) => context_get(&a).await,
            ContextCommand::Delete(a) => context_delete(&a).await,
            ContextCommand::History(a) => context_history(&a).await,
            ContextCommand::Discover(a) => context_discover(&a).await,
        },
        Command::Roles(c) => match c {
            RolesCommand::List(a) => roles_list(&a).await,
            RolesCommand::Grant(a) => roles_grant(&a).await,
        },
        Command::Identity(c) => identity(&c),
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

async fn status(a: &ClientArgs) -> Result<(), ClientError> {
    let Some(v) = answer(a, reqwest::Method::GET, "/api/status", None).await? else {
        return Ok(());
    };
    println!("peer id:    {}", v["peer_id"].as_str().unwrap_or("?"));
    println!(
        "agent:      {} (role {})",
        v["agent_id"].as_str().unwrap_or("?"),
        v["role"].as_str().unwrap_or("?")
    );
    println!("mode:       {}", v["mode"].as_str().unwrap_or("?"));
    println!("version:    {}", v["version"].as_str().unwrap_or("?"));
    println!(
        "health:     {} (score {:.2})",
        v["health"]["status"].as_str().unwrap_or("?"),
        v["health"]["score"].as_f64().unwrap_or(0.0)
    );
    println!("peers:      {}", v["peers"]);
    println!("routing:    {} peers in routing table", v["routing_table_size"]);
    println!("bootstrap:  {}", v["bootstrap"]["state"].as_str().unwrap_or("?"));
    println!(
        "admin:      {} (term {}, this node {})",
        v["election"]["admin"].as_str().unwrap_or("none known"),
        v["election"]["term"],
        v["election"]["state"].as_str().unwrap_or("?")
    );
    println!("uptime:     {} s", v["uptime_seconds"]);
    if let Some(addrs) = v["listen_addrs"].as_array() {
        for addr in addrs {
            println!("listening:  {}", addr.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}

async fn peers(a: &ClientArgs) -> Result<(), ClientError> {
    let Some(v) = answer(a, reqwest::Method::GET, "/api/peers", None).await? else {
        return Ok(());
    };
    println!("{} connected peers", v["count"]);
    for p in v["peers"].as_array().into_iter().flatten() {
        let latency = p["latency_ms"]
            .as_f64()
            .map(|l| format!("{l:.2} ms"))
            .unwrap_or_else(|| "-".into());
        let addr = p["addresses"][0].as_str().unwrap_or("-");
        println!(
            "  {}  latency {latency:>10}  {addr}",
            p["peer_id"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

fn local_health_url(a: &HealthArgs) -> String {
    let mut port = 8081;
    let config = a.config.as_ref().and_then(|p| Config::from_file(p).ok());
    let listen = std::env::var("BZZZ_HEALTH_LISTEN")
        .ok()
        .or_else(|| config.map(|c| c.health.listen));
    if let Some(l) = listen
        && let Ok(addr) = l.parse::<std::net::SocketAddr>()
    {
        port = addr.port();
    }
    format!("http://127.0.0.1:{port}")
}

async fn health(mut a: HealthArgs) -> ExitCode {
    if a.local {
        a.client.api = local_health_url(&a);
    }
    let (code, v) = match request(&a.client, reqwest::Method::GET, "/health", None).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if v.get("error").is_some() {
        eprintln!("error: {}", api_error(&v));
        return ExitCode::FAILURE;
    }
    let status = v["status"].as_str().unwrap_or("unknown");
    if a.client.json {
        print_json(&v);
    } else {
        println!(
            "{status} (score {:.2}, http {code})",
            v["score"].as_f64().unwrap_or(0.0)
        );
        if let Some(c) = v["components"].as_object() {
            for (name, s) in c {
                println!("  {name:<12} {}", s.as_str().unwrap_or("?"));
            }
        }
    }
    let passes = match a.fail_on {
        FailOn::Degraded => status == "healthy",
        FailOn::Unhealthy => status == "healthy" || status == "degraded",
    };
    if passes { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn identity(c: &IdentityCommand) -> Result<(), ClientError> {
    use std::io::Write;
    let local = |what: String| {
        move |e: crate::identity::IdentityError| ClientError::Local {
            what,
            reason: e.to_string(),
        }
    };
    match c {
        IdentityCommand::New(a) if a.output.as_os_str() == "-" => {
            let (key, bytes) = crate::identity::generate();
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| ClientError::Local {
                    what: "cannot write the key to stdout".into(),
                    reason: e.to_string(),
                })?;
            eprintln!("{}", key.public().to_peer_id());
        }
        IdentityCommand::New(a) => {
            let key =
                crate::identity::create_key_file(&a.output).map_err(local("cannot create the identity key".into()))?;
            println!("{}", key.public().to_peer_id());
        }
        IdentityCommand::Show(a) => {
            let key = crate::identity::read_key_file(&a.file).map_err(local("cannot read the identity key".into()))?;
            println!("{}", key.public().to_peer_id());
        }
    }
    Ok(())
}

async fn test_p2p(a: &TestP2pArgs) -> Result<(), ClientError> {
    let (code, v) = request(
        &a.client,
        reqwest::Method::POST,
        "/api/test/p2p-message",
        Some(serde_json::json!({"timeout_ms": a.timeout_ms})),
    )
    .await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.client.json {
        print_json(&v);
    } else {
        let receivers = v["receivers"].as_array().cloned().unwrap_or_default();
        println!(
            "probe {} received by {} peers in {} ms",
            v["probe_id"].as_str().unwrap_or("?"),
            receivers.len(),
            v["waited_ms"]
        );
        for r in &receivers {
            println!(
                "  {}  {:.2} ms",
                r["peer_id"].as_str().unwrap_or("?"),
                r["round_trip_ms"].as_f64().unwrap_or(0.0)
            );
        }
        for m in v["missing"].as_array().into_iter().flatten() {
            println!("  {}  MISSING", m.as_str().unwrap_or("?"));
        }
    }
    let missing = v["missing"].as_array().map(|m| m.len()).unwrap_or(0);
    let received = v["receivers"].as_array().map(|m| m.len()).unwrap_or(0);
    if received == 0 || missing > 0 {
        return Err(ClientError::Api {
            code: "BZZZ-TEST-FAILED".into(),
            message: format!("{received} peers acknowledged, {missing} missing"),
        });
    }
    Ok(())
}

async fn test_dht(a: &TestDhtArgs) -> Result<(), ClientError> {
    let (code, v) = request(
        &a.client,
        reqwest::Method::POST,
        "/api/test/dht-operations",
        Some(serde_json::json!({"size_bytes": a.size_bytes})),
    )
    .await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.client.json {
        print_json(&v);
    } else {
        println!(
            "put {:.2} ms (replicated: {}), get {:.2} ms, verified: {}  [{} bytes, key {}]",
            v["put_ms"].as_f64().unwrap_or(0.0),
            v["replicated"],
            v["get_ms"].as_f64().unwrap_or(0.0),
            v["verified"],
            v["size_bytes"],
            v["key"].as_str().unwrap_or("?")
        );
        if let Some(e) = v.get("context_error") {
            println!("encrypted round trip: FAILED: {}", e.as_str().unwrap_or("?"));
        } else if let Some(why) = v.get("context_skipped") {
            println!("encrypted round trip: skipped: {}", why.as_str().unwrap_or("?"));
        } else if let Some(c) = v.get("context") {
            println!(
                "encrypted round trip: put {:.2} ms, get {:.2} ms, verified: {}  [{}, version {}]",
                c["put_ms"].as_f64().unwrap_or(0.0),
                c["get_ms"].as_f64().unwrap_or(0.0),
                c["verified"],
                c["address"].as_str().unwrap_or("?"),
                c["version"]
            );
        }
    }
    match encrypted_round_trip_failure(&v) {
        Some(message) => Err(ClientError::Api {
            code: "BZZZ-TEST-FAILED".into(),
            message,
        }),
        None => Ok(()),
    }
}

/// Why the encrypted round trip of a `test-dht-operations` answer failed, if it did. Older nodes
/// send neither `context` nor `context_error`: nothing to check then.
fn encrypted_round_trip_failure(v: &Value) -> Option<String> {
    if let Some(e) = v.get("context_error") {
        return Some(format!("encrypted round trip: {}", e.as_str().unwrap_or("?")));
    }
    match v.get("context") {
        Some(c) if c["verified"] != true => {
            Some("encrypted round trip: the content read back differs from what was written".into())
        }
        _ => None,
    }
}

async fn trigger_election(a: &ClientArgs) -> Result<(), ClientError> {
    if let Some(v) = answer(a, reqwest::Method::POST, "/api/election/trigger", None).await? {
        println!("election triggered on node {}", v["node_id"]);
    }
    Ok(())
}

async fn election(a: &ClientArgs) -> Result<(), ClientError> {
    let Some(v) = answer(a, reqwest::Method::GET, "/api/election/status", None).await? else {
        return Ok(());
    };
    println!("admin:    {}", v["admin"].as_str().unwrap_or("none known"));
    println!("term:     {}", v["term"]);
    println!("is admin: {}", v["is_admin"]);
    println!("state:    {}", v["state"].as_str().unwrap_or("?"));
    println!("heard:    {} ms ago", v["last_heartbeat_ms_ago"]);
    println!("voters:   {}", v["voters"]);
    println!("learners: {}", v["learners"]);
    Ok(())
}

/// Reads the content to write: `file`, or stdin.
fn read_content(file: Option<&PathBuf>) -> Result<Vec<u8>, ClientError> {
    match file {
        Some(f) => std::fs::read(f).map_err(|e| ClientError::Local {
            what: format!("cannot read {}", f.display()),
            reason: e.to_string(),
        }),
        None => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf).map_err(|e| ClientError::Local {
                what: "cannot read stdin".into(),
                reason: e.to_string(),
            })?;
            Ok(buf)
        }
    }
}

async fn context_put(a: &ContextPutArgs) -> Result<(), ClientError> {
    let content = read_content(a.file.as_ref())?;
    let path = query_path("/ucxi/v1/put", "address", &a.address, None);
    let r = request_raw(&a.client, reqwest::Method::PUT, &path, Some(content)).await?;
    if r.status != 201 && r.status != 200 {
        return Err(r.error());
    }
    let v = r.json()?;
    if a.client.json {
        print_json(&v);
        return Ok(());
    }
    println!(
        "wrote {} version {} ({} replicas, record {}){}",
        v["address"].as_str().unwrap_or("?"),
        v["version"],
        v["replicas"],
        v["record_key"].as_str().unwrap_or("?"),
        if v["duplicate"] == true {
            " [duplicate of an earlier write]"
        } else {
            ""
        }
    );
    Ok(())
}

async fn context_get(a: &ContextGetArgs) -> Result<(), ClientError> {
    let path = query_path("/ucxi/v1/get", "address", &a.address, None);
    let r = request_raw(&a.client, reqwest::Method::GET, &path, None).await?;
    if r.status != 200 {
        return Err(r.error());
    }
    if a.client.json {
        let number = |name: &str| r.header(name).parse::<u64>().map(Value::from).unwrap_or(Value::Null);
        print_json(&serde_json::json!({
            "address": r.header("x-ucxl-address"),
            "version": number("x-ucxl-version"),
            "latest": number("x-ucxl-latest"),
            "author": r.header("x-ucxl-author"),
            "role": r.header("x-ucxl-role"),
            "created_ms": number("x-ucxl-created-ms"),
            "record_key": r.header("x-ucxl-record-key"),
            "size": r.body.len(),
        }));
        return Ok(());
    }
    match &a.output {
        Some(f) => std::fs::write(f, &r.body).map_err(|e| ClientError::Local {
            what: format!("cannot write {}", f.display()),
            reason: e.to_string(),
        }),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&r.body)
                .and_then(|()| out.flush())
                .map_err(|e| ClientError::Local {
                    what: "cannot write stdout".into(),
                    reason: e.to_string(),
                })
        }
    }
}

async fn context_delete(a: &ContextAddressArgs) -> Result<(), ClientError> {
    let path = query_path("/ucxi/v1/delete", "address", &a.address, None);
    let Some(v) = answer(&a.client, reqwest::Method::DELETE, &path, None).await? else {
        return Ok(());
    };
    println!(
        "deleted {} at version {}",
        v["address"].as_str().unwrap_or("?"),
        v["version"]
    );
    Ok(())
}

/// One line of a version listing.
fn version_line(v: &Value) -> String {
    format!(
        "v{:<4} {}  author {}  {} bytes  role {}{}",
        v["version"].to_string(),
        time_of(&v["time_ms"]),
        v["author"].as_str().unwrap_or("?"),
        v["size"],
        v["role"].as_str().unwrap_or("?"),
        if v["tombstone"] == true { "  deleted" } else { "" }
    )
}

async fn context_history(a: &ContextListArgs) -> Result<(), ClientError> {
    let path = query_path("/ucxi/v1/navigate", "address", &a.address, a.limit);
    let Some(v) = answer(&a.client, reqwest::Method::GET, &path, None).await? else {
        return Ok(());
    };
    let versions = v["versions"].as_array().cloned().unwrap_or_default();
    println!(
        "{}: {} versions (showing {})",
        v["address"].as_str().unwrap_or("?"),
        v["total"],
        versions.len()
    );
    for version in &versions {
        println!("  {}", version_line(version));
    }
    Ok(())
}

async fn context_discover(a: &ContextListArgs) -> Result<(), ClientError> {
    let path = query_path("/ucxi/v1/discover", "pattern", &a.address, a.limit);
    let Some(v) = answer(&a.client, reqwest::Method::GET, &path, None).await? else {
        return Ok(());
    };
    let addresses = v["addresses"].as_array().cloned().unwrap_or_default();
    println!(
        "{}: {} addresses{}",
        v["pattern"].as_str().unwrap_or("?"),
        addresses.len(),
        if v["truncated"] == true {
            " (truncated: more matched)"
        } else {
            ""
        }
    );
    for address in &addresses {
        println!(
            "  {}  latest {}",
            address["address"].as_str().unwrap_or("?"),
            version_line(address)
        );
    }
    Ok(())
}

async fn roles_list(a: &ClientArgs) -> Result<(), ClientError> {
    let Some(v) = answer(a, reqwest::Method::GET, "/api/roles", None).await? else {
        return Ok(());
    };
    let roles = v["roles"].as_array().cloned().unwrap_or_default();
    let grants = v["grants"].as_array().cloned().unwrap_or_default();
    let pending = v["pending"].as_array().cloned().unwrap_or_default();
    if v["has_policy"] != true {
        println!("no role policy in the cluster state yet");
    }
    println!("{} roles", roles.len());
    println!(
        "  {:<16} {:>9}  {:<12} {:>5}  can read",
        "name", "authority", "self-service", "epoch"
    );
    for r in &roles {
        let can_read: Vec<&str> = r["can_read"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "  {:<16} {:>9}  {:<12} {:>5}  {}",
            r["name"].as_str().unwrap_or("?"),
            r["authority"].to_string(),
            if r["self_service"] == true { "yes" } else { "no" },
            r["epoch"].to_string(),
            if can_read.is_empty() {
                "-".to_string()
            } else {
                can_read.join(", ")
            }
        );
    }
    println!("{} grants", grants.len());
    for g in &grants {
        println!(
            "  {:<16} {}  {}  {}",
            g["role"].as_str().unwrap_or("?"),
            g["peer_id"].as_str().unwrap_or("?"),
            g["source"].as_str().unwrap_or("?"),
            time_of(&g["granted_at_ms"])
        );
    }
    println!("{} pending", pending.len());
    for p in &pending {
        println!(
            "  {:<16} {}  asked {}",
            p["role"].as_str().unwrap_or("?"),
            p["peer_id"].as_str().unwrap_or("?"),
            time_of(&p["requested_at_ms"])
        );
    }
    Ok(())
}

/// The operator token from `file` (trimmed), if a file is given.
fn read_token_file(file: Option<&PathBuf>) -> Result<Option<String>, ClientError> {
    match file {
        Some(f) => {
            let t = std::fs::read_to_string(f).map_err(|e| ClientError::Local {
                what: format!("cannot read the operator token file {}", f.display()),
                reason: e.to_string(),
            })?;
            Ok(Some(t.trim().to_string()))
        }
        None => Ok(None),
    }
}

/// Like [`answer`], for an operator action: sends the token of `--token-file` as the bearer.
async fn operator_answer(
    args: &OperatorArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Option<Value>, ClientError> {
    let token = read_token_file(args.token_file.as_ref())?;
    let payload = body.map_or(Payload::Empty, Payload::Json);
    let (url, resp) = send(&args.client, method, path, payload, token.as_deref()).await?;
    let (code, v) = read_json(&url, resp).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if args.client.json {
        print_json(&v);
        return Ok(None);
    }
    Ok(Some(v))
}

async fn roles_grant(a: &RolesGrantArgs) -> Result<(), ClientError> {
    let token = read_token_file(a.token_file.as_ref())?;
    let path = format!("/api/roles/{}/grant", percent_encode(&a.role));
    let body = serde_json::json!({"peer_id": a.peer});
    let (url, resp) = send(
        &a.client,
        reqwest::Method::POST,
        &path,
        Payload::Json(body),
        token.as_deref(),
    )
    .await?;
    let (code, v) = read_json(&url, resp).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.client.json {
        print_json(&v);
        return Ok(());
    }
    println!(
        "granted role {} to {}",
        v["role"].as_str().unwrap_or("?"),
        v["peer_id"].as_str().unwrap_or("?")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(
            percent_encode("ucxl://a:b@p:t/n a.md?x=1&y"),
            "ucxl%3A%2F%2Fa%3Ab%40p%3At%2Fn%20a.md%3Fx%3D1%26y"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(query_path("/x", "address", "a/b", Some(3)), "/x?address=a%2Fb&limit=3");
    }

    #[test]
    fn encrypted_round_trip_fails_on_error_or_mismatch_only() {
        use serde_json::json;
        assert_eq!(encrypted_round_trip_failure(&json!({"verified": true})), None);
        assert_eq!(
            encrypted_round_trip_failure(&json!({"context": {"verified": true, "version": 1}})),
            None
        );
        assert!(encrypted_round_trip_failure(&json!({"context": {"verified": false}})).is_some());
        assert!(encrypted_round_trip_failure(&json!({"context": {}})).is_some());
        let e = encrypted_round_trip_failure(&json!({"context_error": "put: no quorum"}));
        assert_eq!(e.as_deref(), Some("encrypted round trip: put: no quorum"));
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_time_ms(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
    }
}
