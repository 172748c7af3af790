//! Admin election scenarios: one admin agreed by every node, failover, restart. Every wait has a
//! timeout; every property is checked from every running node's view.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bzzz_tests::{TestCluster, bounded, exclusive, wait_for};

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
    TestCluster::scenario(8, eligible(3, 3), async |cluster| {
        let admin = wait_agreed(cluster, Duration::from_secs(30)).await?;
        let idx = index_of(cluster, &admin).context("admin is a cluster node")?;
        ensure!(idx < 3, "the admin must be an eligible node, got node {idx}");
        let s = cluster.node(5).consensus().status();
        ensure!(s.voters.len() == 3, "observer sees 3 voters: {s:?}");
        // The admin replicates to every voter, so it has a connection to each: /api/peers must
        // show them.
        let admin_node = cluster.node(idx);
        let peers: BTreeSet<String> = admin_node
            .client()
            .snapshot()
            .await?
            .peers
            .into_iter()
            .map(|p| p.peer_id)
            .collect();
        for (i, n) in cluster.running().filter(|(i, _)| *i < 3 && *i != idx) {
            ensure!(
                peers.contains(&n.peer_id().to_string()),
                "admin's peer table lacks voter node {i}"
            );
        }
        ensure!(
            s.state == bzzz_node::consensus::RaftRole::Observer,
            "non-eligible node state: {}",
            s.state
        );
        Ok(())
    })
    .await
}

/// 5 eligible nodes and 5 non-eligible ones: exactly one admin, and all 10 nodes name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_eligible_five_observers_agree_on_one_admin() -> Result<()> {
    TestCluster::scenario(10, eligible(5, 5), async |cluster| {
        wait_agreed(cluster, Duration::from_secs(40)).await?;
        wait_for("5 voters seen by every node", Duration::from_secs(20), || async {
            cluster.running().all(|(_, n)| n.consensus().status().voters.len() == 5)
        })
        .await?;
        Ok(())
    })
    .await
}

/// Killing the admin: the survivors agree on a new admin; prints the measured failover time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_admin_elects_a_new_one() -> Result<()> {
    TestCluster::scenario(5, eligible(3, 3), async |cluster| {
        let admin = wait_agreed(cluster, Duration::from_secs(30)).await?;
        let idx = index_of(cluster, &admin).context("admin index")?;
        let killed = Instant::now();
        cluster.kill(idx).await;
        wait_for("survivors agree on a new admin", Duration::from_secs(30), || async {
            agreed_admin(cluster).is_some_and(|a| a != admin)
        })
        .await?;
        println!(
            "failover (kill to agreement by all {} survivors): {:?}",
            cluster.running().count(),
            killed.elapsed()
        );
        Ok(())
    })
    .await
}

/// Restarting every node at once: the cluster comes back with the same voters and an admin,
/// without re-initialising (the log survives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_restart_keeps_membership() -> Result<()> {
    TestCluster::scenario(3, eligible(3, 3), async |cluster| {
        wait_agreed(cluster, Duration::from_secs(30)).await?;
        let voters_before: BTreeSet<u64> = cluster.node(0).consensus().status().voters.into_iter().collect();
        for i in 0..3 {
            cluster.kill(i).await;
        }
        for i in 0..3 {
            cluster.restart(i).await?;
        }
        wait_agreed(cluster, Duration::from_secs(30)).await?;
        for (i, n) in cluster.running() {
            let voters: BTreeSet<u64> = n.consensus().status().voters.into_iter().collect();
            ensure!(
                voters == voters_before,
                "node {i}: voters {voters:?}, before {voters_before:?}"
            );
        }
        Ok(())
    })
    .await
}

/// Partition a 5-voter cluster 2|3: the 2-side has no acting admin (the old admin steps down if
/// it was there), the 3-side has one that all three agree on; after healing there is one admin
/// again, agreed by all, and their logs converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_two_three_leaves_admin_only_on_the_majority() -> Result<()> {
    TestCluster::scenario(5, eligible(5, 5), async |cluster| {
        let admin = wait_agreed(cluster, Duration::from_secs(40)).await?;
        let a = index_of(cluster, &admin).context("admin index")?;
        // Put the admin on the minority side.
        let others: Vec<usize> = (0..5).filter(|&i| i != a).collect();
        let minority = [a, others[0]];
        let majority = [others[1], others[2], others[3]];
        cluster.partition(&[&minority, &majority]).await?;
        wait_for(
            "majority agrees on a new admin, minority has none acting",
            Duration::from_secs(30),
            || async {
                let maj: BTreeSet<Option<String>> = majority
                    .iter()
                    .map(|&i| cluster.node(i).consensus().status().admin)
                    .collect();
                let maj_admins = majority
                    .iter()
                    .filter(|&&i| cluster.node(i).consensus().status().is_admin)
                    .count();
                let min_admins = minority
                    .iter()
                    .filter(|&&i| cluster.node(i).consensus().status().is_admin)
                    .count();
                maj.len() == 1
                    && maj.iter().all(|x| x.as_ref().is_some_and(|p| *p != admin))
                    && maj_admins == 1
                    && min_admins == 0
            },
        )
        .await?;
        cluster.heal(&[&minority, &majority]).await?;
        let healed = wait_agreed(cluster, Duration::from_secs(40)).await?;
        wait_for(
            "logs converge (same last applied index everywhere)",
            Duration::from_secs(20),
            || async {
                let applied: BTreeSet<Option<u64>> = cluster
                    .running()
                    .map(|(_, n)| {
                        n.consensus()
                            .state_machine()
                            .and_then(|sm| sm.last_applied().ok().flatten())
                            .map(|l| l.index)
                    })
                    .collect();
                applied.len() == 1
            },
        )
        .await?;
        println!("admin before partition {admin}, after healing {healed}");
        Ok(())
    })
    .await
}

/// Over repeated admin kills and a partition, admin duties never run on two nodes at once, and
/// the heartbeats an observer records never show two admins for one term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duties_never_overlap_and_one_admin_per_term() -> Result<()> {
    use std::sync::{Arc, Mutex};
    let _one_at_a_time = exclusive().await;
    bounded(async {
        type Runs = Arc<Mutex<Vec<(usize, u64, Instant, Option<Instant>)>>>;
        let runs: Runs = Arc::default();
        let mut cluster = TestCluster::start_with(6, eligible(5, 5)).await?;
        let register = |cluster: &TestCluster, i: usize, runs: Runs| {
            cluster.node(i).duties().register("overlap-probe", move |ctx| {
                let runs = runs.clone();
                async move {
                    struct End(Runs, usize);
                    impl Drop for End {
                        fn drop(&mut self) {
                            if let Ok(mut r) = self.0.lock()
                                && let Some(last) = r.iter_mut().rev().find(|x| x.0 == self.1 && x.3.is_none())
                            {
                                last.3 = Some(Instant::now());
                            }
                        }
                    }
                    if let Ok(mut r) = runs.lock() {
                        r.push((i, ctx.term, Instant::now(), None));
                    }
                    let _end = End(runs.clone(), i);
                    ctx.token.cancelled().await;
                }
            });
        };
        for i in 0..5 {
            register(&cluster, i, runs.clone());
        }
        // The observer (node 5) records every heartbeat it hears.
        let mut inbox = cluster
            .node(5)
            .client()
            .subscribe(bzzz_protocol::topics::ADMIN, 4096)
            .await?;
        let heartbeats: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let hb = heartbeats.clone();
        let recorder = tokio::spawn(async move {
            use prost::Message;
            while let Some(m) = inbox.recv().await {
                if let Ok(a) = bzzz_protocol::wire::AdminMessage::decode(m.payload.as_slice())
                    && let Some(bzzz_protocol::wire::admin_message::Body::Heartbeat(h)) = a.body
                    && let Ok(mut v) = hb.lock()
                {
                    v.push((h.term, h.node_id));
                }
            }
        });

        for round in 0..2 {
            let admin = wait_agreed(&cluster, Duration::from_secs(40)).await?;
            let a = index_of(&cluster, &admin).context("admin index")?;
            cluster.kill(a).await;
            wait_for(
                &format!("round {round}: new admin after kill"),
                Duration::from_secs(30),
                || async { agreed_admin(&cluster).is_some_and(|x| x != admin) },
            )
            .await?;
            cluster.restart(a).await?;
            register(&cluster, a, runs.clone());
        }
        let admin = wait_agreed(&cluster, Duration::from_secs(40)).await?;
        let a = index_of(&cluster, &admin).context("admin index")?;
        let rest: Vec<usize> = (0..6).filter(|&i| i != a).collect();
        cluster.partition(&[&[a], &rest]).await?;
        wait_for("new admin on the majority side", Duration::from_secs(30), || async {
            rest.iter()
                .filter(|&&i| cluster.node(i).consensus().status().is_admin)
                .count()
                == 1
        })
        .await?;
        cluster.heal(&[&[a], &rest]).await?;
        wait_agreed(&cluster, Duration::from_secs(40)).await?;
        cluster.shutdown().await;
        recorder.abort();

        let runs = runs.lock().map(|r| r.clone()).unwrap_or_default();
        ensure!(runs.len() >= 4, "expected at least 4 duty runs, got {}", runs.len());
        let end = Instant::now();
        for (x, a) in runs.iter().enumerate() {
            for b in runs.iter().skip(x + 1) {
                if a.0 == b.0 {
                    continue;
                }
                let (a_end, b_end) = (a.3.unwrap_or(end), b.3.unwrap_or(end));
                let overlap = a.2 < b_end && b.2 < a_end;
                ensure!(
                    !overlap,
                    "duties overlapped: node {} term {} and node {} term {}",
                    a.0,
                    a.1,
                    b.0,
                    b.1
                );
            }
        }
        let heartbeats = heartbeats.lock().map(|h| h.clone()).unwrap_or_default();
        let mut by_term: std::collections::BTreeMap<u64, BTreeSet<u64>> = Default::default();
        for (term, node) in &heartbeats {
            by_term.entry(*term).or_default().insert(*node);
        }
        ensure!(
            by_term.len() >= 3,
            "expected heartbeats from at least 3 terms, got {by_term:?}"
        );
        for (term, nodes) in &by_term {
            ensure!(
                nodes.len() == 1,
                "term {term} had heartbeats from {} admins: {nodes:?}",
                nodes.len()
            );
        }
        println!(
            "{} duty runs, {} heartbeats over {} terms",
            runs.len(),
            heartbeats.len(),
            by_term.len()
        );
        Ok(())
    })
    .await
}

/// Later eligible nodes join as learners and are promoted up to `max_voters`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_eligible_nodes_join_and_are_promoted_up_to_max_voters() -> Result<()> {
    TestCluster::scenario(
        6,
        |i, c| {
            c.election.eligible = true;
            c.election.bootstrap_expect = 3;
            c.election.max_voters = 5;
            let _ = i;
        },
        async |cluster| {
            wait_agreed(cluster, Duration::from_secs(40)).await?;
            wait_for("5 voters and 1 learner", Duration::from_secs(40), || async {
                cluster.running().all(|(_, n)| {
                    let s = n.consensus().status();
                    s.voters.len() == 5 && s.learners.len() == 1
                })
            })
            .await?;
            Ok(())
        },
    )
    .await
}

/// A voter killed for longer than the dead-voter timeout is replaced by a healthy learner:
/// membership gets back to the configured voter count without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_voter_is_replaced_by_a_learner() -> Result<()> {
    TestCluster::scenario(
        4,
        |_, c| {
            c.election.eligible = true;
            c.election.bootstrap_expect = 3;
            c.election.max_voters = 3;
            c.election.dead_voter_timeout_ms = 2_000;
        },
        async |cluster| {
            let admin = wait_agreed(cluster, Duration::from_secs(40)).await?;
            wait_for("3 voters and 1 learner", Duration::from_secs(30), || async {
                let s = cluster.node(0).consensus().status();
                s.voters.len() == 3 && s.learners.len() == 1
            })
            .await?;
            let a = index_of(cluster, &admin).context("admin index")?;
            let status = cluster.node(a).consensus().status();
            let victim = cluster
                .running()
                .find(|(i, n)| *i != a && status.voters.contains(&n.consensus().node_id()))
                .map(|(i, n)| (i, n.consensus().node_id()))
                .context("a non-admin voter")?;
            cluster.kill(victim.0).await;
            wait_for("the dead voter is replaced", Duration::from_secs(30), || async {
                let s = cluster.node(a).consensus().status();
                s.voters.len() == 3 && !s.voters.contains(&victim.1)
            })
            .await?;
            Ok(())
        },
    )
    .await
}

/// Restarting every node one by one keeps an agreed admin afterwards and the same membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_keeps_membership() -> Result<()> {
    TestCluster::scenario(3, eligible(3, 3), async |cluster| {
        wait_agreed(cluster, Duration::from_secs(30)).await?;
        let before: BTreeSet<u64> = cluster.node(0).consensus().status().voters.into_iter().collect();
        for i in 0..3 {
            cluster.restart(i).await?;
            wait_agreed(cluster, Duration::from_secs(30)).await?;
        }
        for (i, n) in cluster.running() {
            let voters: BTreeSet<u64> = n.consensus().status().voters.into_iter().collect();
            ensure!(voters == before, "node {i}: voters {voters:?}, before {before:?}");
        }
        Ok(())
    })
    .await
}

/// Pre-vote: a follower cut off from the others for many election timeouts, then healed, and a
/// follower restarted, do not disturb the admin: no new term, no admin change, no lease lapse.
/// (Without pre-vote the cut-off follower raises its term while alone and the admin steps down
/// when that term reaches it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_or_restarted_follower_does_not_disturb_the_admin() -> Result<()> {
    TestCluster::scenario(3, eligible(3, 3), async |cluster| {
        let admin = wait_agreed(cluster, Duration::from_secs(30)).await?;
        let admin_idx = index_of(cluster, &admin).context("admin index")?;
        let term = cluster.node(admin_idx).consensus().status().term;
        let follower = (0..3).find(|i| *i != admin_idx).context("a follower")?;
        let rest: Vec<usize> = (0..3).filter(|i| *i != follower).collect();
        let max_timeout = cluster.config(0).election.election_timeout_max_ms;
        let cut_for = Duration::from_millis(max_timeout * 6);

        cluster.partition(&[&[follower], &rest]).await?;
        tokio::time::sleep(cut_for).await;
        let alone = cluster.node(follower).consensus().status();
        ensure!(
            alone.term == term,
            "the cut-off follower raised its term to {} (was {term})",
            alone.term
        );
        cluster.heal(&[&[follower], &rest]).await?;
        wait_agreed(cluster, Duration::from_secs(30)).await?;
        tokio::time::sleep(cut_for).await;

        cluster.restart(follower).await?;
        wait_agreed(cluster, Duration::from_secs(30)).await?;
        tokio::time::sleep(cut_for).await;

        let now = wait_agreed(cluster, Duration::from_secs(30)).await?;
        ensure!(now == admin, "admin changed from {admin} to {now}");
        for (i, n) in cluster.running() {
            let s = n.consensus().status();
            ensure!(s.term == term, "node {i}: term {} (was {term})", s.term);
        }
        let lapses = cluster
            .node(admin_idx)
            .metrics()
            .sample("bzzz_admin_lease_lapses_total", &[])
            .unwrap_or_default();
        ensure!(lapses == 0.0, "the admin's lease lapsed {lapses} times");
        Ok(())
    })
    .await
}

/// A mesh whose eligible nodes cannot form a cluster (fewer than bootstrap_expect) has no admin:
/// `election-health` goes unhealthy on the eligible node and on observers that see it, once the
/// admin timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_admin_makes_election_health_unhealthy() -> Result<()> {
    TestCluster::scenario(
        2,
        |i, c| {
            if i == 0 {
                c.election.eligible = true;
                c.election.bootstrap_expect = 3;
            }
        },
        async |cluster| {
            let timeout = cluster.node(0).consensus().admin_timeout();
            wait_for("both nodes report election-health unhealthy", timeout * 4, || async {
                let mut all = true;
                for (_, n) in cluster.running() {
                    n.check_health_now().await;
                    all &= n
                        .health()
                        .checks()
                        .get("election-health")
                        .is_some_and(|c| c.status == bzzz_node::health::Status::Unhealthy);
                }
                all
            })
            .await?;
            ensure!(
                cluster.node(1).consensus().status().eligible_seen == 1,
                "the observer sees the eligible node"
            );
            Ok(())
        },
    )
    .await
}
