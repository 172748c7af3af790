//! The HTTP API (axum): the agent-facing listener (`api.listen`) and the health-only listener
//! (`health.listen`). Every error is one JSON envelope:
//! `{"error":{"code":"BZZZ-404-NOT_FOUND","message":"…","request_id":"…"}}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bzzz_bootstrap::{JoinState, JoinStatus, Mode};
use bzzz_protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::health::{Health, Status};
use crate::metrics::MetricsHandle;
use crate::network::{Client, NetworkError};
use crate::probe::Prober;

/// Longest key accepted by `/api/dht/records/{key}`, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Longest wait a client may ask of a test endpoint, in milliseconds.
pub const MAX_TEST_TIMEOUT_MS: u64 = 60_000;

/// Handles the API needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The election.
    pub consensus: crate::consensus::Consensus,
    /// Network handle.
    pub client: Client,
    /// Probe service.
    pub prober: Prober,
    /// Latest health.
    pub health: Health,
    /// Metrics registry.
    pub metrics: MetricsHandle,
    /// Bootstrap progress.
    pub join: watch::Receiver<JoinStatus>,
    /// The context service.
    pub context: crate::context::ContextService,
    /// The operator token in force (replaced by a config reload). Never shown.
    pub operator_token: OperatorAuth,
    /// Operator actions: reload, peers clear, DHT maintenance, backup.
    pub ops: crate::ops::Ops,
    /// Static facts about the node.
    pub info: Arc<NodeInfo>,
}

/// The operator token: `Debug` never shows it, and comparisons go through digests.
#[derive(Clone)]
pub struct OperatorToken(String);

impl OperatorToken {
    /// Wraps a token read from its file.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// Whether `presented` is this token (compares SHA-256 digests, so timing says nothing).
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::Digest;
        sha2::Sha256::digest(presented.as_bytes()) == sha2::Sha256::digest(self.0.as_bytes())
    }
}

impl OperatorToken {
    /// Reads the token from `path` (surrounding whitespace trimmed). The error says why, never
    /// what the file holds.
    pub fn read_file(path: &std::path::Path) -> Result<OperatorToken, String> {
        let token = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let token = token.trim();
        if token.is_empty() {
            return Err("the file is empty".into());
        }
        Ok(OperatorToken(token.to_owned()))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

/// The operator token in force, shared by the API and the context service; a config reload
/// replaces it (token rotation without a restart). `None` inside: no token is asked for. Cheap
/// to clone.
#[derive(Clone, Default)]
pub struct OperatorAuth(Arc<std::sync::RwLock<Option<OperatorToken>>>);

impl OperatorAuth {
    /// Starts with `token` in force.
    pub fn new(token: Option<OperatorToken>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(token)))
    }

    /// Whether operator actions need a token.
    pub fn is_required(&self) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Whether `presented` may act as operator: always when no token is configured, otherwise
    /// only the token itself.
    pub fn allows(&self, presented: Option<&str>) -> bool {
        match &*self.0.read().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some(token) => presented.is_some_and(|p| token.matches(p)),
        }
    }

    /// Puts `token` in force from now on.
    pub fn replace(&self, token: Option<OperatorToken>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = token;
    }
}

impl std::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorAuth")
            .field("required", &self.is_required())
            .finish()
    }
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

/// Checks that the request may do the operator action `what` (e.g. "granting a role"); returns
/// the presented token (forwarded when the action runs on the admin).
pub(crate) fn require_operator(
    s: &AppState,
    headers: &axum::http::HeaderMap,
    what: &str,
) -> Result<Option<String>, ApiError> {
    let presented = bearer(headers);
    if !s.operator_token.allows(presented.as_deref()) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!("{what} is an operator action: send `Authorization: Bearer <operator token>`"),
        ));
    }
    Ok(presented)
}

/// Facts about the node that do not change while it runs.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    /// Peer id.
    pub peer_id: String,
    /// Agent id from config (or derived from the peer id).
    pub agent_id: String,
    /// Role from config.
    pub role: String,
    /// Node mode.
    pub mode: Mode,
    /// bzzz version.
    pub version: String,
    /// When the node started.
    #[serde(skip)]
    pub started: Instant,
}

/// An API error: a stable code and a message a human can act on.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_envelope(self.code.status(), self.code.as_str(), &self.message)
    }
}

/// The one error envelope of every HTTP error (`BZZZ-` and `UCXL-` codes alike):
/// `{"error":{"code","message","request_id"}}` with `status`; server errors are logged with the
/// request id.
pub(crate) fn error_envelope(status: u16, code: &str, message: &str) -> Response {
    let request_id = hex::encode(rand::random::<[u8; 8]>());
    if status >= 500 {
        tracing::warn!(%code, %message, %request_id, "api error");
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"code": code, "message": message, "request_id": request_id}});
    (status, Json(body)).into_response()
}

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        let code = match &e {
            NetworkError::Shutdown | NetworkError::InsufficientPeers { .. } | NetworkError::Busy(_) => {
                ErrorCode::ServiceUnavailable
            }
            NetworkError::NotFound => ErrorCode::NotFound,
            NetworkError::RecordTooLarge { .. } => ErrorCode::PayloadTooLarge,
            NetworkError::UnknownTopic(_) => ErrorCode::BadRequest,
            NetworkError::Dht { .. } | NetworkError::Rpc { .. } => ErrorCode::ServiceUnavailable,
            NetworkError::Publish(_) | NetworkError::Sign(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::PayloadTooLarge
        } else {
            ErrorCode::BadRequest
        };
        ApiError::new(code, e.body_text())
    }
}

/// Routes of the health listener: health, readiness, checks, metrics, and read-only status.
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/checks", get(checks))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/peers", get(peers))
        .route("/api/election/status", get(election_status))
        .fallback(not_found)
        .with_state(state)
}

/// Routes of the agent-facing API: everything on the health listener plus the operations.
pub fn api_router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/test/p2p-message", post(test_p2p_message))
        .route("/api/test/dht-operations", post(test_dht_operations))
        .route("/api/dht/records/{key}", get(get_record).put(put_record))
        .route("/api/election/trigger", post(trigger_election))
        .with_state(state.clone())
        .merge(crate::ops::http::router(state.clone()))
        .merge(crate::ucxi::router(state.clone()))
        .merge(health_router(state))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// Adds the shared layers: a request timeout and a cap on concurrent requests.
pub fn with_limits(router: Router, timeout: Duration, max_concurrent: usize) -> Router {
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

#[derive(Serialize)]
struct HealthBody {
    status: Status,
    score: f64,
    peer_id: String,
    version: String,
    uptime_seconds: u64,
    components: std::collections::BTreeMap<String, Status>,
}

async fn health(State(s): State<AppState>) -> Response {
    let summary = s.health.summary();
    let body = HealthBody {
        status: summary.status,
        score: summary.score,
        peer_id: s.info.peer_id.clone(),
        version: s.info.version.clone(),
        uptime_seconds: s.info.started.elapsed().as_secs(),
        components: summary.components,
    };
    let code = if summary.status == Status::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "alive"}))
}

async fn ready(State(s): State<AppState>) -> Response {
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
    (code, Json(json!({"ready": ready, "reason": reason}))).into_response()
}

async fn checks(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(s.health.checks()))
}

/// Serves OpenMetrics to scrapers that ask for it (Prometheus does), and the Prometheus text
/// format 0.0.4 otherwise (curl, `promtool check metrics`).
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    s.metrics
        .metrics
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

async fn status(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let snap = s.client.snapshot().await?;
    let join = s.join.borrow().clone();
    Ok(Json(json!({
        "peer_id": s.info.peer_id,
        "agent_id": s.info.agent_id,
        "role": s.info.role,
        "mode": s.info.mode,
        "version": s.info.version,
        "listen_addrs": snap.listen_addrs,
        "peers": snap.peers.len(),
        "routing_table_size": snap.routing_table_size,
        "dht_records_stored": s.metrics.metrics.dht_records_stored.get(),
        "uptime_seconds": s.info.started.elapsed().as_secs(),
        "bootstrap": join,
        "health": s.health.summary(),
        "election": s.consensus.status(),
    })))
}

async fn peers(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut snap = s.client.snapshot().await?;
    snap.peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    Ok(Json(json!({"count": snap.peers.len(), "peers": snap.peers})))
}

/// Body of `POST /api/test/p2p-message`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct P2pTestRequest {
    /// How long to wait for acknowledgements, in milliseconds (default 5000).
    pub timeout_ms: Option<u64>,
}

fn parse_optional_json<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {e}")))
}

fn check_timeout(ms: Option<u64>) -> Result<Duration, ApiError> {
    let ms = ms.unwrap_or(5_000);
    if ms == 0 || ms > MAX_TEST_TIMEOUT_MS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("timeout_ms must be between 1 and {MAX_TEST_TIMEOUT_MS}"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

async fn test_p2p_message(State(s): State<AppState>, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let req: P2pTestRequest = parse_optional_json(&body)?;
    let timeout = check_timeout(req.timeout_ms)?;
    let report = s.prober.probe("test", timeout).await?;
    Ok(Json(json!(report)))
}

/// Body of `POST /api/test/dht-operations`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DhtTestRequest {
    /// Size of the test value in bytes (default 1024).
    pub size_bytes: Option<usize>,
}

async fn test_dht_operations(State(s): State<AppState>, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let req: DhtTestRequest = parse_optional_json(&body)?;
    let size = req.size_bytes.unwrap_or(1024);
    if size == 0 {
        return Err(ApiError::new(ErrorCode::BadRequest, "size_bytes must be at least 1"));
    }
    let key = format!(
        "/bzzz/test/{}/{}",
        s.info.peer_id,
        hex::encode(rand::random::<[u8; 8]>())
    );
    let value: Vec<u8> = (0..size).map(|_| rand::random::<u8>()).collect();
    let started = Instant::now();
    let put = s
        .client
        .put_record(key.clone().into_bytes(), value.clone(), None)
        .await?;
    let put_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let got = s.client.get_record(key.clone().into_bytes()).await?;
    let get_ms = started.elapsed().as_secs_f64() * 1000.0;
    let verified = got == value;
    if !verified {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "get returned a different value than was put",
        ));
    }
    let mut answer = json!({
        "key": key,
        "size_bytes": size,
        "put_ms": put_ms,
        "get_ms": get_ms,
        "replicated": put.replicated,
        "verified": verified,
    });
    // The encrypted round trip: one self-test address per node (each run adds a version). A mesh
    // with no admin-eligible node has no index, so no context: skipped, not failed (an eligible
    // mesh without a live admin fails it).
    let election = s.consensus.status();
    if election.admin.is_none() && !election.eligible && election.eligible_seen == 0 && election.voters.is_empty() {
        answer["context_skipped"] = json!("no admin-eligible node on this mesh, so no context index");
        return Ok(Json(answer));
    }
    let address = format!(
        "ucxl://selftest:{}@bzzz-selftest:dht-operations/{}",
        s.info.role, s.info.peer_id
    );
    let started = Instant::now();
    match s.context.put(&address, value.clone()).await {
        Ok(put) => {
            let put_ms = started.elapsed().as_secs_f64() * 1000.0;
            let started = Instant::now();
            let at = address.replacen("dht-operations/", &format!("dht-operations/*~{}/", put.version), 1);
            match s.context.get(&at).await {
                Ok(got) => {
                    answer["context"] = json!({
                        "address": address,
                        "version": put.version,
                        "replicas": put.replicas,
                        "put_ms": put_ms,
                        "get_ms": started.elapsed().as_secs_f64() * 1000.0,
                        "verified": got.content == value,
                    });
                }
                Err(e) => answer["context_error"] = json!(format!("get: {e}")),
            }
        }
        Err(e) => answer["context_error"] = json!(format!("put: {e}")),
    }
    Ok(Json(answer))
}

fn record_key(key: &str) -> Result<Vec<u8>, ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("record key must be 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    Ok(key.as_bytes().to_vec())
}

async fn get_record(State(s): State<AppState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let value = s.client.get_record(record_key(&key)?).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response())
}

async fn put_record(
    State(s): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key_bytes = record_key(&key)?;
    let put = s.client.put_record(key_bytes, body.to_vec(), None).await?;
    Ok(Json(
        json!({"key": key, "size_bytes": body.len(), "replicated": put.replicated}),
    ))
}

async fn election_status(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(s.consensus.status()))
}

async fn trigger_election(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(json!({"triggered": true, "node_id": s.consensus.node_id()})))
}
