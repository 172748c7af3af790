//! The replication check: while admin, every `context.repair_interval_ms`, ask every known node
//! which indexed records it holds, count the live holders of each record, and copy records whose
//! live holders fell below R to the nearest nodes that do not hold them.
//!
//! "Live" means the node answered this round's holds query; a node that is down or cut off holds
//! nothing this round. The check reads the index from the admin's state machine (every version of
//! every address) and asks in batches of [`MAX_HOLDS_KEYS`], so one round costs
//! `nodes × ceil(records / 1024)` requests.
//!
//! An operator can ask for a check now (`bzzz dht reprovide` → a `check_replication` request to
//! the admin): [`check_now`] wakes the duty and answers with the report of a check that started
//! after the request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bzzz_protocol::context::dht_key;
use bzzz_protocol::ucxl::UcxlCode;
use bzzz_protocol::wire::{RecordKeys, ReplicationCheckRequest, ReplicationReport, context_request, context_response};
use bzzz_storage::util::now_unix_ms;
use futures::future::join_all;
use libp2p::PeerId;

use super::holder::{per_peer_timeout, store_on};
use super::{ContextError, ContextService, MAX_HOLDS_KEYS};
use crate::consensus::duties::DutyContext;

/// The result of one replication check (the API's type: `/ucxi/v1/status`, `bzzz dht reprovide`).
pub(crate) use bzzz_client::types::ReplicationReport as Report;

/// The report as sent to the node that asked for the check.
pub(crate) fn report_to_wire(r: &Report) -> ReplicationReport {
    ReplicationReport {
        finished_at_ms: r.finished_at_ms,
        took_ms: r.took_ms,
        records: r.records as u64,
        live_nodes: r.live_nodes as u64,
        average_replicas: r.average_replicas,
        below_r_before: r.below_r_before as u64,
        below_r: r.below_r as u64,
        unavailable: r.unavailable as u64,
        copies_made: r.copies_made as u64,
        replication_factor: r.replication_factor,
    }
}

/// A report received from the admin.
pub(crate) fn report_from_wire(r: &ReplicationReport) -> Report {
    let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Report {
        finished_at_ms: r.finished_at_ms,
        took_ms: r.took_ms,
        records: n(r.records),
        live_nodes: n(r.live_nodes),
        average_replicas: r.average_replicas,
        below_r_before: n(r.below_r_before),
        below_r: n(r.below_r),
        unavailable: n(r.unavailable),
        copies_made: n(r.copies_made),
        replication_factor: r.replication_factor,
    }
}

/// Checks started and finished by this node's duty, numbered from 1: `(started, finished)`, where
/// `finished` is the number of the last check that finished.
pub(crate) type CheckCounter = tokio::sync::watch::Sender<(u64, u64)>;

/// Runs the check every repair interval while admin, and at once when an operator asks
/// ([`check_now`]).
pub(crate) async fn duty(service: ContextService, ctx: DutyContext) {
    let every = Duration::from_millis(service.inner.config.repair_interval_ms.max(100));
    // The first check waits one interval: a new admin's peers may still be (re)connecting.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.token.cancelled() => return,
            _ = tick.tick() => {}
            _ = service.inner.recheck.notified() => {
                tracing::info!("replication check requested by an operator");
            }
        }
        let mut number = 0;
        service.inner.checks.send_modify(|(started, _)| {
            *started += 1;
            number = *started;
        });
        let result = check(&service).await;
        service.inner.checks.send_modify(|(_, finished)| *finished = number);
        match result {
            Ok(report) => {
                service
                    .inner
                    .consensus
                    .set_replication_summary(bzzz_protocol::wire::ReplicationSummary {
                        records: report.records as u64,
                        average_replicas: report.average_replicas,
                        below_r: report.below_r as u64,
                        unavailable: report.unavailable as u64,
                        finished_at_ms: report.finished_at_ms,
                        replication_factor: report.replication_factor,
                    });
                if report.below_r > 0 || report.copies_made > 0 {
                    tracing::info!(
                        records = report.records,
                        below_r_before = report.below_r_before,
                        below_r = report.below_r,
                        copies = report.copies_made,
                        unavailable = report.unavailable,
                        "replication check"
                    );
                }
                *service.inner.replication.write().unwrap_or_else(|p| p.into_inner()) = Some(report);
            }
            Err(e) => tracing::warn!(error = %e, "replication check failed"),
        }
    }
}

/// Answers an operator's request for a check now: wakes the duty and waits (up to
/// `context.request_timeout_ms`) for a check that started after the request to finish.
pub(crate) async fn check_now(
    service: &ContextService,
    r: ReplicationCheckRequest,
) -> Result<context_response::Body, ContextError> {
    let inner = &service.inner;
    if !inner.consensus.is_admin() {
        return Err(ContextError::unavailable("this node is not the admin"));
    }
    if !inner.operator_token.allows(Some(&r.operator_token)) {
        return Err(ContextError::new(
            UcxlCode::Unauthorized,
            "the operator token is missing or wrong",
        ));
    }
    let mut checks = inner.checks.subscribe();
    let (started_before, _) = *checks.borrow_and_update();
    inner.recheck.notify_one();
    let timeout = Duration::from_millis(inner.config.request_timeout_ms);
    match tokio::time::timeout(timeout, checks.wait_for(|(_, finished)| *finished > started_before)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err(ContextError::unavailable("the node is shutting down")),
        Err(_) => {
            return Err(ContextError::new(
                UcxlCode::Timeout,
                format!("the replication check did not finish within {timeout:?}; it still runs, see the admin's log"),
            ));
        }
    }
    let report = inner.replication.read().unwrap_or_else(|p| p.into_inner()).clone();
    match report {
        Some(report) => Ok(context_response::Body::Replication(report_to_wire(&report))),
        None => Err(ContextError::unavailable(
            "the replication check failed; see the admin's log",
        )),
    }
}

/// One check and repair round.
pub(crate) async fn check(service: &ContextService) -> Result<Report, ContextError> {
    let started = Instant::now();
    let inner = &service.inner;
    let r = inner.config.replication_factor as usize;
    let sm = inner
        .consensus
        .state_machine()
        .ok_or_else(|| ContextError::unavailable("this node is not a voter"))?
        .clone();
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for row in sm.record_keys() {
        let row = row?;
        if let Ok(k) = <[u8; 32]>::try_from(row.record_key.as_slice()) {
            keys.push(k);
        }
    }
    keys.sort_unstable();
    keys.dedup();

    // Every node this one knows: itself and its routing table.
    let nodes = match keys.first() {
        Some(k) => inner.client.closest_peers(dht_key(k)).await?,
        None => vec![inner.peer_id],
    };
    let answers = join_all(nodes.iter().map(|peer| holdings(service, *peer, &keys))).await;
    let mut holders: BTreeMap<[u8; 32], BTreeSet<PeerId>> = BTreeMap::new();
    let mut live: BTreeSet<PeerId> = BTreeSet::new();
    for (peer, held) in nodes.iter().zip(answers) {
        let Some(held) = held else { continue };
        live.insert(*peer);
        for (key, has) in keys.iter().zip(held) {
            if has {
                holders.entry(*key).or_default().insert(*peer);
            }
        }
    }

    let mut total_replicas = 0usize;
    let mut below_before = 0usize;
    let mut below_after = 0usize;
    let mut unavailable = 0usize;
    let mut copies = 0usize;
    for key in &keys {
        let have: BTreeSet<PeerId> = holders.remove(key).unwrap_or_default();
        total_replicas += have.len();
        if have.len() >= r {
            continue;
        }
        below_before += 1;
        if have.is_empty() {
            unavailable += 1;
            below_after += 1;
            tracing::error!(record_key = %hex::encode(key), "no live node holds this context record");
            continue;
        }
        let made = repair(service, key, &have, &live, r).await;
        copies += made;
        inner.metrics.repairs(made as u64);
        if have.len() + made < r {
            below_after += 1;
        }
    }
    Ok(Report {
        finished_at_ms: now_unix_ms(),
        took_ms: started.elapsed().as_millis() as u64,
        records: keys.len(),
        live_nodes: live.len(),
        average_replicas: if keys.is_empty() {
            r as f64
        } else {
            total_replicas as f64 / keys.len() as f64
        },
        below_r_before: below_before,
        below_r: below_after,
        unavailable,
        copies_made: copies,
        replication_factor: inner.config.replication_factor,
    })
}

/// Which of `keys` `peer` holds, or `None` if it did not answer every batch.
async fn holdings(service: &ContextService, peer: PeerId, keys: &[[u8; 32]]) -> Option<Vec<bool>> {
    if peer == service.inner.peer_id {
        return service
            .inner
            .client
            .local_has(keys.iter().map(dht_key).collect())
            .await
            .ok();
    }
    let mut held = Vec::with_capacity(keys.len());
    // An empty index still probes liveness with one empty batch.
    let batches: Vec<&[[u8; 32]]> = if keys.is_empty() {
        vec![&[]]
    } else {
        keys.chunks(MAX_HOLDS_KEYS).collect()
    };
    for batch in batches {
        let body = context_request::Body::Holds(RecordKeys {
            keys: batch.iter().map(|k| k.to_vec()).collect(),
        });
        match service.request(peer, body, per_peer_timeout(service)).await {
            Ok(context_response::Body::Held(h)) if h.held.len() == batch.len() => held.extend(h.held),
            Ok(_) => return None,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "holds query failed; counting the node as down this round");
                return None;
            }
        }
    }
    Some(held)
}

/// Copies the record to the nearest live nodes that lack it until it has `r` holders. Returns
/// the copies made.
async fn repair(
    service: &ContextService,
    key: &[u8; 32],
    have: &BTreeSet<PeerId>,
    live: &BTreeSet<PeerId>,
    r: usize,
) -> usize {
    let inner = &service.inner;
    let record = {
        // Take the bytes from a live holder, checked like any read.
        match super::holder::fetch_verified(service, key).await {
            Ok(v) => prost::Message::encode_to_vec(v.record()),
            Err(e) => {
                tracing::warn!(record_key = %hex::encode(key), error = %e, "cannot fetch a record to repair it");
                return 0;
            }
        }
    };
    if crate::crypto::record_key(&record) != *key {
        // The canonical re-encoding must reproduce the stored bytes (verify_record checks that).
        tracing::error!(record_key = %hex::encode(key), "re-encoded record does not match its key");
        return 0;
    }
    let Ok(candidates) = inner.client.closest_peers(dht_key(key)).await else {
        return 0;
    };
    let mut made = 0;
    for peer in candidates.into_iter().filter(|p| live.contains(p) && !have.contains(p)) {
        if have.len() + made >= r {
            break;
        }
        match store_on(service, peer, record.clone()).await {
            Ok(()) => made += 1,
            Err(e) => tracing::debug!(%peer, error = %e, "repair copy refused"),
        }
    }
    made
}
