//! The read API of the cluster data on [`SledStateMachine`]: role policy, key bindings, grants,
//! key epochs and the context version index.
//!
//! Reads go straight to sled, without the apply lock: each returns committed data (a batch of
//! entries commits atomically), but two calls may see different batches. Names that no command
//! could have stored (empty, or containing NUL) read as absent. Data that does not decode or
//! disagrees with its key is a [`StorageError`], never a panic.

use std::collections::BTreeSet;

use super::cluster::{
    GrantRecord, KeyBindingRecord, RecordRef, RoleEpochRecord, RolePolicy, VersionEntry, prefixed_key,
    split_prefixed_key,
};
use super::schema::{
    BINDINGS_TREE, EPOCHS_TREE, GRANTS_TREE, KV_TREE, POLICY_KEY, POLICY_TREE, RECORDS_TREE, VERSION_HEADS_TREE,
    VERSIONS_TREE, kv_key,
};
use super::state_machine::SledStateMachine;
use super::{codec_err, io, key_u64, read_decoded, u64_key};
use crate::codec;
use crate::store::StorageError;

/// A [`StorageError::Corrupt`] in `tree`.
fn corrupt(tree: &str, what: String) -> StorageError {
    StorageError::Corrupt {
        tree: tree.to_owned(),
        what,
    }
}

/// Parses the 8-byte big-endian number at the end of a key (or a value) of `tree`.
fn number(tree: &str, bytes: &[u8]) -> Result<u64, StorageError> {
    key_u64(bytes).ok_or_else(|| corrupt(tree, format!("number of {} bytes, expected 8", bytes.len())))
}

/// Decodes a [`GRANTS_TREE`] row, checking the record matches its key.
fn decode_grant(key: &[u8], value: &[u8]) -> Result<GrantRecord, StorageError> {
    let record: GrantRecord = codec::decode(value).map_err(codec_err(GRANTS_TREE))?;
    let (role, peer_id) = split_prefixed_key(GRANTS_TREE, key)?;
    if record.role != role || record.peer_id != peer_id {
        return Err(corrupt(
            GRANTS_TREE,
            format!("grant under key {key:?} is of role {:?}", record.role),
        ));
    }
    Ok(record)
}

/// Decodes a [`VERSIONS_TREE`] row into its address and entry, checking the entry's version
/// matches its key.
fn decode_version(key: &[u8], value: &[u8]) -> Result<(String, VersionEntry), StorageError> {
    let entry: VersionEntry = codec::decode(value).map_err(codec_err(VERSIONS_TREE))?;
    let (address, version) = split_prefixed_key(VERSIONS_TREE, key)?;
    let version = number(VERSIONS_TREE, version)?;
    if entry.version != version {
        return Err(corrupt(
            VERSIONS_TREE,
            format!(
                "entry under version {version} of {address:?} says version {}",
                entry.version
            ),
        ));
    }
    Ok((address, entry))
}

impl SledStateMachine {
    /// The role policy, if one was set.
    pub fn role_policy(&self) -> Result<Option<RolePolicy>, StorageError> {
        read_decoded(&self.policy, POLICY_TREE, POLICY_KEY, "read the role policy")
    }

    /// The key binding of the node `peer_id`, if registered.
    pub fn key_binding(&self, peer_id: &[u8]) -> Result<Option<KeyBindingRecord>, StorageError> {
        read_decoded(&self.bindings, BINDINGS_TREE, peer_id, "read a key binding")
    }

    /// Every key binding, by peer id.
    pub fn key_bindings(&self) -> Result<Vec<KeyBindingRecord>, StorageError> {
        let mut out = Vec::new();
        for row in self.bindings.iter() {
            let (_, value) = row.map_err(io(BINDINGS_TREE, "iterate key bindings"))?;
            out.push(codec::decode(&value).map_err(codec_err(BINDINGS_TREE))?);
        }
        Ok(out)
    }

    /// Every grant, by role then peer id.
    pub fn grants(&self) -> Result<Vec<GrantRecord>, StorageError> {
        let mut out = Vec::new();
        for row in self.grants.iter() {
            let (key, value) = row.map_err(io(GRANTS_TREE, "iterate grants"))?;
            out.push(decode_grant(&key, &value)?);
        }
        Ok(out)
    }

    /// The grant of `role` to `peer_id`, if held.
    pub fn grant(&self, role: &str, peer_id: &[u8]) -> Result<Option<GrantRecord>, StorageError> {
        let Some(key) = prefixed_key(role, peer_id) else {
            return Ok(None);
        };
        let value = self.grants.get(&key).map_err(io(GRANTS_TREE, "read a grant"))?;
        value.map(|value| decode_grant(&key, &value)).transpose()
    }

    /// The roles granted to `peer_id` (a scan of every grant). Roles the policy no longer defines
    /// are included until they are revoked.
    pub fn roles_of(&self, peer_id: &[u8]) -> Result<BTreeSet<String>, StorageError> {
        Ok(self
            .grants()?
            .into_iter()
            .filter(|g| g.peer_id == peer_id)
            .map(|g| g.role)
            .collect())
    }

    /// The peer ids holding `role`, in byte order.
    pub fn members_of(&self, role: &str) -> Result<Vec<Vec<u8>>, StorageError> {
        let Some(prefix) = prefixed_key(role, &[]) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in self.grants.scan_prefix(&prefix) {
            let (key, value) = row.map_err(io(GRANTS_TREE, "iterate the grants of a role"))?;
            out.push(decode_grant(&key, &value)?.peer_id);
        }
        Ok(out)
    }

    /// The current (highest) key epoch of `role`, if it has any.
    pub fn current_epoch(&self, role: &str) -> Result<Option<u64>, StorageError> {
        let Some(prefix) = prefixed_key(role, &[]) else {
            return Ok(None);
        };
        let Some(row) = self.epochs.scan_prefix(&prefix).next_back() else {
            return Ok(None);
        };
        let (key, _) = row.map_err(io(EPOCHS_TREE, "read the current epoch"))?;
        let (_, epoch) = split_prefixed_key(EPOCHS_TREE, &key)?;
        number(EPOCHS_TREE, epoch).map(Some)
    }

    /// Epoch `epoch` of `role`, with every sealed key, if it exists.
    pub fn role_epoch(&self, role: &str, epoch: u64) -> Result<Option<RoleEpochRecord>, StorageError> {
        let Some(key) = prefixed_key(role, &u64_key(epoch)) else {
            return Ok(None);
        };
        let record: Option<RoleEpochRecord> = read_decoded(&self.epochs, EPOCHS_TREE, &key, "read a role epoch")?;
        match record {
            Some(r) if r.role != role || r.epoch != epoch => Err(corrupt(
                EPOCHS_TREE,
                format!("epoch {epoch} of {role:?} holds epoch {} of {:?}", r.epoch, r.role),
            )),
            other => Ok(other),
        }
    }

    /// The key of epoch `epoch` of `role` sealed to `peer_id`, if there is one.
    pub fn sealed_key(&self, role: &str, epoch: u64, peer_id: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.role_epoch(role, epoch)?.and_then(|mut r| r.sealed.remove(peer_id)))
    }

    /// Every version of `address`, oldest first.
    pub fn versions(&self, address: &str) -> Result<Vec<VersionEntry>, StorageError> {
        let Some(prefix) = prefixed_key(address, &[]) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in self.versions.scan_prefix(&prefix) {
            let (key, value) = row.map_err(io(VERSIONS_TREE, "iterate the versions of an address"))?;
            out.push(decode_version(&key, &value)?.1);
        }
        Ok(out)
    }

    /// Version `version` of `address`, if it exists.
    pub fn version(&self, address: &str, version: u64) -> Result<Option<VersionEntry>, StorageError> {
        let Some(key) = prefixed_key(address, &u64_key(version)) else {
            return Ok(None);
        };
        let value = self.versions.get(&key).map_err(io(VERSIONS_TREE, "read a version"))?;
        value
            .map(|value| decode_version(&key, &value).map(|(_, e)| e))
            .transpose()
    }

    /// The latest version of `address`, if it has any.
    pub fn latest_version(&self, address: &str) -> Result<Option<VersionEntry>, StorageError> {
        let Some(prefix) = prefixed_key(address, &[]) else {
            return Ok(None);
        };
        // One read (the last key of the address), so it cannot straddle two states.
        let Some(row) = self.versions.scan_prefix(&prefix).next_back() else {
            return Ok(None);
        };
        let (key, value) = row.map_err(io(VERSIONS_TREE, "read the latest version"))?;
        decode_version(&key, &value).map(|(_, entry)| Some(entry))
    }

    /// Every address of the index with its latest version number, by address (a scan; for
    /// discovery). The iterator owns what it reads, so it can outlive `self`.
    pub fn addresses(&self) -> impl Iterator<Item = Result<(String, u64), StorageError>> + Send + use<> {
        self.heads.iter().map(|row| {
            let (key, value) = row.map_err(io(VERSION_HEADS_TREE, "iterate addresses"))?;
            let address = String::from_utf8(key.to_vec())
                .map_err(|_| corrupt(VERSION_HEADS_TREE, format!("address {key:?} is not UTF-8")))?;
            Ok((address, number(VERSION_HEADS_TREE, &value)?))
        })
    }

    /// The address and version whose record is `record_key`, if the index has it.
    pub fn record_location(&self, record_key: &[u8]) -> Result<Option<(String, u64)>, StorageError> {
        read_decoded(&self.records, RECORDS_TREE, record_key, "read a record location")
    }

    /// Every record the index refers to, by address then version (a scan; for the replication
    /// checker). The iterator owns what it reads, so it can outlive `self`.
    pub fn record_keys(&self) -> impl Iterator<Item = Result<RecordRef, StorageError>> + Send + use<> {
        self.versions.iter().map(|row| {
            let (key, value) = row.map_err(io(VERSIONS_TREE, "iterate versions"))?;
            let (address, entry) = decode_version(&key, &value)?;
            Ok(RecordRef {
                record_key: entry.written.record_key,
                address,
                version: entry.version,
                role: entry.written.role,
                epoch: entry.written.epoch,
            })
        })
    }
}

impl SledStateMachine {
    /// The value of `key` in the cluster key-value `namespace` ([`super::Command::SetKv`]).
    pub fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(k) = kv_key(namespace, key) else {
            return Ok(None);
        };
        Ok(self.kv.get(k).map_err(io(KV_TREE, "get"))?.map(|v| v.to_vec()))
    }

    /// Up to `limit` (key, value) pairs of `namespace`, in key order.
    pub fn kv_list(&self, namespace: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let Some(prefix) = kv_key(namespace, "") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in self.kv.scan_prefix(&prefix).take(limit) {
            let (k, v) = row.map_err(io(KV_TREE, "scan"))?;
            let key = String::from_utf8(k[prefix.len()..].to_vec())
                .map_err(|_| corrupt(KV_TREE, format!("key of {namespace:?} is not UTF-8")))?;
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }
}
