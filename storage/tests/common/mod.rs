//! Helpers shared by the cluster-data tests of the Raft state machine: entries, commands, a
//! populated store, and a dump of everything the read API shows.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::Path;

use bzzz_storage::raft::cluster::RECORD_KEY_LEN;
use bzzz_storage::raft::{
    Command, Entry, GrantRecord, GrantSource, KeyBindingRecord, NewVersion, NodeInfo, RaftStorageError, RecordRef,
    Request, Response, RoleDef, RoleEpochRecord, RolePolicy, SledStateMachine, TypeConfig, VersionEntry, state_machine,
};
use bzzz_storage::{StorageError, Store};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{CommittedLeaderId, EntryPayload, LogId};

/// A test's result: any error fails it.
pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The log id at `index`, term 1, node 1.
pub(crate) fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// A normal entry carrying `command` at `index`.
pub(crate) fn normal(index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Request::new(command, 1)),
    }
}

/// Applies `commands` as consecutive entries from index `first`, one batch.
pub(crate) async fn apply(
    sm: &mut SledStateMachine,
    first: u64,
    commands: Vec<Command>,
) -> Result<Vec<Response>, RaftStorageError> {
    let entries: Vec<Entry> = commands
        .into_iter()
        .zip(first..)
        .map(|(command, index)| normal(index, command))
        .collect();
    sm.apply(entries).await
}

/// Applies `commands` from index `first` and asserts every one is answered `Ok`.
pub(crate) async fn apply_ok(sm: &mut SledStateMachine, first: u64, commands: Vec<Command>) -> TestResult {
    let responses = apply(sm, first, commands).await?;
    assert!(
        responses.iter().all(|r| *r == Response::Ok),
        "expected every command answered Ok, got {responses:?}"
    );
    Ok(())
}

/// Opens the state machine on the store in `dir`.
pub(crate) fn open(dir: &Path) -> Result<(Store, SledStateMachine), StorageError> {
    let store = Store::open(dir)?;
    let sm = SledStateMachine::new(&store)?;
    Ok((store, sm))
}

/// A role definition.
pub(crate) fn role(authority: u32, self_service: bool, can_read: &[&str]) -> RoleDef {
    RoleDef {
        authority,
        self_service,
        can_read: can_read.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// The test policy: admin (100) > lead (50) > dev, qa (10; qa reads dev).
pub(crate) fn policy() -> RolePolicy {
    RolePolicy {
        roles: BTreeMap::from([
            ("admin".to_owned(), role(100, false, &[])),
            ("lead".to_owned(), role(50, false, &[])),
            ("dev".to_owned(), role(10, true, &[])),
            ("qa".to_owned(), role(10, true, &["dev"])),
        ]),
    }
}

/// A test peer id.
pub(crate) fn peer(name: &str) -> Vec<u8> {
    format!("peer-{name}").into_bytes()
}

/// A 32-byte record key filled with `n`.
pub(crate) fn record_key(n: u8) -> Vec<u8> {
    vec![n; RECORD_KEY_LEN]
}

/// A new version of record `n` under role dev, epoch 1.
pub(crate) fn new_version(n: u8) -> NewVersion {
    NewVersion {
        record_key: record_key(n),
        author: peer("a"),
        time_ms: 1_000 + u64::from(n),
        size: 100 * u64::from(n),
        role: "dev".to_owned(),
        epoch: 1,
        tombstone: false,
    }
}

/// An `AppendVersion` of record `n` to `address`.
pub(crate) fn append(address: &str, n: u8) -> Command {
    Command::AppendVersion {
        address: address.to_owned(),
        entry: new_version(n),
    }
}

/// A `GrantRole`.
pub(crate) fn grant(role: &str, peer_id: &[u8], source: GrantSource, at_ms: u64) -> Command {
    Command::GrantRole {
        role: role.to_owned(),
        peer_id: peer_id.to_vec(),
        source,
        at_ms,
    }
}

/// A `SetRoleEpoch` sealing to `members` (sealed bytes: role, epoch, member).
pub(crate) fn epoch(role: &str, epoch: u64, members: &[&str], at_ms: u64) -> Command {
    Command::SetRoleEpoch {
        role: role.to_owned(),
        epoch,
        public_key: [epoch as u8; 32],
        sealed: members
            .iter()
            .map(|m| (peer(m), format!("sealed-{role}-{epoch}-{m}").into_bytes()))
            .collect(),
        at_ms,
    }
}

/// A `RegisterKeyBinding` for `name` whose key is filled with `fill`.
pub(crate) fn binding(name: &str, fill: u8) -> Command {
    Command::RegisterKeyBinding {
        peer_id: peer(name),
        x25519_public: [fill; 32],
        signature: vec![fill; 64],
    }
}

/// Every command kind of schema 2, and the index of the next entry after them.
pub(crate) fn cluster_history() -> (Vec<Command>, u64) {
    let commands = vec![
        Command::SetRolePolicy { policy: policy() },
        binding("a", 1),
        binding("b", 2),
        binding("a", 3),
        grant("dev", &peer("a"), GrantSource::Auto, 10),
        grant("dev", &peer("b"), GrantSource::Auto, 11),
        grant("lead", &peer("a"), GrantSource::Operator, 12),
        grant("qa", &peer("c"), GrantSource::Auto, 13),
        Command::RevokeRole {
            role: "dev".to_owned(),
            peer_id: peer("b"),
        },
        epoch("dev", 1, &["a", "b"], 20),
        epoch("dev", 2, &["a"], 21),
        epoch("lead", 1, &["a"], 22),
        Command::AddSealedKey {
            role: "dev".to_owned(),
            epoch: 2,
            peer_id: peer("c"),
            sealed: b"late-c".to_vec(),
        },
        Command::SetKv {
            namespace: "ns".to_owned(),
            key: "k".to_owned(),
            value: b"v".to_vec(),
        },
        Command::UpsertNode {
            node_id: 1,
            info: NodeInfo {
                peer_id: "a".to_owned(),
                addrs: Vec::new(),
            },
            eligible: true,
        },
    ];
    let next = commands.len() as u64 + 1;
    (commands, next)
}

/// What the read API shows of one role: `members_of()`, `current_epoch()` and every
/// `role_epoch()`.
pub(crate) type RoleView = (Vec<Vec<u8>>, Option<u64>, Vec<RoleEpochRecord>);

/// The raw rows of one tree.
pub(crate) type RawRows = Vec<(Vec<u8>, Vec<u8>)>;

/// Everything the read API shows of a state machine, for comparing two of them.
#[derive(Debug, PartialEq)]
pub(crate) struct Dump {
    /// `role_policy()`.
    pub policy: Option<RolePolicy>,
    /// `key_bindings()`.
    pub bindings: Vec<KeyBindingRecord>,
    /// `grants()`.
    pub grants: Vec<GrantRecord>,
    /// `roles_of()` of every peer with a grant or a binding.
    pub roles_of: BTreeMap<Vec<u8>, BTreeSet<String>>,
    /// `members_of()`, `current_epoch()` and every `role_epoch()` of each role named anywhere.
    pub roles: BTreeMap<String, RoleView>,
    /// `addresses()`.
    pub addresses: Vec<(String, u64)>,
    /// `versions()` and `latest_version()` of each address.
    pub versions: BTreeMap<String, (Vec<VersionEntry>, Option<VersionEntry>)>,
    /// `record_keys()`, each with its `record_location()`.
    pub records: Vec<(RecordRef, Option<(String, u64)>)>,
    /// `nodes()`.
    pub nodes: Vec<(u64, NodeInfo, bool)>,
    /// Every raw row of every snapshotted tree.
    pub raw: Vec<(&'static str, RawRows)>,
}

/// Reads everything `sm` (on `store`) shows.
pub(crate) fn dump(store: &Store, sm: &SledStateMachine) -> Result<Dump, Box<dyn std::error::Error>> {
    let policy = sm.role_policy()?;
    let bindings = sm.key_bindings()?;
    let grants = sm.grants()?;
    let mut peers: BTreeSet<Vec<u8>> = grants.iter().map(|g| g.peer_id.clone()).collect();
    peers.extend(bindings.iter().map(|b| b.peer_id.clone()));
    let mut roles_of = BTreeMap::new();
    for p in peers {
        let roles = sm.roles_of(&p)?;
        roles_of.insert(p, roles);
    }
    let mut names: BTreeSet<String> = grants.iter().map(|g| g.role.clone()).collect();
    names.extend(policy.iter().flat_map(|p| p.roles.keys().cloned()));
    let mut roles = BTreeMap::new();
    for name in names {
        let current = sm.current_epoch(&name)?;
        let mut epochs = Vec::new();
        for n in 1..=current.unwrap_or(0) {
            let record = sm
                .role_epoch(&name, n)?
                .ok_or(format!("expected epoch {n} of {name}"))?;
            for (p, sealed) in &record.sealed {
                let got = sm.sealed_key(&name, n, p)?;
                assert_eq!(
                    got.as_ref(),
                    Some(sealed),
                    "expected sealed_key to agree with role_epoch"
                );
            }
            epochs.push(record);
        }
        roles.insert(name.clone(), (sm.members_of(&name)?, current, epochs));
    }
    let addresses: Vec<(String, u64)> = sm.addresses().collect::<Result<_, _>>()?;
    let mut versions = BTreeMap::new();
    for (address, latest) in &addresses {
        let all = sm.versions(address)?;
        for entry in &all {
            assert_eq!(
                sm.version(address, entry.version)?.as_ref(),
                Some(entry),
                "expected version() to agree with versions()"
            );
        }
        let last = sm.latest_version(address)?;
        assert_eq!(
            last.as_ref().map(|e| e.version),
            Some(*latest),
            "expected latest = head"
        );
        versions.insert(address.clone(), (all, last));
    }
    let mut records = Vec::new();
    for r in sm.record_keys() {
        let r = r?;
        let location = sm.record_location(&r.record_key)?;
        records.push((r, location));
    }
    let mut raw = Vec::new();
    for name in state_machine::SNAPSHOT_DATA_TREES {
        let rows = store
            .tree(name)?
            .iter()
            .map(|row| row.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        raw.push((name, rows));
    }
    Ok(Dump {
        policy,
        bindings,
        grants,
        roles_of,
        roles,
        addresses,
        versions,
        records,
        nodes: sm.nodes()?,
        raw,
    })
}

/// A state machine on a fresh store holding [`cluster_history`] and versions 1..=3 of
/// "ucxl://a" and 1 of "ucxl://b"; returns the next free log index too.
pub(crate) async fn populated() -> Result<(tempfile::TempDir, Store, SledStateMachine, u64), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let (store, mut sm) = open(dir.path())?;
    let (commands, next) = cluster_history();
    apply_ok(&mut sm, 1, commands).await?;
    let responses = apply(&mut sm, next, vec![append("ucxl://a", 1), append("ucxl://a", 2)]).await?;
    assert_eq!(responses.len(), 2, "expected two responses, got {responses:?}");
    apply(&mut sm, next + 2, vec![append("ucxl://b", 3), append("ucxl://a", 4)]).await?;
    Ok((dir, store, sm, next + 4))
}

/// Installs `snapshot` on `sm` as openraft would.
pub(crate) async fn install(sm: &mut SledStateMachine, snapshot: &Snapshot<TypeConfig>) -> TestResult {
    let mut receiving = sm.begin_receiving_snapshot().await?;
    *receiving = Cursor::new(snapshot.snapshot.get_ref().clone());
    sm.install_snapshot(&snapshot.meta, receiving).await?;
    Ok(())
}
