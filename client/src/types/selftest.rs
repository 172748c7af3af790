//! The self-tests (`/api/test/p2p-message`, `/api/test/dht-operations`) and raw DHT records
//! (`/api/dht/records/{key}`).

use serde::{Deserialize, Serialize};

/// Body of `POST /api/test/p2p-message` (an empty body takes the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pTestRequest {
    /// How long to wait for acknowledgements, in milliseconds (default 5000, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Answer of `POST /api/test/p2p-message`: what a probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The probe id, hex.
    pub probe_id: String,
    /// Peers subscribed to the health topic when the probe was published.
    pub expected: Vec<String>,
    /// Peers that acknowledged, fastest first.
    pub receivers: Vec<ProbeReceipt>,
    /// Expected peers that did not acknowledge within the timeout.
    pub missing: Vec<String>,
    /// How long the probe waited, in milliseconds.
    pub waited_ms: u64,
}

/// One acknowledgement of a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReceipt {
    /// Who received the probe.
    pub peer_id: String,
    /// Publish-to-acknowledgement time, in milliseconds.
    pub round_trip_ms: f64,
}

/// Body of `POST /api/test/dht-operations` (an empty body takes the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhtTestRequest {
    /// Size of the test value in bytes (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<usize>,
}

/// Answer of `POST /api/test/dht-operations`: a plain DHT put/get and, on a mesh with an
/// admin-eligible node, an encrypted context round trip. Exactly one of `context`,
/// `context_error` and `context_skipped` is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DhtTestReport {
    /// The test record's key.
    pub key: String,
    /// The test value's size in bytes.
    pub size_bytes: usize,
    /// Put latency, ms.
    pub put_ms: f64,
    /// Get latency, ms.
    pub get_ms: f64,
    /// Whether the put reached remote peers (false when the node is alone).
    pub replicated: bool,
    /// Whether the value read back is the one written (always true: a mismatch is an error).
    pub verified: bool,
    /// The encrypted round trip, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextRoundTrip>,
    /// Why the encrypted round trip failed (`put: …` or `get: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_error: Option<String>,
    /// Why the encrypted round trip did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_skipped: Option<String>,
}

impl DhtTestReport {
    /// Why the encrypted round trip failed, if it did (an error, or content that read back
    /// different). `None` when it passed or was skipped.
    pub fn encrypted_round_trip_failure(&self) -> Option<String> {
        if let Some(e) = &self.context_error {
            return Some(format!("encrypted round trip: {e}"));
        }
        match &self.context {
            Some(c) if !c.verified => {
                Some("encrypted round trip: the content read back differs from what was written".into())
            }
            _ => None,
        }
    }
}

/// The encrypted round trip of a DHT self-test: a context put and get at the node's self-test
/// address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextRoundTrip {
    /// The self-test address (one per node; each run adds a version).
    pub address: String,
    /// The version written.
    pub version: u64,
    /// Holders that acknowledged the record.
    pub replicas: usize,
    /// Put latency, ms.
    pub put_ms: f64,
    /// Get latency, ms.
    pub get_ms: f64,
    /// Whether the content read back is the content written.
    pub verified: bool,
}

/// Answer of `PUT /api/dht/records/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPut {
    /// The key.
    pub key: String,
    /// The value's size in bytes.
    pub size_bytes: usize,
    /// Whether the put reached remote peers (false when the node is alone).
    pub replicated: bool,
}
