//! `bzzz-bench failover`: admin failover with real processes (kill -9 the admin, time until every
//! survivor names the same new admin), optionally under CPU load, and leader changes while idle.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bzzz_client::ApiClient;
use bzzz_tests::process::{Daemon, Ports, agreed_admin, election_view};

use crate::{spawn_bzzz, summary};

/// Sum over the nodes behind `apis` of the unlabelled metric `name` (missing counts as 0).
async fn metric_sum(apis: &[ApiClient], name: &str) -> f64 {
    let mut total = 0.0;
    for api in apis {
        let Ok(text) = api.metrics_text().await else {
            continue;
        };
        total += text
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

/// `trials` kills of the admin of `voters` admin-eligible processes, each timed until all
/// survivors agree on a new admin; the killed voter comes back before the next trial. Then
/// watches the idle cluster for `idle_secs`.
pub(crate) async fn failover(voters: usize, trials: usize, idle_secs: u64, bin: &Path, load: bool) -> Result<()> {
    let root = tempfile::tempdir()?;
    let extra = vec![
        "--admin-eligible".to_string(),
        "--bootstrap-expect".to_string(),
        voters.to_string(),
    ];
    let mut ports: Vec<Ports> = Vec::new();
    let mut procs: Vec<Option<Daemon>> = Vec::new();
    for i in 0..voters {
        let boot = ports.first().map(|p| p.p2p);
        let d = spawn_bzzz(bin, &root.path().join(format!("v{i}")), boot, "agent", &extra, None)?;
        ports.push(d.ports().context("spawned with ports")?);
        procs.push(Some(d));
    }
    let apis: Vec<ApiClient> = ports
        .iter()
        .map(|p| ApiClient::with_timeout(&p.api_url(), Duration::from_millis(500)))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    while agreed_admin(&apis).await.is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{voters} voters did not agree on an admin within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut times = Vec::new();
    for trial in 0..trials {
        let (admin, _) = loop {
            if let Some(a) = agreed_admin(&apis).await {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut idx = None;
        for (i, api) in apis.iter().enumerate() {
            if election_view(api).await.is_some_and(|v| v.is_admin) {
                idx = Some(i);
            }
        }
        let idx = idx.context("no process says it is the admin")?;
        let t = Instant::now();
        drop(procs[idx].take()); // SIGKILL
        let survivors: Vec<ApiClient> = apis
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != idx)
            .map(|(_, a)| a.clone())
            .collect();
        loop {
            if let Some((a, _)) = agreed_admin(&survivors).await
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
        let d = spawn_bzzz(
            bin,
            &root.path().join(format!("v{idx}")),
            None,
            "agent",
            &extra,
            Some(p),
        )?;
        procs[idx] = Some(d);
        let back = Instant::now();
        while agreed_admin(&apis).await.is_none() {
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
    let term_before = agreed_admin(&apis).await.map(|a| a.1).unwrap_or(0);
    let admin_before = agreed_admin(&apis).await.map(|a| a.0);
    let lapses_before = metric_sum(&apis, "bzzz_admin_lease_lapses_total").await;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let after = agreed_admin(&apis).await;
    let lapses_after = metric_sum(&apis, "bzzz_admin_lease_lapses_total").await;
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
pub(crate) struct Load(Vec<std::thread::JoinHandle<()>>, Arc<std::sync::atomic::AtomicBool>);

impl Load {
    /// Starts one busy loop per core.
    pub(crate) fn start() -> Load {
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
