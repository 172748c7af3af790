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
        .route("/api/dht/reprovide", post(dht_reprovide))
        .route("/api/dht/cache/clear", post(dht_cache_clear))
        .route("/api/backup", post(backup))
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

async fn dht_reprovide(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    let token = require_operator(&s, &headers, "re-providing DHT content")?;
    match s.ops.reprovide(token).await {
        Ok(report) => Ok(Json(json!(report))),
        Err(crate::ops::dht::ReprovideError::Network(e)) => Err(e.into()),
        Err(e) => Err(ApiError::new(ErrorCode::ServiceUnavailable, e.to_string())),
    }
}

async fn dht_cache_clear(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_operator(&s, &headers, "clearing the DHT cache")?;
    Ok(Json(json!(s.ops.clear_dht_cache().await?)))
}

async fn backup(State(s): State<AppState>, headers: HeaderMap) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    require_operator(&s, &headers, "taking a backup")?;
    let stream = s
        .ops
        .backup()
        .map_err(|e| ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/octet-stream"),
            (axum::http::HeaderName::from_static("x-bzzz-backup-format"), "1"),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
