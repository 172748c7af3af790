//! Health: checks that run on an interval, their latest results, and the score derived from them.
//!
//! `pubsub-health` and `dht-health` are active probes (a real gossip round trip with peers, a real
//! DHT put and get); `p2p-connectivity` reads the connection table and the bootstrap join state;
//! `storage-health` writes, reads and flushes a probe key in sled.
//!
//! Rooms: this file holds the shared state ([`Health`], [`Status`], [`Summary`]) and the one list
//! of checks ([`Check`]); [`checks`] runs them ([`Checker`]); [`probe`] is the gossip prober
//! behind `pubsub-health` and `bzzz test-p2p-message`; [`metrics`] is [`HealthMetrics`].

pub(crate) mod checks;
pub(crate) mod metrics;
pub(crate) mod probe;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use checks::{Checker, CheckerArgs};
pub use metrics::HealthMetrics;
pub use probe::Prober;

use crate::metrics::{LabelValue, label_enum};

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

label_enum! {
    /// The health checks. The label value (`check` of `bzzz_health_checks_*_total`) is the
    /// check's name, also its key in `/health/checks`.
    pub enum Check {
        /// `p2p-connectivity`: the connection table and the bootstrap join state.
        P2p => "p2p-connectivity",
        /// `pubsub-health`: an active gossip probe.
        Pubsub => "pubsub-health",
        /// `dht-health`: an active DHT put and get.
        Dht => "dht-health",
        /// `storage-health`: a sled write, read and flush.
        Storage => "storage-health",
        /// `election-health`: the admin view.
        Election => "election-health",
        /// `replication-health`: the admin's last replication check.
        Replication => "replication-health",
    }
}

label_enum! {
    /// The component a check scores: `component` of `bzzz_component_health_score`, and the key
    /// in `/health`'s `components`.
    pub enum Component {
        /// Peer connectivity.
        P2p => "p2p",
        /// Gossip.
        Pubsub => "pubsub",
        /// The DHT.
        Dht => "dht",
        /// Local storage.
        Storage => "storage",
        /// The election.
        Election => "election",
        /// Context replication.
        Replication => "replication",
    }
}

impl Check {
    /// The check's name, as in `/health/checks`.
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    /// The component this check scores.
    pub fn component(self) -> Component {
        match self {
            Check::P2p => Component::P2p,
            Check::Pubsub => Component::Pubsub,
            Check::Dht => Component::Dht,
            Check::Storage => Component::Storage,
            Check::Election => Component::Election,
            Check::Replication => Component::Replication,
        }
    }
}

/// Shared, latest health of the node.
#[derive(Clone, Debug, Default)]
pub struct Health {
    checks: Arc<RwLock<BTreeMap<Check, CheckResult>>>,
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
    /// Latest results of every check that has run, by check name.
    pub fn checks(&self) -> BTreeMap<&'static str, CheckResult> {
        self.results()
            .into_iter()
            .map(|(check, result)| (check.name(), result))
            .collect()
    }

    /// Latest results of every check that has run.
    pub fn results(&self) -> BTreeMap<Check, CheckResult> {
        self.checks.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Overall status: healthy when every check is; unhealthy when the score is below 0.5 or no
    /// check has run yet; degraded otherwise.
    pub fn summary(&self) -> Summary {
        let checks = self.results();
        let components = checks
            .iter()
            .map(|(check, r)| (check.component().as_str().to_string(), r.status))
            .collect();
        if checks.is_empty() {
            return Summary {
                status: Status::Unhealthy,
                score: 0.0,
                components,
            };
        }
        let score = checks.values().map(|r| r.status.score()).sum::<f64>() / Check::ALL.len() as f64;
        let status = if checks.len() == Check::ALL.len() && checks.values().all(|r| r.status == Status::Healthy) {
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

    fn record(&self, check: Check, status: Status, latency: Duration, message: String) {
        let now = now_ms();
        if let Ok(mut c) = self.checks.write() {
            let last_success = if status == Status::Unhealthy {
                c.get(&check).and_then(|r| r.last_success)
            } else {
                Some(now)
            };
            c.insert(
                check,
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

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
        for &check in Check::ALL {
            h.record(check, Status::Healthy, Duration::ZERO, String::new());
        }
        assert_eq!(h.summary().status, Status::Healthy);
        assert!((h.summary().score - 1.0).abs() < f64::EPSILON);
        h.record(Check::Dht, Status::Unhealthy, Duration::ZERO, String::new());
        assert_eq!(h.summary().status, Status::Degraded);
        let expected = (Check::ALL.len() - 1) as f64 / Check::ALL.len() as f64;
        assert!(
            (h.summary().score - expected).abs() < 1e-9,
            "one failing check of {}",
            Check::ALL.len()
        );
        h.record(Check::Pubsub, Status::Unhealthy, Duration::ZERO, String::new());
        h.record(Check::P2p, Status::Unhealthy, Duration::ZERO, String::new());
        h.record(Check::Storage, Status::Unhealthy, Duration::ZERO, String::new());
        assert_eq!(h.summary().status, Status::Unhealthy);
        let c = h.checks();
        assert!(
            c["dht-health"].last_success.is_some(),
            "last success survives a failure"
        );
    }

    /// Every check scores its own component, and the names are the API's.
    #[test]
    fn checks_name_their_components() {
        let names: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "p2p-connectivity",
                "pubsub-health",
                "dht-health",
                "storage-health",
                "election-health",
                "replication-health"
            ]
        );
        let components: Vec<Component> = Check::ALL.iter().map(|c| c.component()).collect();
        assert_eq!(components, Component::ALL);
    }
}
