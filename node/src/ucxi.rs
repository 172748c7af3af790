//! The context HTTP API: UCXI under `/ucxi/v1/` and roles under `/api/roles`.
//!
//! UCXI errors use the UCXL envelope `{"error":{"code":"UCXL-<status>-<NAME>","message":…,
//! "request_id":…}}`; every malformed input (address, query, body) is a 4xx with its code. The
//! roles endpoints use the node API's `BZZZ-` codes. See docs/api.md.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use bzzz_protocol::ErrorCode;
use bzzz_protocol::ucxl::UcxlCode;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{ApiError, AppState};
use crate::context::ContextError;

/// A UCXI error response.
#[derive(Debug)]
pub struct UcxiError(pub ContextError);

impl From<ContextError> for UcxiError {
    fn from(e: ContextError) -> Self {
        Self(e)
    }
}

impl IntoResponse for UcxiError {
    fn into_response(self) -> Response {
        crate::api::error_envelope(self.0.code.status(), self.0.code.as_str(), &self.0.message)
    }
}

fn bad(message: impl Into<String>) -> UcxiError {
    UcxiError(ContextError::bad_request(message))
}

impl From<QueryRejection> for UcxiError {
    fn from(e: QueryRejection) -> Self {
        bad(format!("query string: {}", e.body_text()))
    }
}

impl From<BytesRejection> for UcxiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UcxiError(ContextError::new(UcxlCode::PayloadTooLarge, e.body_text()))
        } else {
            bad(format!("body: {}", e.body_text()))
        }
    }
}

/// Query of the address endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressQuery {
    address: Option<String>,
    limit: Option<u32>,
}

impl AddressQuery {
    fn address(&self) -> Result<&str, UcxiError> {
        match self.address.as_deref() {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(UcxiError(ContextError::new(
                UcxlCode::InvalidAddress,
                "the `address` query parameter is missing or empty",
            ))),
        }
    }
}

/// Query of discover.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternQuery {
    pattern: Option<String>,
    limit: Option<u32>,
}

/// Routes of the context API (merged into the agent API).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ucxi/v1/get", get(ucxi_get))
        .route("/ucxi/v1/put", post(ucxi_put).put(ucxi_put))
        .route("/ucxi/v1/delete", delete(ucxi_delete).post(ucxi_delete))
        .route("/ucxi/v1/discover", get(ucxi_discover))
        .route("/ucxi/v1/navigate", get(ucxi_navigate))
        .route("/ucxi/v1/history", get(ucxi_navigate))
        .route("/ucxi/v1/status", get(ucxi_status))
        .route("/ucxi/v1/{*rest}", any(ucxi_unknown))
        .route("/api/roles", get(roles_list))
        .route("/api/roles/{role}/grant", post(roles_grant))
        .with_state(state)
}

async fn ucxi_unknown() -> UcxiError {
    UcxiError(ContextError::not_found(
        "no such UCXI endpoint (get, put, delete, discover, navigate, history, status); see docs/api.md",
    ))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

async fn ucxi_get(
    State(s): State<AppState>,
    q: Result<Query<AddressQuery>, QueryRejection>,
) -> Result<Response, UcxiError> {
    let Query(q) = q?;
    let got = s.context.get(q.address()?).await?;
    let v = &got.version;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("x-ucxl-address", header_value(&v.address));
    headers.insert("x-ucxl-version", header_value(&v.version.to_string()));
    headers.insert("x-ucxl-latest", header_value(&v.latest.to_string()));
    headers.insert("x-ucxl-author", header_value(&v.author));
    headers.insert("x-ucxl-role", header_value(&v.role));
    headers.insert("x-ucxl-created-ms", header_value(&v.time_ms.to_string()));
    headers.insert("x-ucxl-record-key", header_value(&v.record_key));
    Ok((headers, got.content).into_response())
}

async fn ucxi_put(
    State(s): State<AppState>,
    q: Result<Query<AddressQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, UcxiError> {
    let Query(q) = q?;
    let body = body?;
    let put = s.context.put(q.address()?, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(put)).into_response())
}

async fn ucxi_delete(
    State(s): State<AppState>,
    q: Result<Query<AddressQuery>, QueryRejection>,
) -> Result<Response, UcxiError> {
    let Query(q) = q?;
    let put = s.context.delete(q.address()?).await?;
    Ok(Json(put).into_response())
}

async fn ucxi_discover(
    State(s): State<AppState>,
    q: Result<Query<PatternQuery>, QueryRejection>,
) -> Result<Response, UcxiError> {
    let Query(q) = q?;
    let pattern = match q.pattern.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => {
            return Err(UcxiError(ContextError::new(
                UcxlCode::InvalidAddress,
                "the `pattern` query parameter is missing or empty",
            )));
        }
    };
    let found = s.context.discover(pattern, q.limit.unwrap_or(0)).await?;
    Ok(Json(found).into_response())
}

async fn ucxi_navigate(
    State(s): State<AppState>,
    q: Result<Query<AddressQuery>, QueryRejection>,
) -> Result<Response, UcxiError> {
    let Query(q) = q?;
    let history = s.context.history(q.address()?, q.limit.unwrap_or(0)).await?;
    Ok(Json(history).into_response())
}

async fn ucxi_status(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(s.context.status()))
}

/// A role as `GET /api/roles` shows it.
#[derive(Debug, Serialize)]
struct RoleOut {
    name: String,
    authority: u32,
    self_service: bool,
    can_read: Vec<String>,
    epoch: u64,
}

#[derive(Debug, Serialize)]
struct GrantOut {
    role: String,
    peer_id: String,
    source: String,
    granted_at_ms: u64,
}

#[derive(Debug, Serialize)]
struct PendingOut {
    role: String,
    peer_id: String,
    requested_at_ms: u64,
}

fn peer_text(bytes: &[u8]) -> String {
    PeerId::from_bytes(bytes)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| hex::encode(bytes))
}

fn api_error(e: ContextError) -> ApiError {
    let code = match e.code {
        UcxlCode::InvalidAddress | UcxlCode::TemporalInvalid | UcxlCode::BadRequest | UcxlCode::Conflict => {
            ErrorCode::BadRequest
        }
        UcxlCode::Unauthorized => ErrorCode::Unauthorized,
        UcxlCode::Forbidden => ErrorCode::Forbidden,
        UcxlCode::NotFound => ErrorCode::NotFound,
        UcxlCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
        UcxlCode::Internal => ErrorCode::Internal,
        UcxlCode::ServiceUnavailable => ErrorCode::ServiceUnavailable,
        UcxlCode::Timeout => ErrorCode::Timeout,
    };
    ApiError::new(code, e.message)
}

async fn roles_list(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let view = s.context.roles().await.map_err(api_error)?;
    let roles: Vec<RoleOut> = view
        .roles
        .iter()
        .map(|r| RoleOut {
            name: r.name.clone(),
            authority: r.authority,
            self_service: r.self_service,
            can_read: r.can_read.clone(),
            epoch: r.epoch,
        })
        .collect();
    let grants: Vec<GrantOut> = view
        .grants
        .iter()
        .map(|g| GrantOut {
            role: g.role.clone(),
            peer_id: peer_text(&g.peer_id),
            source: g.source.clone(),
            granted_at_ms: g.granted_at_ms,
        })
        .collect();
    let pending: Vec<PendingOut> = view
        .pending
        .iter()
        .map(|p| PendingOut {
            role: p.role.clone(),
            peer_id: peer_text(&p.peer_id),
            requested_at_ms: p.requested_at_ms,
        })
        .collect();
    Ok(Json(json!({
        "has_policy": view.has_policy,
        "roles": roles,
        "grants": grants,
        "pending": pending,
    })))
}

/// Body of `POST /api/roles/{role}/grant`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    peer_id: String,
}

async fn roles_grant(
    State(s): State<AppState>,
    Path(role): Path<String>,
    headers: HeaderMap,
    body: Result<Json<GrantBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let presented = crate::api::require_operator(&s, &headers, "granting a role")?;
    let Json(body) = body?;
    bzzz_storage::raft::validate_role_name(&role)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("role {role:?}: {e}")))?;
    let peer: PeerId = body.peer_id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("peer_id {:?} is not a peer id", body.peer_id),
        )
    })?;
    s.context.grant(&role, peer, presented).await.map_err(api_error)?;
    Ok(Json(
        json!({"role": role, "peer_id": peer.to_string(), "granted": true}),
    ))
}
