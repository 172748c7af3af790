//! `bzzz-bench`: measures the mesh core on this machine and prints what it measured.
//!
//! ```text
//! cargo build --release -p bzzz-node          # the join/rss scenario runs the real binary
//! cargo run --release -p bzzz-tests --bin bzzz-bench -- all
//! ```
//!
//! Scenarios: `gossip` (delivery latency p50/p99 and delivery ratio to all N nodes),
//! `dht` (put/get latency p50/p99 on an in-process mesh), `join` (process start to ready, and
//! idle RSS per node process), `failover`, `crypto` (record seal/open next to openssl) and
//! `context` (put/get through the context service on 20 nodes, R = 3, then `crypto`). Numbers
//! come from runs, never from constants.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bzzz_protocol::topics;
use bzzz_protocol::wire::Kind;
use bzzz_tests::{TestCluster, free_ports, wait_for};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "bzzz benchmarks")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Gossip delivery latency and ratio.
    Gossip {
        /// Mesh sizes.
        #[arg(long, value_delimiter = ',', default_value = "10,50")]
        nodes: Vec<usize>,
        /// Messages published per mesh size.
        #[arg(long, default_value_t = 200)]
        messages: usize,
    },
    /// DHT put/get latency.
    Dht {
        /// Mesh size.
        #[arg(long, default_value_t = 20)]
        nodes: usize,
        /// Operations of each kind.
        #[arg(long, default_value_t = 200)]
        ops: usize,
        /// Value size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Kademlia replication factor (k). With k >= nodes every node holds every record and
        /// gets are local; a small k makes most gets remote.
        #[arg(long, default_value_t = 20)]
        replication: usize,
    },
    /// Join time and idle RSS of real `bzzz` processes.
    Join {
        /// Agent processes started (one at a time) after the bootstrap process.
        #[arg(long, default_value_t = 20)]
        trials: usize,
        /// The bzzz binary (default: next to this binary).
        #[arg(long)]
        bzzz: Option<PathBuf>,
        /// Seconds to stay idle before reading RSS.
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
    },
    /// Admin failover with real processes: kill -9 the admin, time until every survivor names
    /// the same new admin; then restart it and repeat. Optionally under CPU load, and counts
    /// leader changes while idle.
    Failover {
        /// Voter counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "3,5")]
        voters: Vec<usize>,
        /// Kills per voter count.
        #[arg(long, default_value_t = 20)]
        trials: usize,
        /// Run busy loops on every core while measuring.
        #[arg(long)]
        load: bool,
        /// Seconds to watch an idle cluster for leader changes after the trials.
        #[arg(long, default_value_t = 60)]
        idle_secs: u64,
        /// The bzzz binary (default: next to this binary).
        #[arg(long)]
        bzzz: Option<PathBuf>,
    },
    /// Context record seal/open throughput (bzzz's crypto layer), next to
    /// `openssl speed -evp chacha20-poly1305` on the same machine in the same run.
    Crypto {
        /// Content sizes in bytes.
        #[arg(long, value_delimiter = ',', default_values_t = [65536usize, 1048576])]
        sizes: Vec<usize>,
        /// Reader roles each record is wrapped for.
        #[arg(long, default_value_t = 3)]
        readers: usize,
        /// Seconds to spend per size (split over seal and open).
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Also time each primitive a seal and an open are made of, alone, at each size.
        #[arg(long)]
        primitives: bool,
    },
    /// Context put (R holders + index append) and get (resolve + fetch + verify + decrypt)
    /// latency on an in-process mesh, then record seal/open throughput next to openssl. Per size:
    /// a write phase (each put, then a get of it at once from another node, reported on its own
    /// line), a 2 s pause, then a read phase timing a get of every record. With
    /// `BZZZ_BENCH_PHASES=1` the read phase also times an index round trip to the admin, a roles
    /// query and a bare RPC before each get; `BZZZ_BENCH_PUT_GAP_MS=N` waits N ms between writes.
    Context {
        /// Mesh size.
        #[arg(long, default_value_t = 20)]
        nodes: usize,
        /// Operations of each kind per content size.
        #[arg(long, default_value_t = 200)]
        ops: usize,
        /// Content sizes in bytes.
        #[arg(long, value_delimiter = ',', default_values_t = [1024usize, 65536])]
        sizes: Vec<usize>,
        /// Replication factor R (and write quorum).
        #[arg(long, default_value_t = 3)]
        replication: u32,
    },
    /// Every scenario with its defaults.
    All,
}

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

fn quiet(i: usize, c: &mut bzzz_node::Config) {
    let _ = i;
    c.health.check_interval_ms = 3_600_000;
    c.gossip.heartbeat_ms = 700;
}

async fn gossip(n: usize, messages: usize) -> Result<()> {
    let mut cluster = TestCluster::start_with(n, quiet).await?;
    cluster.wait_connected(1, Duration::from_secs(60)).await?;
    // Let the gossip mesh settle (subscriptions exchanged, meshes grafted).
    wait_for(
        "every node sees at least min(n-1, 4) topic peers",
        Duration::from_secs(60),
        || async {
            for (_, node) in cluster.running() {
                match node.client().snapshot().await {
                    Ok(s) if s.health_topic_peers.len() >= (n - 1).min(4) => {}
                    _ => return false,
                }
            }
            true
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let received: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let mut tasks = Vec::new();
    for (_, node) in cluster.running() {
        let mut inbox = node.client().subscribe(topics::COORDINATION, 4096).await?;
        let lat = latencies.clone();
        let rec = received.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(m) = inbox.recv().await {
                let now = epoch().elapsed().as_nanos() as u64;
                if m.payload.len() < 16 {
                    continue;
                }
                let id = u64::from_be_bytes(m.payload[0..8].try_into().unwrap_or_default());
                let sent = u64::from_be_bytes(m.payload[8..16].try_into().unwrap_or_default());
                if let Ok(mut l) = lat.lock() {
                    l.push(now.saturating_sub(sent) as f64 / 1e6);
                }
                if let Ok(mut r) = rec.lock() {
                    *r.entry(id).or_default() += 1;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    for id in 0..messages as u64 {
        let from = (id as usize * 7) % n;
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&(epoch().elapsed().as_nanos() as u64).to_be_bytes());
        payload.extend_from_slice(&[0u8; 240]);
        cluster
            .node(from)
            .client()
            .publish(topics::COORDINATION, Kind::Coordination, payload)
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = messages * (n - 1);
    let _ = wait_for("all deliveries", Duration::from_secs(10), || async {
        received
            .lock()
            .map(|r| r.values().sum::<usize>() >= expected)
            .unwrap_or(false)
    })
    .await;
    let got: usize = received.lock().map(|r| r.values().sum()).unwrap_or(0);
    let lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    println!(
        "gossip  N={n:<3} messages={messages} deliveries={got}/{expected} ratio={:.4}  latency {}  (publishing took {:.1} s)",
        got as f64 / expected as f64,
        summary(lat),
        started.elapsed().as_secs_f64()
    );
    for t in tasks {
        t.abort();
    }
    cluster.shutdown().await;
    Ok(())
}

async fn dht(n: usize, ops: usize, size: usize, replication: usize) -> Result<()> {
    let mut cluster = TestCluster::start_with(n, |i, c| {
        quiet(i, c);
        c.dht.replication_factor = replication;
    })
    .await?;
    cluster.wait_connected(1, Duration::from_secs(60)).await?;
    wait_for("routing tables hold every node", Duration::from_secs(60), || async {
        for (_, node) in cluster.running() {
            if node
                .client()
                .snapshot()
                .await
                .map(|s| s.routing_table_size + 1 < n)
                .unwrap_or(true)
            {
                return false;
            }
        }
        true
    })
    .await?;
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    let mut remote_gets = Vec::new();
    let mut failures = 0;
    for i in 0..ops {
        let key = format!("/bzzz/bench/{i}").into_bytes();
        let value = vec![(i % 251) as u8; size];
        let t = Instant::now();
        match cluster.node(i % n).client().put_record(key.clone(), value, None).await {
            Ok(_) => puts.push(t.elapsed().as_secs_f64() * 1000.0),
            Err(_) => failures += 1,
        }
        // Read from a different node than the writer.
        let reader = cluster.node((i * 7 + 3) % n);
        let local = reader
            .store()
            .tree(bzzz_storage::kad_store::RECORDS_TREE)?
            .contains_key(&key)?;
        let t = Instant::now();
        match reader.client().get_record(key).await {
            Ok(_) => {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                gets.push(ms);
                if !local {
                    remote_gets.push(ms);
                }
            }
            Err(_) => failures += 1,
        }
    }
    println!(
        "dht     N={n:<3} k={replication:<3} value={size} B  put {}",
        summary(puts)
    );
    println!(
        "dht     N={n:<3} k={replication:<3} value={size} B  get {}  failures={failures}",
        summary(gets)
    );
    println!(
        "dht     N={n:<3} k={replication:<3} value={size} B  get, reader did not hold the record: {}",
        summary(remote_gets)
    );
    cluster.shutdown().await;
    Ok(())
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Spawned {
    proc: Proc,
    p2p: u16,
    api: u16,
    health: u16,
}

fn spawn_bzzz(bin: &PathBuf, dir: &std::path::Path, bootstrap: Option<u16>, mode: &str) -> Result<Spawned> {
    spawn_bzzz_with(bin, dir, bootstrap, mode, &[], None)
}

fn spawn_bzzz_with(
    bin: &PathBuf,
    dir: &std::path::Path,
    bootstrap: Option<u16>,
    mode: &str,
    extra: &[String],
    fixed: Option<(u16, u16, u16)>,
) -> Result<Spawned> {
    let (p2p, api, health) = match fixed {
        Some(f) => f,
        None => free_ports::<3>()?.into(),
    };
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--mode", mode, "--data-dir"])
        .arg(dir)
        .arg("--p2p-listen")
        .arg(format!("/ip4/127.0.0.1/tcp/{p2p}"))
        .arg("--api-listen")
        .arg(format!("127.0.0.1:{api}"))
        .arg("--health-listen")
        .arg(format!("127.0.0.1:{health}"))
        .stdout(Stdio::null());
    // BZZZ_BENCH_LOG=<filter> and BZZZ_BENCH_LOG_DIR=<dir> append each process's log to
    // <dir>/<data dir name>.log, for looking into a run.
    match (std::env::var("BZZZ_BENCH_LOG"), std::env::var("BZZZ_BENCH_LOG_DIR")) {
        (Ok(filter), Ok(log_dir)) => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = std::path::Path::new(&log_dir).join(format!("{name}.log"));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            cmd.env("RUST_LOG", filter).stderr(log);
        }
        _ => {
            cmd.env("RUST_LOG", "error").stderr(Stdio::null());
        }
    }
    if let Some(b) = bootstrap {
        cmd.arg("--bootstrap").arg(format!("/ip4/127.0.0.1/tcp/{b}"));
    }
    cmd.args(extra);
    let child = cmd.spawn().with_context(|| format!("spawning {}", bin.display()))?;
    Ok(Spawned {
        proc: Proc(child),
        p2p,
        api,
        health,
    })
}

async fn wait_ready(http: &reqwest::Client, health_port: u16, timeout: Duration) -> Result<()> {
    let url = format!("http://127.0.0.1:{health_port}/health/ready");
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("process with health port {health_port} not ready within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn join(trials: usize, bin: Option<PathBuf>, idle_secs: u64) -> Result<()> {
    let bin = bzzz_binary(bin)?;
    let root = tempfile::tempdir()?;
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build()?;
    let boot = spawn_bzzz(&bin, &root.path().join("boot"), None, "bootstrap")?;
    wait_ready(&http, boot.health, Duration::from_secs(30)).await?;
    let boot_p2p = boot.p2p;
    let mut procs = vec![boot.proc];
    let mut joins = Vec::new();
    for i in 0..trials {
        let t = Instant::now();
        let p = spawn_bzzz(&bin, &root.path().join(format!("agent-{i}")), Some(boot_p2p), "agent")?;
        wait_ready(&http, p.health, Duration::from_secs(30)).await?;
        joins.push(t.elapsed().as_secs_f64() * 1000.0);
        procs.push(p.proc);
    }
    println!("join    processes={trials}  start-to-ready {}", summary(joins));
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let mut rss: Vec<f64> = procs
        .iter()
        .filter_map(|p| rss_kib(p.0.id()))
        .map(|k| k as f64 / 1024.0)
        .collect();
    rss.sort_by(|a, b| a.total_cmp(b));
    println!(
        "rss     processes={} after {idle_secs} s idle: median={:.1} MiB max={:.1} MiB (mesh of {} processes)",
        rss.len(),
        percentile(&rss, 0.5),
        rss.last().copied().unwrap_or(f64::NAN),
        procs.len()
    );
    Ok(())
}

fn bzzz_binary(bin: Option<PathBuf>) -> Result<PathBuf> {
    let bin = match bin {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("bench binary has no parent dir")?
            .join("bzzz"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p bzzz-node` (or pass --bzzz PATH)",
            bin.display()
        );
    }
    Ok(bin)
}

async fn election_view(http: &reqwest::Client, api: u16) -> Option<(Option<String>, u64, bool)> {
    let v: serde_json::Value = http
        .get(format!("http://127.0.0.1:{api}/api/election/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((
        v["admin"].as_str().map(String::from),
        v["term"].as_u64().unwrap_or(0),
        v["is_admin"] == true,
    ))
}

/// The admin all `apis` name, if they agree.
async fn agreed(http: &reqwest::Client, apis: &[u16]) -> Option<(String, u64)> {
    let mut seen = None;
    for api in apis {
        let (admin, term, _) = election_view(http, *api).await?;
        let admin = admin?;
        match &seen {
            None => seen = Some((admin, term)),
            Some((a, _)) if *a == admin => {}
            _ => return None,
        }
    }
    seen
}

/// Sum over the nodes behind `apis` of the unlabelled metric `name` (missing counts as 0).
async fn metric_sum(http: &reqwest::Client, apis: &[u16], name: &str) -> f64 {
    let mut total = 0.0;
    for api in apis {
        let Ok(resp) = http.get(format!("http://127.0.0.1:{api}/metrics")).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else { continue };
        total += text
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

async fn failover(voters: usize, trials: usize, idle_secs: u64, bin: &PathBuf, load: bool) -> Result<()> {
    let root = tempfile::tempdir()?;
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build()?;
    let extra = vec![
        "--admin-eligible".to_string(),
        "--bootstrap-expect".to_string(),
        voters.to_string(),
    ];
    let mut ports = Vec::new();
    let mut procs: Vec<Option<Proc>> = Vec::new();
    for i in 0..voters {
        let boot = ports.first().map(|(p2p, _, _): &(u16, u16, u16)| *p2p);
        let s = spawn_bzzz_with(bin, &root.path().join(format!("v{i}")), boot, "agent", &extra, None)?;
        ports.push((s.p2p, s.api, s.health));
        procs.push(Some(s.proc));
    }
    let apis: Vec<u16> = ports.iter().map(|p| p.1).collect();
    let started = Instant::now();
    while agreed(&http, &apis).await.is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{voters} voters did not agree on an admin within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut times = Vec::new();
    for trial in 0..trials {
        let (admin, _) = loop {
            if let Some(a) = agreed(&http, &apis).await {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut idx = None;
        for (i, api) in apis.iter().enumerate() {
            if let Some((_, _, true)) = election_view(&http, *api).await {
                idx = Some(i);
            }
        }
        let idx = idx.context("no process says it is the admin")?;
        let t = Instant::now();
        drop(procs[idx].take()); // SIGKILL
        let survivors: Vec<u16> = apis
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != idx)
            .map(|(_, a)| *a)
            .collect();
        loop {
            if let Some((a, _)) = agreed(&http, &survivors).await
                && a != admin
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("trial {trial}: no new admin within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        // Bring the killed voter back (same data dir and ports) and let it catch up.
        let p = ports[idx];
        let s = spawn_bzzz_with(
            bin,
            &root.path().join(format!("v{idx}")),
            None,
            "agent",
            &extra,
            Some(p),
        )?;
        procs[idx] = Some(s.proc);
        let back = Instant::now();
        while agreed(&http, &apis).await.is_none() {
            if back.elapsed() > Duration::from_secs(30) {
                bail!("trial {trial}: restarted voter did not rejoin within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "failover voters={voters} load={load} trials={trials}  kill -9 to agreement by all survivors {}",
        summary(times)
    );
    // Idle: count leader changes, and lease lapses (an admin that stayed leader but briefly
    // stopped acting because no quorum acknowledged it in time).
    let term_before = agreed(&http, &apis).await.map(|a| a.1).unwrap_or(0);
    let admin_before = agreed(&http, &apis).await.map(|a| a.0);
    let lapses_before = metric_sum(&http, &apis, "bzzz_admin_lease_lapses_total").await;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let after = agreed(&http, &apis).await;
    let lapses_after = metric_sum(&http, &apis, "bzzz_admin_lease_lapses_total").await;
    println!(
        "idle    voters={voters} load={load} {idle_secs} s: term {} -> {}, admin {}, lease lapses {}",
        term_before,
        after.as_ref().map(|a| a.1).unwrap_or(0),
        if after.map(|a| a.0) == admin_before {
            "unchanged"
        } else {
            "CHANGED"
        },
        lapses_after - lapses_before
    );
    Ok(())
}

/// Busy loops on every core until dropped.
struct Load(Vec<std::thread::JoinHandle<()>>, Arc<std::sync::atomic::AtomicBool>);

impl Load {
    fn start() -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let handles = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        Load(handles, stop)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.1.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in self.0.drain(..) {
            let _ = h.join();
        }
    }
}

/// Context put/get latency on `n` in-process nodes (3 voters), R copies per record.
async fn context(n: usize, ops: usize, sizes: &[usize], replication: u32) -> Result<()> {
    let voters = 3.min(n);
    let mut cluster = TestCluster::start_with(n, |i, c| {
        quiet(i, c);
        c.election.eligible = i < voters;
        c.election.bootstrap_expect = voters as u32;
        c.context.replication_factor = replication;
        c.context.write_quorum = replication;
    })
    .await?;
    wait_for(
        "an admin, every routing table full, every node's role keys",
        Duration::from_secs(120),
        || async {
            for (_, node) in cluster.running() {
                let full = node
                    .client()
                    .snapshot()
                    .await
                    .map(|s| s.routing_table_size + 1 >= n)
                    .unwrap_or(false);
                if !full || !node.context().ready() || node.consensus().status().admin.is_none() {
                    return false;
                }
            }
            true
        },
    )
    .await?;
    let admin = cluster
        .running()
        .find(|(_, node)| node.consensus().status().is_admin)
        .map(|(i, _)| i)
        .context("an admin")?;
    let phases_wanted = std::env::var("BZZZ_BENCH_PHASES").is_ok();
    for &size in sizes {
        // Write phase: every put, and a read of it at once from another node. That read competes
        // with the put's own aftermath (holders announcing themselves as providers, followers
        // applying the index entry), which on one 2-core machine running all N nodes shows as CPU
        // queueing; it is reported on its own line.
        let mut puts = Vec::new();
        let mut gets_after_put = Vec::new();
        let mut written = Vec::new();
        let mut failures = 0;
        for i in 0..ops {
            let address = format!("ucxl://bench:agent@bzzz-bench:context/s{size}/r{i}");
            let content = vec![(i % 251) as u8; size];
            // Writers and readers are never the admin, so every index call crosses the network.
            let writer = (admin + 1 + i % (n - 1)) % n;
            let t = Instant::now();
            match cluster.node(writer).context().put(&address, content).await {
                Ok(_) => puts.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    failures += 1;
                    eprintln!("put {address}: {e}");
                    continue;
                }
            }
            let reader = pick_reader(writer, 1 + (i * 7) % (n - 1), admin, n);
            let t = Instant::now();
            match cluster.node(reader).context().get(&address).await {
                Ok(_) => gets_after_put.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    failures += 1;
                    eprintln!("get {address} right after its put: {e}");
                }
            }
            written.push((address, writer));
            if let Some(ms) = std::env::var("BZZZ_BENCH_PUT_GAP_MS").ok().and_then(|v| v.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        // Read phase, once the writes have settled: every record read from a node that is neither
        // its writer, the admin, nor the node that read it in the write phase.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut gets = Vec::new();
        let mut local_gets = Vec::new();
        let mut remote_gets = Vec::new();
        let (mut history_rtt, mut roles_rtt, mut bare_rtt) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (address, writer)) in written.iter().enumerate() {
            let reader = pick_reader(*writer, 2 + (i * 7) % (n - 2).max(1), admin, n);
            if phases_wanted {
                let t = Instant::now();
                let _ = cluster.node(reader).context().history(address, 1).await;
                history_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
                let t = Instant::now();
                let _ = cluster.node(reader).context().roles().await;
                roles_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
                let ack = bzzz_protocol::wire::RpcRequest {
                    body: Some(bzzz_protocol::wire::rpc_request::Body::ProbeAck(
                        bzzz_protocol::wire::ProbeAck {
                            probe_id: vec![0; 16],
                            received_at_ms: 0,
                        },
                    )),
                };
                let t = Instant::now();
                let _ = cluster
                    .node(reader)
                    .client()
                    .send_rpc(cluster.node(admin).peer_id(), ack)
                    .await;
                bare_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let t = Instant::now();
            match cluster.node(reader).context().get(address).await {
                Ok(_) => {
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    gets.push(ms);
                    if reader_holds(&cluster, reader, address).await {
                        local_gets.push(ms)
                    } else {
                        remote_gets.push(ms)
                    }
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("get {address}: {e}");
                }
            }
        }
        if phases_wanted {
            println!("context history (admin round trip): {}", summary(history_rtt));
            println!(
                "context roles query (admin round trip, no index read): {}",
                summary(roles_rtt)
            );
            println!(
                "context bare rpc (probe ack to the admin, answered in its event loop): {}",
                summary(bare_rtt)
            );
        }
        println!(
            "context N={n:<3} R={replication} content={size} B  put {}",
            summary(puts)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get {}  failures={failures}",
            summary(gets)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get, reader held a copy: {}",
            summary(local_gets)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get, reader fetched from a holder: {}",
            summary(remote_gets)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get right after its put (mesh still busy with the put): {}",
            summary(gets_after_put)
        );
    }
    cluster.shutdown().await;
    Ok(())
}

/// A node `offset` places after `writer` (mod `n`) that is neither the writer nor the admin (the
/// writer itself on a mesh too small to have such a node).
fn pick_reader(writer: usize, offset: usize, admin: usize, n: usize) -> usize {
    (0..n)
        .map(|k| (writer + offset + k) % n)
        .find(|&r| r != admin && r != writer)
        .unwrap_or(writer)
}

/// Whether `reader` holds the newest record of `address` itself (so its get needed no fetch).
async fn reader_holds(cluster: &TestCluster, reader: usize, address: &str) -> bool {
    let key = cluster
        .node(reader)
        .context()
        .history(address, 1)
        .await
        .ok()
        .and_then(|h| h.versions.first().map(|v| v.record_key.clone()))
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    match key {
        Some(k) => cluster
            .node(reader)
            .client()
            .local_get(bzzz_node::crypto::dht_key(&k))
            .await
            .map(|v| v.is_some())
            .unwrap_or(false),
        None => false,
    }
}

/// What each primitive of a seal and an open costs alone (median of 5 rounds of 100 at each size).
fn crypto_primitives(sizes: &[usize]) -> Result<()> {
    for &size in sizes {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            rounds.push(bzzz_node::crypto::bench::primitive_costs(size, 100)?);
        }
        for (i, first) in rounds[0].iter().enumerate() {
            let mut per_op: Vec<f64> = rounds.iter().map(|r| r[i].per_op.as_secs_f64()).collect();
            per_op.sort_by(f64::total_cmp);
            let median = per_op[per_op.len() / 2];
            if first.bytes > 0 {
                println!(
                    "primitive size={size} {:<72} {:>8.0} MB/s",
                    first.name,
                    first.bytes as f64 / median / 1e6
                );
            } else {
                println!("primitive size={size} {:<72} {:>8.1} us", first.name, median * 1e6);
            }
        }
    }
    Ok(())
}

/// Seal/open throughput of context records, and openssl's ChaCha20-Poly1305 for comparison.
fn crypto(sizes: &[usize], readers: usize, seconds: u64) -> Result<()> {
    for &size in sizes {
        // Calibrate the iteration count to roughly `seconds` of work.
        let probe = bzzz_node::crypto::bench::seal_open_throughput(size, readers, 3)?;
        let per_iter = (probe.seal_time + probe.open_time).as_secs_f64() / 3.0;
        let iterations = ((seconds as f64 / per_iter.max(1e-6)) as u32).clamp(5, 100_000);
        let t = bzzz_node::crypto::bench::seal_open_throughput(size, readers, iterations)?;
        let openssl = openssl_chacha(size, seconds);
        let ratio = |ours: f64| match openssl {
            Some(o) if o > 0.0 => format!(" ({:.0}% of openssl)", 100.0 * ours / o),
            _ => String::new(),
        };
        println!(
            "crypto  size={size} readers={readers} n={iterations}: seal {:.0} MB/s{}, open {:.0} MB/s{}; \
             openssl chacha20-poly1305 {}",
            t.seal_bytes_per_sec / 1e6,
            ratio(t.seal_bytes_per_sec),
            t.open_bytes_per_sec / 1e6,
            ratio(t.open_bytes_per_sec),
            openssl.map_or("not available".to_string(), |o| format!("{:.0} MB/s", o / 1e6)),
        );
    }
    Ok(())
}

/// `openssl speed -evp chacha20-poly1305` for one block size, in bytes per second.
fn openssl_chacha(size: usize, seconds: u64) -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "chacha20-poly1305", "-seconds"])
        .arg(seconds.to_string())
        .arg("-bytes")
        .arg(size.to_string())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line reads "ChaCha20-Poly1305  3327897.60k" (thousands of bytes per second).
    let last = text
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("chacha20"))?;
    let k = last.split_whitespace().last()?.strip_suffix('k')?;
    k.parse::<f64>().ok().map(|v| v * 1000.0)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    format!("{cpus} cpus, {model}")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    bzzz_tests::init_logging();
    let _ = epoch();
    println!(
        "bzzz-bench {} on {} ({})",
        env!("CARGO_PKG_VERSION"),
        machine(),
        if cfg!(debug_assertions) {
            "DEBUG build: numbers are not representative"
        } else {
            "release build"
        }
    );
    match args.scenario {
        Scenario::Gossip { nodes, messages } => {
            for n in nodes {
                gossip(n, messages).await?;
            }
        }
        Scenario::Dht {
            nodes,
            ops,
            size,
            replication,
        } => dht(nodes, ops, size, replication).await?,
        Scenario::Join {
            trials,
            bzzz,
            idle_secs,
        } => join(trials, bzzz, idle_secs).await?,
        Scenario::Failover {
            voters,
            trials,
            load,
            idle_secs,
            bzzz,
        } => {
            let bin = bzzz_binary(bzzz)?;
            let _load = load.then(Load::start);
            for v in voters {
                failover(v, trials, idle_secs, &bin, load).await?;
            }
        }
        Scenario::Crypto {
            sizes,
            readers,
            seconds,
            primitives,
        } => {
            crypto(&sizes, readers, seconds)?;
            if primitives {
                crypto_primitives(&sizes)?;
            }
        }
        Scenario::Context {
            nodes,
            ops,
            sizes,
            replication,
        } => {
            context(nodes, ops, &sizes, replication).await?;
            crypto(&[65536, 1048576], 3, 3)?;
        }
        Scenario::All => {
            gossip(10, 200).await?;
            gossip(50, 200).await?;
            dht(20, 200, 1024, 20).await?;
            dht(20, 200, 1024, 3).await?;
            join(20, None, 10).await?;
            let bin = bzzz_binary(None)?;
            failover(3, 20, 60, &bin, false).await?;
            failover(5, 20, 60, &bin, false).await?;
            context(20, 200, &[1024, 65536], 3).await?;
            crypto(&[65536, 1048576], 3, 3)?;
        }
    }
    Ok(())
}
