//! Answers kept whole ([`RawResponse`]), request bodies of [`crate::ApiClient::raw`] ([`Body`]) and
//! streamed backups ([`Backup`]).

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::ClientError;
use crate::error::error_text;
use crate::types::ErrorEnvelope;

/// A response kept whole: status, headers and body bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The URL asked.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body parsed as `T` (a [`ClientError::Protocol`] naming the URL if it does not parse).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Protocol {
            url: self.url.clone(),
            reason: format!("http {}: {e}", self.status),
        })
    }

    /// The node's error envelope as a [`ClientError::Api`]; a [`ClientError::Protocol`] when the
    /// body is not one.
    pub fn error(&self) -> ClientError {
        match serde_json::from_slice::<ErrorEnvelope>(&self.body) {
            Ok(e) => ClientError::Api {
                status: self.status,
                code: e.error.code,
                message: e.error.message,
                request_id: e.error.request_id,
            },
            Err(_) => ClientError::Protocol {
                url: self.url.clone(),
                reason: format!("http {} without an error envelope", self.status),
            },
        }
    }

    /// A header as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as `T` when the status is one of `ok`, otherwise the error envelope.
    pub(crate) fn expect<T: DeserializeOwned>(&self, ok: &[u16]) -> Result<T, ClientError> {
        if ok.contains(&self.status) {
            self.json()
        } else {
            Err(self.error())
        }
    }
}

/// The body of a [`ApiClient::raw`] request.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    /// No body.
    Empty,
    /// A JSON body (`Content-Type: application/json`).
    Json(serde_json::Value),
    /// Raw bytes (`Content-Type: application/octet-stream`).
    Bytes(&'a [u8]),
}

/// A backup being received.
#[derive(Debug)]
pub struct Backup {
    pub(crate) url: String,
    pub(crate) resp: reqwest::Response,
}

impl Backup {
    /// The next chunk of the backup; `None` at the end. An error means the stream broke off and
    /// what was received is incomplete.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ClientError> {
        self.resp.chunk().await.map_err(|e| ClientError::Protocol {
            url: self.url.clone(),
            reason: format!("the backup stream broke off: {}", error_text(&e)),
        })
    }

    /// The URL the backup comes from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backup format version the node announced (`x-bzzz-backup-format`).
    pub fn format(&self) -> Option<&str> {
        self.resp
            .headers()
            .get("x-bzzz-backup-format")
            .and_then(|v| v.to_str().ok())
    }
}
