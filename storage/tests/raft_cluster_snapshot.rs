//! The cluster data of the Raft state machine across snapshots, restarts and schema upgrades: a
//! snapshot reproduces every tree, states over the codec's value limit snapshot in frames, a
//! schema 1 store upgrades, a reopen keeps everything.

mod common;

use std::collections::BTreeMap;

use bzzz_storage::raft::{Command, GrantSource, NodeInfo, RolePolicy, SCHEMA_VERSION, SledStateMachine, state_machine};
use bzzz_storage::{StorageError, Store};
use common::*;
use openraft::storage::RaftStateMachine;
use openraft::{RaftSnapshotBuilder, SnapshotMeta};

/// A snapshot built on one store and installed on another holding different cluster data
/// reproduces every tree exactly (raw rows and every read API), replacing what was there; the
/// installed snapshot is current and everything survives a reopen.
#[tokio::test]
async fn snapshot_reproduces_every_tree() -> TestResult {
    let (_dir_a, store_a, mut sm_a, _) = populated().await?;
    let want = dump(&store_a, &sm_a)?;
    let snapshot = sm_a.build_snapshot().await?;

    let dir_b = tempfile::tempdir()?;
    {
        let (store_b, mut sm_b) = open(dir_b.path())?;
        let other = RolePolicy {
            roles: BTreeMap::from([
                ("dev".to_owned(), role(1, false, &[])),
                ("zz".to_owned(), role(2, false, &[])),
            ]),
        };
        apply_ok(
            &mut sm_b,
            1,
            vec![
                Command::SetRolePolicy { policy: other },
                grant("zz", &peer("q"), GrantSource::Operator, 1),
                binding("q", 9),
                epoch("dev", 1, &["q"], 1),
                epoch("dev", 2, &["q"], 1),
                epoch("dev", 3, &["q"], 1),
            ],
        )
        .await?;
        apply(&mut sm_b, 7, vec![append("ucxl://stale", 200), append("ucxl://a", 201)]).await?;
        install(&mut sm_b, &snapshot).await?;
        let got = dump(&store_b, &sm_b)?;
        assert_eq!(got, want, "expected the installed state to equal the source state");
        assert_eq!(
            sm_b.record_location(&record_key(200))?,
            None,
            "expected stale records gone"
        );
        let current = sm_b
            .get_current_snapshot()
            .await?
            .ok_or("expected a current snapshot")?;
        assert_eq!(current.meta, snapshot.meta, "expected the installed snapshot current");
        assert_eq!(
            current.snapshot.get_ref(),
            snapshot.snapshot.get_ref(),
            "expected its bytes kept"
        );
    }
    let (store_b, sm_b) = open(dir_b.path())?;
    assert_eq!(
        dump(&store_b, &sm_b)?,
        want,
        "expected the installed state after a reopen"
    );
    Ok(())
}

/// A state bigger than the codec's 16 MiB value limit still snapshots (in frames) and installs.
#[tokio::test]
async fn snapshot_larger_than_the_value_limit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_store, mut sm) = open(dir.path())?;
    let value = vec![7u8; 1024 * 1024];
    let rows = bzzz_storage::codec::MAX_ENCODED_BYTES / value.len() + 2;
    let commands = (0..rows)
        .map(|i| Command::SetKv {
            namespace: "big".to_owned(),
            key: i.to_string(),
            value: value.clone(),
        })
        .collect();
    apply_ok(&mut sm, 1, commands).await?;
    let snapshot = sm.build_snapshot().await?;
    let len = snapshot.snapshot.get_ref().len();
    assert!(
        len > bzzz_storage::codec::MAX_ENCODED_BYTES,
        "expected a snapshot over 16 MiB, got {len} bytes"
    );
    let current = sm
        .get_current_snapshot()
        .await?
        .ok_or("expected the built snapshot kept")?;
    assert_eq!(
        current.snapshot.get_ref().len(),
        len,
        "expected the kept snapshot whole"
    );

    let dir_b = tempfile::tempdir()?;
    let (_store_b, mut sm_b) = open(dir_b.path())?;
    install(&mut sm_b, &snapshot).await?;
    for i in [0, rows - 1] {
        let got = sm_b.get_kv("big", &i.to_string())?.map(|v| v.len());
        assert_eq!(got, Some(value.len()), "expected row {i} installed whole");
    }
    Ok(())
}

/// The openraft snapshot kept by a schema 1 build: metadata and bytes in one value.
#[derive(serde::Serialize)]
struct LegacyStoredSnapshot {
    /// Its metadata.
    meta: SnapshotMeta<u64, NodeInfo>,
    /// Its bytes.
    data: Vec<u8>,
}

/// A store written at schema 1 (schema key 1, a current snapshot in the schema 1 format, no
/// cluster trees) opens, is upgraded to this schema with its data intact and the new trees empty,
/// still serves its old current snapshot, and takes schema 2 commands.
#[tokio::test]
async fn schema_1_store_opens_and_upgrades() -> TestResult {
    let dir = tempfile::tempdir()?;
    let legacy_meta = SnapshotMeta {
        last_log_id: Some(log_id(1)),
        last_membership: Default::default(),
        snapshot_id: "legacy".to_owned(),
    };
    {
        // What a schema 1 build leaves: its trees only, written the way it wrote them.
        let store = Store::open(dir.path())?;
        let meta = store.tree(state_machine::META_TREE)?;
        meta.insert(state_machine::SCHEMA_KEY, bzzz_storage::codec::encode(&1u32)?)?;
        meta.insert(
            state_machine::LAST_APPLIED_KEY,
            bzzz_storage::codec::encode(&log_id(1))?,
        )?;
        store.tree(state_machine::KV_TREE)?.insert(b"ns\0k", &b"v1"[..])?;
        let legacy = LegacyStoredSnapshot {
            meta: legacy_meta.clone(),
            data: b"legacy bytes".to_vec(),
        };
        store.tree(state_machine::SNAPSHOT_TREE)?.insert(
            state_machine::CURRENT_SNAPSHOT_KEY,
            bzzz_storage::codec::encode(&legacy)?,
        )?;
        store.flush()?;
    }
    let (_store, mut sm) = open(dir.path())?;
    assert_eq!(
        sm.stored_schema()?,
        Some(SCHEMA_VERSION),
        "expected the schema upgraded"
    );
    assert_eq!(
        sm.get_kv("ns", "k")?,
        Some(b"v1".to_vec()),
        "expected schema 1 data kept"
    );
    assert_eq!(sm.last_applied()?, Some(log_id(1)), "expected last applied kept");
    assert_eq!(sm.role_policy()?, None, "expected no policy");
    assert!(sm.grants()?.is_empty(), "expected no grants");
    assert_eq!(sm.addresses().count(), 0, "expected no addresses");
    let current = sm.get_current_snapshot().await?.ok_or("expected the legacy snapshot")?;
    assert_eq!(current.meta, legacy_meta, "expected the legacy snapshot's metadata");
    assert_eq!(current.snapshot.get_ref(), b"legacy bytes", "expected the legacy bytes");
    apply_ok(&mut sm, 2, vec![Command::SetRolePolicy { policy: policy() }]).await?;
    assert_eq!(sm.role_policy()?, Some(policy()), "expected schema 2 commands to apply");
    Ok(())
}

/// A state machine written by a newer build is still refused at open.
#[test]
fn newer_schema_is_still_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    store.tree(state_machine::META_TREE)?.insert(
        state_machine::SCHEMA_KEY,
        bzzz_storage::codec::encode(&(SCHEMA_VERSION + 1))?,
    )?;
    let got = SledStateMachine::new(&store);
    assert!(
        matches!(got, Err(StorageError::SchemaTooNew { found, supported, .. })
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "expected Err(SchemaTooNew), got {got:?}"
    );
    Ok(())
}

/// Every tree survives dropping and reopening the store.
#[tokio::test]
async fn cluster_state_survives_reopen() -> TestResult {
    let (dir, store, sm, _) = populated().await?;
    let want = dump(&store, &sm)?;
    drop((store, sm));
    let (store, sm) = open(dir.path())?;
    assert_eq!(dump(&store, &sm)?, want, "expected the same state after a reopen");
    Ok(())
}
