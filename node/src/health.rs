//! Health: checks that run on an interval, their latest results, and the score derived from them.
//!
//! `pubsub-health` and `dht-health` are active probes (a real gossip round trip with peers, a real
//! DHT put and get); `p2p-connectivity` reads the connection table and the bootstrap join state;
//! `storage-health` writes, reads and flushes a probe key in sled.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bzzz_bootstrap::{JoinState, JoinStatus};
use bzzz_storage::Store;
use bzzz_storage::util::now_unix_ms as now_ms;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{CheckLabel, ComponentLabel, Metrics};
use crate::network::Client;
use crate::probe::Prober;

/// Status of one check or of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working.
    Healthy,
    /// Working partly (some peers missing, mesh still forming).
    Degraded,
    /// Not working.
    Unhealthy,
}

impl Status {
    /// Score contribution: 1, 0.5 or 0.
    pub fn score(self) -> f64 {
        match self {
            Status::Healthy => 1.0,
            Status::Degraded => 0.5,
            Status::Unhealthy => 0.0,
        }
    }
}

/// The latest result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Outcome of the latest run.
    pub status: Status,
    /// How long the latest run took, in milliseconds.
    pub latency_ms: f64,
    /// When the check last passed (healthy or degraded), ms since the Unix epoch.
    pub last_success: Option<u64>,
    /// When the check last ran, ms since the Unix epoch.
    pub last_run: u64,
    /// What the check saw, for a human.
    pub message: String,
}

/// Names of the checks and the component each one scores.
pub const CHECKS: [(&str, &str); 6] = [
    ("p2p-connectivity", "p2p"),
    ("pubsub-health", "pubsub"),
    ("dht-health", "dht"),
    ("storage-health", "storage"),
    ("election-health", "election"),
    ("replication-health", "replication"),
];

/// Shared, latest health of the node.
#[derive(Clone, Debug, Default)]
pub struct Health {
    checks: Arc<RwLock<BTreeMap<&'static str, CheckResult>>>,
}

/// The node's overall health.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Overall status.
    pub status: Status,
    /// Mean of the check scores, 0 to 1.
    pub score: f64,
    /// Status per component.
    pub components: BTreeMap<String, Status>,
}

impl Health {
    /// Latest results of every check that has run.
    pub fn checks(&self) -> BTreeMap<&'static str, CheckResult> {
        self.checks.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Overall status: healthy when every check is; unhealthy when the score is below 0.5 or no
    /// check has run yet; degraded otherwise.
    pub fn summary(&self) -> Summary {
        let checks = self.checks();
        let components = CHECKS
            .iter()
            .filter_map(|(check, comp)| checks.get(check).map(|r| (comp.to_string(), r.status)))
            .collect();
        if checks.is_empty() {
            return Summary {
                status: Status::Unhealthy,
                score: 0.0,
                components,
            };
        }
        let score = checks.values().map(|r| r.status.score()).sum::<f64>() / CHECKS.len() as f64;
        let status = if checks.len() == CHECKS.len() && checks.values().all(|r| r.status == Status::Healthy) {
            Status::Healthy
        } else if score < 0.5 {
            Status::Unhealthy
        } else {
            Status::Degraded
        };
        Summary {
            status,
            score,
            components,
        }
    }

    fn record(&self, name: &'static str, status: Status, latency: Duration, message: String) {
        let now = now_ms();
        if let Ok(mut c) = self.checks.write() {
            let last_success = if status == Status::Unhealthy {
                c.get(name).and_then(|r| r.last_success)
            } else {
                Some(now)
            };
            c.insert(
                name,
                CheckResult {
                    status,
                    latency_ms: latency.as_secs_f64() * 1000.0,
                    last_success,
                    last_run: now,
                    message,
                },
            );
        }
    }
}

/// What the checks need.
#[derive(Clone, Debug)]
pub struct Checker {
    /// Where results go.
    pub health: Health,
    /// The network.
    pub client: Client,
    /// Probes.
    pub prober: Prober,
    /// Local state.
    pub store: Store,
    /// Bootstrap progress.
    pub join: watch::Receiver<JoinStatus>,
    /// Metrics to update.
    pub metrics: Metrics,
    /// How long an active probe waits.
    pub probe_timeout: Duration,
    /// Serialises runs: the periodic runner and on-demand runs share the probe keys.
    pub running: Arc<tokio::sync::Mutex<()>>,
    /// The election.
    pub consensus: crate::consensus::Consensus,
    /// How often the admin checks context replication.
    pub repair_interval: Duration,
}

impl Checker {
    /// Runs every check now, concurrently, and records the results and metrics.
    pub async fn run_once(&self) {
        let _one_at_a_time = self.running.lock().await;
        let (p2p, pubsub, dht, storage, election, replication) = tokio::join!(
            timed(self.check_p2p()),
            timed(self.check_pubsub()),
            timed(self.check_dht()),
            timed(self.check_storage()),
            timed(async { self.check_election() }),
            timed(async { self.check_replication() }),
        );
        for (name, (status, message, latency)) in [
            ("p2p-connectivity", p2p),
            ("pubsub-health", pubsub),
            ("dht-health", dht),
            ("storage-health", storage),
            ("election-health", election),
            ("replication-health", replication),
        ] {
            let label = CheckLabel { check: name.into() };
            if status == Status::Unhealthy {
                self.metrics.health_checks_failed.get_or_create(&label).inc();
                tracing::warn!(check = name, %message, "health check failed");
            } else {
                self.metrics.health_checks_passed.get_or_create(&label).inc();
            }
            self.health.record(name, status, latency, message);
        }
        let summary = self.health.summary();
        self.metrics.system_health_score.set(summary.score);
        for (check, component) in CHECKS {
            let score = self.health.checks().get(check).map(|r| r.status.score()).unwrap_or(0.0);
            self.metrics
                .component_health_score
                .get_or_create(&ComponentLabel {
                    component: component.into(),
                })
                .set(score);
        }
    }

    /// Runs the checks every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        // The first run waits a moment so a starting node has had a chance to join: a check
        // that fails only because it ran first is noise in the log.
        let first = tokio::time::Instant::now() + interval.min(Duration::from_secs(1));
        let mut tick = tokio::time::interval_at(first, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.run_once() => {}
            }
        }
    }

    /// Context replication as of the admin's last check (this node's own while admin, else the
    /// one in the admin's heartbeat). Unhealthy while records stay below R after the admin's
    /// repair; degraded when the last check is older than three repair intervals; healthy before
    /// the first check and on a mesh with no admin (the election check reports that).
    /// Also sets `bzzz_dht_replication_factor` and `bzzz_context_records_below_replication`.
    fn check_replication(&self) -> (Status, String) {
        let Some(s) = self.consensus.replication_summary() else {
            return (
                Status::Healthy,
                "no replication check known yet (the admin checks every context.repair_interval_ms)".into(),
            );
        };
        self.metrics.dht_replication_factor.set(s.average_replicas);
        self.metrics.context_records_below_r.set(s.below_r as i64);
        let age = Duration::from_millis(now_ms().saturating_sub(s.finished_at_ms));
        if s.below_r > 0 {
            return (
                Status::Unhealthy,
                format!(
                    "{} of {} context records below R = {} after repair ({} with no live holder)",
                    s.below_r, s.records, s.replication_factor, s.unavailable
                ),
            );
        }
        if age > self.repair_interval * 3 + Duration::from_secs(10) {
            return (
                Status::Degraded,
                format!("the last replication check finished {} s ago", age.as_secs()),
            );
        }
        (
            Status::Healthy,
            format!(
                "{} context records, {:.2} live replicas on average (R = {})",
                s.records, s.average_replicas, s.replication_factor
            ),
        )
    }

    fn alone_by_config(&self) -> bool {
        self.join.borrow().state == JoinState::Alone
    }

    async fn check_p2p(&self) -> (Status, String) {
        let snap = match self.client.snapshot().await {
            Ok(s) => s,
            Err(e) => return (Status::Unhealthy, e.to_string()),
        };
        let join = self.join.borrow().clone();
        if !snap.peers.is_empty() {
            return (
                Status::Healthy,
                format!(
                    "{} connected peers, {} in routing table",
                    snap.peers.len(),
                    snap.routing_table_size
                ),
            );
        }
        if join.state == JoinState::Alone {
            return (Status::Healthy, "alone: no bootstrap peers configured".into());
        }
        (
            Status::Unhealthy,
            format!(
                "no connected peers; bootstrap {:?} after {} attempts ({} consecutive failures){}",
                join.state,
                join.attempts,
                join.consecutive_failures,
                join.last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ),
        )
    }

    async fn check_pubsub(&self) -> (Status, String) {
        let snap = match self.client.snapshot().await {
            Ok(s) => s,
            Err(e) => return (Status::Unhealthy, e.to_string()),
        };
        if snap.health_topic_peers.is_empty() {
            if snap.peers.is_empty() && self.alone_by_config() {
                return (Status::Healthy, "alone: no peers to probe".into());
            }
            if snap.peers.is_empty() {
                return (Status::Unhealthy, "no peers to probe".into());
            }
            return (
                Status::Degraded,
                format!(
                    "{} peers connected, none subscribed to the health topic yet",
                    snap.peers.len()
                ),
            );
        }
        match self.prober.probe("health", self.probe_timeout).await {
            Ok(r) if r.receivers.is_empty() => (
                Status::Unhealthy,
                format!(
                    "no acknowledgement from {} subscribed peers within {} ms",
                    r.expected.len(),
                    r.waited_ms
                ),
            ),
            Ok(r) if !r.missing.is_empty() => (
                Status::Degraded,
                format!(
                    "{} of {} peers acknowledged the probe",
                    r.expected.len() - r.missing.len(),
                    r.expected.len()
                ),
            ),
            Ok(r) => (
                Status::Healthy,
                format!(
                    "{} peers acknowledged; fastest round trip {:.1} ms",
                    r.receivers.len(),
                    r.receivers.first().map(|x| x.round_trip_ms).unwrap_or_default()
                ),
            ),
            Err(e) => (Status::Unhealthy, format!("probe failed: {e}")),
        }
    }

    async fn check_dht(&self) -> (Status, String) {
        let key = format!("/bzzz/health/{}", self.client.local_peer_id()).into_bytes();
        let value: [u8; 16] = rand::random();
        let put = match self.client.put_record(key.clone(), value.to_vec(), None).await {
            Ok(p) => p,
            Err(e) => return (Status::Unhealthy, format!("put failed: {e}")),
        };
        match self.client.get_record(key).await {
            Ok(v) if v == value => {
                if put.replicated {
                    (Status::Healthy, "put and get verified".into())
                } else if self.alone_by_config() {
                    (Status::Healthy, "alone: put and get verified on the local store".into())
                } else {
                    (
                        Status::Degraded,
                        "record stored locally only: no peers to replicate to".into(),
                    )
                }
            }
            Ok(_) => (Status::Unhealthy, "get returned a different value than was put".into()),
            Err(e) => (Status::Unhealthy, format!("get failed: {e}")),
        }
    }

    /// Unhealthy when the node has been without a live admin for longer than the admin timeout
    /// (3 heartbeat intervals + the longest election timeout); degraded while an eligible node
    /// waits for the first election within that time. A non-eligible node that has heard of neither
    /// an admin nor an eligible node is on a mesh without election: healthy, and it says so.
    fn check_election(&self) -> (Status, String) {
        let s = self.consensus.status();
        let timeout = self.consensus.admin_timeout();
        let without = self.consensus.without_admin_for();
        match s.admin.as_ref() {
            Some(admin) if without <= timeout => (
                Status::Healthy,
                format!("admin {admin} (term {}), heard {} ms ago", s.term, without.as_millis()),
            ),
            Some(admin) => (
                Status::Unhealthy,
                format!(
                    "admin {admin} not heard from for {} ms (limit {} ms)",
                    without.as_millis(),
                    timeout.as_millis()
                ),
            ),
            None if !s.eligible && s.eligible_seen == 0 => (
                Status::Healthy,
                "no admin-eligible node seen: election not in use".into(),
            ),
            None if without <= timeout => (
                Status::Degraded,
                format!("electing: no admin yet ({} ms), state {}", without.as_millis(), s.state),
            ),
            None => (
                Status::Unhealthy,
                format!(
                    "no admin for {} ms (limit {} ms); state {}, {} voters",
                    without.as_millis(),
                    timeout.as_millis(),
                    s.state,
                    s.voters.len()
                ),
            ),
        }
    }

    async fn check_storage(&self) -> (Status, String) {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.probe()).await {
            Ok(Ok(d)) => (
                Status::Healthy,
                format!("write, read and flush in {:.1} ms", d.as_secs_f64() * 1000.0),
            ),
            Ok(Err(e)) => (Status::Unhealthy, e.to_string()),
            Err(e) => (Status::Unhealthy, format!("storage probe task failed: {e}")),
        }
    }
}

async fn timed(f: impl std::future::Future<Output = (Status, String)>) -> (Status, String, Duration) {
    let started = Instant::now();
    let (s, m) = f.await;
    (s, m, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary is unhealthy before any check ran, healthy when all pass, degraded or
    /// unhealthy by score otherwise.
    #[test]
    fn summary_follows_checks() {
        let h = Health::default();
        assert_eq!(
            h.summary().status,
            Status::Unhealthy,
            "no checks yet must not read healthy"
        );
        for (name, _) in CHECKS {
            h.record(name, Status::Healthy, Duration::ZERO, String::new());
        }
        assert_eq!(h.summary().status, Status::Healthy);
        assert!((h.summary().score - 1.0).abs() < f64::EPSILON);
        h.record("dht-health", Status::Unhealthy, Duration::ZERO, String::new());
        assert_eq!(h.summary().status, Status::Degraded);
        let expected = (CHECKS.len() - 1) as f64 / CHECKS.len() as f64;
        assert!(
            (h.summary().score - expected).abs() < 1e-9,
            "one failing check of {}",
            CHECKS.len()
        );
        h.record("pubsub-health", Status::Unhealthy, Duration::ZERO, String::new());
        h.record("p2p-connectivity", Status::Unhealthy, Duration::ZERO, String::new());
        h.record("storage-health", Status::Unhealthy, Duration::ZERO, String::new());
        assert_eq!(h.summary().status, Status::Unhealthy);
        let c = h.checks();
        assert!(
            c["dht-health"].last_success.is_some(),
            "last success survives a failure"
        );
    }
}
