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

fn refused(n: &Node, what: &str, reason: &str) -> u64 {
    n.metrics()
        .sample("bzzz_consensus_refused_total", &[("what", what), ("reason", reason)])
        .unwrap_or_default() as u64
}

/// A compromised member, admitted with a certificate of the cluster that does not give the voter
/// right, tries every consensus attack of the audit with hand-made messages: a join request, a
/// vote, a pre-vote, an append and a huge-offset snapshot chunk to every voter, a higher-term
/// admin heartbeat in its own name and one in the admin's name, and a formation announcement.
/// Each is refused and counted by reason on its receivers; the mesh keeps its admin, its term
/// and its voters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_the_voter_right_cannot_touch_consensus() -> Result<()> {
    use bzzz_protocol::topics;
    use bzzz_protocol::wire::{
        AdminHeartbeat, AdminMessage, EligibleAnnounce, JoinCluster, Kind, RpcRequest, admin_message, rpc_request,
    };
    use bzzz_storage::raft::node_id_from_peer_bytes;
    use bzzz_tests::hostile;
    use prost::Message;

    TestCluster::scenario(
        4,
        |i, c| {
            c.election.eligible = i < 3;
            c.election.bootstrap_expect = 3;
        },
        async |cluster| {
            cluster.wait_connected(3, WAIT).await?;
            wait_for("every node knows the admin", WAIT, || async {
                let admins: std::collections::BTreeSet<_> =
                    cluster.running().map(|(_, n)| n.consensus().status().admin).collect();
                admins.len() == 1 && admins.iter().all(Option::is_some)
            })
            .await?;
            let before = cluster.node(0).consensus().status();
            let admin: PeerId = before.admin.clone().context("admin")?.parse()?;
            let admin_id = before.admin_node_id.context("admin id")?;
            let attacker = cluster.node(3);
            ensure!(
                attacker.admission().local_certificate().is_some_and(|c| !c.leaf.voter),
                "the attacker must hold a non-voter certificate"
            );
            let me = attacker.peer_id();
            let my_id = node_id_from_peer_bytes(&me.to_bytes());
            let voters: Vec<&Node> = (0..3).map(|i| cluster.node(i)).collect();
            let admin_node = *voters.iter().find(|n| n.peer_id() == admin).context("admin node")?;

            // Join.
            let join = RpcRequest {
                body: Some(rpc_request::Body::JoinCluster(JoinCluster {
                    node_id: my_id,
                    peer_id: me.to_string(),
                    addrs: attacker.p2p_addrs().iter().map(|a| a.to_string()).collect(),
                })),
            };
            wait_for("the admin refused the join request as not_voter", WAIT, || async {
                let _ = attacker.client().send_rpc(admin, join.clone()).await;
                refused(admin_node, "join", "not_voter") >= 1
            })
            .await?;

            // Raft RPCs to every voter.
            let term = before.term;
            for v in &voters {
                for request in [
                    hostile::vote(term + 100, my_id),
                    hostile::pre_vote(my_id),
                    hostile::append_entries(term + 100, my_id),
                    hostile::install_snapshot(term + 100, my_id, 1 << 40),
                ] {
                    let addrs = v.p2p_addrs();
                    let response = attacker.client().send_raft(v.peer_id(), addrs, request).await?;
                    ensure!(
                        hostile::forbidden_reason(&response).as_deref() == Some("not_voter"),
                        "voter {} answered {response:?}",
                        v.peer_id()
                    );
                }
                ensure!(
                    refused(v, "raft_rpc", "not_voter") >= 4,
                    "voter {} did not count",
                    v.peer_id()
                );
            }

            // Heartbeats and an announcement on the admin topic.
            let admin_msg = |body| AdminMessage { body: Some(body) }.encode_to_vec();
            let own_chain = attacker.admission().chain();
            let mine = admin_msg(admin_message::Body::Heartbeat(AdminHeartbeat {
                term: term + 100,
                node_id: my_id,
                peer_id: me.to_string(),
                certificate: own_chain.clone(),
                ..AdminHeartbeat::default()
            }));
            let impersonated = admin_msg(admin_message::Body::Heartbeat(AdminHeartbeat {
                term: term + 100,
                node_id: admin_id,
                peer_id: admin.to_string(),
                certificate: own_chain.clone(),
                ..AdminHeartbeat::default()
            }));
            let announce = admin_msg(admin_message::Body::Announce(EligibleAnnounce {
                node_id: my_id,
                peer_id: me.to_string(),
                certificate: own_chain,
                ..EligibleAnnounce::default()
            }));
            wait_for(
                "every other node refused the forged admin messages, by reason",
                WAIT,
                || async {
                    for payload in [&mine, &impersonated, &announce] {
                        let _ = attacker
                            .client()
                            .publish(topics::ADMIN, Kind::Admin, payload.clone())
                            .await;
                    }
                    voters.iter().all(|v| {
                        refused(v, "heartbeat", "not_voter") >= 1
                            && refused(v, "heartbeat", "node_id_mismatch") >= 1
                            && refused(v, "announce", "not_voter") >= 1
                    })
                },
            )
            .await?;

            for (i, n) in cluster.running() {
                let s = n.consensus().status();
                ensure!(
                    s.admin == before.admin && s.term == before.term,
                    "node {i} moved: admin {:?} term {} (was {:?}, {})",
                    s.admin,
                    s.term,
                    before.admin,
                    before.term
                );
                ensure!(!s.voters.contains(&my_id), "node {i} lists the attacker as a voter");
            }
            Ok(())
        },
    )
    .await
}

/// An operator renews a member's certificate by signing a new one into its certificate file
/// (`bzzz ca sign`): the member picks it up when its renewal is due, without a restart, and sends
/// it to its peers, which keep its connection past the old certificate's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_renewed_in_its_file_keeps_the_connection() -> Result<()> {
    TestCluster::scenario(
        1,
        |_, _| {},
        async |cluster| {
            let dir = tempfile::tempdir()?;
            let creds = cluster.credentials();
            let grant = |secs| NodeGrant {
                name: "renewed".into(),
                roles: vec!["agent".into()],
                voter: false,
                ttl: Duration::from_secs(secs),
            };
            let mut member_config = None;
            let member = outsider(cluster, &dir, "renewed", |c| {
                creds.apply(c);
                member_config = Some(c.clone());
                creds.enroll_with(c, &grant(6)).map(|_| ())
            })
            .await?;
            let outcome = async {
                let first = member.admission().local_certificate().context("certified")?;
                let boot = cluster.node(0);
                wait_for("node 0 admits the member", WAIT, || async {
                    peers(boot).await.contains(&member.peer_id())
                })
                .await?;
                // The operator signs a longer certificate into the member's file.
                creds.enroll_with(member_config.as_ref().context("config")?, &grant(3600))?;
                wait_for(
                    "the member picks the new certificate up",
                    Duration::from_secs(10),
                    || async {
                        member
                            .admission()
                            .local_certificate()
                            .is_some_and(|c| c.leaf.not_after_ms > first.leaf.not_after_ms)
                    },
                )
                .await?;
                let past = first.leaf.not_after_ms + 1_500;
                tokio::time::sleep(Duration::from_millis(
                    past.saturating_sub(bzzz_storage::util::now_unix_ms()),
                ))
                .await;
                ensure!(
                    peers(boot).await.contains(&member.peer_id()),
                    "node 0 must keep the member connected past its old certificate's expiry"
                );
                ensure!(
                    admission(boot, "disconnected", "expired") == 0,
                    "nobody was disconnected for an expired certificate"
                );
                ensure!(
                    boot.admission()
                        .peer(&member.peer_id())
                        .and_then(|a| a.cert)
                        .is_some_and(|c| c.leaf.not_after_ms > first.leaf.not_after_ms),
                    "node 0 holds the renewed certificate"
                );
                Ok(())
            }
            .await;
            member.shutdown().await;
            outcome
        },
    )
    .await
}

/// With admission on, roles follow the certificate: a node whose certificate lists only `agent`
/// asking for the self-service role `developer` is left pending (self-service no longer hands
/// it out), and a node whose certificate lists `operator` (not self-service) gets it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_follow_the_certificate() -> Result<()> {
    let with_developer = |c: &mut Config| {
        c.roles.policy.insert(
            "developer".into(),
            bzzz_node::config::RoleConfig {
                authority: 20,
                self_service: true,
                can_read: Vec::new(),
            },
        );
    };
    TestCluster::scenario(
        1,
        |_, c| {
            c.election.eligible = true;
            c.election.bootstrap_expect = 1;
            with_developer(c);
        },
        async |cluster| {
            cluster.wait_context_ready(WAIT).await?;
            let dir = tempfile::tempdir()?;
            let creds = cluster.credentials();
            let grant = |roles: &[&str]| NodeGrant {
                name: "member".into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                voter: false,
                ttl: Duration::from_secs(3600),
            };
            let wants_developer = outsider(cluster, &dir, "wants-developer", |c| {
                creds.apply(c);
                with_developer(c);
                c.agent.role = "developer".into();
                creds.enroll_with(c, &grant(&["agent"])).map(|_| ())
            })
            .await?;
            let certified_operator = outsider(cluster, &dir, "certified-operator", |c| {
                creds.apply(c);
                c.agent.role = "operator".into();
                creds.enroll_with(c, &grant(&["operator"])).map(|_| ())
            })
            .await?;
            wait_for("both newcomers have a decision on their role", WAIT, || async {
                let decided =
                    |s: &bzzz_client::types::ContextStatus| !s.roles.is_empty() || !s.pending_roles.is_empty();
                decided(&wants_developer.context().status()) && decided(&certified_operator.context().status())
            })
            .await?;
            let a = wants_developer.context().status();
            // It also asks for the roles its certificate lists, which are granted at once.
            ensure!(
                a.pending_roles == ["developer"] && a.roles == ["agent"],
                "a role the certificate does not list must wait for an operator: {a:?}"
            );
            let b = certified_operator.context().status();
            ensure!(
                b.roles == ["operator"] && b.pending_roles.is_empty(),
                "a role the certificate lists must be granted: {b:?}"
            );
            wants_developer.shutdown().await;
            certified_operator.shutdown().await;
            Ok(())
        },
    )
    .await
}

/// `bzzz ca revoke` → `POST /api/admission/revocations` (operator): the node verifies the list
/// against its CA, stores it and publishes it; every node disconnects the revoked member within
/// seconds and keeps refusing it after a restart. Without the operator token, or signed by
/// another CA, the list is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_signed_revocation_disconnects_everywhere_and_survives_restart() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, "revocation-test-token-5b1f\n")?;
    let tf = token_file.clone();
    TestCluster::scenario(
        2,
        move |i, c| {
            if i == 0 {
                c.api.operator_token_file = Some(tf.clone());
            }
        },
        async |cluster| {
            cluster.wait_connected(1, WAIT).await?;
            let dir = tempfile::tempdir()?;
            let creds = cluster.credentials();
            let member = outsider(cluster, &dir, "member", |c| {
                creds.apply(c);
                creds.enroll(c).map(|_| ())
            })
            .await?;
            wait_for("the member is connected to both nodes", WAIT, || async {
                peers(cluster.node(0)).await.contains(&member.peer_id())
                    && peers(cluster.node(1)).await.contains(&member.peer_id())
            })
            .await?;
            let serial = member
                .admission()
                .local_certificate()
                .context("the member has a certificate")?
                .leaf
                .serial;
            let text = bzzz_protocol::cert::revocation_to_pem(&creds.ca().revoke(&[serial])?);

            let api = bzzz_tests::api_of(cluster.node(0))?;
            ensure!(
                api.submit_revocation(&text).await.is_err(),
                "a revocation without the operator token must be refused"
            );
            let other = ClusterCredentials::new()?;
            let forged = bzzz_protocol::cert::revocation_to_pem(&other.ca().revoke(&[serial])?);
            let api = api.with_token("revocation-test-token-5b1f");
            ensure!(
                api.submit_revocation(&forged).await.is_err(),
                "a revocation signed by another CA must be refused"
            );
            ensure!(
                api.submit_revocation("-----BEGIN BZZZ REVOCATION-----\nnot base64!\n-----END BZZZ REVOCATION-----\n")
                    .await
                    .is_err(),
                "a malformed revocation must be refused"
            );
            let applied = api.submit_revocation(&text).await?;
            ensure!(
                applied.new && applied.serials == [format!("{serial:016x}")] && applied.published,
                "{applied:?}"
            );

            wait_for(
                "the revoked member is disconnected everywhere",
                Duration::from_secs(15),
                || async {
                    !peers(cluster.node(0)).await.contains(&member.peer_id())
                        && !peers(cluster.node(1)).await.contains(&member.peer_id())
                },
            )
            .await?;
            let counted = |n: &Node, outcome: &str| {
                n.metrics()
                    .sample("bzzz_revocations_total", &[("outcome", outcome)])
                    .unwrap_or_default() as u64
            };
            ensure!(
                counted(cluster.node(0), "invalid") >= 1,
                "the forged list was not counted"
            );
            ensure!(
                counted(cluster.node(1), "applied") >= 1,
                "node 1 must have applied the gossiped list"
            );

            cluster.restart(1).await?;
            ensure!(
                cluster.node(1).admission().is_revoked(serial),
                "a restarted node must still refuse the revoked serial"
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
            ensure!(
                !peers(cluster.node(1)).await.contains(&member.peer_id()),
                "the revoked member reconnected after a restart"
            );
            let status = api.status().await?;
            ensure!(status.security.revoked_serials >= 1, "{:?}", status.security);
            member.shutdown().await;
            Ok(())
        },
    )
    .await
}

/// The median delay of `n` coordination messages from `sender` to `inbox` (same process, same
/// clock: the payload carries the send time).
async fn gossip_latency(
    sender: &Node,
    inbox: &mut tokio::sync::mpsc::Receiver<bzzz_node::network::GossipMessage>,
    n: usize,
) -> Result<Duration> {
    use bzzz_protocol::topics;
    use bzzz_protocol::wire::Kind;
    let started = std::time::Instant::now();
    let mut delays = Vec::with_capacity(n);
    for i in 0..n {
        let sent = started.elapsed().as_micros() as u64;
        let payload = format!("latency {i} {sent}").into_bytes();
        sender
            .client()
            .publish(topics::COORDINATION, Kind::Coordination, payload.clone())
            .await?;
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match inbox.recv().await {
                    Some(m) if m.payload == payload => return Some(started.elapsed().as_micros() as u64),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .context("a latency probe was not delivered within 10 s")?
        .context("the subscription closed")?;
        delays.push(got.saturating_sub(sent));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delays.sort_unstable();
    Ok(Duration::from_micros(delays[delays.len() / 2]))
}

/// A member floods the coordination topic with 1000 invalid messages a second for five
/// seconds. Its peers reject the first few, score it below the graylist threshold and then
/// ignore the rest before validating them; the members' gossip latency during the flood stays
/// within twice the quiet figure (plus 50 ms for a shared 2-core machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_gossip_flood_is_graylisted_and_members_keep_their_latency() -> Result<()> {
    use bzzz_protocol::topics;
    TestCluster::scenario(3, |_, _| {}, async |cluster| {
        cluster.wait_connected(2, WAIT).await?;
        let (a, b, attacker) = (cluster.node(0), cluster.node(1), cluster.node(2));
        let mut inbox = b.client().subscribe(topics::COORDINATION, 256).await?;
        // Warm up until the subscription carries node 0's messages to node 1.
        let warm = std::time::Instant::now();
        'warm: loop {
            ensure!(warm.elapsed() < WAIT, "gossip from node 0 never reached node 1");
            let _ = a
                .client()
                .publish(topics::COORDINATION, bzzz_protocol::wire::Kind::Coordination, b"warm-up".to_vec())
                .await;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(Some(m)) = tokio::time::timeout_at(deadline, inbox.recv()).await {
                if m.payload == b"warm-up" {
                    break 'warm;
                }
            }
        }
        while inbox.try_recv().is_ok() {}
        let quiet = gossip_latency(a, &mut inbox, 15).await?;

        let flooder = attacker.client().clone();
        let flood = tokio::spawn(async move {
            let mut sent = 0u64;
            for round in 0..50u64 {
                for i in 0..100u64 {
                    let garbage = format!("not an envelope {round} {i} {}", rand_suffix()).into_bytes();
                    if flooder.publish_raw(topics::COORDINATION, garbage).await.is_ok() {
                        sent += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sent
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = gossip_latency(a, &mut inbox, 15).await?;
        let (score_a, score_b) = (
            gossip_score(a, &attacker.peer_id()).await,
            gossip_score(b, &attacker.peer_id()).await,
        );
        let sent = flood.await?;
        let rejected = |n: &Node| {
            n.metrics()
                .sample(
                    "bzzz_pubsub_messages_total",
                    &[("topic", topics::COORDINATION), ("outcome", "rejected")],
                )
                .unwrap_or_default() as u64
        };
        eprintln!(
            "gossip flood: {sent} invalid messages sent; quiet median {quiet:?}, during the flood {during:?}; attacker's score on node 0 {score_a:?}, node 1 {score_b:?}; rejected (validated) on node 0 {}, node 1 {}",
            rejected(a),
            rejected(b)
        );
        ensure!(sent >= 4_000, "the flood did not run: {sent} sent");
        for (i, s) in [(0, score_a), (1, score_b)] {
            ensure!(
                s.is_some_and(|s| s < -80.0),
                "node {i} must have graylisted the attacker (score below -80), got {s:?}"
            );
        }
        for (i, n) in [(0, a), (1, b)] {
            ensure!(
                rejected(n) < 500,
                "node {i} validated {} of {sent} flood messages: graylisting must stop it early",
                rejected(n)
            );
        }
        ensure!(
            during <= quiet * 2 + Duration::from_millis(50),
            "members' gossip latency during the flood ({during:?}) must stay within 2x the quiet figure ({quiet:?}) + 50 ms"
        );
        Ok(())
    })
    .await
}

/// `n`'s gossipsub score for `peer`.
async fn gossip_score(n: &Node, peer: &PeerId) -> Option<f64> {
    let id = peer.to_string();
    n.client()
        .snapshot()
        .await
        .ok()
        .and_then(|s| s.peers.into_iter().find(|p| p.peer_id == id))
        .and_then(|p| p.gossip_score)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Two clusters on one network, sharing even the mesh key but not the CA: each elects its own
/// admin, neither node of one is ever a peer of the other, nobody follows the other cluster's
/// admin, and a record put in one cannot be read from the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_on_one_network_stay_apart() -> Result<()> {
    TestCluster::scenario(
        2,
        |i, c| {
            c.election.eligible = i == 0;
            c.election.bootstrap_expect = 1;
        },
        async |cluster| {
            cluster.wait_connected(1, WAIT).await?;
            let dir = tempfile::tempdir()?;
            let other = ClusterCredentials::new()?;
            // Cluster B: its own CA, the same mesh key, bootstrapping through cluster A's node 0.
            let b_admin = outsider(cluster, &dir, "b-admin", |c| {
                c.admission.ca_cert_file = Some(other.ca_cert_file());
                c.election.eligible = true;
                c.election.bootstrap_expect = 1;
                other.enroll(c).map(|_| ())
            })
            .await?;
            let b_member = outsider(cluster, &dir, "b-member", |c| {
                c.admission.ca_cert_file = Some(other.ca_cert_file());
                let b: Vec<Multiaddr> = b_admin.p2p_addrs();
                c.p2p.bootstrap_peers = b.iter().take(1).map(Multiaddr::to_string).collect();
                // It also tries cluster A's node 0.
                c.p2p
                    .bootstrap_peers
                    .extend(cluster.node(0).p2p_addrs().iter().take(1).map(Multiaddr::to_string));
                other.enroll(c).map(|_| ())
            })
            .await?;
            wait_for(
                "both clusters have their own admin, known to their members",
                WAIT,
                || async {
                    let a = cluster.node(1).consensus().status().admin;
                    let b = b_member.consensus().status().admin;
                    a == Some(cluster.node(0).peer_id().to_string()) && b == Some(b_admin.peer_id().to_string())
                },
            )
            .await?;
            wait_for("cluster A refused cluster B's connections", WAIT, || async {
                admission(cluster.node(0), "refused", "wrong_cluster") >= 1
            })
            .await?;

            let key = b"/two-clusters/record".to_vec();
            b_member
                .client()
                .put_record(key.clone(), b"cluster B only".to_vec(), Some(libp2p::kad::Quorum::One))
                .await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            for (i, n) in cluster.running() {
                ensure!(
                    n.client().get_record(key.clone()).await.is_err(),
                    "cluster A's node {i} read cluster B's record"
                );
                let p = peers(n).await;
                ensure!(
                    !p.contains(&b_admin.peer_id()) && !p.contains(&b_member.peer_id()),
                    "cluster A's node {i} has a peer of cluster B: {p:?}"
                );
                ensure!(
                    n.consensus().status().admin == Some(cluster.node(0).peer_id().to_string()),
                    "cluster A's node {i} follows another admin"
                );
            }
            ensure!(
                b_member.consensus().status().admin == Some(b_admin.peer_id().to_string()),
                "cluster B's member follows cluster A's admin"
            );
            b_member.shutdown().await;
            b_admin.shutdown().await;
            Ok(())
        },
    )
    .await
}

/// A member that floods the admin with registrations is answered "retry later" past its burst
/// (every registration may grow the replicated state, so each peer gets a bounded rate); the
/// admin stays the admin and other members keep registering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_rate_limited_per_peer() -> Result<()> {
    use bzzz_protocol::wire::{
        ContextRequest, RegisterMember, RpcRequest, RpcResponse, context_request, context_response, rpc_request,
        rpc_response,
    };
    TestCluster::scenario(
        3,
        |i, c| {
            c.election.eligible = i == 0;
            c.election.bootstrap_expect = 1;
        },
        async |cluster| {
            cluster.wait_context_ready(WAIT).await?;
            let admin = cluster.node(0).peer_id();
            let attacker = cluster.node(1);
            let request = RpcRequest {
                body: Some(rpc_request::Body::Context(ContextRequest {
                    body: Some(context_request::Body::Register(RegisterMember::default())),
                })),
            };
            let error_of = |r: &RpcResponse| match &r.body {
                Some(rpc_response::Body::Context(c)) => match &c.body {
                    Some(context_response::Body::Error(e)) => e.message.clone(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            let mut limited = 0;
            for _ in 0..100 {
                let r = attacker.client().send_rpc(admin, request.clone()).await?;
                if error_of(&r).contains("rate limit") {
                    limited += 1;
                }
            }
            ensure!(
                (60..=95).contains(&limited),
                "of 100 registrations in a burst, about 80 must be refused by the rate limit, got {limited}"
            );
            ensure!(cluster.node(0).consensus().is_admin(), "the admin must stay the admin");
            let other = cluster.node(2);
            ensure!(other.context().ready(), "another member must keep its roles and keys");
            Ok(())
        },
    )
    .await
}

/// One role whose key the admin cannot open (here: an epoch sealed to nobody, proposed through
/// the admin's own Raft) must not stop the admin sealing the other roles' keys to new members
/// (H6: `reconcile` used to abort at the first failing role, so no member got keys any more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_be_reconciled_does_not_stop_the_others() -> Result<()> {
    TestCluster::scenario(
        1,
        |_, c| {
            c.election.eligible = true;
            c.election.bootstrap_expect = 1;
            // Sorted before `agent`: reconciled first.
            let mut broken = c.roles.policy["agent"].clone();
            broken.self_service = false;
            c.roles.policy.insert("aaa-broken".into(), broken);
        },
        async |cluster| {
            cluster.wait_context_ready(WAIT).await?;
            let admin = cluster.node(0);
            wait_for("epoch 1 of every role", WAIT, || async {
                admin.context().status().epochs.get("aaa-broken") == Some(&1)
            })
            .await?;
            let raft = admin.consensus().raft().context("the admin runs Raft")?.clone();
            let term = raft.metrics().borrow().current_term;
            let written = raft
                .client_write(bzzz_storage::raft::Request::new(
                    bzzz_storage::raft::Command::SetRoleEpoch {
                        role: "aaa-broken".into(),
                        epoch: 2,
                        public_key: [7; 32],
                        sealed: Default::default(),
                        at_ms: bzzz_storage::util::now_unix_ms(),
                    },
                    term,
                ))
                .await?;
            ensure!(written.data == bzzz_storage::raft::Response::Ok, "{:?}", written.data);
            let dir = tempfile::tempdir()?;
            let creds = cluster.credentials();
            let member = outsider(cluster, &dir, "newcomer", |c| {
                creds.apply(c);
                creds.enroll(c).map(|_| ())
            })
            .await?;
            let got_key = wait_for("the newcomer receives the agent key", WAIT, || async {
                let s = member.context().status();
                s.roles == ["agent"] && s.role_keys_held >= 1
            })
            .await
            .with_context(|| format!("{:?}", member.context().status()));
            member.shutdown().await;
            got_key
        },
    )
    .await
}
