//! The task that renews this node's certificate before it expires and tells its peers, so no
//! connection drops (see `admission::renewal` for the rules).

use std::sync::Arc;
use std::time::Duration;

use bzzz_protocol::wire::{RenewCertificate, RpcRequest, rpc_request, rpc_response};
use tokio_util::sync::CancellationToken;

use super::Client;
use crate::admission::Admission;

/// How often the task checks whether a renewal is due.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long after a failed renewal the next attempt waits.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Bound on one renewal or update request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Renews this node's certificate once a third of its validity is left: from the certificate
/// file when the operator put a newer one there, else (for a certificate an issuer signed) from
/// a connected voter; then sends the new chain to every admitted peer.
pub(crate) async fn run(client: Client, admission: Arc<Admission>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_try = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !admission.renewal_due() || tokio::time::Instant::now() < next_try {
            continue;
        }
        let renewed = if let Some(chain) = admission.renewed_file() {
            admission.install_renewal(chain, false)
        } else if admission.issued_online() {
            renew_online(&client, &admission).await
        } else {
            Err("the certificate expires soon and the CA signed it: sign a new one into the certificate file (`bzzz ca sign`); the node picks it up without a restart".into())
        };
        match renewed {
            Ok(_) => push(&client, &admission).await,
            Err(e) => {
                tracing::warn!(error = %e, "certificate not renewed yet");
                next_try = tokio::time::Instant::now() + RETRY_AFTER;
            }
        }
    }
}

/// Asks the connected voters in turn for a renewal and installs the first one.
async fn renew_online(client: &Client, admission: &Admission) -> Result<bzzz_protocol::cert::Verified, String> {
    let mut last = String::from("no voter connected");
    for voter in admission.connected_voters() {
        let request = RpcRequest {
            body: Some(rpc_request::Body::RenewCertificate(RenewCertificate {})),
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, client.send_rpc(voter, request)).await {
            Ok(Ok(answer)) => match answer.body {
                Some(rpc_response::Body::Certificate(chain)) => return admission.install_renewal(chain, true),
                Some(rpc_response::Body::Error(e)) => last = format!("{voter}: {} {}", e.code, e.message),
                _ => last = format!("{voter}: an answer of the wrong type"),
            },
            Ok(Err(e)) => last = format!("{voter}: {e}"),
            Err(_) => last = format!("{voter}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
    Err(last)
}

/// Sends this node's current chain to every admitted peer, which keeps it for the open
/// connections.
async fn push(client: &Client, admission: &Admission) {
    let Some(chain) = admission.chain() else {
        return;
    };
    let sends = admission.admitted_peers().into_iter().map(|peer| {
        let request = RpcRequest {
            body: Some(rpc_request::Body::CertificateUpdate(chain.clone())),
        };
        async move {
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, client.send_rpc(peer, request)).await;
            match answer {
                Ok(Ok(a)) if matches!(a.body, Some(rpc_response::Body::Ack(_))) => {}
                other => tracing::debug!(%peer, answer = ?other.map(|r| r.map(|a| a.body)), "renewed certificate not taken by a peer"),
            }
        }
    });
    futures::future::join_all(sends).await;
}
