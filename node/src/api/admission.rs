//! HTTP routes of admission (operator actions): applying a CA-signed revocation list, and the
//! cluster's join tokens (on a voter).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use bzzz_client::types::{JoinTokenCreate, JoinTokenInfo, JoinTokenList, RevocationApplied, RevocationSubmit};
use bzzz_protocol::ErrorCode;
use bzzz_protocol::wire::{JoinTokenChange, JoinTokenSpec, join_token_change};
use bzzz_storage::raft::JoinTokenRecord;

use super::error::ApiError;
use super::operator::require_operator;
use super::state::AppState;
use crate::admission::RevocationError;

/// The admission routes.
pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/admission/revocations", post(revoke))
        .route("/api/admission/join-tokens", get(list_tokens).post(create_token))
        .route("/api/admission/join-tokens/{id}/revoke", post(revoke_token))
        .with_state(state)
}

/// Longest a join token may be accepted: 30 days (kubeadm's default is 24 h).
const MAX_TOKEN_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

fn token_info(id: String, t: &JoinTokenRecord, now_ms: u64) -> JoinTokenInfo {
    let state = if t.revoked {
        "revoked"
    } else if now_ms >= t.expires_ms {
        "expired"
    } else if t.uses_left() == 0 {
        "used_up"
    } else {
        "active"
    };
    JoinTokenInfo {
        id,
        roles: t.roles.clone(),
        voter: t.voter,
        cert_ttl_ms: t.cert_ttl_ms,
        created_ms: t.created_ms,
        expires_ms: t.expires_ms,
        uses: t.uses,
        used_by: t
            .redeemed
            .iter()
            .map(|p| libp2p::PeerId::from_bytes(p).map_or_else(|_| hex::encode(p), |p| p.to_string()))
            .collect(),
        revoked: t.revoked,
        state: state.to_owned(),
        description: t.description.clone(),
    }
}

/// This node's copy of the cluster state: only voters have one.
fn voter_state(s: &AppState) -> Result<&bzzz_storage::raft::SledStateMachine, ApiError> {
    s.consensus.state_machine().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "this node is not a voter: manage join tokens on a voter's API",
        )
    })
}

fn cluster_id(s: &AppState) -> Result<String, ApiError> {
    s.admission.cluster_id().map(|c| c.to_string()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "admission is off on this node (no admission.ca_cert_file): there are no join tokens",
        )
    })
}

fn read_token(s: &AppState, id: &str) -> Result<JoinTokenInfo, ApiError> {
    let sm = voter_state(s)?;
    let token = sm
        .join_token(id)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot read the join tokens: {e}")))?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no join token with id {id:?}")))?;
    Ok(token_info(id.to_owned(), &token, bzzz_storage::util::now_unix_ms()))
}

/// Every join token the cluster keeps (never a secret), from this voter's copy of the state.
async fn list_tokens(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<JoinTokenList>, ApiError> {
    require_operator(&s, &headers, "listing join tokens")?;
    let cluster_id = cluster_id(&s)?;
    let now = bzzz_storage::util::now_unix_ms();
    let tokens = voter_state(&s)?
        .join_tokens()
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot read the join tokens: {e}")))?
        .into_iter()
        .map(|(id, t)| token_info(id, &t, now))
        .collect();
    Ok(Json(JoinTokenList { cluster_id, tokens }))
}

/// Creates a join token through the admin. This voter's issuer must cover the token's roles
/// (and the voter right, if asked), so every token created can be redeemed.
async fn create_token(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<JoinTokenCreate>,
) -> Result<Json<JoinTokenInfo>, ApiError> {
    require_operator(&s, &headers, "creating join tokens")?;
    cluster_id(&s)?;
    voter_state(&s)?;
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    let issuer = s.admission.issuer().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "this voter holds no issuer key (admission.issuer_key_file): create join tokens on a voter that does",
        )
    })?;
    issuer
        .check_scope(&body.roles, body.voter)
        .map_err(|e| bad(format!("{e}; the token could never be redeemed")))?;
    if body.ttl_ms == 0 || body.ttl_ms > MAX_TOKEN_TTL_MS {
        return Err(bad(format!("ttl_ms must be 1 to {MAX_TOKEN_TTL_MS} (30 days)")));
    }
    let secret_hash = hex::decode(&body.secret_hash)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| bad("secret_hash must be 64 hex digits (SHA-256 of the secret)".into()))?;
    let spec = JoinTokenSpec {
        id: body.id.clone(),
        secret_hash,
        roles: body.roles,
        voter: body.voter,
        ttl_ms: body.ttl_ms,
        uses: body.uses,
        cert_ttl_ms: body.cert_ttl_ms,
        description: body.description,
    };
    s.context
        .ask(JoinTokenChange {
            change: Some(join_token_change::Change::Create(spec)),
        })
        .await?;
    tracing::info!(token = %body.id, "join token created");
    wait_for_token(&s, &body.id, |_| true).await
}

/// Revokes a join token through the admin.
async fn revoke_token(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JoinTokenInfo>, ApiError> {
    require_operator(&s, &headers, "revoking join tokens")?;
    voter_state(&s)?;
    read_token(&s, &id)?;
    s.context
        .ask(JoinTokenChange {
            change: Some(join_token_change::Change::Revoke(id.clone())),
        })
        .await?;
    tracing::info!(token = %id, "join token revoked");
    wait_for_token(&s, &id, |t| t.revoked).await
}

/// The token as this voter's state shows it once the change committed on the admin has been
/// applied here (a voter applies committed entries shortly after the admin).
async fn wait_for_token(
    s: &AppState,
    id: &str,
    applied: impl Fn(&JoinTokenInfo) -> bool,
) -> Result<Json<JoinTokenInfo>, ApiError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let seen = read_token(s, id);
        let changed_here = seen.as_ref().is_ok_and(&applied);
        if changed_here || tokio::time::Instant::now() >= deadline {
            return seen.map(Json);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Verifies the list against this node's CA, stores and applies it (peers presenting a revoked
/// serial are disconnected within a second), then publishes it so every node applies it.
async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RevocationSubmit>,
) -> Result<Json<RevocationApplied>, ApiError> {
    require_operator(&s, &headers, "revoking certificates")?;
    let revocation = bzzz_protocol::cert::revocation_from_pem(&body.revocation)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("revocation: {e}")))?;
    let applied = s.admission.apply_revocation(&revocation).map_err(|e| {
        let code = match e {
            RevocationError::Invalid(_) | RevocationError::AdmissionOff | RevocationError::Full => {
                ErrorCode::BadRequest
            }
            RevocationError::Store(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    })?;
    let published = match s.consensus.publish_revocation(revocation).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "revocation applied here but not published; the admin re-publishes every 30 s");
            false
        }
    };
    Ok(Json(RevocationApplied {
        cluster_id: applied.list.cluster_id.to_string(),
        serials: applied.list.serials.iter().map(|s| format!("{s:016x}")).collect(),
        new: applied.new,
        revoked_serials: s.admission.revoked_count(),
        published,
    }))
}
