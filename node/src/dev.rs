//! `bzzz dev`: a local mesh of N full nodes in one process on loopback, for a first look.
//!
//! Node 0 starts alone; every other node bootstraps through it. The first three nodes (or all,
//! if fewer) are admin-eligible and elect the admin with Raft. Each node gets its own data dir
//! (temporary unless `--data-dir` is given) and API/health ports `base + 2i` / `base + 2i + 1`.
//!
//! The mesh is admitted like a production one: `bzzz dev` creates a cluster CA and a mesh key in
//! `<root>/credentials` (reused when `--data-dir` already holds them) and signs each node's
//! certificate (voter for the admin-eligible nodes), so every connection runs admission.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::admission::files::{self, CertificateAuthority, FileError, NodeGrant};
use crate::config::Config;
use crate::node::{Node, NodeError};

/// Flags of `bzzz dev`.
#[derive(Debug, Args, Clone)]
pub struct DevArgs {
    /// How many nodes to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: u16,
    /// Keep node data under this dir (node-0, node-1, ...) instead of temporary dirs.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// API port of node 0; node i uses base+2i (API) and base+2i+1 (health). 0 picks free ports.
    #[arg(long, default_value_t = 8080)]
    pub api_port_base: u16,
}

/// A running dev mesh.
#[derive(Debug)]
pub struct DevMesh {
    /// The nodes, node 0 first.
    pub nodes: Vec<Node>,
    /// Where the cluster CA and the mesh key are.
    pub credentials: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// Loads the dev CA from `dir`, or creates it (and the mesh key) there.
fn dev_credentials(dir: &Path) -> Result<CertificateAuthority, FileError> {
    let ca = if dir.join(files::CA_KEY_FILE).exists() {
        CertificateAuthority::load(dir)?
    } else {
        CertificateAuthority::init(dir, "bzzz-dev", Duration::from_secs(10 * 365 * 86_400))?
    };
    let mesh_key = dir.join(MESH_KEY_FILE);
    if !mesh_key.exists() {
        files::write_mesh_key(&mesh_key)?;
    }
    // The voters hold an issuer, so `bzzz join-token create` works against the dev mesh.
    if !dir.join(files::ISSUER_KEY_FILE).exists() {
        ca.create_issuer(
            dir,
            "bzzz-dev-issuer",
            vec!["agent".into(), "developer".into()],
            false,
            Duration::from_secs(365 * 86_400),
        )?;
    }
    Ok(ca)
}

/// File name of the dev mesh key in the credentials dir.
const MESH_KEY_FILE: &str = "mesh.key";

fn port(base: u16, offset: u32) -> Result<u16, NodeError> {
    if base == 0 {
        return Ok(0);
    }
    u16::try_from(base as u32 + offset).map_err(|_| {
        NodeError::Config(crate::config::ConfigError::Invalid {
            field: "--api-port-base".into(),
            problem: format!("{base} + {offset} is above 65535"),
        })
    })
}

impl DevMesh {
    /// Starts the mesh.
    pub async fn start(args: &DevArgs) -> Result<DevMesh, NodeError> {
        let (root, temp) = match &args.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("bzzz-dev-")
                    .tempdir()
                    .map_err(|source| NodeError::DataDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let credentials = root.join("credentials");
        let ca = dev_credentials(&credentials).map_err(|e| NodeError::DevCredentials(e.to_string()))?;
        let mut nodes: Vec<Node> = Vec::new();
        for i in 0..args.nodes as u32 {
            let mut c = Config::default();
            c.node.data_dir = root.join(format!("node-{i}"));
            c.agent.id = format!("dev-agent-{i}");
            c.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
            c.api.listen = format!("127.0.0.1:{}", port(args.api_port_base, 2 * i)?);
            c.health.listen = format!("127.0.0.1:{}", port(args.api_port_base, 2 * i + 1)?);
            c.health.check_interval_ms = 5_000;
            c.p2p.join_backoff_max_ms = 2_000;
            // The first (up to) three nodes elect the admin among themselves.
            c.election.eligible = i < 3;
            c.election.bootstrap_expect = args.nodes.min(3) as u32;
            if let Some(first) = nodes.first() {
                c.p2p.bootstrap_peers = first.p2p_addrs().iter().take(1).map(|a| a.to_string()).collect();
            }
            c.admission.ca_cert_file = Some(credentials.join(files::CA_CERT_FILE));
            if c.election.eligible {
                c.admission.issuer_key_file = Some(credentials.join(files::ISSUER_KEY_FILE));
                c.admission.issuer_cert_file = Some(credentials.join(files::ISSUER_CERT_FILE));
            }
            c.p2p.swarm_key_file = Some(credentials.join(MESH_KEY_FILE));
            let grant = NodeGrant::for_config(&c, Duration::from_secs(365 * 86_400));
            let enrolled = ca
                .enroll(&c.node.data_dir, None, &grant)
                .map_err(|e| NodeError::DevCredentials(e.to_string()));
            let started = match enrolled {
                Ok(_) => Node::start(c).await,
                Err(e) => Err(e),
            };
            let node = match started {
                Ok(n) => n,
                Err(e) => {
                    for n in &nodes {
                        n.shutdown().await;
                    }
                    return Err(e);
                }
            };
            nodes.push(node);
        }
        Ok(DevMesh {
            nodes,
            credentials,
            _temp: temp,
        })
    }

    /// Stops every node, last first.
    pub async fn shutdown(&self) {
        for n in self.nodes.iter().rev() {
            n.shutdown().await;
        }
    }
}

/// Runs `bzzz dev` until Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs) -> Result<(), NodeError> {
    let mesh = DevMesh::start(&args).await?;
    println!("bzzz dev mesh: {} nodes on loopback", mesh.nodes.len());
    println!(
        "  credentials {} (cluster CA ca.crt/ca.key, mesh key mesh.key, issuer issuer.key/issuer.crt held by the voters; every node has a certificate)",
        mesh.credentials.display()
    );
    for (i, n) in mesh.nodes.iter().enumerate() {
        let api = n.api_addr().map(|a| format!("http://{a}")).unwrap_or_default();
        println!(
            "  node-{i}  api {api}  health http://{}  peer {}",
            n.health_addr(),
            n.peer_id()
        );
    }
    if let Some(first) = mesh.nodes.first().and_then(|n| n.api_addr()) {
        println!();
        println!("try:  curl -s http://{first}/health/checks");
        println!("      cargo run -p bzzz-node -- status --api http://{first}");
        println!("      cargo run -p bzzz-node -- test-p2p-message --api http://{first}");
        println!("      cargo run -p bzzz-node -- election --api http://{first}");
        println!(
            "      cargo run -p bzzz-node -- join-token create --api http://{first}   # a token another node joins with"
        );
    }
    println!("Ctrl-C stops the mesh.");
    tokio::select! {
        _ = crate::node::shutdown_signal() => {}
        _ = async { if let Some(n) = mesh.nodes.first() { n.join().await } } => {
            tracing::error!("a dev node stopped unexpectedly");
        }
    }
    mesh.shutdown().await;
    Ok(())
}
