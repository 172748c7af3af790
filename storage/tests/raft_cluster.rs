//! The cluster data of the Raft state machine (schema 2): role policy, key bindings, grants, key
//! epochs and the context version index, driven through openraft's `RaftStateMachine::apply` on
//! real sled stores in temporary directories: each command, each rejection, batches, corrupt data.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bzzz_storage::StorageError;
use bzzz_storage::raft::cluster::MAX_VERSIONS_PER_ADDRESS;
use bzzz_storage::raft::{
    Command, GrantRecord, GrantSource, NewVersion, RecordRef, Response, RoleDef, RolePolicy, SledStateMachine,
    VersionEntry, state_machine,
};
use common::*;

/// Each command applies and is readable through the read API: the policy, the latest binding of
/// each peer, grants (with the first grant's source and time, minus the revoked one), epochs with
/// their sealed keys (including one added later), versions and the record index.
#[tokio::test]
async fn each_command_applies_and_is_readable() -> TestResult {
    let (_dir, _store, mut sm, next) = populated().await?;
    assert_eq!(sm.role_policy()?, Some(policy()), "expected the policy back");
    let a = sm.key_binding(&peer("a"))?.ok_or("expected a binding of a")?;
    assert_eq!(
        a.x25519_public, [3; 32],
        "expected the second binding of a to replace the first"
    );
    assert_eq!(
        sm.key_binding(&peer("zz"))?,
        None,
        "expected no binding of an unknown peer"
    );

    // Re-granting keeps the first grant's time and source.
    apply_ok(&mut sm, next, vec![grant("dev", &peer("a"), GrantSource::Operator, 99)]).await?;
    let got = sm.grant("dev", &peer("a"))?;
    let want = GrantRecord {
        role: "dev".to_owned(),
        peer_id: peer("a"),
        source: GrantSource::Auto,
        granted_at_ms: 10,
    };
    assert_eq!(got, Some(want), "expected the first grant kept, got {got:?}");
    let roles: Vec<(String, Vec<u8>)> = sm.grants()?.into_iter().map(|g| (g.role, g.peer_id)).collect();
    let want = vec![
        ("dev".to_owned(), peer("a")),
        ("lead".to_owned(), peer("a")),
        ("qa".to_owned(), peer("c")),
    ];
    assert_eq!(
        roles, want,
        "expected dev/a, lead/a, qa/c (dev/b revoked), got {roles:?}"
    );
    let of_a = sm.roles_of(&peer("a"))?;
    assert_eq!(
        of_a,
        BTreeSet::from(["dev".to_owned(), "lead".to_owned()]),
        "roles of a"
    );
    assert!(
        sm.roles_of(&peer("b"))?.is_empty(),
        "expected b to hold no role after revoke"
    );
    assert_eq!(sm.members_of("dev")?, vec![peer("a")], "expected dev members [a]");
    assert!(sm.members_of("admin")?.is_empty(), "expected no admin members");

    assert_eq!(sm.current_epoch("dev")?, Some(2), "expected dev at epoch 2");
    assert_eq!(sm.current_epoch("lead")?, Some(1), "expected lead at epoch 1");
    assert_eq!(sm.current_epoch("qa")?, None, "expected qa without epochs");
    let dev2 = sm.role_epoch("dev", 2)?.ok_or("expected epoch 2 of dev")?;
    assert_eq!(dev2.created_at_ms, 21, "expected the epoch's time from the command");
    assert_eq!(
        dev2.public_key, [2; 32],
        "expected the epoch's public key from the command"
    );
    let members: Vec<&Vec<u8>> = dev2.sealed.keys().collect();
    assert_eq!(members, vec![&peer("a"), &peer("c")], "expected sealed keys of a and c");
    assert_eq!(
        sm.sealed_key("dev", 2, &peer("c"))?,
        Some(b"late-c".to_vec()),
        "added key"
    );
    assert_eq!(
        sm.sealed_key("dev", 1, &peer("b"))?,
        Some(b"sealed-dev-1-b".to_vec()),
        "expected the old epoch's keys kept"
    );
    assert_eq!(
        sm.sealed_key("dev", 2, &peer("b"))?,
        None,
        "expected no key of b in epoch 2"
    );
    assert_eq!(sm.role_epoch("dev", 3)?, None, "expected no epoch 3");

    let versions: Vec<(u64, Vec<u8>)> = sm
        .versions("ucxl://a")?
        .into_iter()
        .map(|v| (v.version, v.written.record_key))
        .collect();
    let want = vec![(1, record_key(1)), (2, record_key(2)), (3, record_key(4))];
    assert_eq!(versions, want, "expected versions 1..3 of a, got {versions:?}");
    let v2 = sm.version("ucxl://a", 2)?.ok_or("expected version 2")?;
    assert_eq!(
        v2,
        VersionEntry::new(2, new_version(2)),
        "expected every field of version 2"
    );
    let latest = sm.latest_version("ucxl://b")?.map(|v| v.version);
    assert_eq!(latest, Some(1), "expected b at version 1");
    assert_eq!(sm.latest_version("ucxl://none")?, None, "expected no versions of none");
    let addresses: Vec<(String, u64)> = sm.addresses().collect::<Result<_, _>>()?;
    assert_eq!(
        addresses,
        vec![("ucxl://a".to_owned(), 3), ("ucxl://b".to_owned(), 1)],
        "expected both addresses with their latest versions"
    );
    assert_eq!(
        sm.record_location(&record_key(4))?,
        Some(("ucxl://a".to_owned(), 3)),
        "expected record 4 at a/3"
    );
    let refs: Vec<RecordRef> = sm.record_keys().collect::<Result<_, _>>()?;
    let got: Vec<(u8, &str, u64, &str, u64)> = refs
        .iter()
        .map(|r| (r.record_key[0], r.address.as_str(), r.version, r.role.as_str(), r.epoch))
        .collect();
    let want = vec![
        (1, "ucxl://a", 1, "dev", 1),
        (2, "ucxl://a", 2, "dev", 1),
        (4, "ucxl://a", 3, "dev", 1),
        (3, "ucxl://b", 1, "dev", 1),
    ];
    assert_eq!(got, want, "expected every record by address then version");
    Ok(())
}

/// AppendVersion numbers each address 1, 2, 3, ... independently, and a record key already in
/// the index (under any address, in an earlier batch or the same one) is answered with its
/// existing version and `duplicate: true` without changing anything.
#[tokio::test]
async fn append_version_numbers_and_deduplicates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, mut sm) = open(dir.path())?;
    let commands = vec![
        append("x", 1),
        append("y", 2),
        append("x", 3),
        append("x", 1), // retry in the same batch
        append("y", 4),
        append("x", 5),
    ];
    let got = apply(&mut sm, 1, commands).await?;
    let version = |version, duplicate| Response::Version { version, duplicate };
    let want = vec![
        version(1, false),
        version(1, false),
        version(2, false),
        version(1, true),
        version(2, false),
        version(3, false),
    ];
    assert_eq!(got, want, "expected x: 1, 2, 3 and y: 1, 2 with the retry a duplicate");

    let before = dump(&store, &sm)?;
    // A retry of record 2 (version 1 of y), proposed for another address after a failover.
    let got = apply(&mut sm, 7, vec![append("x", 2)]).await?;
    assert_eq!(got, vec![version(1, true)], "expected record 2's existing version 1");
    assert_eq!(dump(&store, &sm)?, before, "expected nothing changed by duplicates");
    let got = apply(&mut sm, 8, vec![append("y", 6)]).await?;
    assert_eq!(got, vec![version(3, false)], "expected y to continue at 3");
    Ok(())
}

/// Every rejection answers `Rejected` with a reason naming the problem and leaves every tree
/// unchanged (the entry still counts as applied).
#[tokio::test]
async fn rejections_name_the_problem_and_change_nothing() -> TestResult {
    let (_dir, store, mut sm, mut next) = populated().await?;
    let bad_policy = |name: &str, def: RoleDef| {
        let mut p = policy();
        p.roles.insert(name.to_owned(), def);
        Command::SetRolePolicy { policy: p }
    };
    let too_many = RolePolicy {
        roles: (0..=256).map(|i| (format!("r{i}"), role(1, false, &[]))).collect(),
    };
    let bad_version = |f: &dyn Fn(&mut NewVersion)| {
        let mut entry = new_version(9);
        f(&mut entry);
        Command::AppendVersion {
            address: "ucxl://a".to_owned(),
            entry,
        }
    };
    let cases: Vec<(Command, &str)> = vec![
        (bad_policy("any", role(1, false, &[])), "\"any\" is reserved"),
        (bad_policy("a b", role(1, false, &[])), "character other than"),
        (bad_policy("", role(1, false, &[])), "empty"),
        (bad_policy(&"r".repeat(65), role(1, false, &[])), "longer than 64"),
        (
            bad_policy("ops", role(1, false, &["ghost"])),
            "\"ghost\", which the policy does not define",
        ),
        (Command::SetRolePolicy { policy: too_many }, "257 roles"),
        (
            Command::RegisterKeyBinding {
                peer_id: Vec::new(),
                x25519_public: [0; 32],
                signature: Vec::new(),
            },
            "peer id is empty",
        ),
        (
            Command::RegisterKeyBinding {
                peer_id: vec![1; 129],
                x25519_public: [0; 32],
                signature: Vec::new(),
            },
            "peer id is 129 bytes",
        ),
        (
            Command::RegisterKeyBinding {
                peer_id: peer("a"),
                x25519_public: [0; 32],
                signature: vec![0; 513],
            },
            "signature is 513 bytes",
        ),
        (
            grant("ops", &peer("a"), GrantSource::Auto, 1),
            "role \"ops\" is not in the role policy",
        ),
        (grant("dev", &[], GrantSource::Auto, 1), "peer id is empty"),
        (
            Command::RevokeRole {
                role: "de\0v".to_owned(),
                peer_id: peer("a"),
            },
            "NUL",
        ),
        (epoch("ops", 1, &["a"], 1), "role \"ops\" is not in the role policy"),
        (
            epoch("dev", 0, &["a"], 1),
            "epoch 0 of role \"dev\" is not the next epoch",
        ),
        (
            epoch("dev", 2, &["a"], 1),
            "epoch 2 of role \"dev\" is not the next epoch",
        ),
        (
            epoch("dev", 4, &["a"], 1),
            "epoch 4 of role \"dev\" is not the next epoch",
        ),
        (
            epoch("qa", 2, &["a"], 1),
            "epoch 2 of role \"qa\" is not the next epoch",
        ),
        (
            Command::SetRoleEpoch {
                role: "qa".to_owned(),
                epoch: 1,
                public_key: [1; 32],
                sealed: BTreeMap::from([(peer("a"), vec![0; 513])]),
                at_ms: 1,
            },
            "sealed key is 513 bytes",
        ),
        (
            Command::SetRoleEpoch {
                role: "qa".to_owned(),
                epoch: 1,
                public_key: [1; 32],
                sealed: BTreeMap::from([(Vec::new(), vec![0; 8])]),
                at_ms: 1,
            },
            "peer id of a sealed key is empty",
        ),
        (
            Command::AddSealedKey {
                role: "dev".to_owned(),
                epoch: 3,
                peer_id: peer("a"),
                sealed: vec![1],
            },
            "epoch 3 of role \"dev\" does not exist",
        ),
        (
            Command::AddSealedKey {
                role: "qa".to_owned(),
                epoch: 1,
                peer_id: peer("a"),
                sealed: vec![1],
            },
            "epoch 1 of role \"qa\" does not exist",
        ),
        (
            Command::AddSealedKey {
                role: "dev".to_owned(),
                epoch: 1,
                peer_id: peer("a"),
                sealed: vec![1; 513],
            },
            "sealed key is 513 bytes",
        ),
        (append("", 9), "address is empty"),
        (
            append(&"a".repeat(1025), 9),
            "address is 1025 bytes, over the 1024 byte limit",
        ),
        (append("ucxl://a\0b", 9), "contains a NUL byte"),
        (
            bad_version(&|e| e.record_key = vec![9; 31]),
            "record key is 31 bytes, expected 32",
        ),
        (
            bad_version(&|e| e.record_key = vec![9; 33]),
            "record key is 33 bytes, expected 32",
        ),
        (bad_version(&|e| e.role = "r".repeat(65)), "longer than 64"),
        (bad_version(&|e| e.role = "any".to_owned()), "reserved"),
        (bad_version(&|e| e.author = vec![1; 129]), "author is 129 bytes"),
    ];
    for (command, expect) in cases {
        let shown = format!("{command:?}");
        let shown = &shown[..shown.len().min(120)];
        let before = dump(&store, &sm)?;
        let got = apply(&mut sm, next, vec![command]).await?;
        let reason = match got.as_slice() {
            [Response::Rejected { reason }] => reason.clone(),
            other => return Err(format!("expected {shown} Rejected, got {other:?}").into()),
        };
        assert!(
            reason.contains(expect),
            "expected {shown} rejected with a reason containing {expect:?}, got {reason:?}"
        );
        assert_eq!(dump(&store, &sm)?, before, "expected {shown} to change nothing");
        assert_eq!(
            sm.last_applied()?,
            Some(log_id(next)),
            "expected the entry counted as applied"
        );
        next += 1;
    }

    // With no policy at all, grants and epochs are rejected too.
    let dir = tempfile::tempdir()?;
    let (_store, mut empty) = open(dir.path())?;
    let got = apply(
        &mut empty,
        1,
        vec![grant("dev", &peer("a"), GrantSource::Auto, 1), epoch("dev", 1, &[], 1)],
    )
    .await?;
    assert!(
        got.iter()
            .all(|r| matches!(r, Response::Rejected { reason } if reason.contains("not in the role policy"))),
        "expected both rejected without a policy, got {got:?}"
    );
    assert!(empty.grants()?.is_empty(), "expected no grant stored");
    Ok(())
}

/// An address already at the version limit rejects one more version, naming the limit; the
/// head is set directly since a million appends would make the test slow.
#[tokio::test]
async fn version_limit_is_enforced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, mut sm) = open(dir.path())?;
    store
        .tree(state_machine::VERSION_HEADS_TREE)?
        .insert("ucxl://full", &MAX_VERSIONS_PER_ADDRESS.to_be_bytes())?;
    let got = apply(&mut sm, 1, vec![append("ucxl://full", 1), append("ucxl://other", 1)]).await?;
    assert!(
        matches!(got.as_slice(), [Response::Rejected { reason }, Response::Version { version: 1, duplicate: false }]
            if reason.contains("already holds 1000000 versions")),
        "expected the full address rejected and the record then accepted elsewhere, got {got:?}"
    );
    Ok(())
}

/// A batch of mixed entries is applied in one transaction: entries see the writes of earlier
/// entries of the same batch, a rejection in the middle does not stop the rest, and an abort
/// (corrupt stored data) undoes the whole batch, last applied id included.
#[tokio::test]
async fn mixed_batch_is_one_transaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, mut sm) = open(dir.path())?;
    let batch = vec![
        Command::SetRolePolicy { policy: policy() },
        grant("dev", &peer("a"), GrantSource::Auto, 1),
        grant("ops", &peer("a"), GrantSource::Auto, 1),
        epoch("dev", 1, &["a"], 2),
        epoch("dev", 2, &["a"], 3),
        append("ucxl://a", 1),
        append("ucxl://a", 2),
    ];
    let got = apply(&mut sm, 1, batch).await?;
    assert!(
        matches!(
            got.as_slice(),
            [
                Response::Ok,
                Response::Ok,
                Response::Rejected { .. },
                Response::Ok,
                Response::Ok,
                Response::Version { version: 1, .. },
                Response::Version { version: 2, .. },
            ]
        ),
        "expected the batch to see its own writes, got {got:?}"
    );
    assert_eq!(sm.current_epoch("dev")?, Some(2), "expected both epochs of the batch");

    // Corrupt epoch 1 of dev: an AddSealedKey to it aborts its whole batch.
    store
        .tree(state_machine::EPOCHS_TREE)?
        .insert(b"dev\0\0\0\0\0\0\0\0\x01", &[0xff, 0xff][..])?;
    let unaffected = |sm: &SledStateMachine| -> Result<_, StorageError> {
        let records: Vec<RecordRef> = sm.record_keys().collect::<Result<_, _>>()?;
        Ok((sm.grants()?, sm.versions("ucxl://a")?, records))
    };
    let before = unaffected(&sm)?;
    let batch = vec![
        grant("qa", &peer("b"), GrantSource::Operator, 5),
        append("ucxl://a", 3),
        Command::AddSealedKey {
            role: "dev".to_owned(),
            epoch: 1,
            peer_id: peer("b"),
            sealed: vec![1],
        },
    ];
    let got = apply(&mut sm, 8, batch).await;
    let msg = match got {
        Err(e) => e.to_string(),
        other => return Err(format!("expected the batch to fail, got {other:?}").into()),
    };
    assert!(
        msg.contains("Apply") && msg.contains("10"),
        "expected an apply error at entry 10, got {msg}"
    );
    assert_eq!(unaffected(&sm)?, before, "expected the aborted batch to change nothing");
    assert_eq!(sm.last_applied()?, Some(log_id(7)), "expected last applied still 7");
    Ok(())
}

/// Corrupt cluster data is a storage error from the read API, never a panic: a value that does
/// not decode, a grant under another grant's key, a version under another version's key.
#[tokio::test]
async fn corrupt_cluster_data_is_an_error() -> TestResult {
    let (_dir, store, sm, _) = populated().await?;
    store
        .tree(state_machine::POLICY_TREE)?
        .insert(state_machine::POLICY_KEY, &[0xff][..])?;
    let got = sm.role_policy();
    assert!(
        matches!(&got, Err(StorageError::Codec { tree, .. }) if tree == state_machine::POLICY_TREE),
        "expected a codec error in the policy tree, got {got:?}"
    );
    let grants = store.tree(state_machine::GRANTS_TREE)?;
    let value = grants.get(b"dev\0peer-a")?.ok_or("expected the grant of dev to a")?;
    grants.insert(b"qa\0peer-a", value)?;
    let got = sm.grants();
    assert!(
        matches!(&got, Err(StorageError::Corrupt { what, .. }) if what.contains("of role \"dev\"")),
        "expected a corrupt grant, got {got:?}"
    );
    let versions = store.tree(state_machine::VERSIONS_TREE)?;
    let first = versions
        .get(b"ucxl://a\0\0\0\0\0\0\0\0\x01")?
        .ok_or("expected version 1 of a")?;
    versions.insert(b"ucxl://a\0\0\0\0\0\0\0\0\x09", first)?;
    let got = sm.latest_version("ucxl://a");
    assert!(
        matches!(&got, Err(StorageError::Corrupt { what, .. }) if what.contains("under version 9 of \"ucxl://a\" says version 1")),
        "expected a misplaced version error, got {got:?}"
    );
    Ok(())
}

/// The scan iterators own their data: they can be sent to another task and outlive the handle.
#[tokio::test]
async fn scan_iterators_are_send_and_owned() -> TestResult {
    let (_dir, _store, sm, _) = populated().await?;
    let addresses = sm.addresses();
    let records = sm.record_keys();
    drop(sm);
    let (a, r) = tokio::spawn(async move { (addresses.count(), records.count()) }).await?;
    assert_eq!((a, r), (2, 4), "expected 2 addresses and 4 records, got {a} and {r}");
    Ok(())
}

/// The readers of a role, from the stored policy: itself, higher authority, and roles that list
/// it in `can_read`.
#[tokio::test]
async fn readers_of_the_stored_policy() -> TestResult {
    let (_dir, _store, sm, _) = populated().await?;
    let stored = sm.role_policy()?.ok_or("expected a policy")?;
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(
        stored.readers_of("dev"),
        names(&["admin", "dev", "lead", "qa"]),
        "readers of dev"
    );
    assert_eq!(
        stored.readers_of("qa"),
        names(&["admin", "lead", "qa"]),
        "readers of qa"
    );
    assert_eq!(stored.readers_of("admin"), names(&["admin"]), "readers of admin");
    Ok(())
}
