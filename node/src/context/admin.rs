//! The admin side of context: the version index (append, linearizable resolve, history,
//! discover), admission of members (key bindings, self-service grants, pending requests,
//! operator grants) and the roles-and-keys duty that seeds the policy and creates and seals role
//! keys. Voters also answer roles queries (with the asking node's sealed keys) from their copy of
//! the state.
//!
//! Key custody: every role key is sealed to the role's members *and* to every voter, so whichever
//! voter becomes admin can open it and seal it to new members.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bzzz_protocol::ucxl::{Address, UcxlCode};
use bzzz_protocol::wire::{
    ContextOk, DiscoverQuery, DiscoverView, GrantInfo, GrantRequest, HistoryQuery, HistoryView, MemberStatus,
    MySealedKey, PendingInfo, RegisterMember, RoleInfo, RolesView, SealedRoleKey, VersionInfo, context_response,
};
use bzzz_storage::raft::{
    Command, GrantSource, NewVersion, Request, Response, SledStateMachine, VersionEntry, validate_role_name,
};
use libp2p::PeerId;
use prost::Message;

use super::metrics::ErrorComponent;
use super::{ContextError, ContextService, MAX_DISCOVER, MAX_HISTORY, MAX_REQUESTED_ROLES, now_ms};
use crate::consensus::Raft;
use crate::consensus::duties::DutyContext;
use crate::crypto::{KeyBinding, RoleKey, seal_role_key};

/// Cluster key-value namespace of role requests waiting for an operator: key `role/peer`,
/// value the request time (8 bytes, big endian, ms since the Unix epoch).
pub const ROLE_REQUESTS: &str = "role_requests";
/// Most grants or pending requests one roles answer lists.
const MAX_LISTED: usize = 10_000;
/// How often the roles duty reconciles when nothing wakes it.
const ROLES_INTERVAL: Duration = Duration::from_millis(500);
/// Default number of versions in a history answer.
const DEFAULT_HISTORY: u32 = 100;
/// Default number of addresses in a discover answer.
const DEFAULT_DISCOVER: u32 = 100;

/// The admin's Raft handle, state machine and term, or `UCXL-503` if this node is not the
/// acting admin.
fn acting(service: &ContextService) -> Result<(Raft, SledStateMachine, u64), ContextError> {
    let c = &service.inner.consensus;
    if !c.status().is_admin {
        return Err(ContextError::unavailable("this node is not the admin"));
    }
    let (Some(raft), Some(sm)) = (c.raft(), c.state_machine()) else {
        return Err(ContextError::unavailable("this node is not a voter"));
    };
    let term = raft.metrics().borrow().current_term;
    Ok((raft.clone(), sm.clone(), term))
}

/// Proposes `command` in `term` and returns the state machine's answer; a rejection is an error.
async fn propose(raft: &Raft, term: u64, command: Command) -> Result<Response, ContextError> {
    let written = raft
        .client_write(Request::new(command, term))
        .await
        .map_err(|e| ContextError::unavailable(format!("cluster state not written: {e}")))?;
    match written.data {
        Response::Rejected { reason } => Err(ContextError::internal(format!(
            "cluster state refused the change: {reason}"
        ))),
        r => Ok(r),
    }
}

fn version_info(address: &str, e: &VersionEntry, latest: u64) -> VersionInfo {
    VersionInfo {
        address: address.to_owned(),
        version: e.version,
        record_key: e.written.record_key.clone(),
        author: e.written.author.clone(),
        time_ms: e.written.time_ms,
        size: e.written.size,
        role: e.written.role.clone(),
        epoch: e.written.epoch,
        tombstone: e.written.tombstone,
        latest,
        duplicate: false,
    }
}

fn pending_key(role: &str, peer: &PeerId) -> String {
    format!("{role}/{peer}")
}

/// A node registers its key binding and asks for roles: self-service roles are granted at once,
/// others wait for an operator.
pub(crate) async fn register(
    service: &ContextService,
    peer: PeerId,
    r: RegisterMember,
) -> Result<context_response::Body, ContextError> {
    let (raft, sm, term) = acting(service)?;
    let wire = r
        .binding
        .ok_or_else(|| ContextError::bad_request("registration without a key binding"))?;
    let binding = KeyBinding::from_wire(&wire).map_err(|e| ContextError::bad_request(format!("key binding: {e}")))?;
    if binding.peer_id != peer {
        return Err(ContextError::forbidden("the key binding is for another peer"));
    }
    if r.roles.len() > MAX_REQUESTED_ROLES {
        return Err(ContextError::bad_request(format!(
            "{} roles asked for, at most {MAX_REQUESTED_ROLES}",
            r.roles.len()
        )));
    }
    let policy = sm
        .role_policy()?
        .ok_or_else(|| ContextError::unavailable("the cluster has no role policy yet; the admin is writing it"))?;
    let peer_bytes = peer.to_bytes();
    let existing = sm.key_binding(&peer_bytes)?;
    if existing
        .as_ref()
        .is_none_or(|b| b.x25519_public != binding.x25519_public || b.signature != binding.signature)
    {
        if existing.is_some() {
            // A new keyring: the keys sealed to the old one must be sealed again.
            service
                .inner
                .reseal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(peer_bytes.clone());
        }
        propose(
            &raft,
            term,
            Command::RegisterKeyBinding {
                peer_id: peer_bytes.clone(),
                x25519_public: binding.x25519_public,
                signature: binding.signature.clone(),
            },
        )
        .await?;
        service.inner.roles_changed.notify_one();
    }
    let mut status = MemberStatus::default();
    let asked: BTreeSet<&String> = r.roles.iter().collect();
    for role in asked {
        validate_role_name(role).map_err(|e| ContextError::bad_request(format!("role {role:?}: {e}")))?;
        let Some(def) = policy.roles.get(role.as_str()) else {
            return Err(ContextError::bad_request(format!(
                "role {role} is not in the cluster's policy (roles: {})",
                policy.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        if sm.grant(role, &peer_bytes)?.is_some() {
            status.granted.push(role.clone());
        } else if def.self_service {
            propose(
                &raft,
                term,
                Command::GrantRole {
                    role: role.clone(),
                    peer_id: peer_bytes.clone(),
                    source: GrantSource::Auto,
                    at_ms: now_ms(),
                },
            )
            .await?;
            tracing::info!(%peer, %role, "self-service role granted");
            service.inner.roles_changed.notify_one();
            status.granted.push(role.clone());
        } else {
            let key = pending_key(role, &peer);
            if sm.kv_get(ROLE_REQUESTS, &key)?.is_none() {
                propose(
                    &raft,
                    term,
                    Command::SetKv {
                        namespace: ROLE_REQUESTS.into(),
                        key,
                        value: now_ms().to_be_bytes().to_vec(),
                    },
                )
                .await?;
                tracing::info!(%peer, %role, "role requested; waits for an operator grant");
            }
            status.pending.push(role.clone());
        }
    }
    Ok(context_response::Body::Member(status))
}

/// An operator grants a role (forwarded by the node whose API the operator called).
pub(crate) async fn grant(service: &ContextService, g: GrantRequest) -> Result<context_response::Body, ContextError> {
    let (raft, sm, term) = acting(service)?;
    if !service.inner.operator_token.allows(Some(&g.operator_token)) {
        return Err(ContextError::new(
            UcxlCode::Unauthorized,
            "the operator token is missing or wrong",
        ));
    }
    let peer = PeerId::from_bytes(&g.peer_id).map_err(|_| ContextError::bad_request("peer_id is not a peer id"))?;
    validate_role_name(&g.role).map_err(|e| ContextError::bad_request(format!("role {:?}: {e}", g.role)))?;
    let policy = sm
        .role_policy()?
        .ok_or_else(|| ContextError::unavailable("the cluster has no role policy yet"))?;
    if !policy.roles.contains_key(&g.role) {
        return Err(ContextError::bad_request(format!(
            "role {} is not in the cluster's policy",
            g.role
        )));
    }
    propose(
        &raft,
        term,
        Command::GrantRole {
            role: g.role.clone(),
            peer_id: peer.to_bytes(),
            source: GrantSource::Operator,
            at_ms: now_ms(),
        },
    )
    .await?;
    propose(
        &raft,
        term,
        Command::DeleteKv {
            namespace: ROLE_REQUESTS.into(),
            key: pending_key(&g.role, &peer),
        },
    )
    .await?;
    tracing::info!(%peer, role = %g.role, "role granted by an operator");
    service.inner.roles_changed.notify_one();
    Ok(context_response::Body::Ok(ContextOk {}))
}

/// The policy, epochs, grants, pending requests and the asking node's sealed keys, from this
/// voter's copy of the state.
pub(crate) fn roles_view(service: &ContextService, peer: PeerId) -> Result<context_response::Body, ContextError> {
    let sm = service
        .inner
        .consensus
        .state_machine()
        .ok_or_else(|| ContextError::unavailable("this node is not a voter"))?;
    let mut view = RolesView::default();
    let Some(policy) = sm.role_policy()? else {
        return Ok(context_response::Body::Roles(view));
    };
    view.has_policy = true;
    let peer_bytes = peer.to_bytes();
    for (name, def) in &policy.roles {
        let epoch = sm.current_epoch(name)?.unwrap_or(0);
        let public_key = match epoch {
            0 => Vec::new(),
            e => sm
                .role_epoch(name, e)?
                .map(|r| r.public_key.to_vec())
                .unwrap_or_default(),
        };
        view.roles.push(RoleInfo {
            name: name.clone(),
            authority: def.authority,
            self_service: def.self_service,
            can_read: def.can_read.iter().cloned().collect(),
            epoch,
            public_key,
        });
        for e in 1..=epoch {
            if let Some(bytes) = sm.sealed_key(name, e, &peer_bytes)? {
                let sealed = SealedRoleKey::decode(bytes.as_slice()).map_err(|err| {
                    ContextError::internal(format!("sealed key of {name} epoch {e} does not decode: {err}"))
                })?;
                view.sealed.push(MySealedKey {
                    role: name.clone(),
                    epoch: e,
                    sealed: Some(sealed),
                });
            }
        }
    }
    for g in sm.grants()?.into_iter().take(MAX_LISTED) {
        view.grants.push(GrantInfo {
            role: g.role,
            peer_id: g.peer_id,
            source: match g.source {
                GrantSource::Auto => "auto",
                GrantSource::Operator => "operator",
            }
            .into(),
            granted_at_ms: g.granted_at_ms,
        });
    }
    for (key, value) in sm.kv_list(ROLE_REQUESTS, MAX_LISTED)? {
        let Some((role, peer)) = key.split_once('/') else {
            continue;
        };
        let Ok(peer) = peer.parse::<PeerId>() else { continue };
        if sm.grant(role, &peer.to_bytes())?.is_some() {
            continue;
        }
        view.pending.push(PendingInfo {
            role: role.to_owned(),
            peer_id: peer.to_bytes(),
            requested_at_ms: value.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0),
        });
    }
    Ok(context_response::Body::Roles(view))
}

/// The author of a stored record asks for it to become the next version of its address.
pub(crate) async fn append(
    service: &ContextService,
    peer: PeerId,
    record: Vec<u8>,
) -> Result<context_response::Body, ContextError> {
    let (raft, sm, term) = acting(service)?;
    let max = service.inner.max_record_bytes;
    let verified = tokio::task::spawn_blocking(move || super::holder::validate_record(&record, max))
        .await
        .map_err(|e| ContextError::internal(format!("validation task failed: {e}")))?
        .map_err(|reason| ContextError::bad_request(format!("record refused: {reason}")))?;
    if verified.author() != peer {
        return Err(ContextError::forbidden(
            "only a record's author may append it to the index",
        ));
    }
    if !verified.keys_signed_by_author() {
        return Err(ContextError::forbidden(
            "a new record's key list must be signed by its author",
        ));
    }
    let header = verified.header();
    if sm.grant(&header.role, &peer.to_bytes())?.is_none() {
        return Err(ContextError::forbidden(format!(
            "{peer} does not hold role {}, so it cannot write under it",
            header.role
        )));
    }
    let current = sm.current_epoch(&header.role)?.unwrap_or(0);
    if header.epoch == 0 || header.epoch > current {
        return Err(ContextError::bad_request(format!(
            "record written under key epoch {} of role {}, whose current epoch is {current}",
            header.epoch, header.role
        )));
    }
    let entry = NewVersion {
        record_key: verified.record_key().to_vec(),
        author: peer.to_bytes(),
        time_ms: header.created_ms,
        size: verified.ciphertext_len() as u64,
        role: header.role.clone(),
        epoch: header.epoch,
        tombstone: header.tombstone,
    };
    let address = header.address.clone();
    let answer = propose(
        &raft,
        term,
        Command::AppendVersion {
            address: address.clone(),
            entry: entry.clone(),
        },
    )
    .await?;
    let Response::Version { version, duplicate } = answer else {
        return Err(ContextError::internal("the index answered an append without a version"));
    };
    let mut info = version_info(&address, &VersionEntry::new(version, entry), version);
    info.duplicate = duplicate;
    Ok(context_response::Body::Version(info))
}

/// Waits until this admin's state machine has applied everything committed before the call.
/// Within the admin's lease this is a lease read: wait until the state machine has applied the
/// last entry of the admin's own log (no other admin can have committed anything since). Outside
/// it, openraft confirms leadership with a quorum round first.
async fn linearize(service: &ContextService, raft: &Raft) -> Result<(), ContextError> {
    if let Some(index) = service.inner.consensus.lease_read_index() {
        let applied = raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0);
        if applied >= index {
            return Ok(());
        }
        let timeout = Duration::from_millis(service.inner.config.request_timeout_ms);
        return raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "lease read")
            .await
            .map(|_| ())
            .map_err(|e| ContextError::unavailable(format!("the index did not catch up: {e}")));
    }
    raft.ensure_linearizable()
        .await
        .map(|_| ())
        .map_err(|e| ContextError::unavailable(format!("cannot read the index linearizably: {e}")))
}

/// Resolves an address (and its temporal part) to one version, linearizably.
pub(crate) async fn resolve(service: &ContextService, address: &str) -> Result<context_response::Body, ContextError> {
    let addr = Address::parse(address)?;
    if addr.is_pattern() {
        return Err(ContextError::new(
            UcxlCode::InvalidAddress,
            "a read needs a concrete address; use discover for patterns",
        ));
    }
    let (raft, sm, _) = acting(service)?;
    linearize(service, &raft).await?;
    let base = addr.base().to_string();
    let latest = sm
        .latest_version(&base)?
        .ok_or_else(|| ContextError::not_found(format!("nothing is stored at {base}")))?;
    let n = latest.version;
    let target = match addr.temporal() {
        None => n,
        Some(t) => {
            let n32 = u32::try_from(n).unwrap_or(u32::MAX);
            t.resolve(n32)
                .map(u64::from)
                .ok_or_else(|| ContextError::not_found(format!("{base} has {n} versions; {t} names none of them")))?
        }
    };
    let entry = if target == n {
        latest
    } else {
        sm.version(&base, target)?
            .ok_or_else(|| ContextError::internal(format!("version {target} of {base} is missing from the index")))?
    };
    Ok(context_response::Body::Version(version_info(&base, &entry, n)))
}

/// The newest versions of an address, oldest first, linearizably.
pub(crate) async fn history(service: &ContextService, q: HistoryQuery) -> Result<context_response::Body, ContextError> {
    let addr = Address::parse(&q.address)?;
    if addr.is_pattern() {
        return Err(ContextError::new(
            UcxlCode::InvalidAddress,
            "history needs a concrete address",
        ));
    }
    let limit = match q.limit {
        0 => DEFAULT_HISTORY,
        l if l > MAX_HISTORY => {
            return Err(ContextError::bad_request(format!("limit {l} is above {MAX_HISTORY}")));
        }
        l => l,
    } as usize;
    let (raft, sm, _) = acting(service)?;
    linearize(service, &raft).await?;
    let base = addr.base().to_string();
    let versions = sm.versions(&base)?;
    let total = versions.len() as u64;
    let skip = versions.len().saturating_sub(limit);
    Ok(context_response::Body::History(HistoryView {
        versions: versions[skip..].iter().map(|e| version_info(&base, e, total)).collect(),
        total,
    }))
}

/// The addresses matching a pattern, each with its latest version, linearizably.
pub(crate) async fn discover(
    service: &ContextService,
    q: DiscoverQuery,
) -> Result<context_response::Body, ContextError> {
    let pattern = Address::parse(&q.pattern)?.base();
    let limit = match q.limit {
        0 => DEFAULT_DISCOVER,
        l if l > MAX_DISCOVER => {
            return Err(ContextError::bad_request(format!("limit {l} is above {MAX_DISCOVER}")));
        }
        l => l,
    } as usize;
    let (raft, sm, _) = acting(service)?;
    linearize(service, &raft).await?;
    let mut view = DiscoverView::default();
    for row in sm.addresses() {
        let (address, _) = row?;
        let Ok(parsed) = Address::parse(&address) else {
            service.inner.metrics.error(ErrorComponent::Context);
            continue;
        };
        if !parsed.matches(&pattern) {
            continue;
        }
        if view.latest.len() == limit {
            view.truncated = true;
            break;
        }
        if let Some(latest) = sm.latest_version(&address)? {
            view.latest.push(version_info(&address, &latest, latest.version));
        }
    }
    Ok(context_response::Body::Discover(view))
}

/// The roles-and-keys duty: while admin, seed the policy if the cluster has none, keep this
/// node's own key binding registered, create epoch 1 of every role, and seal each role's current
/// key to its members and to every voter.
pub(crate) async fn roles_duty(service: ContextService, ctx: DutyContext) {
    let mut tick = tokio::time::interval(ROLES_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => return,
            _ = tick.tick() => {}
            _ = service.inner.roles_changed.notified() => {}
        }
        match reconcile(&service, &ctx).await {
            Ok(()) => last_error = None,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "roles and keys not reconciled; retrying");
                }
                last_error = Some(msg);
            }
        }
    }
}

async fn reconcile(service: &ContextService, ctx: &DutyContext) -> Result<(), ContextError> {
    let inner = &service.inner;
    let sm = inner
        .consensus
        .state_machine()
        .ok_or_else(|| ContextError::unavailable("the admin has no state machine"))?
        .clone();
    let (raft, term) = (&ctx.raft, ctx.term);
    if sm.role_policy()?.is_none() {
        propose(
            raft,
            term,
            Command::SetRolePolicy {
                policy: inner.policy_seed.clone(),
            },
        )
        .await?;
        tracing::info!(
            roles = inner.policy_seed.roles.len(),
            "role policy seeded from this node's config"
        );
    }
    let me = inner.peer_id.to_bytes();
    let own = inner
        .keyring
        .bind(&inner.identity)
        .map_err(|e| ContextError::internal(format!("cannot sign this node's key binding: {e}")))?;
    if sm
        .key_binding(&me)?
        .is_none_or(|b| b.x25519_public != own.x25519_public)
    {
        propose(
            raft,
            term,
            Command::RegisterKeyBinding {
                peer_id: me.clone(),
                x25519_public: own.x25519_public,
                signature: own.signature.clone(),
            },
        )
        .await?;
    }
    let custodians: BTreeSet<Vec<u8>> = {
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id))
            .filter_map(|n| n.peer_id.parse::<PeerId>().ok())
            .map(|p| p.to_bytes())
            .collect()
    };
    let reseal: BTreeSet<Vec<u8>> = std::mem::take(&mut *inner.reseal.lock().unwrap_or_else(|p| p.into_inner()));
    let Some(policy) = sm.role_policy()? else {
        return Ok(());
    };
    for role in policy.roles.keys() {
        let mut targets: BTreeMap<Vec<u8>, [u8; 32]> = BTreeMap::new();
        for peer in custodians.iter().cloned().chain(sm.members_of(role)?) {
            if let Some(b) = sm.key_binding(&peer)? {
                targets.insert(peer, b.x25519_public);
            }
        }
        match sm.current_epoch(role)? {
            None => {
                let key = RoleKey::generate();
                let mut sealed = BTreeMap::new();
                for (peer, public) in &targets {
                    sealed.insert(peer.clone(), seal_for(&key, role, 1, peer, public)?);
                }
                propose(
                    raft,
                    term,
                    Command::SetRoleEpoch {
                        role: role.clone(),
                        epoch: 1,
                        public_key: *key.public().as_bytes(),
                        sealed,
                        at_ms: now_ms(),
                    },
                )
                .await?;
                tracing::info!(%role, holders = targets.len(), "role key epoch 1 created");
            }
            Some(epoch) => {
                let Some(record) = sm.role_epoch(role, epoch)? else {
                    continue;
                };
                let missing: Vec<(&Vec<u8>, &[u8; 32])> = targets
                    .iter()
                    .filter(|(peer, _)| !record.sealed.contains_key(*peer) || reseal.contains(*peer))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let key = open_own(service, &sm, role, epoch)?;
                for (peer, public) in missing {
                    let sealed = seal_for(&key, role, epoch, peer, public)?;
                    propose(
                        raft,
                        term,
                        Command::AddSealedKey {
                            role: role.clone(),
                            epoch,
                            peer_id: peer.clone(),
                            sealed,
                        },
                    )
                    .await?;
                }
            }
        }
    }
    Ok(())
}

fn seal_for(key: &RoleKey, role: &str, epoch: u64, peer: &[u8], public: &[u8; 32]) -> Result<Vec<u8>, ContextError> {
    let peer =
        PeerId::from_bytes(peer).map_err(|_| ContextError::internal("a key binding names an invalid peer id"))?;
    seal_role_key(key, role, epoch, &peer, public)
        .map(|s| s.encode_to_vec())
        .map_err(|e| ContextError::internal(format!("cannot seal role {role} to {peer}: {e}")))
}

/// The admin's own copy of a role key, opened with its keyring.
fn open_own(service: &ContextService, sm: &SledStateMachine, role: &str, epoch: u64) -> Result<RoleKey, ContextError> {
    let inner = &service.inner;
    let bytes = sm.sealed_key(role, epoch, &inner.peer_id.to_bytes())?.ok_or_else(|| {
        ContextError::unavailable(format!(
            "this admin holds no copy of role {role} epoch {epoch} yet (the previous admin seals one to every voter)"
        ))
    })?;
    let sealed = SealedRoleKey::decode(bytes.as_slice())
        .map_err(|e| ContextError::internal(format!("sealed key of {role} does not decode: {e}")))?;
    inner
        .keyring
        .open_role_key(&sealed, role, epoch, &inner.peer_id)
        .map_err(|e| ContextError::internal(format!("this admin's copy of role {role} does not open: {e}")))
}
