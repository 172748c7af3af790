//! The cluster data of the Raft state machine: the role policy, node key bindings, role grants,
//! role key epochs and the context version index (DESIGN.md sections 6 and 7).
//!
//! These are the types the [`Command`](super::Command)s carry and the
//! [`SledStateMachine`](super::SledStateMachine) read API returns, the bounds every command is
//! checked against before it is applied, and the sled key layout of the trees that hold them (see
//! [`state_machine`](super::state_machine)). Every bound is there so that one stored value always
//! stays far below the codec's [`MAX_ENCODED_BYTES`](crate::codec::MAX_ENCODED_BYTES): an encoding
//! failure inside the apply transaction would stop the Raft node.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::StorageError;

/// Most roles a [`RolePolicy`] may define.
pub const MAX_ROLES: usize = 256;
/// Longest role name, in bytes.
pub const MAX_ROLE_NAME_LEN: usize = 64;
/// The name UCXL patterns use as a wildcard; no role may be called this.
pub const RESERVED_ROLE_NAME: &str = "any";
/// Longest peer id accepted in a command, in bytes (an ed25519 libp2p peer id is 38).
pub const MAX_PEER_ID_LEN: usize = 128;
/// Longest key binding signature, in bytes (an ed25519 signature is 64).
pub const MAX_SIGNATURE_LEN: usize = 512;
/// Longest sealed role key, in bytes (X25519 ephemeral key, nonce, key and tag are about 104).
pub const MAX_SEALED_KEY_LEN: usize = 512;
/// Most sealed keys (one per member of the role) one role epoch may hold.
pub const MAX_SEALED_KEYS_PER_EPOCH: usize = 10_000;
/// Longest context address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 1024;
/// Length of a record key (the DHT key of one version's record), in bytes.
pub const RECORD_KEY_LEN: usize = 32;
/// Most versions the index holds for one address; appending beyond it is rejected.
pub const MAX_VERSIONS_PER_ADDRESS: u64 = 1_000_000;

/// Longest excerpt of a caller-supplied name quoted in an error message, in bytes.
const EXCERPT_LEN: usize = 80;

/// The cluster's roles: who can read whose content, and which roles nodes may take themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RolePolicy {
    /// Every role, by name.
    pub roles: BTreeMap<String, RoleDef>,
}

/// One role of a [`RolePolicy`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleDef {
    /// Authority level: a role reads the content of every role with a lower level.
    pub authority: u32,
    /// Whether the admin grants this role to any node that requests it (otherwise an operator must).
    pub self_service: bool,
    /// Roles whose content this role may read besides those of lower authority.
    pub can_read: BTreeSet<String>,
}

/// Why a [`RolePolicy`] or a role name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy defines more than [`MAX_ROLES`] roles.
    #[error("the policy defines {count} roles, over the limit of {max}")]
    TooManyRoles {
        /// How many roles it defines.
        count: usize,
        /// The limit, [`MAX_ROLES`].
        max: usize,
    },
    /// A role name is empty, too long, reserved or has a character outside `[A-Za-z0-9_-]`.
    #[error("role name {name:?} is invalid: {reason}")]
    InvalidRoleName {
        /// The name (at most the first 80 bytes).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A role's `can_read` names a role the policy does not define.
    #[error("role {role:?} can read role {unknown:?}, which the policy does not define")]
    UnknownReadableRole {
        /// The role whose `can_read` is wrong.
        role: String,
        /// The undefined role it names (at most the first 80 bytes).
        unknown: String,
    },
}

impl RolePolicy {
    /// The roles that may read content written under `role`: `role` itself, every role of higher
    /// authority, and every role whose `can_read` names `role`. Empty if the policy does not define
    /// `role` (nobody reads content of an undefined role).
    pub fn readers_of(&self, role: &str) -> BTreeSet<String> {
        let Some(def) = self.roles.get(role) else {
            return BTreeSet::new();
        };
        self.roles
            .iter()
            .filter(|(name, r)| name.as_str() == role || r.authority > def.authority || r.can_read.contains(role))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Checks the policy: at most [`MAX_ROLES`] roles, every name valid ([`validate_role_name`]),
    /// every `can_read` entry a role of the policy.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.roles.len() > MAX_ROLES {
            return Err(PolicyError::TooManyRoles {
                count: self.roles.len(),
                max: MAX_ROLES,
            });
        }
        for (name, def) in &self.roles {
            validate_role_name(name)?;
            if let Some(unknown) = def.can_read.iter().find(|r| !self.roles.contains_key(r.as_str())) {
                return Err(PolicyError::UnknownReadableRole {
                    role: name.clone(),
                    unknown: excerpt(unknown),
                });
            }
        }
        Ok(())
    }
}

/// Checks a role name: 1 to [`MAX_ROLE_NAME_LEN`] characters of `[A-Za-z0-9_-]`, not
/// [`RESERVED_ROLE_NAME`]. Valid names never contain NUL, so they can prefix sled keys.
pub fn validate_role_name(name: &str) -> Result<(), PolicyError> {
    let invalid = |reason| PolicyError::InvalidRoleName {
        name: excerpt(name),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_ROLE_NAME_LEN {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(invalid("it has a character other than A-Z, a-z, 0-9, '_' and '-'"));
    }
    if name == RESERVED_ROLE_NAME {
        return Err(invalid("\"any\" is reserved for wildcards"));
    }
    Ok(())
}

/// At most the first 80 bytes of `s` (cut at a character boundary), for error messages that quote
/// caller-supplied names.
pub(super) fn excerpt(s: &str) -> String {
    if s.len() <= EXCERPT_LEN {
        return s.to_owned();
    }
    let mut end = EXCERPT_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A node's X25519 key for receiving sealed role keys, bound to its peer id by a signature of its
/// identity key (checked by the admin before proposing; stored as opaque bytes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyBindingRecord {
    /// The node's libp2p peer id bytes.
    pub peer_id: Vec<u8>,
    /// The node's static X25519 public key.
    pub x25519_public: [u8; 32],
    /// The identity key's signature over the binding.
    pub signature: Vec<u8>,
}

/// Who decided a role grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GrantSource {
    /// The admin, because the policy marks the role self-service.
    Auto,
    /// An operator.
    Operator,
    /// The admin, because the node's certificate (signed by the cluster CA) lists the role.
    Certificate,
}

/// A role held by a node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrantRecord {
    /// The role.
    pub role: String,
    /// The node's libp2p peer id bytes.
    pub peer_id: Vec<u8>,
    /// Who granted it.
    pub source: GrantSource,
    /// When it was first granted, in milliseconds since the Unix epoch (from the command).
    pub granted_at_ms: u64,
}

/// One key epoch of a role: the epoch's key sealed to each member's X25519 key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleEpochRecord {
    /// The role.
    pub role: String,
    /// The epoch number; a role's epochs are 1, 2, ... and the highest is current.
    pub epoch: u64,
    /// The epoch's public key (X25519): writers wrap data keys to it; members hold the secret.
    pub public_key: [u8; 32],
    /// The sealed epoch key of each member, by peer id bytes.
    pub sealed: BTreeMap<Vec<u8>, Vec<u8>>,
    /// When the epoch was created, in milliseconds since the Unix epoch (from the command).
    pub created_at_ms: u64,
}

/// A new version of an address, as proposed by [`Command::AppendVersion`](super::Command).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewVersion {
    /// The DHT key of the version's record, [`RECORD_KEY_LEN`] bytes; unique in the index.
    pub record_key: Vec<u8>,
    /// The author's peer id bytes.
    pub author: Vec<u8>,
    /// When it was written, in milliseconds since the Unix epoch (from the writer).
    pub time_ms: u64,
    /// Size of the content, in bytes.
    pub size: u64,
    /// The role it was written under.
    pub role: String,
    /// The key epoch of that role it is encrypted for.
    pub epoch: u64,
    /// Whether this version deletes the content.
    pub tombstone: bool,
}

/// One version in the index of an address: the version number and what the writer proposed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionEntry {
    /// The version number: 1 for the first version of an address, then one more each time.
    pub version: u64,
    /// The record key, author, time, size, role, epoch and tombstone flag of the version.
    pub written: NewVersion,
}

impl VersionEntry {
    /// The entry `new` becomes as version `version`.
    pub fn new(version: u64, new: NewVersion) -> Self {
        Self { version, written: new }
    }
}

/// One record the version index refers to, for the replication checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    /// The record's DHT key.
    pub record_key: Vec<u8>,
    /// The address it is a version of.
    pub address: String,
    /// Its version number.
    pub version: u64,
    /// The role it was written under.
    pub role: String,
    /// The key epoch it is encrypted for.
    pub epoch: u64,
}

/// Checks a context address: 1 to [`MAX_ADDRESS_LEN`] bytes, no NUL.
pub(super) fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("address is empty".to_owned());
    }
    if address.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "address is {} bytes, over the {MAX_ADDRESS_LEN} byte limit",
            address.len()
        ));
    }
    if address.contains('\0') {
        return Err(format!("address {:?} contains a NUL byte", excerpt(address)));
    }
    Ok(())
}

/// Checks a peer id named `what` in a command: 1 to [`MAX_PEER_ID_LEN`] bytes.
pub(super) fn check_peer_id(what: &str, peer_id: &[u8]) -> Result<(), String> {
    if peer_id.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if peer_id.len() > MAX_PEER_ID_LEN {
        return Err(format!(
            "{what} is {} bytes, over the {MAX_PEER_ID_LEN} byte limit",
            peer_id.len()
        ));
    }
    Ok(())
}

/// Checks a byte string named `what` is at most `max` bytes.
pub(super) fn check_len(what: &str, bytes: &[u8], max: usize) -> Result<(), String> {
    if bytes.len() > max {
        return Err(format!("{what} is {} bytes, over the {max} byte limit", bytes.len()));
    }
    Ok(())
}

/// The key `prefix` ‖ `0x00` ‖ `rest`; `None` if `prefix` is empty or contains NUL (then the first
/// NUL would not split the key unambiguously).
pub(super) fn prefixed_key(prefix: &str, rest: &[u8]) -> Option<Vec<u8>> {
    if prefix.is_empty() || prefix.contains('\0') {
        return None;
    }
    let mut key = Vec::with_capacity(prefix.len() + 1 + rest.len());
    key.extend_from_slice(prefix.as_bytes());
    key.push(0);
    key.extend_from_slice(rest);
    Some(key)
}

/// Splits a key written by [`prefixed_key`] of `tree` into its prefix and the rest.
pub(super) fn split_prefixed_key<'k>(tree: &str, raw: &'k [u8]) -> Result<(String, &'k [u8]), StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt {
        tree: tree.to_owned(),
        what: format!("key {raw:?} {what}"),
    };
    let nul = raw
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| corrupt("has no NUL separator"))?;
    let prefix = String::from_utf8(raw[..nul].to_vec()).map_err(|_| corrupt("has a prefix that is not UTF-8"))?;
    Ok((prefix, &raw[nul + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy of `(name, authority, can_read)` roles.
    fn policy(roles: &[(&str, u32, &[&str])]) -> RolePolicy {
        RolePolicy {
            roles: roles
                .iter()
                .map(|(name, authority, can_read)| {
                    let def = RoleDef {
                        authority: *authority,
                        self_service: false,
                        can_read: can_read.iter().map(|r| (*r).to_owned()).collect(),
                    };
                    ((*name).to_owned(), def)
                })
                .collect(),
        }
    }

    /// The set of `names`.
    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    /// Readers of a role are the role, every role of higher authority and every role that lists
    /// it in `can_read`; not roles of equal or lower authority that do not list it.
    #[test]
    fn readers_of_follows_authority_and_can_read() {
        let p = policy(&[
            ("admin", 100, &[]),
            ("lead", 50, &[]),
            ("dev", 10, &[]),
            ("qa", 10, &["dev"]),
            ("intern", 1, &["dev", "qa"]),
            ("ops", 10, &[]),
        ]);
        let got = p.readers_of("dev");
        assert_eq!(
            got,
            set(&["admin", "dev", "intern", "lead", "qa"]),
            "expected dev read by itself, higher authority and its can_read roles, got {got:?}"
        );
        let got = p.readers_of("admin");
        assert_eq!(got, set(&["admin"]), "expected only admin to read admin, got {got:?}");
        let got = p.readers_of("intern");
        assert_eq!(
            got,
            set(&["admin", "dev", "intern", "lead", "ops", "qa"]),
            "expected every role of higher authority to read intern, got {got:?}"
        );
        let got = p.readers_of("nope");
        assert!(got.is_empty(), "expected no readers of an undefined role, got {got:?}");
    }

    /// A valid policy passes; each kind of problem is reported with what is wrong.
    #[test]
    fn validate_reports_each_problem() {
        assert_eq!(policy(&[("a-b_C9", 1, &[]), ("x", 2, &["a-b_C9"])]).validate(), Ok(()));
        assert_eq!(
            RolePolicy::default().validate(),
            Ok(()),
            "expected an empty policy valid"
        );
        let cases: &[(RolePolicy, &str)] = &[
            (policy(&[("any", 1, &[])]), "reserved"),
            (policy(&[("", 1, &[])]), "empty"),
            (policy(&[("a b", 1, &[])]), "character"),
            (policy(&[("a\0b", 1, &[])]), "character"),
            (policy(&[(&"r".repeat(65), 1, &[])]), "longer than 64"),
            (
                policy(&[("dev", 1, &["ghost"])]),
                "\"ghost\", which the policy does not define",
            ),
        ];
        for (p, expect) in cases {
            let got = p.validate().map_err(|e| e.to_string());
            assert!(
                got.as_ref().is_err_and(|msg| msg.contains(expect)),
                "expected an error containing {expect:?} for {p:?}, got {got:?}"
            );
        }
        let names: Vec<String> = (0..=MAX_ROLES).map(|i| format!("r{i}")).collect();
        let too_many = policy(&names.iter().map(|n| (n.as_str(), 1, &[][..])).collect::<Vec<_>>());
        assert_eq!(
            too_many.validate(),
            Err(PolicyError::TooManyRoles { count: 257, max: 256 }),
            "expected 257 roles refused"
        );
        let exactly = policy(
            &names[..MAX_ROLES]
                .iter()
                .map(|n| (n.as_str(), 1, &[][..]))
                .collect::<Vec<_>>(),
        );
        assert_eq!(exactly.validate(), Ok(()), "expected 256 roles accepted");
    }

    /// Long names are quoted in error messages by their first 80 bytes, cut at a char boundary.
    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(100);
        let got = excerpt(&long);
        assert!(
            got.len() <= EXCERPT_LEN + 3,
            "expected at most 83 bytes, got {}",
            got.len()
        );
        assert!(got.ends_with("..."), "expected an ellipsis, got {got:?}");
    }

    /// Prefixed keys split back into prefix and rest; a prefix with NUL or empty is refused.
    #[test]
    fn prefixed_keys_round_trip() -> Result<(), StorageError> {
        let key = prefixed_key("dev", &[0, 1, 0]).ok_or(StorageError::InvalidConfig {
            what: "expected a key".to_owned(),
        })?;
        let (prefix, rest) = split_prefixed_key("t", &key)?;
        assert_eq!((prefix.as_str(), rest), ("dev", &[0u8, 1, 0][..]));
        assert_eq!(prefixed_key("a\0b", b"x"), None, "expected a NUL prefix refused");
        assert_eq!(prefixed_key("", b"x"), None, "expected an empty prefix refused");
        assert!(split_prefixed_key("t", b"no-separator").is_err(), "expected corrupt");
        Ok(())
    }
}
