//! Context under `/ucxi/v1/`: encrypted, versioned content at UCXL addresses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Answer of `PUT /ucxi/v1/put` (HTTP 201) and `DELETE /ucxi/v1/delete` (HTTP 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResult {
    /// The canonical base address written.
    pub address: String,
    /// The version the write became.
    pub version: u64,
    /// The record key, hex.
    pub record_key: String,
    /// True if the index already held this record (a retried write).
    pub duplicate: bool,
    /// Holders that acknowledged the record before the write returned.
    pub replicas: usize,
    /// True for a delete (tombstone version).
    pub tombstone: bool,
}

/// One version of an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionView {
    /// Canonical base address.
    pub address: String,
    /// Version number, from 1.
    pub version: u64,
    /// Record key, hex.
    pub record_key: String,
    /// Author peer id.
    pub author: String,
    /// Creation time at the author, ms since the Unix epoch.
    pub time_ms: u64,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// Writer's role.
    pub role: String,
    /// Writer's key epoch.
    pub epoch: u64,
    /// True if this version deletes the address.
    pub tombstone: bool,
    /// Versions the address had when this was read.
    pub latest: u64,
}

/// Answer of `GET /ucxi/v1/history` and `GET /ucxi/v1/navigate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Canonical base address.
    pub address: String,
    /// Versions the address has in all.
    pub total: u64,
    /// The newest versions, oldest first.
    pub versions: Vec<VersionView>,
}

/// Answer of `GET /ucxi/v1/discover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// The pattern as parsed, canonical.
    pub pattern: String,
    /// The latest version of each matching address.
    pub addresses: Vec<VersionView>,
    /// True if more addresses matched than were listed.
    pub truncated: bool,
}

/// Answer of `GET /ucxi/v1/get`: the decrypted content (the body) and the version it is, from
/// the `x-ucxl-*` response headers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextRead {
    /// Canonical base address (`x-ucxl-address`).
    pub address: String,
    /// The version read (`x-ucxl-version`).
    pub version: u64,
    /// Versions the address had when it was read (`x-ucxl-latest`).
    pub latest: u64,
    /// Author peer id (`x-ucxl-author`).
    pub author: String,
    /// Writer's role (`x-ucxl-role`).
    pub role: String,
    /// Creation time at the author, ms since the Unix epoch (`x-ucxl-created-ms`).
    pub created_ms: u64,
    /// Record key, hex (`x-ucxl-record-key`).
    pub record_key: String,
    /// The decrypted content.
    #[serde(skip)]
    pub content: Vec<u8>,
}

impl std::fmt::Debug for ContextRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextRead")
            .field("address", &self.address)
            .field("version", &self.version)
            .field("latest", &self.latest)
            .field("author", &self.author)
            .field("role", &self.role)
            .field("created_ms", &self.created_ms)
            .field("record_key", &self.record_key)
            .field("content_len", &self.content.len())
            .finish()
    }
}

/// Answer of `GET /ucxi/v1/status`: this node's context status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Roles granted to this node.
    pub roles: Vec<String>,
    /// Roles asked for that wait for an operator.
    pub pending_roles: Vec<String>,
    /// Role keys held ((role, epoch) pairs).
    pub role_keys_held: usize,
    /// Current key epoch of each role.
    pub epochs: BTreeMap<String, u64>,
    /// Milliseconds since the role view was refreshed from a voter.
    pub view_age_ms: Option<u64>,
    /// R: holders each record is stored on.
    pub replication_factor: u32,
    /// Copies a write waits for.
    pub write_quorum: u32,
    /// The admin's last replication check, if this node is the admin and ran one.
    pub replication: Option<ReplicationReport>,
}

/// The result of one replication check of the admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationReport {
    /// When it finished, ms since the Unix epoch.
    pub finished_at_ms: u64,
    /// How long it took, ms.
    pub took_ms: u64,
    /// Indexed records checked.
    pub records: usize,
    /// Nodes that answered.
    pub live_nodes: usize,
    /// Average live holders per record, before repair.
    pub average_replicas: f64,
    /// Records with fewer than R live holders, before repair.
    pub below_r_before: usize,
    /// Records still below R after repair.
    pub below_r: usize,
    /// Records no live node holds (lost until a holder returns).
    pub unavailable: usize,
    /// Copies made by this check.
    pub copies_made: usize,
    /// R.
    pub replication_factor: u32,
}
