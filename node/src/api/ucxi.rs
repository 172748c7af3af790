//! The context HTTP API: UCXI under `/ucxi/v1/`.
//!
//! UCXI errors use the UCXL envelope `{"error":{"code":"UCXL-<status>-<NAME>","message":…,
//! "request_id":…}}`; every malformed input (address, query, body) is a 4xx with its code. See
//! docs/api.md.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use bzzz_client::types::ContextStatus;
use bzzz_protocol::ucxl::UcxlCode;
use serde::Deserialize;

use super::error::UcxiError;
use super::state::AppState;
use crate::context::ContextError;

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
pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/ucxi/v1/get", get(ucxi_get))
        .route("/ucxi/v1/put", post(ucxi_put).put(ucxi_put))
        .route("/ucxi/v1/delete", delete(ucxi_delete).post(ucxi_delete))
        .route("/ucxi/v1/discover", get(ucxi_discover))
        .route("/ucxi/v1/navigate", get(ucxi_navigate))
        .route("/ucxi/v1/history", get(ucxi_navigate))
        .route("/ucxi/v1/status", get(ucxi_status))
        .route("/ucxi/v1/{*rest}", any(ucxi_unknown))
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

async fn ucxi_status(State(s): State<AppState>) -> Json<ContextStatus> {
    Json(s.context.status())
}
