//! `bzzz dev`: a local mesh of N full nodes in one process on loopback, for a first look.
//!
//! Node 0 starts alone; every other node bootstraps through it. The first three nodes (or all,
//! if fewer) are admin-eligible and elect the admin with Raft. Each node gets its own data dir
//! (temporary unless `--data-dir` is given) and API/health ports `base + 2i` / `base + 2i + 1`.

use std::path::PathBuf;

use clap::Args;

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
    _temp: Option<tempfile::TempDir>,
}

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
            let node = match Node::start(c).await {
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
        Ok(DevMesh { nodes, _temp: temp })
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
