//! Election properties on the in-memory Raft router (`bzzz_tests::raft_router`): real openraft
//! cores, real sled log stores and bzzz's own pre-vote timer, no libp2p, no ports, no full nodes.
//! Faults are injected by the router (a node unreachable both ways, a delay on every RPC), as in
//! openraft's own fixtures. These tests do not take the global multi-node lock: three small
//! voters are cheap.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bzzz_node::config::ElectionConfig;
use bzzz_tests::raft_router::{MemVoter, RaftRouter, initialize};
use bzzz_tests::wait_for;

/// Timings with room for a shared 2-core machine (as the multi-node tests use).
fn timings() -> ElectionConfig {
    ElectionConfig {
        raft_heartbeat_ms: 100,
        election_timeout_min_ms: 500,
        election_timeout_max_ms: 1_000,
        ..ElectionConfig::default()
    }
}

/// What one voter believes: `(current term, current leader)`.
fn view(v: &MemVoter) -> (u64, Option<u64>) {
    let m = v.raft.metrics().borrow().clone();
    (m.current_term, m.current_leader)
}

/// The leader all `voters` agree on, if they agree.
fn agreed_leader(voters: &[&MemVoter]) -> Option<u64> {
    let leaders: BTreeSet<Option<u64>> = voters.iter().map(|v| view(v).1).collect();
    match leaders.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(l)] => Some(*l),
        _ => None,
    }
}

async fn cluster(router: &RaftRouter, n: usize) -> Result<Vec<MemVoter>> {
    let mut voters = Vec::new();
    for _ in 0..n {
        voters.push(router.add_voter(&timings()).await?);
    }
    initialize(&voters).await?;
    let all: Vec<&MemVoter> = voters.iter().collect();
    wait_for("three voters agree on one leader", Duration::from_secs(20), || async {
        agreed_leader(&all).is_some()
    })
    .await?;
    Ok(voters)
}

async fn shutdown(voters: &[MemVoter]) {
    for v in voters {
        v.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_agree_on_one_leader_in_one_term() -> Result<()> {
    let router = RaftRouter::new();
    let voters = cluster(&router, 3).await?;
    let all: Vec<&MemVoter> = voters.iter().collect();
    let leader = agreed_leader(&all).context("agreed leader")?;
    ensure!(
        voters.iter().any(|v| v.node_id == leader),
        "the leader {leader} is one of the voters"
    );
    // The initialiser's own first election (openraft starts it at `initialize`) is the only one:
    // the pre-vote timers of the others found a live leader and started none.
    for v in &voters {
        let (term, _) = view(v);
        ensure!(
            term == 1,
            "voter {} is at term {term}, expected 1 (one election)",
            v.node_id
        );
    }
    shutdown(&voters).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_leader_is_replaced_in_a_higher_term() -> Result<()> {
    let router = RaftRouter::new();
    let voters = cluster(&router, 3).await?;
    let all: Vec<&MemVoter> = voters.iter().collect();
    let old = agreed_leader(&all).context("agreed leader")?;
    let old_term = view(&voters[0]).0;
    let leader = voters.iter().find(|v| v.node_id == old).context("leader voter")?;
    router.set_unreachable(leader.peer, true);

    let rest: Vec<&MemVoter> = voters.iter().filter(|v| v.node_id != old).collect();
    wait_for(
        "the two reachable voters elect a new leader",
        Duration::from_secs(20),
        || async { agreed_leader(&rest).is_some_and(|l| l != old) },
    )
    .await?;
    // Openraft's own election timer is off (`enable_elect: false`): a pre-vote timer won.
    let won: u64 = rest.iter().map(|v| v.rounds().0).sum();
    ensure!(won >= 1, "a pre-vote round was won before the new election (won {won})");
    let (new_term, new_leader) = view(rest[0]);
    ensure!(
        new_term > old_term,
        "the new leader's term {new_term} is above the old one {old_term}"
    );
    ensure!(new_leader != Some(old), "the old leader was replaced");

    // Back on the router, the old leader learns the higher term and follows.
    router.set_unreachable(leader.peer, false);
    wait_for("all three follow the new leader", Duration::from_secs(20), || async {
        agreed_leader(&all) == new_leader
    })
    .await?;
    shutdown(&voters).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_neither_raises_its_term_nor_deposes_the_leader() -> Result<()> {
    let router = RaftRouter::new();
    let voters = cluster(&router, 3).await?;
    let all: Vec<&MemVoter> = voters.iter().collect();
    let leader = agreed_leader(&all).context("agreed leader")?;
    let (term, _) = view(&voters[0]);
    let follower = voters.iter().find(|v| v.node_id != leader).context("a follower")?;
    let lost_before = follower.rounds().1;

    router.set_unreachable(follower.peer, true);
    // Several election timeouts: without pre-vote it would have started elections (raising its
    // term each time); with it, it only loses pre-vote rounds.
    wait_for(
        "the cut-off follower loses two pre-vote rounds",
        Duration::from_secs(20),
        || async { follower.rounds().1 >= lost_before + 2 },
    )
    .await?;
    let (cut_term, _) = view(follower);
    ensure!(
        cut_term == term,
        "a cut-off follower keeps its term ({cut_term}, was {term})"
    );

    router.set_unreachable(follower.peer, false);
    wait_for(
        "the healed follower follows the same leader again",
        Duration::from_secs(20),
        || async { agreed_leader(&all) == Some(leader) },
    )
    .await?;
    for v in &voters {
        let (t, l) = view(v);
        ensure!(
            t == term && l == Some(leader),
            "voter {} at term {t} with leader {l:?}; expected {term}/{leader}",
            v.node_id
        );
    }
    shutdown(&voters).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_delay_below_the_heartbeat_keeps_the_leader() -> Result<()> {
    let router = RaftRouter::new();
    let voters = cluster(&router, 3).await?;
    let all: Vec<&MemVoter> = voters.iter().collect();
    let leader = agreed_leader(&all).context("agreed leader")?;
    let (term, _) = view(&voters[0]);
    router.set_delay(Duration::from_millis(30));
    // Ten of the longest election timeouts under delay: the leader stays, nobody's term moves.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        for v in &voters {
            let (t, l) = view(v);
            ensure!(
                t == term && l.is_none_or(|l| l == leader),
                "voter {} moved to term {t} / leader {l:?} under a 30 ms delay (was {term}/{leader})",
                v.node_id
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(agreed_leader(&all) == Some(leader), "still one agreed leader");
    shutdown(&voters).await;
    Ok(())
}

/// Raft RPCs are checked before openraft sees them: a stranger's vote, pre-vote and append are
/// refused as not a member, a voter claiming the leader's node id is refused as a mismatch, and a
/// snapshot chunk far past the size bound is refused even from the leader. The leader and every
/// term stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_raft_rpcs_are_refused_before_raft() -> Result<()> {
    use bzzz_node::consensus::transport::{MAX_SNAPSHOT_BYTES, RaftTransport};
    use bzzz_storage::raft::node_id_from_peer_bytes;
    use bzzz_tests::hostile;

    let router = RaftRouter::new();
    let voters = cluster(&router, 3).await?;
    let all: Vec<&MemVoter> = voters.iter().collect();
    let leader_id = agreed_leader(&all).context("a leader")?;
    let leader = voters.iter().find(|v| v.node_id == leader_id).context("leader")?;
    let followers: Vec<&MemVoter> = voters.iter().filter(|v| v.node_id != leader_id).collect();
    let (target, other) = (followers[0], followers[1]);
    let term = view(target).0;

    let stranger = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id();
    let stranger_id = node_id_from_peer_bytes(&stranger.to_bytes());
    let from_stranger = router.transport_from(stranger);
    let from_other = router.transport_from(other.peer);
    let from_leader = router.transport_from(leader.peer);
    let cases = [
        (&from_stranger, hostile::vote(term + 10, stranger_id), "not_member"),
        (&from_stranger, hostile::pre_vote(stranger_id), "not_member"),
        (
            &from_stranger,
            hostile::append_entries(term + 10, stranger_id),
            "not_member",
        ),
        (
            &from_other,
            hostile::append_entries(term + 10, leader_id),
            "node_id_mismatch",
        ),
        (&from_other, hostile::vote(term + 10, leader_id), "node_id_mismatch"),
        (
            &from_leader,
            hostile::install_snapshot(term, leader_id, MAX_SNAPSHOT_BYTES),
            "too_large",
        ),
        (
            &from_leader,
            hostile::install_snapshot(term, leader_id, u64::MAX - 4),
            "too_large",
        ),
    ];
    for (i, (transport, request, expected)) in cases.into_iter().enumerate() {
        let response = transport.send(target.peer, Vec::new(), request).await?;
        let reason = hostile::forbidden_reason(&response);
        ensure!(
            reason.as_deref() == Some(expected),
            "case {i}: expected a {expected} refusal, got {response:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(view(target).0 == term, "the target's term moved: {:?}", view(target));
    ensure!(agreed_leader(&all) == Some(leader_id), "the leader changed");
    shutdown(&voters).await;
    Ok(())
}
