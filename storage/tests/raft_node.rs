//! The sled Raft storage under a real openraft engine: a single-voter cluster that applies
//! commands, builds snapshots, purges its log, restarts from disk and carries on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bzzz_storage::Store;
use bzzz_storage::raft::{
    Command, NodeInfo, Raft, Request, Response, SCHEMA_VERSION, SledLogStore, SledStateMachine, TypeConfig,
};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{Config, SnapshotPolicy};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long any wait on the Raft node may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// The node id of the single voter.
const ID: u64 = 1;

/// A network for a one-node cluster: every peer is unreachable (none is ever contacted).
struct NoNetwork;

/// The error every RPC of [`NoNetwork`] returns.
fn unreachable<E: std::error::Error>() -> RPCError<u64, NodeInfo, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("this test has no network")))
}

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoNetwork;

    async fn new_client(&mut self, _target: u64, _node: &NodeInfo) -> Self::Network {
        NoNetwork
    }
}

impl RaftNetwork<TypeConfig> for NoNetwork {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>> {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(unreachable())
    }
}

/// Starts a Raft node on the store in `dir`: snapshot every 5 entries, keep no log behind it.
async fn start(dir: &Path) -> Result<(Raft, SledStateMachine), Box<dyn std::error::Error>> {
    let store = Store::open(dir)?;
    let config = Config {
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Config::default()
    }
    .validate()?;
    let state_machine = SledStateMachine::new(&store)?;
    let raft = Raft::new(
        ID,
        Arc::new(config),
        NoNetwork,
        SledLogStore::new(&store)?,
        state_machine.clone(),
    )
    .await?;
    Ok((raft, state_machine))
}

/// The leader's current term (read before any await: the metrics guard must not be held).
fn current_term(raft: &bzzz_storage::raft::Raft) -> u64 {
    raft.metrics().borrow().current_term
}

/// A `SetKv` of key `k{i}` to `[i]` in namespace "test", proposed in `term` (the leader's: the
/// state machine fences requests of another term).
fn set(i: u8, term: u64) -> Request {
    let command = Command::SetKv {
        namespace: "test".to_owned(),
        key: format!("k{i}"),
        value: vec![i],
    };
    Request::new(command, term)
}

/// A single voter applies writes, snapshots and purges its log, answers a newer-schema request
/// Rejected without stopping, and after a restart from disk is still initialised, leads again
/// with all its state, and accepts more writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_applies_snapshots_and_restarts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (raft, sm) = start(dir.path()).await?;
    let info = NodeInfo {
        peer_id: "peer-1".to_owned(),
        addrs: vec![],
    };
    raft.initialize(BTreeMap::from([(ID, info)])).await?;
    raft.wait(Some(WAIT))
        .current_leader(ID, "the single voter leads")
        .await?;

    for i in 0..12 {
        let reply = raft.client_write(set(i, current_term(&raft))).await?;
        assert_eq!(
            reply.data,
            Response::Ok,
            "expected write {i} answered Ok, got {:?}",
            reply.data
        );
    }
    let mut newer = set(99, current_term(&raft));
    newer.schema = SCHEMA_VERSION + 1;
    let reply = raft.client_write(newer).await?;
    assert!(
        matches!(reply.data, Response::Rejected { .. }),
        "expected a newer-schema request answered Rejected, got {:?}",
        reply.data
    );
    let rejected_at = Some(reply.log_id);
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.is_some() && m.purged.is_some() && m.last_applied >= rejected_at,
            "a snapshot is built, the log purged and every write applied",
        )
        .await?;
    let applied = sm.last_applied()?;
    assert!(
        applied >= rejected_at,
        "expected the state machine to have applied up to {rejected_at:?}, got {applied:?}"
    );
    raft.shutdown().await?;
    drop((raft, sm));

    let (raft, sm) = start(dir.path()).await?;
    assert!(
        raft.is_initialized().await?,
        "expected the restarted node to find its cluster on disk"
    );
    raft.wait(Some(WAIT))
        .current_leader(ID, "the restarted voter leads")
        .await?;
    let reply = raft.client_write(set(12, current_term(&raft))).await?;
    assert_eq!(reply.data, Response::Ok, "expected a write after restart answered Ok");
    for i in 0..=12u8 {
        let value = sm.get_kv("test", &format!("k{i}"))?;
        assert_eq!(
            value,
            Some(vec![i]),
            "expected k{i} = [{i}] after restart, got {value:?}"
        );
    }
    assert_eq!(sm.get_kv("test", "k99")?, None, "expected the rejected write absent");
    let after = sm.last_applied()?;
    assert!(
        after > applied,
        "expected last applied to move past {applied:?}, got {after:?}"
    );
    raft.shutdown().await?;
    Ok(())
}
