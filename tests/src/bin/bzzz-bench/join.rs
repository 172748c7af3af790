//! `bzzz-bench join`: start-to-ready time of real `bzzz` processes joining a mesh, and their
//! idle RSS.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::{bzzz_binary, percentile, spawn_bzzz, summary};

/// The resident set size of process `pid` in KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts a bootstrap process, then `trials` agents one at a time, timing each from start to
/// ready; then reads every process's RSS after `idle_secs` of idling.
pub(crate) async fn join(trials: usize, bin: Option<PathBuf>, idle_secs: u64) -> Result<()> {
    let bin = bzzz_binary(bin)?;
    let root = tempfile::tempdir()?;
    let boot = spawn_bzzz(&bin, &root.path().join("boot"), None, "bootstrap", &[], None)?;
    boot.wait_ready(Duration::from_secs(30)).await?;
    let boot_p2p = boot.ports().map(|p| p.p2p);
    let mut procs = vec![boot];
    let mut joins = Vec::new();
    for i in 0..trials {
        let t = Instant::now();
        let p = spawn_bzzz(
            &bin,
            &root.path().join(format!("agent-{i}")),
            boot_p2p,
            "agent",
            &[],
            None,
        )?;
        p.wait_ready(Duration::from_secs(30)).await?;
        joins.push(t.elapsed().as_secs_f64() * 1000.0);
        procs.push(p);
    }
    println!("join    processes={trials}  start-to-ready {}", summary(joins));
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let mut rss: Vec<f64> = procs
        .iter()
        .filter_map(|p| rss_kib(p.pid()))
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
