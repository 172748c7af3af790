//! `bzzz-client`: the HTTP API of a bzzz node, typed. The Rust SDK for agents and operators.
//!
//! Every bzzz daemon serves an HTTP API to the agents on its host (`api.listen`, default
//! `127.0.0.1:8080`) and a health listener (`health.listen`, default `:8081`). This crate holds
//! the one definition of that API: the request and response bodies of every endpoint
//! ([`types`]), shared by the daemon that serialises them and by [`ApiClient`], which calls
//! them. The `bzzz` CLI, the test suite and `bzzz-bench` all talk to nodes through it.
//!
//! ```no_run
//! use bzzz_client::ApiClient;
//!
//! # async fn demo() -> Result<(), bzzz_client::ClientError> {
//! let node = ApiClient::new("http://127.0.0.1:8080")?;
//! let status = node.status().await?;
//! println!("{} is {:?}; admin {:?}", status.peer_id, status.health.status, status.election.admin);
//!
//! // Encrypted, versioned context at a UCXL address.
//! let put = node.context_put("ucxl://me:agent@demo:plan/decisions.md", b"use sled".to_vec()).await?;
//! let read = node.context_get("ucxl://me:agent@demo:plan/decisions.md").await?;
//! assert_eq!(read.version, put.version);
//! assert_eq!(read.content, b"use sled");
//!
//! // Operator actions need the operator token.
//! let operator = ApiClient::new("http://127.0.0.1:8080")?.with_token("…");
//! let report = operator.reload_config().await?;
//! println!("applied: {:?}", report.applied);
//! # Ok(())
//! # }
//! ```
//!
//! Errors: [`ClientError::Api`] carries the node's error envelope (a stable code such as
//! `UCXL-404-NOT_FOUND` and a message a human can act on); [`ClientError::Unreachable`] means no
//! answer came; [`ClientError::Protocol`] means the answer was not what this version of the
//! contract expects. Every method is cancel-safe: dropping its future abandons the request (the
//! node may still carry out a write it already received).

mod error;
mod response;
pub mod types;

pub use error::ClientError;
use error::error_text;
pub use response::{Backup, Body, RawResponse};

use std::time::Duration;

pub use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::*;

/// Default timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A typed client of one node's HTTP API. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct ApiClient {
    base: Url,
    http: reqwest::Client,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ApiClient {
    /// A client of the node at `base_url` (e.g. `http://127.0.0.1:8080`), with
    /// [`DEFAULT_TIMEOUT`] per request.
    pub fn new(base_url: &str) -> Result<ApiClient, ClientError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    /// A client of the node at `base_url` whose requests give up after `timeout`.
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<ApiClient, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let base = Url::parse(base_url.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected http://host:port or https://host:port".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(ApiClient {
            base,
            http,
            token: None,
        })
    }

    /// The same client, sending `token` as `Authorization: Bearer <token>` on every request.
    /// The token is never shown by `Debug` or in errors.
    pub fn with_token(mut self, token: impl Into<String>) -> ApiClient {
        self.token = Some(token.into());
        self
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The URL of `path` with `query` pairs (values percent-encoded).
    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn send(&self, method: Method, url: Url, body: Body<'_>) -> Result<reqwest::Response, ClientError> {
        let shown = url.to_string();
        let mut req = self.http.request(method, url);
        match body {
            Body::Empty => {}
            Body::Json(v) => req = req.json(&v),
            Body::Bytes(b) => req = req.header(CONTENT_TYPE, "application/octet-stream").body(b.to_vec()),
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().await.map_err(|e| ClientError::Unreachable {
            url: shown,
            reason: error_text(&e),
        })
    }

    /// Sends a request and reads the whole answer, whatever its status: the escape hatch for
    /// endpoints this client has no method for, and for checking error answers.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<RawResponse, ClientError> {
        let url = self.url(path, query);
        self.read(self.send(method, url, body).await?).await
    }

    async fn read(&self, resp: reqwest::Response) -> Result<RawResponse, ClientError> {
        let url = resp.url().to_string();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| ClientError::Protocol {
            url: url.clone(),
            reason: error_text(&e),
        })?;
        Ok(RawResponse {
            url,
            status,
            headers,
            body: body.to_vec(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<RawResponse, ClientError> {
        let url = self.url(path, query);
        self.read(self.send(method, url, body).await?).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, &[], Body::Empty).await?.expect(&[200])
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Option<&impl Serialize>) -> Result<T, ClientError> {
        let body = match body {
            Some(b) => Body::Json(serde_json::to_value(b).map_err(|e| ClientError::Protocol {
                url: self.url(path, &[]).to_string(),
                reason: format!("cannot encode the request: {e}"),
            })?),
            None => Body::Empty,
        };
        self.call(Method::POST, path, &[], body).await?.expect(&[200])
    }

    // ---- health listener (also served on the API listener) ----

    /// `GET /health`: the node's health. A node that answers 503 (unhealthy) still gives its
    /// report, so this returns `Ok` for it.
    pub async fn health(&self) -> Result<HealthReport, ClientError> {
        self.call(Method::GET, "/health", &[], Body::Empty)
            .await?
            .expect(&[200, 503])
    }

    /// `GET /health/live`.
    pub async fn live(&self) -> Result<Liveness, ClientError> {
        self.get("/health/live").await
    }

    /// `GET /health/ready`: `Ok` with `ready: false` when the node answers 503.
    pub async fn ready(&self) -> Result<Readiness, ClientError> {
        self.call(Method::GET, "/health/ready", &[], Body::Empty)
            .await?
            .expect(&[200, 503])
    }

    /// `GET /health/checks`: every check's latest result.
    pub async fn health_checks(&self) -> Result<HealthChecks, ClientError> {
        self.get("/health/checks").await
    }

    /// `GET /metrics` in the Prometheus text format 0.0.4.
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let r = self.call(Method::GET, "/metrics", &[], Body::Empty).await?;
        if r.status != 200 {
            return Err(r.error());
        }
        String::from_utf8(r.body).map_err(|e| ClientError::Protocol {
            url: r.url,
            reason: format!("metrics are not UTF-8: {e}"),
        })
    }

    /// `GET /api/status`.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        self.get("/api/status").await
    }

    /// `GET /api/peers`: the connected peers, by peer id.
    pub async fn peers(&self) -> Result<PeerList, ClientError> {
        self.get("/api/peers").await
    }

    /// `GET /api/election/status`.
    pub async fn election_status(&self) -> Result<ElectionStatus, ClientError> {
        self.get("/api/election/status").await
    }

    // ---- API listener ----

    /// `POST /api/election/trigger`: the node (which must be admin-eligible) stands for a new
    /// election.
    pub async fn trigger_election(&self) -> Result<ElectionTriggered, ClientError> {
        self.post("/api/election/trigger", None::<&()>).await
    }

    /// `POST /api/test/p2p-message`: publishes a probe and reports who acknowledged it.
    pub async fn test_p2p_message(&self, req: &P2pTestRequest) -> Result<ProbeReport, ClientError> {
        self.post("/api/test/p2p-message", Some(req)).await
    }

    /// `POST /api/test/dht-operations`: a DHT put/get and an encrypted context round trip.
    pub async fn test_dht_operations(&self, req: &DhtTestRequest) -> Result<DhtTestReport, ClientError> {
        self.post("/api/test/dht-operations", Some(req)).await
    }

    /// `GET /api/dht/records/{key}`: a raw DHT record's value.
    pub async fn dht_record(&self, key: &str) -> Result<Vec<u8>, ClientError> {
        let r = self.call(Method::GET, &record_path(key), &[], Body::Empty).await?;
        if r.status != 200 {
            return Err(r.error());
        }
        Ok(r.body)
    }

    /// `PUT /api/dht/records/{key}`: writes a raw DHT record.
    pub async fn put_dht_record(&self, key: &str, value: &[u8]) -> Result<RecordPut, ClientError> {
        self.call(Method::PUT, &record_path(key), &[], Body::Bytes(value))
            .await?
            .expect(&[200])
    }

    /// `PUT /ucxi/v1/put?address=…`: writes `content` as the next version of `address`,
    /// encrypted for the node's role. Durable and indexed when it returns (see
    /// `docs/protocol/context-rpc.md`).
    pub async fn context_put(&self, address: &str, content: Vec<u8>) -> Result<PutResult, ClientError> {
        self.call(
            Method::PUT,
            "/ucxi/v1/put",
            &[("address", address)],
            Body::Bytes(&content),
        )
        .await?
        .expect(&[201, 200])
    }

    /// `GET /ucxi/v1/get?address=…`: the decrypted content of a version (the latest unless the
    /// address names one) and which version it is.
    pub async fn context_get(&self, address: &str) -> Result<ContextRead, ClientError> {
        let r = self
            .call(Method::GET, "/ucxi/v1/get", &[("address", address)], Body::Empty)
            .await?;
        if r.status != 200 {
            return Err(r.error());
        }
        let text = |name: &str| {
            r.header(name).map(str::to_owned).ok_or_else(|| ClientError::Protocol {
                url: r.url.clone(),
                reason: format!("the answer has no {name} header"),
            })
        };
        let number = |name: &str| {
            text(name)?.parse::<u64>().map_err(|e| ClientError::Protocol {
                url: r.url.clone(),
                reason: format!("header {name}: {e}"),
            })
        };
        Ok(ContextRead {
            address: text("x-ucxl-address")?,
            version: number("x-ucxl-version")?,
            latest: number("x-ucxl-latest")?,
            author: text("x-ucxl-author")?,
            role: text("x-ucxl-role")?,
            created_ms: number("x-ucxl-created-ms")?,
            record_key: text("x-ucxl-record-key")?,
            content: r.body.clone(),
        })
    }

    /// `DELETE /ucxi/v1/delete?address=…`: writes a tombstone version.
    pub async fn context_delete(&self, address: &str) -> Result<PutResult, ClientError> {
        self.call(Method::DELETE, "/ucxi/v1/delete", &[("address", address)], Body::Empty)
            .await?
            .expect(&[200])
    }

    /// `GET /ucxi/v1/navigate?address=…[&limit=N]`: the newest versions of an address.
    pub async fn context_history(&self, address: &str, limit: Option<u32>) -> Result<History, ClientError> {
        let limit = limit.map(|n| n.to_string());
        let mut q = vec![("address", address)];
        if let Some(n) = &limit {
            q.push(("limit", n));
        }
        self.call(Method::GET, "/ucxi/v1/navigate", &q, Body::Empty)
            .await?
            .expect(&[200])
    }

    /// `GET /ucxi/v1/discover?pattern=…[&limit=N]`: the addresses matching a pattern (`any`
    /// wildcards), each with its latest version.
    pub async fn context_discover(&self, pattern: &str, limit: Option<u32>) -> Result<Discovered, ClientError> {
        let limit = limit.map(|n| n.to_string());
        let mut q = vec![("pattern", pattern)];
        if let Some(n) = &limit {
            q.push(("limit", n));
        }
        self.call(Method::GET, "/ucxi/v1/discover", &q, Body::Empty)
            .await?
            .expect(&[200])
    }

    /// `GET /ucxi/v1/status`: the node's roles, keys and replication settings.
    pub async fn context_status(&self) -> Result<ContextStatus, ClientError> {
        self.get("/ucxi/v1/status").await
    }

    /// `GET /api/roles`: the role policy, grants and pending requests.
    pub async fn roles(&self) -> Result<RolesView, ClientError> {
        self.get("/api/roles").await
    }

    /// `POST /api/roles/{role}/grant` (operator): grants `role` to `peer_id`.
    pub async fn grant_role(&self, role: &str, peer_id: &str) -> Result<RoleGranted, ClientError> {
        let path = format!("/api/roles/{}/grant", encode_segment(role));
        let body = GrantRequest {
            peer_id: peer_id.to_owned(),
        };
        self.post(&path, Some(&body)).await
    }

    /// `POST /api/config/reload` (operator): re-read the node's configuration.
    pub async fn reload_config(&self) -> Result<ReloadReport, ClientError> {
        self.post("/api/config/reload", None::<&()>).await
    }

    /// `POST /api/admission/join-tokens` (operator, on a voter holding the issuer key): create a
    /// join token.
    pub async fn create_join_token(&self, token: &JoinTokenCreate) -> Result<JoinTokenInfo, ClientError> {
        self.post("/api/admission/join-tokens", Some(token)).await
    }

    /// `GET /api/admission/join-tokens` (operator, on a voter): the cluster's join tokens.
    pub async fn join_tokens(&self) -> Result<JoinTokenList, ClientError> {
        self.get("/api/admission/join-tokens").await
    }

    /// `POST /api/admission/join-tokens/{id}/revoke` (operator, on a voter): revoke a join token.
    pub async fn revoke_join_token(&self, id: &str) -> Result<JoinTokenInfo, ClientError> {
        self.post(&format!("/api/admission/join-tokens/{id}/revoke"), None::<&()>)
            .await
    }

    /// `POST /api/admission/revocations` (operator): apply a CA-signed revocation list on the
    /// node and publish it to the mesh.
    pub async fn submit_revocation(&self, revocation: &str) -> Result<RevocationApplied, ClientError> {
        self.post(
            "/api/admission/revocations",
            Some(&RevocationSubmit {
                revocation: revocation.to_owned(),
            }),
        )
        .await
    }

    /// `POST /api/peers/clear` (operator): forget every peer and re-bootstrap.
    pub async fn clear_peers(&self) -> Result<PeersCleared, ClientError> {
        self.post("/api/peers/clear", None::<&()>).await
    }

    /// `POST /api/dht/reprovide` (operator): re-announce held records and run the admin's
    /// replication check now.
    pub async fn dht_reprovide(&self) -> Result<ReprovideReport, ClientError> {
        self.post("/api/dht/reprovide", None::<&()>).await
    }

    /// `POST /api/dht/cache/clear` (operator): remove what the node merely caches.
    pub async fn dht_cache_clear(&self) -> Result<CacheClearReport, ClientError> {
        self.post("/api/dht/cache/clear", None::<&()>).await
    }

    /// `POST /api/backup` (operator): starts a backup of the node's database and returns the
    /// stream of its bytes; read it with [`Backup::chunk`]. Check the file you write with
    /// `bzzz_storage::backup::verify_file` before trusting it.
    pub async fn backup(&self) -> Result<Backup, ClientError> {
        let url = self.url("/api/backup", &[]);
        let shown = url.to_string();
        let resp = self.send(Method::POST, url, Body::Empty).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.read(resp).await?.error());
        }
        Ok(Backup { url: shown, resp })
    }
}

/// `/api/dht/records/{key}` with the key as one encoded path segment.
fn record_path(key: &str) -> String {
    format!("/api/dht/records/{}", encode_segment(key))
}

/// Percent-encodes a path segment: everything but the unreserved `A-Z a-z 0-9 - _ . ~`.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_query_values_and_path_segments() {
        let c = ApiClient::new("http://127.0.0.1:8080/").expect("valid url");
        let u = c.url("/ucxi/v1/get", &[("address", "ucxl://a:b@p:t/n a.md?x=1&y")]);
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8080/ucxi/v1/get?address=ucxl%3A%2F%2Fa%3Ab%40p%3At%2Fn+a.md%3Fx%3D1%26y"
        );
        assert_eq!(encode_segment("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(encode_segment("a/b é"), "a%2Fb%20%C3%A9");
        let behind_proxy = ApiClient::new("https://example.test/bzzz").expect("valid url");
        assert_eq!(
            behind_proxy.url("/api/status", &[]).as_str(),
            "https://example.test/bzzz/api/status"
        );
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_reason() {
        for bad in ["127.0.0.1:8080", "ftp://x", "not a url"] {
            let e = ApiClient::new(bad).expect_err(bad);
            assert!(matches!(e, ClientError::InvalidUrl { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn tokens_never_show_in_debug() {
        let c = ApiClient::new("http://127.0.0.1:1")
            .expect("valid url")
            .with_token("s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn error_envelopes_become_api_errors() {
        let raw = RawResponse {
            url: "http://x/".into(),
            status: 404,
            headers: reqwest::header::HeaderMap::new(),
            body: br#"{"error":{"code":"UCXL-404-NOT_FOUND","message":"no such address","request_id":"ab"}}"#.to_vec(),
        };
        let e = raw.error();
        assert_eq!(e.code(), Some("UCXL-404-NOT_FOUND"));
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.to_string(), "UCXL-404-NOT_FOUND: no such address");
        let not_envelope = RawResponse {
            body: b"<html>".to_vec(),
            status: 502,
            ..raw
        };
        assert!(matches!(not_envelope.error(), ClientError::Protocol { .. }));
    }

    #[test]
    fn dht_test_reports_name_a_failed_encrypted_round_trip() {
        let mut r: DhtTestReport = serde_json::from_str(
            r#"{"key":"k","size_bytes":1,"put_ms":1.0,"get_ms":1.0,"replicated":true,"verified":true}"#,
        )
        .expect("parses");
        assert_eq!(r.encrypted_round_trip_failure(), None);
        r.context_error = Some("put: no quorum".into());
        assert_eq!(
            r.encrypted_round_trip_failure().as_deref(),
            Some("encrypted round trip: put: no quorum")
        );
        r.context_error = None;
        r.context = Some(ContextRoundTrip {
            address: "a".into(),
            version: 1,
            replicas: 3,
            put_ms: 1.0,
            get_ms: 1.0,
            verified: false,
        });
        assert!(r.encrypted_round_trip_failure().is_some());
    }
}
