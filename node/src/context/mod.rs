//! Context: UCXL-addressed records, encrypted per role, stored on R DHT holders, versioned
//! through Raft (DESIGN 6–7, ADRs 0006, 0008 and 0009).
//!
//! Every node runs one [`ContextService`]:
//! - **member**: it registers its X25519 key binding and requested role with the admin, and
//!   fetches the role policy, the key epochs and the role keys sealed to it ([`members`]);
//! - **holder**: it validates and keeps the records peers ask it to hold, and serves them
//!   ([`holder`]);
//! - **writer and reader**: `put` seals a record, stores it on the R holders nearest its key and
//!   then asks the admin to append it to the address's version index; `get` resolves the version
//!   on the admin, fetches the record (this node first, then the nearest holders, then the DHT's
//!   providers), verifies it and decrypts it with this node's role keys;
//! - **admin** (while it is the Raft leader): it answers index queries linearizably, admits
//!   members, creates and seals role keys, and checks and repairs replication ([`admin`],
//!   [`replication`]).
//!
//! Requests between nodes are [`ContextRequest`]s on `/bzzz/rpc/1`; the sender's peer id comes
//! from the transport and is what every authorisation check uses.

mod access;
pub(crate) mod admin;
mod error;
pub(crate) mod holder;
pub(crate) mod members;
pub(crate) mod metrics;
pub(crate) mod replication;
mod rpc;
mod validator;

pub use validator::ContextRecordValidator;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bzzz_protocol::ucxl::{Address, UcxlCode};
use bzzz_protocol::wire::{
    ContextRequest, ContextResponse, DiscoverQuery, HistoryQuery, RpcRequest, VersionInfo, context_request,
    context_response, rpc_request, rpc_response,
};
use bzzz_storage::raft::RolePolicy;
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;
use libp2p::identity::Keypair;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::ContextError;

use crate::config::ContextConfig;
use crate::consensus::Consensus;
use crate::crypto::{Keyring, RoleKeySet, RolePublicKey};
use crate::network::{Client, InboundContext};
pub use metrics::ContextMetrics;
use metrics::{ContextOutcome, Operation};

/// Most context requests from peers handled at once; more are answered `UCXL-503`.
pub const MAX_INBOUND: usize = 64;
/// Most roles a node may ask for.
pub const MAX_REQUESTED_ROLES: usize = 8;
/// Most versions one history answer lists.
pub const MAX_HISTORY: u32 = 1000;
/// Most addresses one discover answer lists.
pub const MAX_DISCOVER: u32 = 1000;
/// Most record keys in one holds query.
pub const MAX_HOLDS_KEYS: usize = 1024;

/// What a node knows of the cluster's roles, from a voter, and the role keys it could open.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// The cluster policy (empty until the admin seeded it).
    pub policy: RolePolicy,
    /// Current epoch and public key per role (roles without an epoch yet are absent).
    pub epochs: BTreeMap<String, (u64, RolePublicKey)>,
    /// Roles granted to this node.
    pub granted: BTreeSet<String>,
    /// Roles this node asked for that wait for an operator.
    pub pending: BTreeSet<String>,
    /// Role keys this node holds.
    pub keys: RoleKeySet,
    /// When the view was last refreshed.
    pub refreshed: Option<Instant>,
}

/// Registrations one peer may send the admin per second (a member registers twice a second
/// while it waits for a decision, and at once when a read finds a key missing).
pub const REGISTRATIONS_PER_SECOND: f64 = 4.0;
/// Registrations one peer may send in a burst.
pub const REGISTRATION_BURST: f64 = 20.0;
/// Peers whose registration rate the admin tracks at once.
const MAX_REGISTERING_PEERS: usize = 16_384;

/// Everything [`ContextService::start`] needs.
pub struct ContextArgs {
    /// Network handle.
    pub client: Client,
    /// The election (admin discovery, the Raft handle and state machine on voters).
    pub consensus: Consensus,
    /// This node's X25519 keyring.
    pub keyring: Keyring,
    /// Context settings.
    pub config: ContextConfig,
    /// Roles this node asks for (`agent.role`).
    pub requested_roles: Vec<String>,
    /// The policy the admin seeds the cluster with if it has none.
    pub policy_seed: RolePolicy,
    /// The operator token in force (checked on grants and forwarded operator requests).
    pub operator_token: crate::auth::OperatorAuth,
    /// Largest record accepted, in bytes.
    pub max_record_bytes: usize,
    /// The context service's metrics.
    pub metrics: ContextMetrics,
    /// Certificates: on the admin, the roles a node's certificate lists are the roles it gets.
    pub admission: Arc<crate::admission::Admission>,
}

impl std::fmt::Debug for ContextArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextArgs")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub client: Client,
    pub consensus: Consensus,
    pub keyring: Keyring,
    pub identity: Keypair,
    pub peer_id: PeerId,
    pub config: ContextConfig,
    pub requested_roles: Vec<String>,
    pub policy_seed: RolePolicy,
    pub operator_token: crate::auth::OperatorAuth,
    pub max_record_bytes: usize,
    pub metrics: ContextMetrics,
    pub admission: Arc<crate::admission::Admission>,
    /// On the admin: registrations per peer (each may grow the replicated state).
    pub registrations: crate::ratelimit::PeerLimiter,
    pub view: RwLock<View>,
    /// Wakes the member loop (e.g. a read found no key for a role it should hold).
    pub refresh: Notify,
    /// Wakes the admin's roles duty (a new member, a new grant).
    pub roles_changed: Notify,
    /// Peers whose key binding changed: the roles duty re-seals their keys.
    pub reseal: std::sync::Mutex<BTreeSet<Vec<u8>>>,
    pub inbound: Arc<Semaphore>,
    pub replication: RwLock<Option<replication::Report>>,
    /// Wakes the admin's replication duty for a check now.
    pub recheck: Notify,
    /// Replication checks started and finished on this node.
    pub checks: replication::CheckCounter,
    /// The node's service tasks (background copies run here, so shutdown waits for them).
    pub tracker: TaskTracker,
    /// Cancelled at shutdown: retries stop.
    pub shutdown: CancellationToken,
}

/// The context service of a node. Cheap to clone.
#[derive(Clone)]
pub struct ContextService {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ContextService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextService")
            .field("peer_id", &self.inner.peer_id)
            .finish_non_exhaustive()
    }
}

/// A version from the index, as the API shows it.
pub(crate) fn version_view(v: &VersionInfo) -> VersionView {
    VersionView {
        address: v.address.clone(),
        version: v.version,
        record_key: hex::encode(&v.record_key),
        author: PeerId::from_bytes(&v.author)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| hex::encode(&v.author)),
        time_ms: v.time_ms,
        size: v.size,
        role: v.role.clone(),
        epoch: v.epoch,
        tombstone: v.tombstone,
        latest: v.latest,
    }
}

/// A decrypted read.
#[derive(Clone, Serialize)]
pub struct GetResult {
    /// The version read.
    pub version: VersionView,
    /// The role whose key opened it.
    pub opened_role: String,
    /// The content.
    #[serde(skip)]
    pub content: Vec<u8>,
}

impl std::fmt::Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult")
            .field("version", &self.version)
            .field("content_len", &self.content.len())
            .finish()
    }
}

pub use bzzz_client::types::{ContextStatus, Discovered, History, PutResult, VersionView};

impl ContextService {
    /// Creates the service and starts its tasks (the member loop; the admin duties are
    /// registered on `duties`).
    /// Starts the service; it answers the context requests that arrive on `inbound` (the
    /// network's context queue) until `shutdown`.
    pub fn start(
        args: ContextArgs,
        mut inbound: tokio::sync::mpsc::Receiver<InboundContext>,
        duties: &crate::consensus::duties::DutyRegistry,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> ContextService {
        let identity = args.client.key.clone();
        let peer_id = args.client.local_peer_id();
        let service = ContextService {
            inner: Arc::new(Inner {
                client: args.client,
                consensus: args.consensus,
                keyring: args.keyring,
                identity,
                peer_id,
                config: args.config,
                requested_roles: args.requested_roles,
                policy_seed: args.policy_seed,
                operator_token: args.operator_token,
                max_record_bytes: args.max_record_bytes,
                metrics: args.metrics,
                admission: args.admission,
                registrations: crate::ratelimit::PeerLimiter::new(
                    REGISTRATIONS_PER_SECOND,
                    REGISTRATION_BURST,
                    MAX_REGISTERING_PEERS,
                ),
                view: RwLock::new(View::default()),
                refresh: Notify::new(),
                roles_changed: Notify::new(),
                reseal: std::sync::Mutex::new(BTreeSet::new()),
                inbound: Arc::new(Semaphore::new(MAX_INBOUND)),
                replication: RwLock::new(None),
                recheck: Notify::new(),
                checks: tokio::sync::watch::Sender::new((0, 0)),
                tracker: tracker.clone(),
                shutdown: shutdown.clone(),
            }),
        };
        service
            .inner
            .admission
            .set_redeemer(Arc::new(admin::join::ClusterRedeemer(Arc::downgrade(&service.inner))));
        crate::logging::spawn(
            tracker,
            "members",
            members::member_loop(service.clone(), shutdown.clone()),
        );
        {
            let service = service.clone();
            let requests = tracker.clone();
            crate::logging::spawn(tracker, "context-inbound", async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        request = inbound.recv() => match request {
                            Some(request) => service.handle_inbound(&requests, request),
                            None => break,
                        },
                    }
                }
            });
        }
        // The duty registry lives inside the consensus handle this service holds: the duties
        // keep only a weak reference, so a stopped node's state (and its sled database) is freed.
        {
            let weak = Arc::downgrade(&service.inner);
            duties.register("roles-and-keys", move |ctx| {
                let service = weak.upgrade().map(|inner| ContextService { inner });
                async move {
                    if let Some(s) = service {
                        admin::roles_duty(s, ctx).await;
                    }
                }
            });
        }
        {
            let weak = Arc::downgrade(&service.inner);
            duties.register("replication-check", move |ctx| {
                let service = weak.upgrade().map(|inner| ContextService { inner });
                async move {
                    if let Some(s) = service {
                        replication::duty(s, ctx).await;
                    }
                }
            });
        }
        service
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// Writes `content` at `address` (a concrete address without a version selector) and returns
    /// once the record is on the write quorum of holders and indexed.
    pub async fn put(&self, address: &str, content: Vec<u8>) -> Result<PutResult, ContextError> {
        let result = self.write(address, content, false).await;
        self.count(Operation::Put, &result);
        result
    }

    /// Deletes `address`: appends a tombstone version (history stays).
    pub async fn delete(&self, address: &str) -> Result<PutResult, ContextError> {
        let result = self.write(address, Vec::new(), true).await;
        self.count(Operation::Put, &result);
        result
    }

    /// Reads `address` (latest version, or the version its temporal part names).
    pub async fn get(&self, address: &str) -> Result<GetResult, ContextError> {
        let result = self.read(address).await;
        self.count(Operation::Get, &result);
        result
    }

    /// The newest `limit` versions of `address` (its temporal part, if any, is ignored).
    pub async fn history(&self, address: &str, limit: u32) -> Result<History, ContextError> {
        let addr = Address::parse(address)?;
        if addr.is_pattern() {
            return Err(ContextError::new(
                UcxlCode::InvalidAddress,
                "history needs a concrete address; use discover for patterns",
            ));
        }
        let h = self
            .ask(HistoryQuery {
                address: addr.base().to_string(),
                limit,
            })
            .await?;
        Ok(History {
            address: addr.base().to_string(),
            total: h.total,
            versions: h.versions.iter().map(version_view).collect(),
        })
    }

    /// Addresses matching `pattern` (with `any` wildcards), each with its latest version.
    pub async fn discover(&self, pattern: &str, limit: u32) -> Result<Discovered, ContextError> {
        let p = Address::parse(pattern)?;
        let d = self
            .ask(DiscoverQuery {
                pattern: p.base().to_string(),
                limit,
            })
            .await?;
        Ok(Discovered {
            pattern: p.base().to_string(),
            addresses: d.latest.iter().map(version_view).collect(),
            truncated: d.truncated,
        })
    }

    /// The cluster's roles, grants and pending requests, from the admin.
    pub async fn roles(&self) -> Result<bzzz_protocol::wire::RolesView, ContextError> {
        self.ask(bzzz_protocol::wire::RolesQuery::default()).await
    }

    /// Grants `role` to `peer` (an operator action; `token` is the operator token the caller
    /// presented, checked by the admin).
    pub async fn grant(&self, role: &str, peer: PeerId, token: Option<String>) -> Result<(), ContextError> {
        self.ask(bzzz_protocol::wire::GrantRequest {
            role: role.to_owned(),
            peer_id: peer.to_bytes(),
            operator_token: token.unwrap_or_default(),
        })
        .await
        .map(|_| ())
    }

    /// Asks the admin to run its replication check (and repair) now, and returns the report of
    /// a check that started after the request (an operator action; `token` is the operator token
    /// the caller presented, checked by the admin). Waits at most `context.request_timeout_ms`
    /// per attempt.
    pub async fn check_replication_now(&self, token: Option<String>) -> Result<replication::Report, ContextError> {
        let report = self
            .ask(bzzz_protocol::wire::ReplicationCheckRequest {
                operator_token: token.unwrap_or_default(),
            })
            .await?;
        Ok(replication::report_from_wire(&report))
    }

    /// This node's context status.
    pub fn status(&self) -> ContextStatus {
        let view = self.read_view();
        ContextStatus {
            peer_id: self.inner.peer_id.to_string(),
            roles: view.granted.iter().cloned().collect(),
            pending_roles: view.pending.iter().cloned().collect(),
            role_keys_held: view.keys.len(),
            epochs: view.epochs.iter().map(|(r, (e, _))| (r.clone(), *e)).collect(),
            view_age_ms: view.refreshed.map(|t| t.elapsed().as_millis() as u64),
            replication_factor: self.inner.config.replication_factor,
            write_quorum: self.inner.config.write_quorum,
            replication: if self.inner.consensus.is_admin() {
                self.inner.replication.read().ok().and_then(|r| r.clone())
            } else {
                None
            },
        }
    }

    /// Verifies and decrypts raw record bytes (e.g. fetched from the DHT directly) for
    /// `address` with this node's role keys: what a node can read no matter how it got the bytes.
    pub fn open_raw(&self, bytes: &[u8], address: &str) -> Result<Vec<u8>, ContextError> {
        let verified = crate::crypto::verify_record(bytes, self.inner.max_record_bytes)?;
        let view = self.read_view();
        Ok(crate::crypto::open_verified(&verified, address, &view.keys)?.content)
    }

    /// Whether this node has a decision on the roles it asked for and the key of every role it
    /// holds (the member loop has settled).
    pub fn ready(&self) -> bool {
        let view = self.read_view();
        view.refreshed.is_some()
            && self
                .inner
                .requested_roles
                .iter()
                .all(|r| view.granted.contains(r) || view.pending.contains(r))
            && view.granted.iter().all(|r| {
                view.epochs
                    .get(r)
                    .is_some_and(|(e, _)| crate::crypto::RoleKeyLookup::role_key(&view.keys, r, *e).is_some())
            })
    }

    /// The admin's last replication report, if this node is the admin.
    pub fn replication_report(&self) -> Option<replication::Report> {
        if !self.inner.consensus.is_admin() {
            return None;
        }
        self.inner.replication.read().ok().and_then(|r| r.clone())
    }

    pub(crate) fn read_view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.inner.view.read().unwrap_or_else(|p| p.into_inner())
    }
}
