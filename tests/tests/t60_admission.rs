//! Admission (`/bzzz/admit/1`): only peers holding a certificate of this cluster get a
//! connection; a peer whose certificate expires or is revoked is disconnected at once. The
//! strangers here are real nodes built from the same code, with the mesh key but without a
//! certificate of the cluster. Every test is bounded by a timeout.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bzzz_node::admission::files::NodeGrant;
use bzzz_node::{Config, Node};
use bzzz_tests::{ClusterCredentials, TestCluster, test_config, wait_for};
use libp2p::{Multiaddr, PeerId};

const WAIT: Duration = Duration::from_secs(30);

fn admission(n: &Node, outcome: &str, reason: &str) -> u64 {
    n.metrics()
        .sample("bzzz_admission_total", &[("outcome", outcome), ("reason", reason)])
        .unwrap_or_default() as u64
}

async fn peers(n: &Node) -> Vec<PeerId> {
    n.client()
        .snapshot()
        .await
        .map(|s| s.peers.iter().filter_map(|p| p.peer_id.parse().ok()).collect())
        .unwrap_or_default()
}

/// A node outside the cluster's start sequence, bootstrapping through `boot`, with the cluster's
/// mesh key; `setup` decides its credentials.
async fn outsider(
    cluster: &TestCluster,
    dir: &tempfile::TempDir,
    name: &str,
    setup: impl FnOnce(&mut Config) -> Result<()>,
) -> Result<Node> {
    let mut c = test_config(&dir.path().join(name));
    c.agent.id = name.into();
    c.election.eligible = false;
    c.p2p.swarm_key_file = Some(cluster.credentials().mesh_key_file());
    let boot: Vec<Multiaddr> = cluster.node(0).p2p_addrs();
    c.p2p.bootstrap_peers = boot.iter().take(1).map(Multiaddr::to_string).collect();
    setup(&mut c)?;
    Node::start(c).await.with_context(|| format!("starting {name}"))
}

/// A node with the mesh key but no certificate, and a node with a certificate of another
/// cluster, are refused at connection by reason (no_certificate, wrong_cluster) and never become
/// anyone's peer; the certified members are admitted and connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_without_this_clusters_certificate_are_refused_at_connection() -> Result<()> {
    TestCluster::scenario(
        2,
        |i, c| c.election.eligible = i == 1,
        async |cluster| {
            cluster.wait_connected(1, WAIT).await?;
            let dir = tempfile::tempdir()?;
            let no_cert = outsider(cluster, &dir, "no-cert", |c| {
                c.admission.ca_cert_file = None;
                Ok(())
            })
            .await?;
            let other = ClusterCredentials::new()?;
            let foreign = outsider(cluster, &dir, "foreign", |c| {
                c.admission.ca_cert_file = Some(other.ca_cert_file());
                other.enroll(c).map(|_| ())
            })
            .await?;
            let boot = cluster.node(0);
            wait_for("node 0 refused both strangers, by reason", WAIT, || async {
                admission(boot, "refused", "no_certificate") >= 1 && admission(boot, "refused", "wrong_cluster") >= 1
            })
            .await?;
            wait_for("each stranger saw its refusal", WAIT, || async {
                admission(&no_cert, "refused_by_peer", "no_certificate") >= 1
                    && admission(&foreign, "refused", "wrong_cluster") >= 1
            })
            .await?;
            // Give the join loops a few more rounds: still nobody connects.
            tokio::time::sleep(Duration::from_secs(2)).await;
            for (i, n) in cluster.running() {
                let p = peers(n).await;
                ensure!(
                    !p.contains(&no_cert.peer_id()) && !p.contains(&foreign.peer_id()),
                    "node {i} is connected to a stranger: {p:?}"
                );
            }
            for s in [&no_cert, &foreign] {
                ensure!(peers(s).await.is_empty(), "a stranger has peers: {:?}", peers(s).await);
            }
            ensure!(
                admission(boot, "admitted", "none") >= 1,
                "the member's connection was not counted as admitted"
            );
            ensure!(
                peers(boot).await.contains(&cluster.node(1).peer_id()),
                "the members are not connected"
            );
            let member = boot.admission().peer(&cluster.node(1).peer_id());
            ensure!(
                member
                    .as_ref()
                    .is_some_and(|a| a.voter() && a.may_hold("agent") && !a.may_hold("operator")),
                "node 0 must know node 1's certificate (voter, role agent only): {member:?}"
            );
            no_cert.shutdown().await;
            foreign.shutdown().await;
            Ok(())
        },
    )
    .await
}

/// A member whose certificate expires is disconnected by every peer within seconds (counted as
/// disconnected/expired) and refused when it redials; a member whose serial is put on the
/// revocation list is disconnected at once (disconnected/revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_revoked_certificate_disconnects_at_once() -> Result<()> {
    TestCluster::scenario(
        2,
        |_, _| {},
        async |cluster| {
            cluster.wait_connected(1, WAIT).await?;
            let dir = tempfile::tempdir()?;
            let creds = cluster.credentials();
            let short = outsider(cluster, &dir, "short-lived", |c| {
                creds.apply(c);
                let grant = NodeGrant {
                    name: "short-lived".into(),
                    roles: vec!["agent".into()],
                    voter: false,
                    ttl: Duration::from_secs(5),
                };
                creds.enroll_with(c, &grant).map(|_| ())
            })
            .await?;
            let revoked = outsider(cluster, &dir, "to-be-revoked", |c| {
                creds.apply(c);
                creds.enroll(c).map(|_| ())
            })
            .await?;
            let boot = cluster.node(0);
            wait_for("both newcomers admitted by node 0", WAIT, || async {
                let p = peers(boot).await;
                p.contains(&short.peer_id()) && p.contains(&revoked.peer_id())
            })
            .await?;
            ensure!(
                boot.admission().peer(&short.peer_id()).is_some_and(|a| !a.voter()),
                "the newcomer's certificate must say non-voter"
            );

            wait_for(
                "the expired member disconnected from node 0",
                Duration::from_secs(15),
                || async {
                    !peers(boot).await.contains(&short.peer_id()) && admission(boot, "disconnected", "expired") >= 1
                },
            )
            .await?;
            wait_for("its redial refused as expired", WAIT, || async {
                admission(boot, "refused", "expired") >= 1
            })
            .await?;

            let serial = revoked
                .admission()
                .local_certificate()
                .context("the newcomer has a certificate")?
                .leaf
                .serial;
            for (_, n) in cluster.running() {
                n.admission().revoke([serial]);
            }
            wait_for(
                "the revoked member disconnected everywhere",
                Duration::from_secs(10),
                || async {
                    for (_, n) in cluster.running() {
                        if peers(n).await.contains(&revoked.peer_id()) {
                            return false;
                        }
                    }
                    admission(boot, "disconnected", "revoked") >= 1
                },
            )
            .await?;
            ensure!(
                peers(boot).await.contains(&cluster.node(1).peer_id()),
                "the members must stay connected"
            );
            short.shutdown().await;
            revoked.shutdown().await;
            Ok(())
        },
    )
    .await
}
