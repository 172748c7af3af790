//! Admin election scenarios: one admin agreed by every node, failover, restart. Every wait has a
//! timeout; every property is checked from every running node's view.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bzzz_tests::{TestCluster, bounded, wait_for};

fn eligible(expect: u32, eligible_count: usize) -> impl Fn(usize, &mut bzzz_node::Config) {
    move |i, c| {
        if i < eligible_count {
            c.election.eligible = true;
            c.election.bootstrap_expect = expect;
        }
        c.election.heartbeat_interval_ms = 200;
    }
}

/// The admin every running node names, if they all name the same one (and exactly one node
/// says it is the admin).
fn agreed_admin(cluster: &TestCluster) -> Option<String> {
    let mut admins = BTreeSet::new();
    let mut self_admins = 0;
    for (_, n) in cluster.running() {
        let s = n.consensus().status();
        admins.insert(s.admin.clone()?);
        if s.is_admin {
            self_admins += 1;
        }
    }
    (admins.len() == 1 && self_admins == 1)
        .then(|| admins.into_iter().next())
        .flatten()
}

async fn wait_agreed(cluster: &TestCluster, timeout: Duration) -> Result<String> {
    if let Err(e) = wait_for("every node agrees on one admin", timeout, || async {
        agreed_admin(cluster).is_some()
    })
    .await
    {
        let views: Vec<String> = cluster
            .running()
            .map(|(i, n)| {
                let s = n.consensus().status();
                format!(
                    "node {i}: state={} admin={:?} term={} heard={:?}ms voters={}",
                    s.state,
                    s.admin_node_id,
                    s.term,
                    s.last_heartbeat_ms_ago,
                    s.voters.len()
                )
            })
            .collect();
        return Err(e.context(views.join("\n")));
    }
    agreed_admin(cluster).context("admin agreement vanished")
}

fn index_of(cluster: &TestCluster, peer: &str) -> Option<usize> {
    cluster
        .running()
        .find(|(_, n)| n.peer_id().to_string() == peer)
        .map(|(i, _)| i)
}

/// 3 eligible nodes and 5 non-eligible ones: exactly one admin, and all 8 nodes name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_eligible_five_observers_agree_on_one_admin() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start_with(8, eligible(3, 3)).await?;
        let admin = wait_agreed(&cluster, Duration::from_secs(30)).await?;
        let idx = index_of(&cluster, &admin).context("admin is a cluster node")?;
        ensure!(idx < 3, "the admin must be an eligible node, got node {idx}");
        let s = cluster.node(5).consensus().status();
        ensure!(s.voters.len() == 3, "observer sees 3 voters: {s:?}");
        ensure!(s.state == "observer", "non-eligible node state: {}", s.state);
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// 5 eligible nodes and 5 non-eligible ones: exactly one admin, and all 10 nodes name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_eligible_five_observers_agree_on_one_admin() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start_with(10, eligible(5, 5)).await?;
        wait_agreed(&cluster, Duration::from_secs(40)).await?;
        wait_for("5 voters seen by every node", Duration::from_secs(20), || async {
            cluster.running().all(|(_, n)| n.consensus().status().voters.len() == 5)
        })
        .await?;
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// Killing the admin: the survivors agree on a new admin; prints the measured failover time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_admin_elects_a_new_one() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start_with(5, eligible(3, 3)).await?;
        let admin = wait_agreed(&cluster, Duration::from_secs(30)).await?;
        let idx = index_of(&cluster, &admin).context("admin index")?;
        let killed = Instant::now();
        cluster.kill(idx).await;
        wait_for("survivors agree on a new admin", Duration::from_secs(30), || async {
            agreed_admin(&cluster).is_some_and(|a| a != admin)
        })
        .await?;
        println!(
            "failover (kill to agreement by all {} survivors): {:?}",
            cluster.running().count(),
            killed.elapsed()
        );
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// Restarting every node at once: the cluster comes back with the same voters and an admin,
/// without re-initialising (the log survives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_restart_keeps_membership() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start_with(3, eligible(3, 3)).await?;
        wait_agreed(&cluster, Duration::from_secs(30)).await?;
        let voters_before: BTreeSet<u64> = cluster.node(0).consensus().status().voters.into_iter().collect();
        for i in 0..3 {
            cluster.kill(i).await;
        }
        for i in 0..3 {
            cluster.restart(i).await?;
        }
        wait_agreed(&cluster, Duration::from_secs(30)).await?;
        for (i, n) in cluster.running() {
            let voters: BTreeSet<u64> = n.consensus().status().voters.into_iter().collect();
            ensure!(
                voters == voters_before,
                "node {i}: voters {voters:?}, before {voters_before:?}"
            );
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}
