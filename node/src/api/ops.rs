//! HTTP routes of the operator actions ([`crate::ops`]), on the API listener only. Each needs
//! `Authorization: Bearer <operator token>` when `api.operator_token_file` is configured.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bzzz_client::types::{CacheClearReport, PeersCleared, ReloadReport, ReprovideReport};
use bzzz_protocol::ErrorCode;

use super::convert;
use super::error::ApiError;
use super::operator::require_operator;
use super::state::AppState;
use crate::ops::dht::ReprovideError;

/// The operator routes.
pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/config/reload", post(config_reload))
        .route("/api/peers/clear", post(peers_clear))
        .route("/api/dht/reprovide", post(dht_reprovide))
        .route("/api/dht/cache/clear", post(dht_cache_clear))
        .route("/api/backup", post(backup))
        .with_state(state)
}

async fn config_reload(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<ReloadReport>, ApiError> {
    require_operator(&s, &headers, "reloading the configuration")?;
    s.ops.reload().await.map(Json).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("configuration reload refused, the running configuration stays: {e}"),
        )
    })
}

async fn peers_clear(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<PeersCleared>, ApiError> {
    require_operator(&s, &headers, "clearing the peer store")?;
    Ok(Json(s.ops.clear_peers().await?))
}

async fn dht_reprovide(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<ReprovideReport>, ApiError> {
    let token = require_operator(&s, &headers, "re-providing DHT content")?;
    match s.ops.reprovide(token).await {
        Ok(report) => Ok(Json(report)),
        Err(ReprovideError::Network(e)) => Err(e.into()),
        Err(e) => Err(ApiError::new(ErrorCode::ServiceUnavailable, e.to_string())),
    }
}

async fn dht_cache_clear(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<CacheClearReport>, ApiError> {
    require_operator(&s, &headers, "clearing the DHT cache")?;
    Ok(Json(convert::cache_clear(s.ops.clear_dht_cache().await?)))
}

async fn backup(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_operator(&s, &headers, "taking a backup")?;
    let stream = s
        .ops
        .backup()
        .map_err(|e| ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (HeaderName::from_static("x-bzzz-backup-format"), "1"),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
