//! `/api/roles`: the role policy, grants and pending requests, and granting a role (an operator
//! action). Errors use the node API's `BZZZ-` codes.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use bzzz_client::types::{GrantRequest, PendingRequest, RoleGrant, RoleGranted, RoleInfo, RolesView};
use bzzz_protocol::ErrorCode;
use libp2p::PeerId;

use super::error::ApiError;
use super::operator::require_operator;
use super::state::AppState;

/// The roles routes (merged into the agent API).
pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/roles", get(roles_list))
        .route("/api/roles/{role}/grant", post(roles_grant))
        .with_state(state)
}

/// A peer id from the wire as text (hex when it is not a valid peer id).
fn peer_text(bytes: &[u8]) -> String {
    PeerId::from_bytes(bytes)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| hex::encode(bytes))
}

async fn roles_list(State(s): State<AppState>) -> Result<Json<RolesView>, ApiError> {
    let view = s.context.roles().await?;
    Ok(Json(RolesView {
        has_policy: view.has_policy,
        roles: view
            .roles
            .iter()
            .map(|r| RoleInfo {
                name: r.name.clone(),
                authority: r.authority,
                self_service: r.self_service,
                can_read: r.can_read.clone(),
                epoch: r.epoch,
            })
            .collect(),
        grants: view
            .grants
            .iter()
            .map(|g| RoleGrant {
                role: g.role.clone(),
                peer_id: peer_text(&g.peer_id),
                source: g.source.clone(),
                granted_at_ms: g.granted_at_ms,
            })
            .collect(),
        pending: view
            .pending
            .iter()
            .map(|p| PendingRequest {
                role: p.role.clone(),
                peer_id: peer_text(&p.peer_id),
                requested_at_ms: p.requested_at_ms,
            })
            .collect(),
    }))
}

async fn roles_grant(
    State(s): State<AppState>,
    Path(role): Path<String>,
    headers: HeaderMap,
    body: Result<Json<GrantRequest>, JsonRejection>,
) -> Result<Json<RoleGranted>, ApiError> {
    let presented = require_operator(&s, &headers, "granting a role")?;
    let Json(body) = body?;
    bzzz_storage::raft::validate_role_name(&role)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("role {role:?}: {e}")))?;
    let peer: PeerId = body.peer_id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("peer_id {:?} is not a peer id", body.peer_id),
        )
    })?;
    s.context.grant(&role, peer, presented).await?;
    Ok(Json(RoleGranted {
        role,
        peer_id: peer.to_string(),
        granted: true,
    }))
}
