//! Holding context records: validating and keeping them, serving them, placing a new record on
//! its R holders, and fetching a record with fallback from one holder to the next.
//!
//! A record lives in the node's DHT store (sled) under `/bzzz/ctx/1/<hex record key>`, never
//! expires there, and its holders announce themselves as Kademlia providers of that key. The
//! holders of a record are the R nodes nearest its key (XOR distance) that accept it; a reader
//! looks on itself first, then on the nodes nearest the key, then asks the DHT for providers.

use std::collections::BTreeSet;
use std::time::Duration;

use bzzz_protocol::context::dht_key;
use bzzz_protocol::ucxl::{Address, UcxlCode};
use bzzz_protocol::wire::{ContextOk, HeldFlags, RecordKeys, context_request, context_response};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;

use super::metrics::RecordSource;
use super::{ContextError, ContextService, MAX_HOLDS_KEYS};
use crate::crypto::{VerifiedRecord, verify_record};

/// Checks a record before this node stores it: it verifies (both signatures, size, canonical
/// encoding) and its address is a concrete, canonical UCXL base address (no pattern, no version).
/// The one validation every way into the store uses.
pub(crate) fn validate_record(bytes: &[u8], max_size: usize) -> Result<VerifiedRecord, String> {
    let v = verify_record(bytes, max_size).map_err(|e| e.to_string())?;
    let addr = Address::parse(v.address()).map_err(|e| format!("record address: {e}"))?;
    if addr.is_pattern() || addr.temporal().is_some() || addr.to_string() != v.address() {
        return Err(format!(
            "record address {:?} is not a concrete canonical base address",
            v.address()
        ));
    }
    if v.header().role != addr.role() {
        return Err(format!(
            "record role {:?} is not the role of its address {:?}",
            v.header().role,
            addr.role()
        ));
    }
    Ok(v)
}

/// A peer asks this node to hold a record.
pub(crate) async fn store(
    service: &ContextService,
    peer: PeerId,
    record: Vec<u8>,
) -> Result<context_response::Body, ContextError> {
    let max = service.inner.max_record_bytes;
    let verified = tokio::task::spawn_blocking(move || validate_record(&record, max).map(|v| (v, record)))
        .await
        .map_err(|e| ContextError::internal(format!("validation task failed: {e}")))?;
    let (verified, record) = match verified {
        Ok(v) => v,
        Err(reason) => {
            service.inner.metrics.record_rejected(RecordSource::Rpc);
            tracing::debug!(%peer, %reason, "context record refused");
            return Err(ContextError::bad_request(format!("record refused: {reason}")));
        }
    };
    service
        .inner
        .client
        .store_local(verified.dht_key(), record, true)
        .await?;
    Ok(context_response::Body::Ok(ContextOk {}))
}

/// A peer asks for a record by its 32-byte key.
pub(crate) async fn fetch(service: &ContextService, key: &[u8]) -> Result<context_response::Body, ContextError> {
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| ContextError::bad_request(format!("record key of {} bytes, expected 32", key.len())))?;
    match service.inner.client.local_get(dht_key(&key)).await? {
        Some(bytes) => Ok(context_response::Body::Record(bytes)),
        None => Err(ContextError::not_found("this node does not hold the record")),
    }
}

/// A peer asks which of some record keys this node holds.
pub(crate) async fn holds(service: &ContextService, keys: RecordKeys) -> Result<context_response::Body, ContextError> {
    if keys.keys.len() > MAX_HOLDS_KEYS {
        return Err(ContextError::bad_request(format!(
            "{} keys asked, at most {MAX_HOLDS_KEYS}",
            keys.keys.len()
        )));
    }
    let dht_keys = keys
        .keys
        .iter()
        .map(|k| {
            <[u8; 32]>::try_from(k.as_slice())
                .map(|k| dht_key(&k))
                .map_err(|_| ContextError::bad_request(format!("record key of {} bytes, expected 32", k.len())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let held = service.inner.client.local_has(dht_keys).await?;
    Ok(context_response::Body::Held(HeldFlags { held }))
}

/// How long one holder gets to answer a store or fetch.
pub(crate) fn per_peer_timeout(service: &ContextService) -> Duration {
    Duration::from_millis((service.inner.config.request_timeout_ms / 4).max(500))
}

/// Stores `record` on this node if it is a holder, or asks `peer` to.
pub(crate) async fn store_on(service: &ContextService, peer: PeerId, record: Vec<u8>) -> Result<(), ContextError> {
    match service
        .request(peer, context_request::Body::Store(record), per_peer_timeout(service))
        .await?
    {
        context_response::Body::Ok(_) => Ok(()),
        _ => Err(ContextError::internal(format!(
            "{peer} answered a store with the wrong type"
        ))),
    }
}

/// Places a new record on the R nodes nearest its key that accept it, and returns once the
/// write quorum has it (the other copies complete in the background). Fails with
/// `UCXL-503` if fewer than the quorum accept it.
pub(crate) async fn replicate(
    service: &ContextService,
    record_key: &[u8; 32],
    record: Vec<u8>,
) -> Result<usize, ContextError> {
    let r = service.inner.config.replication_factor as usize;
    let quorum = (service.inner.config.write_quorum as usize).clamp(1, r);
    let candidates = service.inner.client.closest_peers(dht_key(record_key)).await?;
    let mut candidates = candidates.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let start = |peer: PeerId| {
        let service = service.clone();
        let record = record.clone();
        async move { (peer, store_on(&service, peer, record).await) }
    };
    for peer in candidates.by_ref().take(r) {
        in_flight.push(start(peer));
    }
    let mut stored = 0usize;
    let mut failures: Vec<String> = Vec::new();
    while let Some((peer, result)) = in_flight.next().await {
        match result {
            Ok(()) => stored += 1,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "holder refused or missed a context record");
                if failures.len() < 4 {
                    failures.push(format!("{peer}: {}", e.message));
                }
                if let Some(next) = candidates.next() {
                    in_flight.push(start(next));
                }
            }
        }
        if stored >= quorum {
            break;
        }
    }
    if stored < quorum {
        return Err(ContextError::unavailable(format!(
            "only {stored} of the {quorum} holders a write needs stored the record ({})",
            if failures.is_empty() {
                "not enough peers are known".to_string()
            } else {
                failures.join("; ")
            }
        )));
    }
    let acked = stored;
    if !in_flight.is_empty() {
        // The rest of the R copies finish after the write returns.
        crate::logging::spawn(&service.inner.tracker, "context-holder", async move {
            while let Some((peer, result)) = in_flight.next().await {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "background copy of a context record failed");
                }
            }
        });
    }
    Ok(acked)
}

/// Fetches the record with key `record_key`, checking it hashes to its key and verifies: this
/// node's store first, then the nodes nearest the key, then the DHT's providers. A holder that
/// serves a bad copy is skipped (and counted); the next one is tried.
pub(crate) async fn fetch_verified(
    service: &ContextService,
    record_key: &[u8; 32],
) -> Result<VerifiedRecord, ContextError> {
    let inner = &service.inner;
    let key = dht_key(record_key);
    let me = inner.peer_id;
    let mut tried: BTreeSet<PeerId> = BTreeSet::new();
    let mut last_error: Option<String> = None;
    let max_tries = (inner.config.replication_factor as usize) * 2 + 2;

    // This node, then the nearest peers.
    let mut order = vec![me];
    order.extend(
        inner
            .client
            .closest_peers(key.clone())
            .await?
            .into_iter()
            .filter(|p| *p != me)
            .take(max_tries),
    );
    let mut providers_asked = false;
    let mut i = 0;
    loop {
        let peer = match order.get(i) {
            Some(p) => *p,
            None if !providers_asked => {
                providers_asked = true;
                match inner.client.get_providers(key.clone()).await {
                    Ok(found) => order.extend(found.into_iter().filter(|p| !tried.contains(p))),
                    Err(e) => tracing::debug!(error = %e, "provider lookup failed"),
                }
                if i >= order.len() {
                    break;
                }
                continue;
            }
            None => break,
        };
        i += 1;
        if !tried.insert(peer) {
            continue;
        }
        let bytes = if peer == me {
            match inner.client.local_get(key.clone()).await? {
                Some(b) => b,
                None => continue,
            }
        } else {
            match service
                .request(
                    peer,
                    context_request::Body::Fetch(record_key.to_vec()),
                    per_peer_timeout(service),
                )
                .await
            {
                Ok(context_response::Body::Record(b)) => b,
                Ok(_) => continue,
                Err(e) => {
                    if e.code != UcxlCode::NotFound {
                        last_error = Some(format!("{peer}: {}", e.message));
                    }
                    continue;
                }
            }
        };
        let max = inner.max_record_bytes;
        let expected = *record_key;
        let checked = tokio::task::spawn_blocking(move || {
            let v = verify_record(&bytes, max).map_err(|e| e.to_string())?;
            if v.record_key() != expected {
                return Err("the copy does not hash to its record key".to_string());
            }
            Ok(v)
        })
        .await
        .map_err(|e| ContextError::internal(format!("verification task failed: {e}")))?;
        match checked {
            Ok(v) => return Ok(v),
            Err(reason) => {
                inner.metrics.decrypt_failure();
                tracing::warn!(holder = %peer, %reason, "a holder served a corrupt copy of a context record; trying the next");
                last_error = Some(format!("{peer} served a corrupt copy: {reason}"));
            }
        }
    }
    Err(match last_error {
        Some(e) => ContextError::unavailable(format!("no holder served a valid copy of the record (last: {e})")),
        None => ContextError::unavailable(
            "no reachable holder has the record; its holders may be down (the admin re-replicates records below R)",
        ),
    })
}
