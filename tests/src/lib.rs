//! The bzzz multi-node test harness.
//!
//! [`TestCluster`] starts N full nodes in one process, the same way `main` does
//! ([`bzzz_node::Node::start`]): loopback, port 0, temp dirs, short timings. Node 0 starts alone;
//! the others bootstrap through it. Nodes can be killed and restarted (same data dir, same P2P
//! port). Every wait goes through [`wait_for`], which has a timeout and says what it waited for.
//! [`TestCluster::scenario`] runs a test body on a fresh cluster, alone and bounded in time
//! ([`scenario`]); [`process`] starts real `bzzz` processes and runs its client verbs.

pub mod creds;
pub mod hostile;
pub mod process;
pub mod scenario;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bzzz_node::{Config, Node};
use libp2p::Multiaddr;
use tempfile::TempDir;

pub mod raft_router;
pub use creds::ClusterCredentials;
pub use process::{bzzz_binary, free_port, free_ports};
pub use scenario::{TEST_TIMEOUT, bounded, exclusive};

/// A configuration with short timings for tests: loopback, port 0 everywhere.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.node.data_dir = data_dir.to_path_buf();
    c.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.api.listen = "127.0.0.1:0".into();
    c.health.listen = "127.0.0.1:0".into();
    c.health.check_interval_ms = 500;
    c.health.probe_timeout_ms = 2_000;
    c.p2p.join_backoff_initial_ms = 50;
    c.p2p.join_backoff_max_ms = 500;
    c.p2p.join_check_interval_ms = 500;
    c.gossip.heartbeat_ms = 100;
    c.gossip.publish_wait_ms = 5_000;
    c.log.level = "warn".into();
    // No mesh key unless the test gives one (`TestCluster` gives every cluster its own).
    c.p2p.insecure_open_mesh = true;
    // Many nodes share 2 cores in tests: give Raft more room than the release defaults (openraft
    // 0.9 times out AppendEntries after one heartbeat interval, votes after the minimum election
    // timeout).
    c.election.raft_heartbeat_ms = 100;
    c.election.election_timeout_min_ms = 500;
    c.election.election_timeout_max_ms = 1_000;
    c.election.heartbeat_interval_ms = 200;
    c
}

/// Installs a test log subscriber once (honours `RUST_LOG`, default `warn`).
pub fn init_logging() {
    bzzz_node::logging::init("warn", false);
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes; the error names `what`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// N nodes in one process, of one cluster: every node holds a certificate of the cluster's CA
/// (voter when admin-eligible) and its mesh key, so admission runs on every connection.
pub struct TestCluster {
    nodes: Vec<Option<Node>>,
    configs: Vec<Config>,
    credentials: ClusterCredentials,
    _dirs: Vec<TempDir>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster").finish_non_exhaustive()
    }
}

impl TestCluster {
    /// Starts `n` nodes: node 0 alone, the others bootstrapping through node 0.
    pub async fn start(n: usize) -> Result<TestCluster> {
        Self::start_with(n, |_, _| {}).await
    }

    /// Like [`TestCluster::start`], letting `tweak` adjust each node's config before it starts.
    /// The node is enrolled after `tweak` (so its certificate follows the tweaked
    /// `election.eligible` and `agent.role`) unless `tweak` pointed it at another CA or none.
    pub async fn start_with(n: usize, tweak: impl Fn(usize, &mut Config)) -> Result<TestCluster> {
        init_logging();
        let mut cluster = TestCluster {
            nodes: Vec::new(),
            configs: Vec::new(),
            credentials: ClusterCredentials::new()?,
            _dirs: Vec::new(),
        };
        for i in 0..n {
            let dir = tempfile::Builder::new().prefix(&format!("bzzz-test-{i}-")).tempdir()?;
            let mut c = test_config(dir.path());
            c.agent.id = format!("test-agent-{i}");
            if i > 0 {
                let boot = cluster.node(0).p2p_addrs();
                c.p2p.bootstrap_peers = boot.iter().take(1).map(Multiaddr::to_string).collect();
            }
            cluster.credentials.apply(&mut c);
            tweak(i, &mut c);
            if c.admission.ca_cert_file.as_deref() == Some(cluster.credentials.ca_cert_file().as_path()) {
                cluster.credentials.enroll(&c)?;
                if c.admission.issuer_key_file.is_none() {
                    cluster.credentials.arm_issuer(&mut c);
                }
            }
            let node = Node::start(c.clone())
                .await
                .with_context(|| format!("starting node {i}"))?;
            // Pin the P2P port so a restarted node comes back at the same address.
            c.p2p.listen = node
                .p2p_addrs()
                .iter()
                .take(1)
                .map(|a| strip_p2p(a).to_string())
                .collect();
            cluster.nodes.push(Some(node));
            cluster.configs.push(c);
            cluster._dirs.push(dir);
        }
        Ok(cluster)
    }

    /// The cluster's CA and mesh key.
    pub fn credentials(&self) -> &ClusterCredentials {
        &self.credentials
    }

    /// Number of node slots (running or killed).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`. Panics if it is killed: a test bug, not a runtime condition.
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i]
            .as_ref()
            .expect("node is running (killed nodes must be restarted before use)")
    }

    /// The running nodes with their indexes.
    pub fn running(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// The config node `i` runs (or will run when restarted) with.
    pub fn config(&self, i: usize) -> &Config {
        &self.configs[i]
    }

    /// Stops node `i` (graceful shutdown; data dir kept).
    pub async fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown().await;
        }
    }

    /// Starts node `i` again with its config, data dir and P2P port.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i).await;
        let node = Node::start(self.configs[i].clone())
            .await
            .with_context(|| format!("restarting node {i}"))?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Waits until every running node knows an admin and its context service has a decision on
    /// its roles and the keys of the roles it holds; the error lists every node's context status.
    pub async fn wait_context_ready(&self, timeout: Duration) -> Result<()> {
        wait_for("an admin and every node's roles and keys", timeout, || async {
            self.running().all(|(_, n)| n.consensus().status().admin.is_some())
                && self.running().all(|(_, n)| n.context().ready())
        })
        .await
        .with_context(|| {
            self.running()
                .map(|(i, n)| format!("node {i}: {:?}", n.context().status()))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Waits until every running node is connected to at least `min_peers` peers.
    pub async fn wait_connected(&self, min_peers: usize, timeout: Duration) -> Result<()> {
        wait_for(
            &format!("every node connected to >= {min_peers} peers"),
            timeout,
            || async {
                for (_, n) in self.running() {
                    match n.client().snapshot().await {
                        Ok(s) if s.peers.len() >= min_peers => {}
                        _ => return false,
                    }
                }
                true
            },
        )
        .await
    }

    /// Cuts the network between the groups: every node blocks every node of the other groups
    /// (connections close, new ones are refused, both ways). Nodes in no group are untouched.
    pub async fn partition(&self, groups: &[&[usize]]) -> Result<()> {
        self.set_cut(groups, true).await
    }

    /// Undoes [`TestCluster::partition`] for the same groups.
    pub async fn heal(&self, groups: &[&[usize]]) -> Result<()> {
        self.set_cut(groups, false).await
    }

    async fn set_cut(&self, groups: &[&[usize]], blocked: bool) -> Result<()> {
        for (gi, g) in groups.iter().enumerate() {
            for (hi, h) in groups.iter().enumerate() {
                if gi == hi {
                    continue;
                }
                for &a in g.iter() {
                    for &b in h.iter() {
                        if let (Some(na), Some(nb)) = (self.nodes[a].as_ref(), self.nodes[b].as_ref()) {
                            na.client().set_blocked(nb.peer_id(), blocked).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i).await;
        }
    }
}

/// A client of `node`'s API listener (fails if the node serves none, e.g. in bootstrap mode).
pub fn api_of(node: &Node) -> Result<bzzz_client::ApiClient> {
    let addr = node.api_addr().context("the node serves no API")?;
    Ok(bzzz_client::ApiClient::new(&format!("http://{addr}"))?)
}

/// A client of `node`'s health listener (`/health*`, `/metrics`).
pub fn health_of(node: &Node) -> Result<bzzz_client::ApiClient> {
    Ok(bzzz_client::ApiClient::new(&format!("http://{}", node.health_addr()))?)
}

/// `addr` without a trailing `/p2p/<id>`.
pub fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}
