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

pub mod admin;
mod error;
pub mod holder;
pub mod members;
pub mod metrics;
pub mod replication;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bzzz_protocol::ucxl::{Address, UcxlCode};
use bzzz_protocol::wire::{
    ContextRequest, ContextResponse, DiscoverQuery, HistoryQuery, RpcRequest, VersionInfo, context_request,
    context_response, rpc_request, rpc_response,
};
use bzzz_storage::raft::RolePolicy;
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ContextService {
    /// Creates the service and starts its tasks (the member loop; the admin duties are
    /// registered on `duties`).
    pub fn start(
        args: ContextArgs,
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
        tracker.spawn(members::member_loop(service.clone(), shutdown));
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

    /// Handles one inbound context request on its own task (bounded by [`MAX_INBOUND`]).
    pub fn handle_inbound(&self, tracker: &TaskTracker, inbound: InboundContext) {
        let InboundContext { peer, request, channel } = inbound;
        let me = self.clone();
        let permit = self.inner.inbound.clone().try_acquire_owned().ok();
        tracker.spawn(async move {
            let response = match permit {
                Some(_permit) => me.dispatch(peer, request).await,
                None => Err(ContextError::unavailable(
                    "node is busy with other context requests; retry",
                )),
            };
            let body = match response {
                Ok(body) => body,
                Err(e) => context_response::Body::Error(e.to_wire()),
            };
            let response = bzzz_protocol::wire::RpcResponse {
                body: Some(rpc_response::Body::Context(ContextResponse { body: Some(body) })),
            };
            if let Err(e) = me.inner.client.respond_rpc(channel, response).await {
                tracing::debug!(%peer, error = %e, "context response not sent");
            }
        });
    }

    /// Answers a request from `peer` (this node itself when it is the admin calling itself).
    pub(crate) async fn dispatch(
        &self,
        peer: PeerId,
        request: ContextRequest,
    ) -> Result<context_response::Body, ContextError> {
        use context_request::Body as Q;
        match request.body {
            Some(Q::Store(record)) => holder::store(self, peer, record).await,
            Some(Q::Fetch(key)) => holder::fetch(self, &key).await,
            Some(Q::Holds(keys)) => holder::holds(self, keys).await,
            Some(Q::Roles(_)) => admin::roles_view(self, peer),
            Some(Q::Register(r)) => admin::register(self, peer, r).await,
            Some(Q::Append(record)) => admin::append(self, peer, record).await,
            Some(Q::Resolve(address)) => admin::resolve(self, &address).await,
            Some(Q::History(q)) => admin::history(self, q).await,
            Some(Q::Discover(q)) => admin::discover(self, q).await,
            Some(Q::Grant(g)) => admin::grant(self, g).await,
            Some(Q::CheckReplication(r)) => replication::check_now(self, r).await,
            None => Err(ContextError::bad_request("empty or unknown context request")),
        }
    }

    /// Sends `body` to `peer` (or answers it here if `peer` is this node), within `timeout`.
    pub(crate) async fn request(
        &self,
        peer: PeerId,
        body: context_request::Body,
        timeout: Duration,
    ) -> Result<context_response::Body, ContextError> {
        let request = ContextRequest { body: Some(body) };
        if peer == self.inner.peer_id {
            return Box::pin(self.dispatch(peer, request)).await;
        }
        let rpc = RpcRequest {
            body: Some(rpc_request::Body::Context(request)),
        };
        let answer = tokio::time::timeout(timeout, self.inner.client.send_rpc(peer, rpc))
            .await
            .map_err(|_| ContextError::new(UcxlCode::Timeout, format!("{peer} did not answer within {timeout:?}")))??;
        match answer.body {
            Some(rpc_response::Body::Context(ContextResponse {
                body: Some(context_response::Body::Error(e)),
            })) => Err(ContextError::from_wire(&e)),
            Some(rpc_response::Body::Context(ContextResponse { body: Some(body) })) => Ok(body),
            Some(rpc_response::Body::Error(e)) => Err(ContextError::unavailable(format!(
                "{peer} refused the request: {} {}",
                e.code, e.message
            ))),
            _ => Err(ContextError::internal(format!(
                "{peer} sent an answer of the wrong type"
            ))),
        }
    }

    /// Sends `body` to the admin, retrying (another admin, a restarting one) until the request
    /// timeout. Errors the admin decided on (anything but unavailable or timeout) return at once.
    pub(crate) async fn ask_admin(&self, body: context_request::Body) -> Result<context_response::Body, ContextError> {
        let deadline = Instant::now() + Duration::from_millis(self.inner.config.request_timeout_ms);
        let mut delay = Duration::from_millis(25);
        loop {
            let status = self.inner.consensus.status();
            let admin = if status.is_admin {
                Some(self.inner.peer_id)
            } else {
                status
                    .admin
                    .as_deref()
                    .and_then(|a| a.parse::<PeerId>().ok())
                    .filter(|_| self.inner.consensus.admin_is_fresh())
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let err = match admin {
                Some(peer) => match self
                    .request(peer, body.clone(), left.max(Duration::from_millis(1)))
                    .await
                {
                    Ok(answer) => return Ok(answer),
                    Err(e) if matches!(e.code, UcxlCode::ServiceUnavailable | UcxlCode::Timeout) => e,
                    Err(e) => return Err(e),
                },
                None => ContextError::unavailable("no admin is known; the cluster is electing one or still forming"),
            };
            if Instant::now() + delay >= deadline || self.inner.shutdown.is_cancelled() {
                return Err(err);
            }
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Err(ContextError::unavailable("the node is shutting down")),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_millis(500));
        }
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

    fn count<T>(&self, op: Operation, result: &Result<T, ContextError>) {
        let outcome = match result {
            Ok(_) => ContextOutcome::Success,
            Err(e) => e.outcome(),
        };
        self.inner.metrics.operation(op, outcome);
    }

    async fn write(&self, address: &str, content: Vec<u8>, tombstone: bool) -> Result<PutResult, ContextError> {
        let addr = Address::parse(address)?;
        if addr.is_pattern() {
            return Err(ContextError::new(
                UcxlCode::InvalidAddress,
                "a write needs a concrete address; `any` is only for discover",
            ));
        }
        if addr.temporal().is_some() {
            return Err(ContextError::new(
                UcxlCode::TemporalInvalid,
                "a write cannot name a version: the index assigns the next one",
            ));
        }
        let base = addr.to_string();
        let role = addr.role().to_owned();
        let content_limit = self.inner.max_record_bytes.saturating_sub(64 * 1024);
        if content.len() > content_limit {
            return Err(ContextError::new(
                UcxlCode::PayloadTooLarge,
                format!(
                    "content of {} bytes exceeds the limit of {content_limit} bytes",
                    content.len()
                ),
            ));
        }
        let sealed = {
            let plan = self.write_plan(&role).await?;
            let identity = self.inner.identity.clone();
            let base = base.clone();
            tokio::task::spawn_blocking(move || {
                let readers: Vec<crate::crypto::record::Reader<'_>> =
                    plan.readers.iter().map(|(r, e, k)| (r.as_str(), *e, k)).collect();
                crate::crypto::seal_record(
                    &content,
                    &crate::crypto::record::NewRecord {
                        address: &base,
                        role: &role,
                        epoch: plan.epoch,
                        created_ms: now_ms(),
                        tombstone,
                    },
                    &readers,
                    &identity,
                )
                .map(|r| prost::Message::encode_to_vec(&r))
            })
            .await
            .map_err(|e| ContextError::internal(format!("sealing task failed: {e}")))??
        };
        let record_key = crate::crypto::record::record_key(&sealed);
        let replicas = holder::replicate(self, &record_key, sealed.clone()).await?;
        let answer = self.ask_admin(context_request::Body::Append(sealed)).await?;
        let context_response::Body::Version(v) = answer else {
            return Err(ContextError::internal("admin answered an append with the wrong type"));
        };
        Ok(PutResult {
            address: base,
            version: v.version,
            record_key: hex::encode(record_key),
            duplicate: v.duplicate,
            replicas,
            tombstone,
        })
    }

    /// The epoch of `role` and the readers (role, epoch, public key) a record written for it is
    /// wrapped to. Refreshes the view once if this node does not (yet) hold the role.
    async fn write_plan(&self, role: &str) -> Result<WritePlan, ContextError> {
        for attempt in 0..2 {
            {
                let view = self.read_view();
                if view.granted.contains(role) {
                    let Some((epoch, _)) = view.epochs.get(role) else {
                        return Err(ContextError::unavailable(format!(
                            "role {role} has no key yet; the admin creates it shortly"
                        )));
                    };
                    let readers = view
                        .policy
                        .readers_of(role)
                        .into_iter()
                        .filter_map(|r| view.epochs.get(&r).map(|(e, k)| (r, *e, *k)))
                        .collect();
                    return Ok(WritePlan { epoch: *epoch, readers });
                }
                if attempt == 1 {
                    let why = if view.pending.contains(role) {
                        " (asked for; waits for an operator grant)"
                    } else {
                        ""
                    };
                    return Err(ContextError::forbidden(format!(
                        "this node does not hold role {role}{why}, so it cannot write under it"
                    )));
                }
            }
            members::refresh(self).await?;
        }
        Err(ContextError::internal("unreachable write plan state"))
    }

    async fn read(&self, address: &str) -> Result<GetResult, ContextError> {
        let addr = Address::parse(address)?;
        if addr.is_pattern() {
            return Err(ContextError::new(
                UcxlCode::InvalidAddress,
                "a read needs a concrete address; use discover for patterns",
            ));
        }
        let answer = self.ask_admin(context_request::Body::Resolve(addr.to_string())).await?;
        let context_response::Body::Version(v) = answer else {
            return Err(ContextError::internal("admin answered a resolve with the wrong type"));
        };
        let version = version_view(&v);
        if v.tombstone {
            return Err(ContextError::not_found(format!(
                "{} was deleted at version {}",
                v.address, v.version
            )));
        }
        let key: [u8; 32] = v
            .record_key
            .as_slice()
            .try_into()
            .map_err(|_| ContextError::internal("admin sent a record key that is not 32 bytes"))?;
        let verified = holder::fetch_verified(self, &key).await?;
        for attempt in 0..2 {
            let opened = {
                let view = self.read_view();
                crate::crypto::open_verified(&verified, &v.address, &view.keys)
            };
            match opened {
                Ok(o) => {
                    return Ok(GetResult {
                        version,
                        opened_role: o.opened_role,
                        content: o.content,
                    });
                }
                Err(e) if e.kind() == crate::crypto::ErrorKind::Forbidden && attempt == 0 => {
                    members::refresh(self).await?;
                }
                Err(e) => {
                    if e.kind() != crate::crypto::ErrorKind::Forbidden {
                        self.inner.metrics.decrypt_failure();
                    }
                    return Err(e.into());
                }
            }
        }
        Err(ContextError::internal("unreachable read state"))
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
        let answer = self
            .ask_admin(context_request::Body::History(HistoryQuery {
                address: addr.base().to_string(),
                limit,
            }))
            .await?;
        let context_response::Body::History(h) = answer else {
            return Err(ContextError::internal(
                "admin answered a history query with the wrong type",
            ));
        };
        Ok(History {
            address: addr.base().to_string(),
            total: h.total,
            versions: h.versions.iter().map(version_view).collect(),
        })
    }

    /// Addresses matching `pattern` (with `any` wildcards), each with its latest version.
    pub async fn discover(&self, pattern: &str, limit: u32) -> Result<Discovered, ContextError> {
        let p = Address::parse(pattern)?;
        let answer = self
            .ask_admin(context_request::Body::Discover(DiscoverQuery {
                pattern: p.base().to_string(),
                limit,
            }))
            .await?;
        let context_response::Body::Discover(d) = answer else {
            return Err(ContextError::internal(
                "admin answered a discover query with the wrong type",
            ));
        };
        Ok(Discovered {
            pattern: p.base().to_string(),
            addresses: d.latest.iter().map(version_view).collect(),
            truncated: d.truncated,
        })
    }

    /// The cluster's roles, grants and pending requests, from the admin.
    pub async fn roles(&self) -> Result<bzzz_protocol::wire::RolesView, ContextError> {
        match self.ask_admin(context_request::Body::Roles(Default::default())).await? {
            context_response::Body::Roles(r) => Ok(r),
            _ => Err(ContextError::internal(
                "admin answered a roles query with the wrong type",
            )),
        }
    }

    /// Grants `role` to `peer` (an operator action; `token` is the operator token the caller
    /// presented, checked by the admin).
    pub async fn grant(&self, role: &str, peer: PeerId, token: Option<String>) -> Result<(), ContextError> {
        let body = context_request::Body::Grant(bzzz_protocol::wire::GrantRequest {
            role: role.to_owned(),
            peer_id: peer.to_bytes(),
            operator_token: token.unwrap_or_default(),
        });
        match self.ask_admin(body).await? {
            context_response::Body::Ok(_) => Ok(()),
            _ => Err(ContextError::internal("admin answered a grant with the wrong type")),
        }
    }

    /// Asks the admin to run its replication check (and repair) now, and returns the report of
    /// a check that started after the request (an operator action; `token` is the operator token
    /// the caller presented, checked by the admin). Waits at most `context.request_timeout_ms`
    /// per attempt.
    pub async fn check_replication_now(&self, token: Option<String>) -> Result<replication::Report, ContextError> {
        let body = context_request::Body::CheckReplication(bzzz_protocol::wire::ReplicationCheckRequest {
            operator_token: token.unwrap_or_default(),
        });
        match self.ask_admin(body).await? {
            context_response::Body::Replication(r) => Ok(replication::report_from_wire(&r)),
            _ => Err(ContextError::internal(
                "admin answered a replication check with the wrong type",
            )),
        }
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
            replication: if self.inner.consensus.status().is_admin {
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
                    .is_some_and(|(e, _)| crate::crypto::record::RoleKeyLookup::role_key(&view.keys, r, *e).is_some())
            })
    }

    /// The admin's last replication report, if this node is the admin.
    pub fn replication_report(&self) -> Option<replication::Report> {
        if !self.inner.consensus.status().is_admin {
            return None;
        }
        self.inner.replication.read().ok().and_then(|r| r.clone())
    }

    pub(crate) fn read_view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.inner.view.read().unwrap_or_else(|p| p.into_inner())
    }
}

struct WritePlan {
    epoch: u64,
    readers: Vec<(String, u64, RolePublicKey)>,
}
