//! Integration tests of the sled Raft log store and state machine beyond openraft's suite:
//! restart, snapshot transfer, schema handling, corrupt data on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bzzz_storage::raft::{
    Command, Entry, NodeInfo, Request, Response, SCHEMA_VERSION, SledLogStore, SledStateMachine, log_store,
    state_machine,
};
use bzzz_storage::{StorageError, Store};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder, Vote};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The log id at `index` proposed by node 1 in `term`.
fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// A normal entry carrying `command` at (`term`, `index`).
fn normal(term: u64, index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::new(command, term)),
    }
}

/// The info of a test node `n`.
fn info(n: u64) -> NodeInfo {
    NodeInfo {
        peer_id: format!("peer-{n}"),
        addrs: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + n)],
    }
}

/// A membership entry with voters `voters` at (`term`, `index`).
fn membership(term: u64, index: u64, voters: &[u64]) -> Entry {
    let nodes: BTreeMap<u64, NodeInfo> = voters.iter().map(|n| (*n, info(*n))).collect();
    let ids: BTreeSet<u64> = voters.iter().copied().collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![ids], nodes)),
    }
}

/// A `SetKv` command.
fn set(namespace: &str, key: &str, value: &[u8]) -> Command {
    Command::SetKv {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        value: value.to_vec(),
    }
}

/// Opens the store in `dir` with its log store and state machine.
fn open(dir: &Path) -> Result<(Store, SledLogStore, SledStateMachine), StorageError> {
    let store = Store::open(dir)?;
    let log = SledLogStore::new(&store)?;
    let sm = SledStateMachine::new(&store)?;
    Ok((store, log, sm))
}

/// A history touching every command: membership, node upserts and a removal, kv sets and a delete.
fn history() -> Vec<Entry> {
    vec![
        Entry {
            log_id: log_id(1, 1),
            payload: EntryPayload::Blank,
        },
        membership(1, 2, &[1, 2, 3]),
        normal(
            1,
            3,
            Command::UpsertNode {
                node_id: 1,
                info: info(1),
                eligible: true,
            },
        ),
        normal(
            1,
            4,
            Command::UpsertNode {
                node_id: 2,
                info: info(2),
                eligible: false,
            },
        ),
        normal(
            1,
            5,
            Command::UpsertNode {
                node_id: 3,
                info: info(3),
                eligible: true,
            },
        ),
        normal(1, 6, Command::RemoveNode { node_id: 3 }),
        normal(1, 7, set("roles", "admin", b"alice")),
        normal(1, 8, set("roles", "dev", b"bob")),
        normal(1, 9, set("keys", "epoch", &[0, 1, 2])),
        normal(
            1,
            10,
            Command::DeleteKv {
                namespace: "roles".to_owned(),
                key: "dev".to_owned(),
            },
        ),
        normal(1, 11, Command::Noop),
    ]
}

/// Asserts that `sm` holds the state [`history`] produces.
async fn assert_history_state(sm: &mut SledStateMachine) -> TestResult {
    let nodes = sm.nodes()?;
    let want = vec![(1, info(1), true), (2, info(2), false)];
    assert_eq!(nodes, want, "expected nodes 1 (eligible) and 2, got {nodes:?}");
    assert_eq!(
        sm.get_kv("roles", "admin")?.as_deref(),
        Some(&b"alice"[..]),
        "expected roles/admin = alice"
    );
    assert_eq!(sm.get_kv("roles", "dev")?, None, "expected roles/dev deleted");
    assert_eq!(
        sm.get_kv("keys", "epoch")?,
        Some(vec![0, 1, 2]),
        "expected keys/epoch = [0, 1, 2]"
    );
    assert_eq!(
        sm.get_kv("nope", "admin")?,
        None,
        "expected no value in another namespace"
    );
    let (applied, mem) = sm.applied_state().await?;
    assert_eq!(
        applied,
        Some(log_id(1, 11)),
        "expected last applied 1-11, got {applied:?}"
    );
    assert_eq!(
        sm.last_applied()?,
        applied,
        "expected last_applied() to agree with applied_state()"
    );
    assert_eq!(
        *mem.log_id(),
        Some(log_id(1, 2)),
        "expected the membership of entry 2, got {mem}"
    );
    let voters: Vec<u64> = mem.voter_ids().collect();
    assert_eq!(voters, vec![1, 2, 3], "expected voters 1, 2, 3, got {voters:?}");
    Ok(())
}

/// Applied state, log, vote and committed id are read back from sled after the store is closed
/// and reopened (a restart).
#[tokio::test]
async fn state_survives_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (_store, mut log, mut sm) = open(dir.path())?;
        log.blocking_append(history()).await?;
        log.save_vote(&Vote::new_committed(1, 1)).await?;
        log.save_committed(Some(log_id(1, 11))).await?;
        let responses = sm.apply(history()).await?;
        assert!(
            responses.iter().all(|r| *r == Response::Ok),
            "expected every entry answered Ok, got {responses:?}"
        );
    }
    let (_store, mut log, mut sm) = open(dir.path())?;
    assert_history_state(&mut sm).await?;
    let state = log.get_log_state().await?;
    assert_eq!(
        state.last_log_id,
        Some(log_id(1, 11)),
        "expected last log 1-11, got {state:?}"
    );
    let vote = log.read_vote().await?;
    assert_eq!(
        vote,
        Some(Vote::new_committed(1, 1)),
        "expected the saved vote back, got {vote:?}"
    );
    let committed = log.read_committed().await?;
    assert_eq!(
        committed,
        Some(log_id(1, 11)),
        "expected committed 1-11 back, got {committed:?}"
    );
    let entries = log.try_get_log_entries(1..12).await?;
    assert_eq!(entries, history(), "expected the appended entries back");
    Ok(())
}

/// A snapshot built on one store and installed on a fresh one (holding other state) gives the
/// same state there, also after a reopen; the installed snapshot becomes the current one.
#[tokio::test]
async fn snapshot_install_reproduces_state() -> TestResult {
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (_store_a, _log_a, mut sm_a) = open(dir_a.path())?;
    sm_a.apply(history()).await?;
    let snapshot = sm_a.build_snapshot().await?;
    assert_eq!(
        snapshot.meta.last_log_id,
        Some(log_id(1, 11)),
        "expected a snapshot up to 1-11"
    );

    {
        let (_store_b, _log_b, mut sm_b) = open(dir_b.path())?;
        // State that the snapshot must replace, not merge with.
        sm_b.apply([
            normal(1, 1, set("roles", "stale", b"x")),
            normal(
                1,
                2,
                Command::UpsertNode {
                    node_id: 9,
                    info: info(9),
                    eligible: true,
                },
            ),
        ])
        .await?;
        let mut receiving = sm_b.begin_receiving_snapshot().await?;
        *receiving = *snapshot.snapshot.clone();
        sm_b.install_snapshot(&snapshot.meta, receiving).await?;
        assert_history_state(&mut sm_b).await?;
        assert_eq!(
            sm_b.get_kv("roles", "stale")?,
            None,
            "expected pre-install kv state gone"
        );
        let current = sm_b
            .get_current_snapshot()
            .await?
            .ok_or("expected a current snapshot")?;
        assert_eq!(
            current.meta, snapshot.meta,
            "expected the installed snapshot to be current"
        );
        assert_eq!(
            current.snapshot.get_ref(),
            snapshot.snapshot.get_ref(),
            "expected the current snapshot bytes to be the installed ones"
        );
    }
    let (_store_b, _log_b, mut sm_b) = open(dir_b.path())?;
    assert_history_state(&mut sm_b).await?;
    Ok(())
}

/// A request with a schema newer than this build is answered Rejected, changes no data, and still
/// advances the last applied log id.
#[tokio::test]
async fn newer_schema_request_is_rejected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, _log, mut sm) = open(dir.path())?;
    sm.apply([normal(1, 1, set("ns", "k", b"old"))]).await?;
    let mut newer = normal(1, 2, set("ns", "k", b"new"));
    if let EntryPayload::Normal(request) = &mut newer.payload {
        request.schema = SCHEMA_VERSION + 1;
    }
    let responses = sm.apply([newer]).await?;
    assert!(
        matches!(responses.as_slice(), [Response::Rejected { .. }]),
        "expected one Rejected, got {responses:?}"
    );
    let value = sm.get_kv("ns", "k")?;
    assert_eq!(
        value.as_deref(),
        Some(&b"old"[..]),
        "expected the value unchanged, got {value:?}"
    );
    let applied = sm.last_applied()?;
    assert_eq!(
        applied,
        Some(log_id(1, 2)),
        "expected last applied 1-2, got {applied:?}"
    );
    Ok(())
}

/// A namespace containing NUL could collide with another key: the command is Rejected.
#[tokio::test]
async fn nul_namespace_is_rejected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, _log, mut sm) = open(dir.path())?;
    let responses = sm.apply([normal(1, 1, set("a\0b", "c", b"v"))]).await?;
    assert!(
        matches!(responses.as_slice(), [Response::Rejected { .. }]),
        "expected one Rejected, got {responses:?}"
    );
    assert_eq!(sm.get_kv("a\0b", "c")?, None, "expected nothing stored");
    assert_eq!(
        sm.get_kv("a", "b\0c")?,
        None,
        "expected nothing stored under the colliding key"
    );
    Ok(())
}

/// A log entry that does not decode, or that sits under the wrong index, is a storage error
/// naming the index and a read, not a panic; so is a corrupt last entry for the log state.
#[tokio::test]
async fn corrupt_log_entry_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, mut log, _sm) = open(dir.path())?;
    log.blocking_append(history()).await?;
    let tree = store.tree(log_store::LOG_TREE)?;

    tree.insert(5u64.to_be_bytes(), &[0xff, 0xff, 0xff][..])?;
    let got = log.try_get_log_entries(1..12).await;
    let msg = got.as_ref().err().map(ToString::to_string).unwrap_or_default();
    assert!(
        msg.contains("LogIndex(5)") && msg.contains("Read"),
        "expected an error reading log index 5, got {got:?}"
    );
    let before = log.try_get_log_entries(1..5).await?;
    assert_eq!(
        before.len(),
        4,
        "expected entries 1..5 still readable, got {}",
        before.len()
    );

    let entry_3 = tree.get(3u64.to_be_bytes())?.ok_or("expected entry 3 present")?;
    tree.insert(5u64.to_be_bytes(), entry_3)?;
    let got = log.try_get_log_entries(5..6).await;
    let msg = got.as_ref().err().map(ToString::to_string).unwrap_or_default();
    assert!(
        msg.contains("LogIndex(5)") && msg.contains("has log index 3"),
        "expected an index mismatch error at 5, got {got:?}"
    );

    tree.insert(11u64.to_be_bytes(), &b"garbage"[..])?;
    let got = log.get_log_state().await;
    assert!(got.is_err(), "expected an error for a corrupt last entry, got {got:?}");
    Ok(())
}

/// A corrupt vote is a storage error naming the vote.
#[tokio::test]
async fn corrupt_vote_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, mut log, _sm) = open(dir.path())?;
    store
        .tree(log_store::META_TREE)?
        .insert(log_store::VOTE_KEY, &[0xff][..])?;
    let got = log.read_vote().await;
    let msg = got.as_ref().err().map(ToString::to_string).unwrap_or_default();
    assert!(msg.contains("Vote"), "expected an error naming the vote, got {got:?}");
    Ok(())
}

/// Corrupt state machine data is an error: at open, and from `applied_state` if it turns corrupt
/// while open.
#[tokio::test]
async fn corrupt_state_machine_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (store, _log, mut sm) = open(dir.path())?;
        sm.apply(history()).await?;
        let meta = store.tree(state_machine::META_TREE)?;
        meta.insert(state_machine::LAST_APPLIED_KEY, &[0xff, 0xff][..])?;
        let got = sm.applied_state().await;
        let msg = got.as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(
            msg.contains("StateMachine"),
            "expected a state machine read error, got {got:?}"
        );
        store.flush()?;
    }
    let store = Store::open(dir.path())?;
    let got = SledStateMachine::new(&store);
    assert!(
        matches!(got, Err(StorageError::Codec { ref tree, .. }) if tree == state_machine::META_TREE),
        "expected Err(Codec) on sm_meta at open, got {got:?}"
    );
    Ok(())
}

/// A state machine written by a newer build is refused at open instead of being misread.
#[test]
fn newer_state_machine_schema_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let newer = bzzz_storage::codec::encode(&(SCHEMA_VERSION + 1))?;
    store
        .tree(state_machine::META_TREE)?
        .insert(state_machine::SCHEMA_KEY, newer)?;
    let got = SledStateMachine::new(&store);
    assert!(
        matches!(got, Err(StorageError::SchemaTooNew { found, .. }) if found == SCHEMA_VERSION + 1),
        "expected Err(SchemaTooNew), got {got:?}"
    );
    Ok(())
}

/// `limited_get_log_entries` returns no more entries than fit in the replication byte budget, but
/// always at least one, even when that one alone is over the budget.
#[tokio::test]
async fn limited_read_respects_the_byte_budget() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, mut log, _sm) = open(dir.path())?;
    let third = vec![7u8; log_store::MAX_REPLICATION_READ_BYTES / 3];
    let over = vec![7u8; log_store::MAX_REPLICATION_READ_BYTES + 1];
    let mut entries: Vec<Entry> = (1..=4).map(|i| normal(1, i, set("ns", "k", &third))).collect();
    entries.push(normal(1, 5, set("ns", "k", &over)));
    log.blocking_append(entries).await?;
    let got = log.limited_get_log_entries(1, 6).await?;
    assert_eq!(got.len(), 2, "expected 2 entries within the budget, got {}", got.len());
    let got = log.limited_get_log_entries(5, 6).await?;
    assert_eq!(
        got.len(),
        1,
        "expected the single over-budget entry, got {} entries",
        got.len()
    );
    let all = log.try_get_log_entries(1..6).await?;
    assert_eq!(
        all.len(),
        5,
        "expected the unlimited read to return all 5, got {}",
        all.len()
    );
    Ok(())
}
