//! Mesh core scenarios: formation, gossip, DHT, restart, rejection of bad envelopes, late
//! bootstrap. Every test is bounded by a timeout.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bzzz_node::Node;
use bzzz_node::network::GossipMessage;
use bzzz_protocol::envelope::{self, NONCE_LEN};
use bzzz_protocol::topics;
use bzzz_protocol::wire::Kind;
use bzzz_tests::{TestCluster, api_of, bounded, free_port, health_of, init_logging, test_config, wait_for};
use libp2p::identity::Keypair;
use prost::Message;
use tokio::sync::mpsc::Receiver;

/// Payload of the messages [`wait_gossip_reaches`] publishes.
const WARM_UP: &[u8] = b"subscription warm-up";

/// Waits until a coordination message from `sender` reaches every one of `inboxes` (the
/// subscriptions have propagated and the topic carries messages to each): on every poll it
/// drains the inboxes and publishes one more warm-up message until each inbox has received one.
/// Read later messages with [`recv_skipping_warm_ups`]: a late warm-up may still arrive.
async fn wait_gossip_reaches(sender: &Node, inboxes: &mut [&mut Receiver<GossipMessage>]) -> Result<()> {
    let got = vec![false; inboxes.len()];
    let state = tokio::sync::Mutex::new((inboxes, got));
    wait_for(
        "a coordination message from the sender reaches every subscriber",
        Duration::from_secs(20),
        || async {
            let mut guard = state.lock().await;
            let (inboxes, got) = &mut *guard;
            for (inbox, got) in inboxes.iter_mut().zip(got.iter_mut()) {
                while let Ok(m) = inbox.try_recv() {
                    *got |= m.payload == WARM_UP;
                }
            }
            if got.iter().all(|g| *g) {
                return true;
            }
            let _ = sender
                .client()
                .publish(topics::COORDINATION, Kind::Coordination, WARM_UP.to_vec())
                .await;
            false
        },
    )
    .await
}

/// The next message of `inbox` that is not a warm-up, within 10 s.
async fn recv_skipping_warm_ups(inbox: &mut Receiver<GossipMessage>) -> Result<GossipMessage> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match inbox.recv().await {
                Some(m) if m.payload == WARM_UP => continue,
                Some(m) => return Ok(m),
                None => bail!("inbox closed"),
            }
        }
    })
    .await
    .context("no message within 10 s")?
}

/// A 5-node mesh forms through one bootstrap peer: every node ends up knowing all four others
/// (routing table) and connected, and reports ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_mesh_forms_through_one_bootstrap_peer() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(5).await?;
        wait_for(
            "every node has the 4 others in its routing table",
            Duration::from_secs(30),
            || async {
                for (_, n) in cluster.running() {
                    match n.client().snapshot().await {
                        Ok(s) if s.routing_table_size >= 4 && !s.peers.is_empty() => {}
                        _ => return false,
                    }
                }
                true
            },
        )
        .await?;
        for (i, n) in cluster.running() {
            let r = health_of(n)?.ready().await?;
            ensure!(r.ready, "node {i} /health/ready: expected ready, got {r:?}");
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// A message published on one node reaches every other node's subscriber, with the verified
/// sender, and several subscribers on one topic each get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_every_node() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(5).await?;
        cluster.wait_connected(1, Duration::from_secs(20)).await?;
        let mut inboxes = Vec::new();
        for (i, n) in cluster.running() {
            inboxes.push((i, n.client().subscribe(topics::COORDINATION, 16).await?));
        }
        // A second subscriber on node 1.
        let mut second = cluster.node(1).client().subscribe(topics::COORDINATION, 16).await?;
        let sender = cluster.node(2);
        let payload = b"task-announcement-42".to_vec();
        wait_for(
            "node 2 sees 4 peers on the coordination topic",
            Duration::from_secs(20),
            || async {
                sender
                    .client()
                    .snapshot()
                    .await
                    .map(|s| s.peers.len() >= 4)
                    .unwrap_or(false)
            },
        )
        .await?;
        {
            let mut all: Vec<&mut Receiver<GossipMessage>> = inboxes
                .iter_mut()
                .filter(|(i, _)| *i != 2)
                .map(|(_, inbox)| inbox)
                .collect();
            all.push(&mut second);
            wait_gossip_reaches(sender, &mut all).await?;
        }
        sender
            .client()
            .publish(topics::COORDINATION, Kind::Coordination, payload.clone())
            .await?;
        for (i, inbox) in inboxes.iter_mut() {
            if *i == 2 {
                continue;
            }
            let msg = recv_skipping_warm_ups(inbox)
                .await
                .with_context(|| format!("node {i} did not receive the message"))?;
            ensure!(msg.payload == payload, "node {i}: payload differs");
            ensure!(
                msg.sender == sender.peer_id(),
                "node {i}: sender {} expected {}",
                msg.sender,
                sender.peer_id()
            );
        }
        let msg = recv_skipping_warm_ups(&mut second)
            .await
            .context("second subscriber on node 1 got nothing")?;
        ensure!(msg.payload == payload, "second subscriber: payload differs");
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// A record put on one node is read on every other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_record_put_on_one_node_is_read_on_all() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(5).await?;
        cluster.wait_connected(1, Duration::from_secs(20)).await?;
        wait_for("routing tables filled", Duration::from_secs(20), || async {
            for (_, n) in cluster.running() {
                if n.client()
                    .snapshot()
                    .await
                    .map(|s| s.routing_table_size < 4)
                    .unwrap_or(true)
                {
                    return false;
                }
            }
            true
        })
        .await?;
        let key = b"/bzzz/test/shared-record".to_vec();
        let value = b"context: the build is green".to_vec();
        let put = cluster
            .node(3)
            .client()
            .put_record(key.clone(), value.clone(), None)
            .await?;
        ensure!(put.replicated, "put should reach remote peers in a 5-node mesh");
        for (i, n) in cluster.running() {
            let got = n
                .client()
                .get_record(key.clone())
                .await
                .with_context(|| format!("get on node {i}"))?;
            ensure!(got == value, "node {i} read a different value");
        }
        // More gets than the in-flight bound: finished queries must release their slots.
        for i in 0..(bzzz_node::network::MAX_PENDING + 100) {
            let got = cluster.node(0).client().get_record(key.clone()).await;
            ensure!(got.is_ok(), "get #{i} failed: {got:?} (leaked query slots?)");
        }
        let missing = cluster.node(0).client().get_record(b"/bzzz/test/absent".to_vec()).await;
        ensure!(
            matches!(missing, Err(bzzz_node::network::NetworkError::NotFound)),
            "absent key: expected NotFound, got {missing:?}"
        );
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// Records peers put with Kademlia are judged by the context service's validator: a forged
/// context record (a key under `/bzzz/ctx/1/`, a value that is no signed record) is refused and
/// counted by every peer, while an ordinary DHT record from the same node is stored (the control:
/// the puts did reach them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_context_records_put_through_the_dht_are_refused() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(3).await?;
        cluster.wait_connected(2, Duration::from_secs(20)).await?;
        let forged = bzzz_protocol::context::dht_key(&[9u8; 32]);
        let ordinary = b"/bzzz/test/ordinary".to_vec();
        let sender = cluster.node(0).client();
        // The quorum may or may not be met (peers answer a filtered put); what they keep is the test.
        let _ = sender
            .put_record(forged.clone(), b"not a signed record".to_vec(), None)
            .await;
        sender.put_record(ordinary.clone(), b"plain".to_vec(), None).await?;
        wait_for(
            "both peers hold the ordinary record",
            Duration::from_secs(20),
            || async {
                for i in 1..3 {
                    if !matches!(cluster.node(i).client().local_get(ordinary.clone()).await, Ok(Some(_))) {
                        return false;
                    }
                }
                true
            },
        )
        .await?;
        wait_for(
            "both peers counted the forged record as refused",
            Duration::from_secs(20),
            || async {
                (1..3).all(|i| {
                    cluster
                        .node(i)
                        .metrics()
                        .sample("bzzz_context_records_rejected_total", &[("reason", "dht_put")])
                        .is_some_and(|v| v >= 1.0)
                })
            },
        )
        .await?;
        for i in 1..3 {
            let held = cluster.node(i).client().local_get(forged.clone()).await?;
            ensure!(held.is_none(), "node {i} kept a forged context record");
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// After a restart a node has the same peer id and still serves the records it stored, even when
/// every other node is gone (so the record can only come from its own persisted store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_peer_id_and_records() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(3).await?;
        cluster.wait_connected(2, Duration::from_secs(20)).await?;
        let key = b"/bzzz/test/durable".to_vec();
        let value = vec![7u8; 10_000];
        cluster
            .node(0)
            .client()
            .put_record(key.clone(), value.clone(), Some(libp2p::kad::Quorum::N(2.try_into()?)))
            .await?;
        let id_before = cluster.node(1).peer_id();
        cluster.kill(0).await;
        cluster.kill(2).await;
        cluster.restart(1).await?;
        ensure!(cluster.node(1).peer_id() == id_before, "peer id changed across restart");
        let got = cluster
            .node(1)
            .client()
            .get_record(key)
            .await
            .context("get after restart")?;
        ensure!(got == value, "record changed across restart");
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

fn rejected(n: &bzzz_node::Node, reason: &str) -> u64 {
    n.metrics()
        .sample("bzzz_pubsub_rejected_total", &[("reason", reason)])
        .unwrap_or_default() as u64
}

/// A forged-signature envelope and an oversized one are rejected before any handler, counted by
/// reason on the receivers, and the mesh keeps delivering valid messages afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_oversized_envelopes_are_rejected_and_counted() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(3).await?;
        cluster.wait_connected(2, Duration::from_secs(20)).await?;
        let mut inbox1 = cluster.node(1).client().subscribe(topics::COORDINATION, 16).await?;
        let mut inbox2 = cluster.node(2).client().subscribe(topics::COORDINATION, 16).await?;
        let attacker = cluster.node(0);
        wait_gossip_reaches(attacker, &mut [&mut inbox1, &mut inbox2]).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;

        // Forged: signed by someone else, then claims node 0 as sender.
        let other = Keypair::generate_ed25519();
        let mut forged = envelope::seal(&other, Kind::Coordination, b"forged".to_vec(), now, [1; NONCE_LEN])?;
        forged.sender = Keypair::generate_ed25519().public().encode_protobuf();
        attacker
            .client()
            .publish_raw(topics::COORDINATION, forged.encode_to_vec())
            .await?;

        // Oversized: a valid signature but larger than the 64 KiB envelope limit.
        let key = Keypair::generate_ed25519();
        let big = envelope::seal(&key, Kind::Coordination, vec![0u8; 80 * 1024], now, [2; NONCE_LEN])?;
        attacker
            .client()
            .publish_raw(topics::COORDINATION, big.encode_to_vec())
            .await?;

        for i in [1, 2] {
            let n = cluster.node(i);
            wait_for(
                &format!("node {i} counts a bad_signature and an oversized reject"),
                Duration::from_secs(10),
                || async { rejected(n, "bad_signature") >= 1 && rejected(n, "oversized") >= 1 },
            )
            .await?;
        }
        for (i, inbox) in [(1, &mut inbox1), (2, &mut inbox2)] {
            while let Ok(m) = inbox.try_recv() {
                ensure!(m.payload == WARM_UP, "node {i} handler saw a rejected envelope");
            }
        }

        // The mesh still works.
        attacker
            .client()
            .publish(topics::COORDINATION, Kind::Coordination, b"valid".to_vec())
            .await?;
        for (i, inbox) in [(1, &mut inbox1), (2, &mut inbox2)] {
            let m = recv_skipping_warm_ups(inbox)
                .await
                .with_context(|| format!("node {i} got no valid message after the rejects"))?;
            ensure!(m.payload == b"valid", "node {i}: unexpected payload");
        }
        // And the metric is exposed on /metrics.
        let text = health_of(cluster.node(1))?.metrics_text().await?;
        ensure!(
            text.lines()
                .any(|l| l.starts_with("bzzz_pubsub_rejected_total{reason=\"bad_signature\"}") && !l.ends_with(" 0")),
            "/metrics does not show the bad_signature reject"
        );
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// A node whose bootstrap address is unreachable keeps retrying (visible in its join status and
/// health), and joins once the bootstrap node comes up at that address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bootstrap_is_retried_until_it_comes_up() -> Result<()> {
    bounded(async {
        init_logging();
        let port = free_port()?;
        let dir_a = tempfile::tempdir()?;
        let dir_b = tempfile::tempdir()?;
        let mut cb = test_config(dir_b.path());
        cb.p2p.bootstrap_peers = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
        let b = bzzz_node::Node::start(cb).await?;
        wait_for(
            "node B has retried at least 3 times",
            Duration::from_secs(20),
            || async {
                let s = b.join_status();
                s.attempts >= 3 && s.state == bzzz_bootstrap::JoinState::Retrying
            },
        )
        .await?;
        let ready = health_of(&b)?.ready().await?;
        ensure!(!ready.ready, "node B must not be ready before joining, got {ready:?}");
        b.check_health_now().await;
        let p2p = b
            .health()
            .checks()
            .get("p2p-connectivity")
            .cloned()
            .context("p2p check ran")?;
        ensure!(
            p2p.status == bzzz_node::health::Status::Unhealthy,
            "p2p-connectivity must be unhealthy while joining, got {:?}",
            p2p.status
        );

        let mut ca = test_config(dir_a.path());
        ca.p2p.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
        let a = bzzz_node::Node::start(ca).await?;
        wait_for("node B joins once A is up", Duration::from_secs(20), || async {
            b.join_status().state == bzzz_bootstrap::JoinState::Joined
        })
        .await?;
        let b_health = health_of(&b)?;
        wait_for("node B ready", Duration::from_secs(10), || async {
            b_health.ready().await.is_ok_and(|r| r.ready)
        })
        .await?;
        b.shutdown().await;
        a.shutdown().await;
        Ok(())
    })
    .await
}

/// A node with no bootstrap peers is healthy and ready alone, and its DHT check verifies the
/// local store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_node_is_healthy_and_ready() -> Result<()> {
    bounded(async {
        init_logging();
        let dir = tempfile::tempdir()?;
        let n = bzzz_node::Node::start(test_config(dir.path())).await?;
        n.check_health_now().await;
        let summary = n.health().summary();
        if summary.status != bzzz_node::health::Status::Healthy {
            bail!(
                "lone node: expected healthy, got {:?}: {:?}",
                summary.status,
                n.health().checks()
            );
        }
        let ready = health_of(&n)?.ready().await?;
        ensure!(ready.ready, "lone node must be ready, got {ready:?}");
        n.shutdown().await;
        n.shutdown().await; // idempotent
        Ok(())
    })
    .await
}

/// On a 2-node mesh, a publish issued right after start (before the peer's subscription has
/// arrived) waits for the peer instead of failing, and is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_a_forming_two_node_mesh_is_delivered() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(2).await?;
        let mut inbox = cluster.node(0).client().subscribe(topics::HMMM, 16).await?;
        // No wait for connections or subscriptions: the publish itself must wait.
        cluster
            .node(1)
            .client()
            .publish(topics::HMMM, Kind::Hmmm, b"early bird".to_vec())
            .await
            .context("publish on a forming mesh must not fail")?;
        let m = tokio::time::timeout(Duration::from_secs(10), inbox.recv())
            .await
            .context("node 0 did not receive the early message")?
            .context("closed")?;
        ensure!(m.payload == b"early bird", "unexpected payload");
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// When a node loses its only peer it goes back to dialling its bootstrap peer (never gives up),
/// and rejoins when that peer returns at the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_rejoins_after_losing_its_only_peer() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(2).await?;
        cluster.wait_connected(1, Duration::from_secs(20)).await?;
        let before = cluster.node(1).join_status().rebootstraps;
        cluster.kill(0).await;
        wait_for("node 1 notices and re-bootstraps", Duration::from_secs(20), || async {
            let s = cluster.node(1).join_status();
            s.rebootstraps > before && s.state != bzzz_bootstrap::JoinState::Joined
        })
        .await?;
        cluster.restart(0).await?;
        wait_for("node 1 joined again", Duration::from_secs(30), || async {
            let n = cluster.node(1);
            n.join_status().state == bzzz_bootstrap::JoinState::Joined
                && n.client().snapshot().await.map(|s| s.peers.len() == 1).unwrap_or(false)
        })
        .await?;
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// A node whose API port is taken fails to start with an error naming the listener, and stops
/// what it had started: its P2P port is free again for a second attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_names_the_problem_and_cleans_up() -> Result<()> {
    bounded(async {
        init_logging();
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let p2p_port = free_port()?;
        let dir = tempfile::tempdir()?;
        let mut c = test_config(dir.path());
        c.p2p.listen = vec![format!("/ip4/127.0.0.1/tcp/{p2p_port}")];
        c.api.listen = taken.local_addr()?.to_string();
        let err = bzzz_node::Node::start(c.clone())
            .await
            .err()
            .context("start must fail")?;
        ensure!(
            err.to_string().contains("api listener"),
            "error should name the api listener: {err}"
        );
        drop(taken);
        c.api.listen = "127.0.0.1:0".into();
        wait_for(
            "the failed node released its p2p port and db",
            Duration::from_secs(10),
            || {
                let c = c.clone();
                async move {
                    match bzzz_node::Node::start(c).await {
                        Ok(n) => {
                            n.shutdown().await;
                            true
                        }
                        Err(_) => false,
                    }
                }
            },
        )
        .await?;
        Ok(())
    })
    .await
}

/// With `p2p.swarm_key_file` (a libp2p private network), nodes holding the same key form a mesh,
/// while a node with another key and a node with no key, bootstrapping through the same peer,
/// never get a connection: they keep retrying and the keyed nodes never list them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_network_admits_only_nodes_with_the_swarm_key() -> Result<()> {
    bounded(async {
        let keys = tempfile::tempdir()?;
        let write = |name: &str, hex: String| -> Result<std::path::PathBuf> {
            let path = keys.path().join(name);
            std::fs::write(&path, format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n"))?;
            Ok(path)
        };
        let key_a = write("a.key", "ab".repeat(32))?;
        let key_b = write("b.key", "cd".repeat(32))?;
        let mut cluster = TestCluster::start_with(4, |i, c| {
            c.p2p.swarm_key_file = match i {
                0 | 1 => Some(key_a.clone()),
                2 => Some(key_b.clone()),
                _ => None,
            };
        })
        .await?;
        let boot = cluster.node(0).peer_id();
        wait_for(
            "node 1 (same key) connected to node 0",
            Duration::from_secs(30),
            || async {
                matches!(cluster.node(1).client().snapshot().await,
                Ok(s) if s.peers.iter().any(|p| p.peer_id == boot.to_string()))
            },
        )
        .await?;
        for i in [2, 3] {
            let api = api_of(cluster.node(i))?;
            wait_for(
                &format!("node {i} (other or no key) failed at least 3 bootstrap rounds"),
                Duration::from_secs(30),
                || async { api.status().await.is_ok_and(|s| s.bootstrap.consecutive_failures >= 3) },
            )
            .await?;
            let s = cluster.node(i).client().snapshot().await?;
            ensure!(
                s.peers.is_empty(),
                "node {i} must have no peers without the swarm key, has {:?}",
                s.peers
            );
        }
        let s0 = cluster.node(0).client().snapshot().await?;
        for i in [2, 3] {
            let id = cluster.node(i).peer_id().to_string();
            ensure!(
                !s0.peers.iter().any(|p| p.peer_id == id),
                "node 0 must not be connected to node {i}, which lacks its swarm key"
            );
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}
