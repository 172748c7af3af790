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
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;
use prost::Message;

use super::metrics::ErrorComponent;
use super::{ContextError, ContextService, MAX_DISCOVER, MAX_HISTORY, MAX_REQUESTED_ROLES};
use crate::consensus::Raft;
use crate::consensus::duties::DutyContext;
use crate::crypto::{KeyBinding, RoleKey, seal_role_key};

/// Cluster key-value namespace of role requests waiting for an operator: key `role/peer`,
/// value the request time (8 bytes, big endian, ms since the Unix epoch).
pub(crate) const ROLE_REQUESTS: &str = "role_requests";
/// Default number of versions in a history answer.
const DEFAULT_HISTORY: u32 = 100;
/// Default number of addresses in a discover answer.
const DEFAULT_DISCOVER: u32 = 100;

pub(crate) mod join;
mod roles;

pub(crate) use roles::{grant, register, roles_duty, roles_view};

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
