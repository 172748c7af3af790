//! The admin's role duties: registering members' role requests, grants by operators, the roles
//! view, and the duty that creates role keys and seals them to every member allowed to read.

use super::*;
use crate::context::{REGISTRATION_BURST, REGISTRATIONS_PER_SECOND};

/// Most grants or pending requests one roles answer lists.
const MAX_LISTED: usize = 10_000;

/// How often the roles duty reconciles when nothing wakes it.
const ROLES_INTERVAL: Duration = Duration::from_millis(500);

fn pending_key(role: &str, peer: &PeerId) -> String {
    format!("{role}/{peer}")
}

/// A node registers its key binding and asks for roles. With admission on, the roles its
/// certificate lists are granted at once and others wait for an operator; on an open mesh,
/// self-service roles are granted at once.
pub(crate) async fn register(
    service: &ContextService,
    peer: PeerId,
    r: RegisterMember,
) -> Result<context_response::Body, ContextError> {
    if !service.inner.registrations.allow(&peer) {
        return Err(ContextError::unavailable(format!(
            "registration rate limit: at most {REGISTRATIONS_PER_SECOND} a second per peer (bursts of {REGISTRATION_BURST}); retry later"
        )));
    }
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
    // With admission on, the certificate decides: a role it lists is granted, any other waits
    // for an operator, whatever the policy's self-service flag says (self-service applies only
    // on an open mesh, where no certificate exists).
    let admission = &service.inner.admission;
    let certificate = if admission.enabled() {
        Some(admission.certificate_of(&peer).ok_or_else(|| {
            ContextError::forbidden("no valid certificate of this cluster: roles follow the certificate")
        })?)
    } else {
        None
    };
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
        let automatic = match &certificate {
            Some(cert) => cert.leaf.has_role(role).then_some(GrantSource::Certificate),
            None => def.self_service.then_some(GrantSource::Auto),
        };
        if sm.grant(role, &peer_bytes)?.is_some() {
            status.granted.push(role.clone());
        } else if let Some(source) = automatic {
            propose(
                &raft,
                term,
                Command::GrantRole {
                    role: role.clone(),
                    peer_id: peer_bytes.clone(),
                    source,
                    at_ms: now_unix_ms(),
                },
            )
            .await?;
            tracing::info!(%peer, %role, ?source, "role granted");
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
                        value: now_unix_ms().to_be_bytes().to_vec(),
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
            at_ms: now_unix_ms(),
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
                GrantSource::Certificate => "certificate",
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
    // One role that cannot be reconciled (its key does not open here, a bound is reached) must
    // not stop the others, nor one member the others of its role (H6): each is tried, and the
    // first error is reported after all were.
    let mut first_error = super::join::seed_token(service, &sm, ctx).await.err();
    for role in policy.roles.keys() {
        if let Err(e) = reconcile_role(service, &sm, ctx, role, &custodians, &reseal).await {
            tracing::debug!(%role, error = %e, "role not reconciled");
            first_error.get_or_insert(ContextError::new(e.code, format!("role {role}: {}", e.message)));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Creates epoch 1 of `role` if it has none, else seals its current key to every custodian and
/// member that lacks it (or is in `reseal`). A member whose seal is refused does not stop the
/// others.
async fn reconcile_role(
    service: &ContextService,
    sm: &SledStateMachine,
    ctx: &DutyContext,
    role: &str,
    custodians: &BTreeSet<Vec<u8>>,
    reseal: &BTreeSet<Vec<u8>>,
) -> Result<(), ContextError> {
    let (raft, term) = (&ctx.raft, ctx.term);
    let mut targets: BTreeMap<Vec<u8>, [u8; 32]> = BTreeMap::new();
    for peer in custodians.iter().cloned().chain(sm.members_of(role)?) {
        if let Some(b) = sm.key_binding(&peer)? {
            targets.insert(peer, b.x25519_public);
        }
    }
    let Some(epoch) = sm.current_epoch(role)? else {
        let key = RoleKey::generate();
        let mut sealed = BTreeMap::new();
        for (peer, public) in &targets {
            sealed.insert(peer.clone(), seal_for(&key, role, 1, peer, public)?);
        }
        propose(
            raft,
            term,
            Command::SetRoleEpoch {
                role: role.to_owned(),
                epoch: 1,
                public_key: *key.public().as_bytes(),
                sealed,
                at_ms: now_unix_ms(),
            },
        )
        .await?;
        tracing::info!(%role, holders = targets.len(), "role key epoch 1 created");
        return Ok(());
    };
    let Some(record) = sm.role_epoch(role, epoch)? else {
        return Ok(());
    };
    let missing: Vec<(&Vec<u8>, &[u8; 32])> = targets
        .iter()
        .filter(|(peer, _)| !record.sealed.contains_key(*peer) || reseal.contains(*peer))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let key = open_own(service, sm, role, epoch)?;
    let mut first_error = None;
    for (peer, public) in missing {
        let added = match seal_for(&key, role, epoch, peer, public) {
            Ok(sealed) => {
                propose(
                    raft,
                    term,
                    Command::AddSealedKey {
                        role: role.to_owned(),
                        epoch,
                        peer_id: peer.clone(),
                        sealed,
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = added {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
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
