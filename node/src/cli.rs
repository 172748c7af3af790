//! The `bzzz` command line: `run` and `dev` start nodes; the other verbs talk to a node's HTTP API.

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
    /// List the node's connected peers.
    Peers(ClientArgs),
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
}

/// Flags of `bzzz run`; each overrides the config file and the environment.
#[derive(Debug, Args, Default)]
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
}

async fn request(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), ClientError> {
    let url = format!("{}{}", args.api.trim_end_matches('/'), path);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs.max(1)))
        .build()
        .map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let mut req = client.request(method, &url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| ClientError::Unreachable {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let status = resp.status().as_u16();
    let value: Value = resp.json().await.map_err(|e| ClientError::Protocol {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    Ok((status, value))
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
        Command::Peers(a) => peers(&a).await,
        Command::Health(a) => return health(a).await,
        Command::TestP2pMessage(a) => test_p2p(&a).await,
        Command::TestDhtOperations(a) => test_dht(&a).await,
        Command::TriggerElection(a) => trigger_election(&a).await,
        Command::Election(a) => election(&a).await,
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
    let (code, v) = request(a, reqwest::Method::GET, "/api/status", None).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.json {
        print_json(&v);
        return Ok(());
    }
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
    let (code, v) = request(a, reqwest::Method::GET, "/api/peers", None).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.json {
        print_json(&v);
        return Ok(());
    }
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
                println!("  {name:<10} {}", s.as_str().unwrap_or("?"));
            }
        }
    }
    if status == "healthy" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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
    }
    Ok(())
}

async fn trigger_election(a: &ClientArgs) -> Result<(), ClientError> {
    let (code, v) = request(a, reqwest::Method::POST, "/api/election/trigger", None).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.json {
        print_json(&v);
    } else {
        println!("election triggered on node {}", v["node_id"]);
    }
    Ok(())
}

async fn election(a: &ClientArgs) -> Result<(), ClientError> {
    let (code, v) = request(a, reqwest::Method::GET, "/api/election/status", None).await?;
    if code != 200 {
        return Err(api_error(&v));
    }
    if a.json {
        print_json(&v);
        return Ok(());
    }
    println!("admin:    {}", v["admin"].as_str().unwrap_or("none known"));
    println!("term:     {}", v["term"]);
    println!("is admin: {}", v["is_admin"]);
    println!("state:    {}", v["state"].as_str().unwrap_or("?"));
    println!("heard:    {} ms ago", v["last_heartbeat_ms_ago"]);
    println!("voters:   {}", v["voters"]);
    println!("learners: {}", v["learners"]);
    Ok(())
}
