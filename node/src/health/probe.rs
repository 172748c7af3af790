//! Active gossip probes: a node publishes a [`Probe`] on `bzzz/health/v1`, every receiver answers
//! with a `ProbeAck` over `/bzzz/rpc/1`, and the origin collects who answered and how fast.
//!
//! The health check `pubsub-health` and `bzzz test-p2p-message` both use [`Prober::probe`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bzzz_protocol::envelope::NONCE_LEN;
use bzzz_protocol::topics;
use bzzz_protocol::wire::{Kind, Probe, ProbeAck, RpcRequest, rpc_request};
use libp2p::PeerId;
use prost::Message;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::metrics::{ErrorComponent, HealthMetrics};
use super::now_ms;
use crate::network::{Client, GossipMessage, NetworkError};

/// Most probes of this node in flight at once.
pub(crate) const MAX_PROBES_IN_FLIGHT: usize = 64;
/// Most acknowledgements being sent at once; further probes are not acknowledged (counted).
pub(crate) const MAX_ACKS_IN_FLIGHT: usize = 64;
/// Most acknowledgements collected for one probe.
pub(crate) const MAX_ACKS_PER_PROBE: usize = 4096;

/// One acknowledgement of a probe.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReceipt {
    /// Who received the probe.
    pub peer_id: String,
    /// Publish-to-acknowledgement time, in milliseconds.
    pub round_trip_ms: f64,
}

/// What a probe found.
#[derive(Debug, Clone, Serialize)]
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

type Waiters = Arc<Mutex<HashMap<Vec<u8>, mpsc::Sender<PeerId>>>>;

/// Publishes probes and collects acknowledgements. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Prober {
    client: Client,
    waiters: Waiters,
}

impl Prober {
    /// Starts the responder (answers other nodes' probes); it stops on `shutdown`.
    /// Collects the acknowledgements that arrive on `acks` (the network's probe-ack queue).
    pub async fn start(
        client: Client,
        mut acks: mpsc::Receiver<crate::network::ProbeAck>,
        tracker: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
        metrics: HealthMetrics,
    ) -> Result<Prober, NetworkError> {
        let inbox = client.subscribe(topics::HEALTH, client.subscriber_queue()).await?;
        crate::logging::spawn(
            tracker,
            "probe-responder",
            respond(client.clone(), inbox, shutdown.clone(), metrics, tracker.clone()),
        );
        let prober = Prober {
            client,
            waiters: Arc::default(),
        };
        let collector = prober.clone();
        crate::logging::spawn(tracker, "probe-acks", async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    ack = acks.recv() => match ack {
                        Some(ack) => collector.ack(ack.from, &ack.probe_id),
                        None => break,
                    },
                }
            }
        });
        Ok(prober)
    }

    /// Routes an acknowledgement from `from` to the probe waiting for it, if any.
    pub fn ack(&self, from: PeerId, probe_id: &[u8]) {
        let sender = self.waiters.lock().ok().and_then(|w| w.get(probe_id).cloned());
        if let Some(s) = sender {
            let _ = s.try_send(from);
        }
    }

    /// Publishes a probe and waits up to `timeout` for every peer subscribed to the health topic
    /// to acknowledge it. Returns early once all expected peers answered. Cancel-safe.
    pub async fn probe(&self, purpose: &str, timeout: Duration) -> Result<ProbeReport, NetworkError> {
        let snapshot = self.client.snapshot().await?;
        let expected: HashSet<String> = snapshot.health_topic_peers.into_iter().collect();
        let probe_id: [u8; NONCE_LEN] = rand::random();
        let (tx, mut rx) = mpsc::channel(MAX_ACKS_PER_PROBE);
        {
            let mut w = self.waiters.lock().map_err(|_| NetworkError::Shutdown)?;
            if w.len() >= MAX_PROBES_IN_FLIGHT {
                return Err(NetworkError::Busy("probe"));
            }
            w.insert(probe_id.to_vec(), tx);
        }
        let _guard = WaiterGuard {
            waiters: self.waiters.clone(),
            id: probe_id.to_vec(),
        };
        let payload = Probe {
            probe_id: probe_id.to_vec(),
            purpose: purpose.to_string(),
        }
        .encode_to_vec();
        let started = Instant::now();
        self.client.publish(topics::HEALTH, Kind::Probe, payload).await?;

        let mut receivers = Vec::new();
        let mut seen = HashSet::new();
        let deadline = tokio::time::Instant::from_std(started + timeout);
        loop {
            if !expected.is_empty() && expected.iter().all(|p| seen.contains(p)) {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(peer)) => {
                    let id = peer.to_string();
                    if seen.insert(id.clone()) {
                        receivers.push(ProbeReceipt {
                            peer_id: id,
                            round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
                        });
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        let mut missing: Vec<String> = expected.iter().filter(|p| !seen.contains(*p)).cloned().collect();
        missing.sort();
        let mut expected: Vec<String> = expected.into_iter().collect();
        expected.sort();
        Ok(ProbeReport {
            probe_id: hex::encode(probe_id),
            expected,
            receivers,
            missing,
            waited_ms: started.elapsed().as_millis() as u64,
        })
    }
}

struct WaiterGuard {
    waiters: Waiters,
    id: Vec<u8>,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(&self.id);
        }
    }
}

/// Decodes a probe payload, if well-formed.
pub(crate) fn decode_probe(payload: &[u8]) -> Option<Probe> {
    let p = Probe::decode(payload).ok()?;
    (p.probe_id.len() == NONCE_LEN).then_some(p)
}

/// Answers every probe on the health topic with an acknowledgement to its sender.
async fn respond(
    client: Client,
    mut inbox: mpsc::Receiver<GossipMessage>,
    shutdown: CancellationToken,
    metrics: HealthMetrics,
    tracker: tokio_util::task::TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(MAX_ACKS_IN_FLIGHT));
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = inbox.recv() => match m { Some(m) => m, None => break },
        };
        if msg.kind != Kind::Probe {
            continue;
        }
        let Some(probe) = decode_probe(&msg.payload) else {
            metrics.error(ErrorComponent::Probe);
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.error(ErrorComponent::ProbeAckDropped);
            continue;
        };
        let client = client.clone();
        let metrics = metrics.clone();
        crate::logging::spawn(&tracker, "probe-ack", async move {
            let _permit = permit;
            let request = RpcRequest {
                body: Some(rpc_request::Body::ProbeAck(ProbeAck {
                    probe_id: probe.probe_id,
                    received_at_ms: now_ms(),
                })),
            };
            if let Err(e) = client.send_rpc(msg.sender, request).await {
                metrics.error(ErrorComponent::Probe);
                tracing::debug!(peer = %msg.sender, error = %e, "probe acknowledgement failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe decodes only with an id of the envelope nonce's length; garbage does not.
    #[test]
    fn probes_decode_only_when_well_formed() {
        let good = Probe {
            probe_id: vec![7; NONCE_LEN],
            purpose: "health".into(),
        };
        assert_eq!(decode_probe(&good.encode_to_vec()), Some(good));
        let short = Probe {
            probe_id: vec![7; NONCE_LEN - 1],
            purpose: "health".into(),
        };
        assert_eq!(decode_probe(&short.encode_to_vec()), None);
        assert_eq!(decode_probe(&[0xff, 0xff, 0xff]), None);
    }
}
