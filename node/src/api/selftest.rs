//! The self-tests the runbook uses (`/api/test/p2p-message`, `/api/test/dht-operations`) and
//! raw DHT records (`/api/dht/records/{key}`).

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bzzz_client::types::{ContextRoundTrip, DhtTestReport, DhtTestRequest, P2pTestRequest, ProbeReport, RecordPut};
use bzzz_protocol::ErrorCode;

use super::convert;
use super::error::ApiError;
use super::state::AppState;

/// Longest key accepted by `/api/dht/records/{key}`, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 512;
/// Longest wait a client may ask of a test endpoint, in milliseconds.
pub(crate) const MAX_TEST_TIMEOUT_MS: u64 = 60_000;

/// An empty body is the request's defaults; anything else must be the request's JSON.
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

pub(super) async fn test_p2p_message(State(s): State<AppState>, body: Bytes) -> Result<Json<ProbeReport>, ApiError> {
    let req: P2pTestRequest = parse_optional_json(&body)?;
    let timeout = check_timeout(req.timeout_ms)?;
    let report = s.prober.probe("test", timeout).await?;
    Ok(Json(convert::probe_report(report)))
}

pub(super) async fn test_dht_operations(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Json<DhtTestReport>, ApiError> {
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
    let mut answer = DhtTestReport {
        key,
        size_bytes: size,
        put_ms,
        get_ms,
        replicated: put.replicated,
        verified,
        context: None,
        context_error: None,
        context_skipped: None,
    };
    // The encrypted round trip: one self-test address per node (each run adds a version). A mesh
    // with no admin-eligible node has no index, so no context: skipped, not failed (an eligible
    // mesh without a live admin fails it).
    if s.consensus.mesh_without_election() {
        answer.context_skipped = Some("no admin-eligible node on this mesh, so no context index".into());
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
                    answer.context = Some(ContextRoundTrip {
                        address,
                        version: put.version,
                        replicas: put.replicas,
                        put_ms,
                        get_ms: started.elapsed().as_secs_f64() * 1000.0,
                        verified: got.content == value,
                    });
                }
                Err(e) => answer.context_error = Some(format!("get: {e}")),
            }
        }
        Err(e) => answer.context_error = Some(format!("put: {e}")),
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

pub(super) async fn get_record(State(s): State<AppState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let value = s.client.get_record(record_key(&key)?).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response())
}

pub(super) async fn put_record(
    State(s): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<RecordPut>, ApiError> {
    let key_bytes = record_key(&key)?;
    let put = s.client.put_record(key_bytes, body.to_vec(), None).await?;
    Ok(Json(RecordPut {
        key,
        size_bytes: body.len(),
        replicated: put.replicated,
    }))
}
