//! Applying one [`Request`] inside the state machine's apply transaction.
//!
//! Every Raft member applies the same entries to the same state, so applying is deterministic: no
//! clock, no randomness (times come inside the commands), no iteration order that could differ.
//! A command that cannot be applied (bad bounds, unknown role, wrong epoch, newer schema) is
//! answered [`Response::Rejected`] with a reason and writes nothing: each command checks
//! everything before its first write. Only I/O and corrupt stored data abort the transaction,
//! which stops the Raft node (openraft treats every storage error as fatal).

use std::collections::BTreeMap;

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::cluster::{
    GrantRecord, GrantSource, KeyBindingRecord, MAX_PEER_ID_LEN, MAX_SEALED_KEY_LEN, MAX_SEALED_KEYS_PER_EPOCH,
    MAX_SIGNATURE_LEN, MAX_VERSIONS_PER_ADDRESS, NewVersion, RECORD_KEY_LEN, RoleEpochRecord, RolePolicy, VersionEntry,
    check_address, check_len, check_peer_id, excerpt, prefixed_key, validate_role_name,
};
use super::schema::{
    BINDINGS_TREE, EPOCHS_TREE, GRANTS_TREE, NODES_TREE, NodeRecord, POLICY_KEY, POLICY_TREE, RECORDS_TREE,
    VERSION_HEADS_TREE, VERSIONS_TREE, kv_key,
};
use super::typ::LogId;
use super::{Command, Request, Response, SCHEMA_VERSION, codec_err, key_u64, u64_key};
use crate::codec;
use crate::store::StorageError;

/// Why an apply transaction was aborted: the entry and the error.
pub(super) struct ApplyAbort {
    /// The entry being applied.
    pub(super) log_id: LogId,
    /// What failed.
    pub(super) source: StorageError,
}

/// The result of a step inside the apply transaction.
pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<ApplyAbort>>;

/// The answer to a command that is not applied.
pub(super) fn reject(reason: impl Into<String>) -> TxResult<Response> {
    Ok(Response::Rejected { reason: reason.into() })
}

/// The state machine's data trees, as seen inside one apply transaction.
pub(super) struct ApplyTx<'t> {
    /// The entry being applied, for abort errors.
    pub(super) log_id: LogId,
    /// Node records.
    pub(super) nodes: &'t TransactionalTree,
    /// Cluster key-value map.
    pub(super) kv: &'t TransactionalTree,
    /// The role policy.
    pub(super) policy: &'t TransactionalTree,
    /// Key bindings by peer id.
    pub(super) bindings: &'t TransactionalTree,
    /// Role grants.
    pub(super) grants: &'t TransactionalTree,
    /// Role key epochs.
    pub(super) epochs: &'t TransactionalTree,
    /// Version entries.
    pub(super) versions: &'t TransactionalTree,
    /// The latest version number of each address.
    pub(super) heads: &'t TransactionalTree,
    /// Record key → (address, version).
    pub(super) records: &'t TransactionalTree,
}

impl ApplyTx<'_> {
    /// Applies one request. A request this build cannot apply is answered
    /// [`Response::Rejected`] and changes nothing; only I/O, encoding and corrupt stored data
    /// abort the transaction.
    pub(super) fn apply_request(&self, request: &Request) -> TxResult<Response> {
        if request.schema > SCHEMA_VERSION {
            return reject(format!(
                "request schema {} is newer than version {SCHEMA_VERSION} that this node supports",
                request.schema
            ));
        }
        // Fencing: a request is applied only in the term it was proposed in. A duty of an admin
        // that lost and regained leadership still holds its old term; its late proposals land
        // in the log of the new term and are refused here, whatever they say.
        if request.term != self.log_id.leader_id.term {
            return reject(format!(
                "fenced: proposed in term {}, appended in term {}",
                request.term, self.log_id.leader_id.term
            ));
        }
        match &request.command {
            Command::Noop => Ok(Response::Ok),
            Command::UpsertNode {
                node_id,
                info,
                eligible,
            } => {
                let record = NodeRecord {
                    info: info.clone(),
                    eligible: *eligible,
                };
                self.nodes
                    .insert(u64_key(*node_id).as_slice(), self.encode(NODES_TREE, &record)?)?;
                Ok(Response::Ok)
            }
            Command::RemoveNode { node_id } => {
                self.nodes.remove(u64_key(*node_id).as_slice())?;
                Ok(Response::Ok)
            }
            Command::SetKv { namespace, key, value } => {
                let Some(k) = kv_key(namespace, key) else {
                    return reject("namespace contains a NUL byte");
                };
                self.kv.insert(k, value.as_slice())?;
                Ok(Response::Ok)
            }
            Command::DeleteKv { namespace, key } => {
                let Some(k) = kv_key(namespace, key) else {
                    return reject("namespace contains a NUL byte");
                };
                self.kv.remove(k)?;
                Ok(Response::Ok)
            }
            Command::SetRolePolicy { policy } => self.set_role_policy(policy),
            Command::RegisterKeyBinding {
                peer_id,
                x25519_public,
                signature,
            } => self.register_key_binding(peer_id, x25519_public, signature),
            Command::GrantRole {
                role,
                peer_id,
                source,
                at_ms,
            } => self.grant_role(role, peer_id, *source, *at_ms),
            Command::RevokeRole { role, peer_id } => self.revoke_role(role, peer_id),
            Command::SetRoleEpoch {
                role,
                epoch,
                public_key,
                sealed,
                at_ms,
            } => self.set_role_epoch(role, *epoch, public_key, sealed, *at_ms),
            Command::AddSealedKey {
                role,
                epoch,
                peer_id,
                sealed,
            } => self.add_sealed_key(role, *epoch, peer_id, sealed),
            Command::AppendVersion { address, entry } => self.append_version(address, entry),
            Command::CreateJoinToken { id, token } => self.create_join_token(id, token),
            Command::RedeemJoinToken {
                id,
                secret_hash,
                peer_id,
                at_ms,
            } => self.redeem_join_token(id, secret_hash, peer_id, *at_ms),
            Command::RevokeJoinToken { id } => self.revoke_join_token(id),
        }
    }

    /// Replaces the role policy if it is valid. Grants and epochs of roles it drops stay.
    fn set_role_policy(&self, policy: &RolePolicy) -> TxResult<Response> {
        if let Err(e) = policy.validate() {
            return reject(format!("invalid role policy: {e}"));
        }
        self.policy.insert(POLICY_KEY, self.encode(POLICY_TREE, policy)?)?;
        Ok(Response::Ok)
    }

    /// Stores (or replaces) a node's key binding.
    fn register_key_binding(&self, peer_id: &[u8], x25519_public: &[u8; 32], signature: &[u8]) -> TxResult<Response> {
        let checked =
            check_peer_id("peer id", peer_id).and_then(|()| check_len("signature", signature, MAX_SIGNATURE_LEN));
        if let Err(reason) = checked {
            return reject(reason);
        }
        let record = KeyBindingRecord {
            peer_id: peer_id.to_vec(),
            x25519_public: *x25519_public,
            signature: signature.to_vec(),
        };
        self.bindings.insert(peer_id, self.encode(BINDINGS_TREE, &record)?)?;
        Ok(Response::Ok)
    }

    /// Grants a role of the policy; a grant already held is kept as it is.
    fn grant_role(&self, role: &str, peer_id: &[u8], source: GrantSource, at_ms: u64) -> TxResult<Response> {
        if let Err(reason) = check_peer_id("peer id", peer_id) {
            return reject(reason);
        }
        if let Some(reason) = self.undefined_role(role)? {
            return reject(reason);
        }
        let Some(key) = prefixed_key(role, peer_id) else {
            return reject(format!("role {:?} is not a valid role name", excerpt(role)));
        };
        if self.grants.get(&key)?.is_none() {
            let record = GrantRecord {
                role: role.to_owned(),
                peer_id: peer_id.to_vec(),
                source,
                granted_at_ms: at_ms,
            };
            self.grants.insert(key, self.encode(GRANTS_TREE, &record)?)?;
        }
        Ok(Response::Ok)
    }

    /// Removes a grant, if held. The role need not be in the policy (grants of dropped roles can
    /// be revoked).
    fn revoke_role(&self, role: &str, peer_id: &[u8]) -> TxResult<Response> {
        let Some(key) = prefixed_key(role, peer_id) else {
            return reject(format!("role name {:?} is empty or contains a NUL byte", excerpt(role)));
        };
        self.grants.remove(key)?;
        Ok(Response::Ok)
    }

    /// Creates epoch `epoch` of `role`, which must be the role's current epoch plus one.
    fn set_role_epoch(
        &self,
        role: &str,
        epoch: u64,
        public_key: &[u8; 32],
        sealed: &BTreeMap<Vec<u8>, Vec<u8>>,
        at_ms: u64,
    ) -> TxResult<Response> {
        if let Err(reason) = check_sealed_map(sealed) {
            return reject(reason);
        }
        if let Some(reason) = self.undefined_role(role)? {
            return reject(reason);
        }
        let (Some(key), Some(previous)) = (
            prefixed_key(role, &u64_key(epoch)),
            prefixed_key(role, &u64_key(epoch.saturating_sub(1))),
        ) else {
            return reject(format!("role {:?} is not a valid role name", excerpt(role)));
        };
        // A role's epochs are 1..=current without gaps, so `epoch` is current + 1 exactly when
        // it does not exist yet and either it is 1 or epoch - 1 exists.
        let next_is_epoch =
            epoch > 0 && self.epochs.get(&key)?.is_none() && (epoch == 1 || self.epochs.get(&previous)?.is_some());
        if !next_is_epoch {
            return reject(format!(
                "epoch {epoch} of role {role:?} is not the next epoch (epochs start at 1 and go up by one)"
            ));
        }
        let record = RoleEpochRecord {
            role: role.to_owned(),
            epoch,
            public_key: *public_key,
            sealed: sealed.clone(),
            created_at_ms: at_ms,
        };
        self.epochs.insert(key, self.encode(EPOCHS_TREE, &record)?)?;
        Ok(Response::Ok)
    }

    /// Adds or replaces one member's sealed key in an existing epoch.
    fn add_sealed_key(&self, role: &str, epoch: u64, peer_id: &[u8], sealed: &[u8]) -> TxResult<Response> {
        let checked =
            check_peer_id("peer id", peer_id).and_then(|()| check_len("sealed key", sealed, MAX_SEALED_KEY_LEN));
        if let Err(reason) = checked {
            return reject(reason);
        }
        let missing = || format!("epoch {epoch} of role {:?} does not exist", excerpt(role));
        let Some(key) = prefixed_key(role, &u64_key(epoch)) else {
            return reject(missing());
        };
        let Some(bytes) = self.epochs.get(&key)? else {
            return reject(missing());
        };
        let mut record: RoleEpochRecord = self.decode(EPOCHS_TREE, &bytes)?;
        if record.sealed.len() >= MAX_SEALED_KEYS_PER_EPOCH && !record.sealed.contains_key(peer_id) {
            return reject(format!(
                "epoch {epoch} of role {role:?} already holds {MAX_SEALED_KEYS_PER_EPOCH} sealed keys, the limit"
            ));
        }
        record.sealed.insert(peer_id.to_vec(), sealed.to_vec());
        self.epochs.insert(key, self.encode(EPOCHS_TREE, &record)?)?;
        Ok(Response::Ok)
    }

    /// Appends the next version of `address`, or answers the existing version of the same record
    /// key (a retried write) without changing anything.
    fn append_version(&self, address: &str, entry: &NewVersion) -> TxResult<Response> {
        if let Err(reason) = check_new_version(address, entry) {
            return reject(reason);
        }
        if let Some(bytes) = self.records.get(&entry.record_key)? {
            let (_, version): (String, u64) = self.decode(RECORDS_TREE, &bytes)?;
            return Ok(Response::Version {
                version,
                duplicate: true,
            });
        }
        let latest = match self.heads.get(address.as_bytes())? {
            None => 0,
            Some(bytes) => key_u64(&bytes).ok_or_else(|| {
                self.abort(StorageError::Corrupt {
                    tree: VERSION_HEADS_TREE.to_owned(),
                    what: format!("latest version of {address:?} is {} bytes, expected 8", bytes.len()),
                })
            })?,
        };
        if latest >= MAX_VERSIONS_PER_ADDRESS {
            return reject(format!(
                "address {:?} already holds {MAX_VERSIONS_PER_ADDRESS} versions, the most one address may hold",
                excerpt(address)
            ));
        }
        let version = latest + 1;
        let Some(key) = prefixed_key(address, &u64_key(version)) else {
            return reject(format!(
                "address {:?} is empty or contains a NUL byte",
                excerpt(address)
            ));
        };
        let stored = VersionEntry::new(version, entry.clone());
        let location = (address, version);
        self.versions.insert(key, self.encode(VERSIONS_TREE, &stored)?)?;
        self.heads.insert(address.as_bytes(), u64_key(version).as_slice())?;
        self.records
            .insert(entry.record_key.as_slice(), self.encode(RECORDS_TREE, &location)?)?;
        Ok(Response::Version {
            version,
            duplicate: false,
        })
    }

    /// `Some(reason)` if `role` is not a role of the stored policy.
    fn undefined_role(&self, role: &str) -> TxResult<Option<String>> {
        let policy: Option<RolePolicy> = match self.policy.get(POLICY_KEY)? {
            None => None,
            Some(bytes) => Some(self.decode(POLICY_TREE, &bytes)?),
        };
        let defined = policy.is_some_and(|p| p.roles.contains_key(role));
        Ok((!defined).then(|| format!("role {:?} is not in the role policy", excerpt(role))))
    }

    /// Encodes `value` for `tree`, aborting the transaction on failure.
    pub(super) fn encode<T: serde::Serialize>(&self, tree: &'static str, value: &T) -> TxResult<Vec<u8>> {
        codec::encode(value).map_err(|e| self.abort(codec_err(tree)(e)))
    }

    /// Decodes a value of `tree`, aborting the transaction if it is corrupt.
    pub(super) fn decode<T: serde::de::DeserializeOwned>(&self, tree: &'static str, bytes: &[u8]) -> TxResult<T> {
        codec::decode(bytes).map_err(|e| self.abort(codec_err(tree)(e)))
    }

    /// The abort of this entry's transaction because of `source`.
    fn abort(&self, source: StorageError) -> ConflictableTransactionError<ApplyAbort> {
        ConflictableTransactionError::Abort(ApplyAbort {
            log_id: self.log_id,
            source,
        })
    }
}

/// Checks the sealed keys of a new epoch: at most [`MAX_SEALED_KEYS_PER_EPOCH`], valid peer ids,
/// keys of at most [`MAX_SEALED_KEY_LEN`] bytes.
fn check_sealed_map(sealed: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), String> {
    if sealed.len() > MAX_SEALED_KEYS_PER_EPOCH {
        return Err(format!(
            "epoch has {} sealed keys, over the limit of {MAX_SEALED_KEYS_PER_EPOCH}",
            sealed.len()
        ));
    }
    for (peer_id, key) in sealed {
        check_peer_id("peer id of a sealed key", peer_id)?;
        check_len("sealed key", key, MAX_SEALED_KEY_LEN)?;
    }
    Ok(())
}

/// Checks an `AppendVersion` command's address and entry against the bounds of the index.
fn check_new_version(address: &str, entry: &NewVersion) -> Result<(), String> {
    check_address(address)?;
    if entry.record_key.len() != RECORD_KEY_LEN {
        return Err(format!(
            "record key is {} bytes, expected {RECORD_KEY_LEN}",
            entry.record_key.len()
        ));
    }
    check_len("author", &entry.author, MAX_PEER_ID_LEN)?;
    validate_role_name(&entry.role).map_err(|e| e.to_string())
}
