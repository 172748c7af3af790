//! HTTP routes of the operator actions (on the API listener only). Each needs
//! `Authorization: Bearer <operator token>` when `api.operator_token_file` is configured.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bzzz_protocol::ErrorCode;
use serde_json::json;

use crate::api::{ApiError, AppState, require_operator};

/// The operator routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/config/reload", post(config_reload))
        .route("/api/peers/clear", post(peers_clear))
        .with_state(state)
}

async fn config_reload(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_operator(&s, &headers, "reloading the configuration")?;
    match s.ops.reload().await {
        Ok(report) => Ok(Json(json!(report))),
        Err(e) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("configuration reload refused, the running configuration stays: {e}"),
        )),
    }
}

async fn peers_clear(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_operator(&s, &headers, "clearing the peer store")?;
    Ok(Json(json!(s.ops.clear_peers().await?)))
}
