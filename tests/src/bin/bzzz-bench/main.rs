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
//!
//! One module per scenario (`gossip`, `dht`, `join`, `failover`, `context`, `crypto`); this file
//! holds the command line, the statistics helpers and how a `bzzz` process is started.

mod context;
mod crypto;
mod dht;
mod failover;
mod gossip;
mod join;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bzzz_tests::process::{Daemon, Launch, Ports};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "bzzz benchmarks")]
struct Args {
    /// Run the processes of `join` and `failover` with admission on: a throwaway cluster CA,
    /// one certificate per node (voter for the admin-eligible ones), the `/bzzz/admit/1`
    /// handshake on every connection. Without it they share a mesh key only.
    #[arg(long, global = true)]
    admission: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

/// The cluster CA of a run with `--admission`, and the directory holding its certificate.
struct BenchCa {
    ca: bzzz_node::admission::CertificateAuthority,
    dir: tempfile::TempDir,
}

static BENCH_CA: OnceLock<Option<BenchCa>> = OnceLock::new();

/// Enrolls the node of `dir` with the run's CA (when `--admission`) and points `launch` at it.
fn admit(launch: Launch, dir: &Path, mode: &str, extra: &[String]) -> Result<Launch> {
    let Some(Some(bench)) = BENCH_CA.get() else {
        return Ok(launch);
    };
    let grant = bzzz_node::admission::files::NodeGrant {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        roles: vec!["agent".into()],
        voter: mode == "agent" && extra.iter().any(|a| a == "--admin-eligible"),
        ttl: std::time::Duration::from_secs(86_400),
    };
    bench
        .ca
        .enroll(dir, None, &grant)
        .with_context(|| format!("enrolling {}", dir.display()))?;
    Ok(launch.env(
        "BZZZ_CA_CERT_FILE",
        bench.dir.path().join(bzzz_node::admission::files::CA_CERT_FILE),
    ))
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

/// The instant all gossip timestamps count from.
fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// The `p` quantile (0 to 1) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `n`, p50, p99 and max of latencies in ms.
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

/// Quieter nodes for in-process meshes: no periodic health checks, slower gossip heartbeat.
fn quiet(i: usize, c: &mut bzzz_node::Config) {
    let _ = i;
    c.health.check_interval_ms = 3_600_000;
    c.gossip.heartbeat_ms = 700;
}

/// The `bzzz` binary: `bin` if given, otherwise the one next to this binary.
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

/// Starts `bzzz run --mode <mode>` with its data dir `dir` on `ports` (fresh free ones if
/// `None`), bootstrapping through `/ip4/127.0.0.1/tcp/<bootstrap>`, with `extra` arguments. Logs
/// are dropped (`RUST_LOG=error`) unless `BZZZ_BENCH_LOG=<filter>` and
/// `BZZZ_BENCH_LOG_DIR=<dir>` are set: then each process appends its log to
/// `<dir>/<data dir name>.log`, for looking into a run.
fn spawn_bzzz(
    bin: &Path,
    dir: &Path,
    bootstrap: Option<u16>,
    mode: &str,
    extra: &[String],
    ports: Option<Ports>,
) -> Result<Daemon> {
    let ports = match ports {
        Some(p) => p,
        None => Ports::free()?,
    };
    let mut launch = admit(Launch::node(bin, dir, ports, mode).args(extra), dir, mode, extra)?;
    if let Some(b) = bootstrap {
        launch = launch.bootstrap(format!("/ip4/127.0.0.1/tcp/{b}"));
    }
    match (std::env::var("BZZZ_BENCH_LOG"), std::env::var("BZZZ_BENCH_LOG_DIR")) {
        (Ok(filter), Ok(log_dir)) => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            launch = launch
                .env("RUST_LOG", filter)
                .log_append(Path::new(&log_dir).join(format!("{name}.log")));
        }
        _ => launch = launch.env("RUST_LOG", "error"),
    }
    launch.spawn()
}

/// CPU count and model of this machine.
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
    let ca = if args.admission {
        let dir = tempfile::Builder::new().prefix("bzzz-bench-ca-").tempdir()?;
        let ca = bzzz_node::admission::CertificateAuthority::init(
            dir.path(),
            "bench",
            std::time::Duration::from_secs(86_400),
        )?;
        Some(BenchCa { ca, dir })
    } else {
        None
    };
    let admission = ca.is_some();
    let _ = BENCH_CA.set(ca);
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
    println!(
        "admission: {}",
        if admission {
            "on (a certificate per process, /bzzz/admit/1 on every connection)"
        } else {
            "off (mesh key only)"
        }
    );
    match args.scenario {
        Scenario::Gossip { nodes, messages } => {
            for n in nodes {
                gossip::gossip(n, messages).await?;
            }
        }
        Scenario::Dht {
            nodes,
            ops,
            size,
            replication,
        } => dht::dht(nodes, ops, size, replication).await?,
        Scenario::Join {
            trials,
            bzzz,
            idle_secs,
        } => join::join(trials, bzzz, idle_secs).await?,
        Scenario::Failover {
            voters,
            trials,
            load,
            idle_secs,
            bzzz,
        } => {
            let bin = bzzz_binary(bzzz)?;
            let _load = load.then(failover::Load::start);
            for v in voters {
                failover::failover(v, trials, idle_secs, &bin, load).await?;
            }
        }
        Scenario::Crypto {
            sizes,
            readers,
            seconds,
            primitives,
        } => {
            crypto::crypto(&sizes, readers, seconds)?;
            if primitives {
                crypto::crypto_primitives(&sizes)?;
            }
        }
        Scenario::Context {
            nodes,
            ops,
            sizes,
            replication,
        } => {
            context::context(nodes, ops, &sizes, replication).await?;
            crypto::crypto(&[65536, 1048576], 3, 3)?;
        }
        Scenario::All => {
            gossip::gossip(10, 200).await?;
            gossip::gossip(50, 200).await?;
            dht::dht(20, 200, 1024, 20).await?;
            dht::dht(20, 200, 1024, 3).await?;
            join::join(20, None, 10).await?;
            let bin = bzzz_binary(None)?;
            failover::failover(3, 20, 60, &bin, false).await?;
            failover::failover(5, 20, 60, &bin, false).await?;
            context::context(20, 200, &[1024, 65536], 3).await?;
            crypto::crypto(&[65536, 1048576], 3, 3)?;
        }
    }
    Ok(())
}
