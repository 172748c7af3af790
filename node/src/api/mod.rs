//! The HTTP API (axum): the agent-facing listener (`api.listen`) and the health-only listener
//! (`health.listen`). The only module that knows axum.
//!
//! Every request and response body is a type of [`bzzz_client::types`], the one definition of
//! the API contract, shared with `bzzz_client::ApiClient` (the CLI, the tests, the bench and
//! agent developers). Every error is one JSON envelope:
//! `{"error":{"code":"BZZZ-404-NOT_FOUND","message":"…","request_id":"…"}}`.
//!
//! Rooms: [`node`] (`/health*`, `/metrics`, `/api/status`, `/api/peers`, `/api/election/*`),
//! [`selftest`] (`/api/test/*`, `/api/dht/records/{key}`), [`ucxi`] (`/ucxi/v1/*`), [`roles`]
//! (`/api/roles`), [`ops`] (the operator actions); [`error`] the envelope, [`state`] the handles,
//! [`operator`] the operator check, [`convert`] domain answers as API types.

mod admission;
mod convert;
pub(crate) mod error;
mod node;
mod operator;
mod ops;
mod roles;
pub(crate) mod selftest;
pub(crate) mod state;
mod ucxi;

use std::time::Duration;

pub(crate) use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use bzzz_protocol::ErrorCode;

pub(crate) use error::ApiError;
pub(crate) use state::{AppState, NodeInfo};

/// Routes of the health listener: health, readiness, checks, metrics, and read-only status.
pub(crate) fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(node::health))
        .route("/health/live", get(node::live))
        .route("/health/ready", get(node::ready))
        .route("/health/checks", get(node::checks))
        .route("/metrics", get(node::metrics))
        .route("/api/status", get(node::status))
        .route("/api/peers", get(node::peers))
        .route("/api/election/status", get(node::election_status))
        .fallback(not_found)
        .with_state(state)
}

/// Routes of the agent-facing API: everything on the health listener plus the operations.
pub(crate) fn api_router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/test/p2p-message", post(selftest::test_p2p_message))
        .route("/api/test/dht-operations", post(selftest::test_dht_operations))
        .route(
            "/api/dht/records/{key}",
            get(selftest::get_record).put(selftest::put_record),
        )
        .route("/api/election/trigger", post(node::trigger_election))
        .with_state(state.clone())
        .merge(ops::router(state.clone()))
        .merge(admission::router(state.clone()))
        .merge(ucxi::router(state.clone()))
        .merge(roles::router(state.clone()))
        .merge(health_router(state))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// Adds the shared layers: a request timeout and a cap on concurrent requests.
pub(crate) fn with_limits(router: Router, timeout: Duration, max_concurrent: usize) -> Router {
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(max_concurrent))
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint; see docs/api.md")
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then finishes the requests in
/// flight (the node's HTTP listeners; the only place outside `api/` that starts one is
/// `node::start`, through this).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
