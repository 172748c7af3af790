//! HTTP routes of admission (operator actions): applying a CA-signed revocation list.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bzzz_client::types::{RevocationApplied, RevocationSubmit};
use bzzz_protocol::ErrorCode;

use super::error::ApiError;
use super::operator::require_operator;
use super::state::AppState;
use crate::admission::RevocationError;

/// The admission routes.
pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/admission/revocations", post(revoke))
        .with_state(state)
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
