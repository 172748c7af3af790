//! The member side of roles and keys: every node registers its key binding and the roles it asks
//! for with the admin, then fetches the policy, the key epochs and its sealed role keys from a
//! voter and opens them with its keyring.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bzzz_protocol::wire::{RegisterMember, RolesView};
use bzzz_storage::raft::{RoleDef, RolePolicy};
use tokio_util::sync::CancellationToken;

use super::metrics::ErrorComponent;
use super::{ContextError, ContextService, View};
use crate::crypto::{RoleKeySet, RolePublicKey};

/// How often a node that has everything it asked for re-checks (new epochs, new grants).
const SETTLED_INTERVAL: Duration = Duration::from_secs(10);
/// How often a node that still waits for something retries.
const UNSETTLED_INTERVAL: Duration = Duration::from_millis(500);

/// Registers and refreshes until shutdown: quickly while something is missing, then every
/// [`SETTLED_INTERVAL`], and at once when a read or write asks for it.
pub(crate) async fn member_loop(service: ContextService, shutdown: CancellationToken) {
    let mut settled = false;
    loop {
        let wait = if settled { SETTLED_INTERVAL } else { UNSETTLED_INTERVAL };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = service.inner.refresh.notified() => {}
        }
        let round = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = register_and_refresh(&service) => r,
        };
        settled = match round {
            Ok(settled) => settled,
            Err(e) => {
                tracing::debug!(error = %e, "role registration or refresh failed; retrying");
                false
            }
        };
    }
}

/// Registers (if needed) and refreshes the view now; used by reads and writes that found a role
/// or key missing.
pub(crate) async fn refresh(service: &ContextService) -> Result<(), ContextError> {
    register_and_refresh(service).await.map(|_| ())
}

/// One round: register with the admin, fetch the roles view, open the sealed keys. Returns
/// whether the node has a decision on every role it asked for and a key for every role it holds.
async fn register_and_refresh(service: &ContextService) -> Result<bool, ContextError> {
    let inner = &service.inner;
    let binding = inner
        .keyring
        .bind(&inner.identity)
        .map_err(|e| ContextError::internal(format!("cannot sign the key binding: {e}")))?;
    service
        .ask(RegisterMember {
            binding: Some(binding.to_wire()),
            roles: inner.requested_roles.clone(),
        })
        .await?;
    let view = service.roles().await?;
    let settled = apply_view(service, &view);
    Ok(settled)
}

/// Replaces the node's view with `roles` and opens the keys sealed to it. Returns whether
/// every granted role's current key is held and no requested role is undecided.
fn apply_view(service: &ContextService, roles: &RolesView) -> bool {
    let inner = &service.inner;
    let me = inner.peer_id.to_bytes();
    let mut policy = RolePolicy::default();
    let mut epochs = BTreeMap::new();
    for r in &roles.roles {
        policy.roles.insert(
            r.name.clone(),
            RoleDef {
                authority: r.authority,
                self_service: r.self_service,
                can_read: r.can_read.iter().cloned().collect(),
            },
        );
        if r.epoch > 0
            && let Ok(public) = <[u8; 32]>::try_from(r.public_key.as_slice())
        {
            epochs.insert(r.name.clone(), (r.epoch, RolePublicKey::from_bytes(public)));
            inner.metrics.role_key_epoch(&r.name, r.epoch);
        }
    }
    let granted: BTreeSet<String> = roles
        .grants
        .iter()
        .filter(|g| g.peer_id == me)
        .map(|g| g.role.clone())
        .collect();
    let pending: BTreeSet<String> = roles
        .pending
        .iter()
        .filter(|p| p.peer_id == me)
        .map(|p| p.role.clone())
        .collect();
    let mut keys = RoleKeySet::new();
    for s in &roles.sealed {
        // A voter also holds every role's key as a custodian (so any admin can seal keys to new
        // members); the API reads only with the roles granted to this node.
        if !granted.contains(&s.role) {
            continue;
        }
        let Some(sealed) = &s.sealed else { continue };
        match inner.keyring.open_role_key(sealed, &s.role, s.epoch, &inner.peer_id) {
            Ok(k) => keys.insert(s.role.clone(), s.epoch, k),
            Err(e) => {
                inner.metrics.error(ErrorComponent::Context);
                tracing::warn!(role = %s.role, epoch = s.epoch, error = %e, "a role key sealed to this node does not open");
            }
        }
    }
    let all_keys = granted.iter().all(|role| {
        epochs
            .get(role)
            .is_some_and(|(e, _)| crate::crypto::RoleKeyLookup::role_key(&keys, role, *e).is_some())
    });
    let decided = inner
        .requested_roles
        .iter()
        .all(|r| granted.contains(r) || pending.contains(r));
    let mut view = inner.view.write().unwrap_or_else(|p| p.into_inner());
    *view = View {
        policy,
        epochs,
        granted,
        pending,
        keys,
        refreshed: Some(Instant::now()),
    };
    roles.has_policy && all_keys && decided
}
