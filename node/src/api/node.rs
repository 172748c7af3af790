//! The node's own endpoints: `/health*`, `/metrics`, `/api/status`, `/api/peers` and
//! `/api/election/*`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bzzz_bootstrap::JoinState;
use bzzz_client::types::{
    ElectionStatus, ElectionTriggered, HealthChecks, HealthReport, Liveness, NodeStatus, PeerList, Readiness,
};
use bzzz_protocol::ErrorCode;

use super::convert;
use super::error::ApiError;
use super::state::AppState;
use crate::health::Status;

pub(super) async fn health(State(s): State<AppState>) -> Response {
    let summary = s.health.summary();
    let code = if summary.status == Status::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let summary = convert::summary(summary);
    let body = HealthReport {
        status: summary.status,
        score: summary.score,
        peer_id: s.info.peer_id.clone(),
        version: s.info.version.clone(),
        uptime_seconds: s.info.started.elapsed().as_secs(),
        components: summary.components,
    };
    (code, Json(body)).into_response()
}

pub(super) async fn live() -> Json<Liveness> {
    Json(Liveness { status: "alive".into() })
}

pub(super) async fn ready(State(s): State<AppState>) -> Response {
    let join = s.join.borrow().clone();
    let snap = s.client.snapshot().await;
    let (ready, reason) = match &snap {
        Err(e) => (false, e.to_string()),
        Ok(n) if n.listen_addrs.is_empty() => (false, "not listening yet".to_string()),
        Ok(n) if !n.peers.is_empty() => (true, format!("{} peers connected", n.peers.len())),
        Ok(_) if join.state == JoinState::Alone => (true, "alone by configuration".to_string()),
        Ok(_) => (
            false,
            format!(
                "joining: no peer connected yet ({} attempts){}",
                join.attempts,
                join.last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ),
        ),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Readiness { ready, reason })).into_response()
}

pub(super) async fn checks(State(s): State<AppState>) -> Json<HealthChecks> {
    let status = convert::health_status(s.health.summary().status);
    let checks = convert::all_checks(s.health.checks());
    Json(HealthChecks { status, checks })
}

/// Serves OpenMetrics to scrapers that ask for it (Prometheus does), and the Prometheus text
/// format 0.0.4 otherwise (curl, `promtool check metrics`).
pub(super) async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    s.metrics
        .process
        .uptime_seconds
        .set(s.info.started.elapsed().as_secs() as i64);
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let (content_type, text) = if openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            s.metrics.encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            s.metrics.encode_prometheus_text(),
        )
    };
    match text {
        Ok(text) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(_) => ApiError::new(ErrorCode::Internal, "metrics encoding failed").into_response(),
    }
}

pub(super) async fn status(State(s): State<AppState>) -> Result<Json<NodeStatus>, ApiError> {
    let snap = s.client.snapshot().await?;
    let join = s.join.borrow().clone();
    Ok(Json(NodeStatus {
        peer_id: s.info.peer_id.clone(),
        agent_id: s.info.agent_id.clone(),
        role: s.info.role.clone(),
        mode: convert::mode(s.info.mode),
        version: s.info.version.clone(),
        listen_addrs: snap.listen_addrs,
        peers: snap.peers.len(),
        routing_table_size: snap.routing_table_size,
        dht_records_stored: s.network_metrics.records_stored(),
        uptime_seconds: s.info.started.elapsed().as_secs(),
        bootstrap: convert::join_status(join),
        health: convert::summary(s.health.summary()),
        election: s.consensus.status(),
        security: security(&s),
    }))
}

fn security(s: &AppState) -> bzzz_client::types::SecurityStatus {
    let a = &s.admission;
    bzzz_client::types::SecurityStatus {
        mesh_key: s.info.mesh_key,
        insecure_open_mesh: s.info.insecure_open_mesh,
        admission: a.enabled(),
        cluster_id: a.cluster_id().map(|c| c.to_string()),
        certificate: a.local_certificate().map(|v| bzzz_client::types::CertificateSummary {
            serial: format!("{:016x}", v.leaf.serial),
            name: v.leaf.name.clone(),
            roles: v.leaf.roles.clone(),
            voter: v.leaf.voter,
            not_after_unix_ms: v.leaf.not_after_ms,
        }),
        admitted_peers: a.admitted_count(),
        revoked_serials: a.revoked_count(),
    }
}

pub(super) async fn peers(State(s): State<AppState>) -> Result<Json<PeerList>, ApiError> {
    let mut snap = s.client.snapshot().await?;
    snap.peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    Ok(Json(PeerList {
        count: snap.peers.len(),
        peers: snap.peers,
    }))
}

pub(super) async fn election_status(State(s): State<AppState>) -> Json<ElectionStatus> {
    Json(s.consensus.status())
}

pub(super) async fn trigger_election(State(s): State<AppState>) -> Result<Json<ElectionTriggered>, ApiError> {
    if s.consensus.raft().is_none() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "this node is not admin-eligible; trigger the election on an eligible node",
        ));
    }
    s.consensus
        .trigger_election()
        .await
        .map_err(|e| ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()))?;
    Ok(Json(ElectionTriggered {
        triggered: true,
        node_id: s.consensus.node_id(),
    }))
}
