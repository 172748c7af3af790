//! The request and response bodies of every endpoint of a node's HTTP API: the one definition of
//! the API contract. The daemon serialises these types, [`crate::ApiClient`] deserialises them.
//!
//! Every field is serialised exactly as the node sends it; a test in `bzzz-tests`
//! (`t21_api_contract`) fetches every endpoint of a live mesh and checks that each answer parses
//! into its type and serialises back to the same JSON.

pub mod context;
pub mod error;
pub mod health;
pub mod node;
pub mod ops;
pub mod roles;
pub mod selftest;

pub use context::{ContextRead, ContextStatus, Discovered, History, PutResult, ReplicationReport, VersionView};
pub use error::{ErrorBody, ErrorEnvelope};
pub use health::{CheckResult, HealthChecks, HealthReport, HealthStatus, HealthSummary, Liveness, Readiness};
pub use node::{
    CertificateSummary, ElectionStatus, ElectionTriggered, JoinState, JoinStatus, JoinTokenCreate, JoinTokenInfo,
    JoinTokenList, NodeMode, NodeStatus, PeerInfo, PeerList, RaftRole, RevocationApplied, RevocationSubmit,
    SecurityStatus,
};
pub use ops::{CacheClearReport, PeersCleared, ReloadReport, ReplicationCheck, ReprovideReport};
pub use roles::{GrantRequest, PendingRequest, RoleGrant, RoleGranted, RoleInfo, RolesView};
pub use selftest::{
    ContextRoundTrip, DhtTestReport, DhtTestRequest, P2pTestRequest, ProbeReceipt, ProbeReport, RecordPut,
};
