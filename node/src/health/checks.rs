//! [`Checker`]: runs every [`Check`] on an interval (and on demand), records the results in
//! [`Health`] and the scores and counts in [`HealthMetrics`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bzzz_bootstrap::{JoinState, JoinStatus};
use bzzz_storage::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Check, Health, HealthMetrics, Prober, Status, now_ms};
use crate::metrics::LabelValue;
use crate::network::Client;

/// What the checks read and where their results go.
#[derive(Clone, Debug)]
pub struct CheckerArgs {
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
    /// Scores and counts to update.
    pub metrics: HealthMetrics,
    /// How long an active probe waits.
    pub probe_timeout: Duration,
    /// The election.
    pub consensus: crate::consensus::Consensus,
    /// How often the admin checks context replication.
    pub repair_interval: Duration,
}

/// Runs the health checks. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Checker {
    args: Arc<CheckerArgs>,
    /// Serialises runs: the periodic runner and on-demand runs share the probe keys.
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Checker {
    /// A checker over `args`; run it with [`Checker::run`] or [`Checker::run_once`].
    pub fn new(args: CheckerArgs) -> Checker {
        Checker {
            args: Arc::new(args),
            running: Arc::default(),
        }
    }

    /// Runs every check now, concurrently, and records the results and metrics.
    pub async fn run_once(&self) {
        let _one_at_a_time = self.running.lock().await;
        let results = futures::future::join_all(Check::ALL.iter().map(|&check| async move {
            let started = Instant::now();
            let (status, message) = self.check(check).await;
            (check, status, message, started.elapsed())
        }))
        .await;
        let health = &self.args.health;
        let metrics = &self.args.metrics;
        for (check, status, message, latency) in results {
            let passed = status != Status::Unhealthy;
            metrics.check_ran(check, passed);
            if !passed {
                tracing::warn!(check = check.name(), %message, "health check failed");
            }
            health.record(check, status, latency, message);
        }
        metrics.set_system_score(health.summary().score);
        let latest = health.results();
        for &check in Check::ALL {
            let score = latest.get(&check).map(|r| r.status.score()).unwrap_or(0.0);
            metrics.set_component_score(check.component(), score);
        }
    }

    /// Runs one check.
    async fn check(&self, check: Check) -> (Status, String) {
        match check {
            Check::P2p => self.check_p2p().await,
            Check::Pubsub => self.check_pubsub().await,
            Check::Dht => self.check_dht().await,
            Check::Storage => self.check_storage().await,
            Check::Election => self.check_election(),
            Check::Replication => self.check_replication(),
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
        let Some(s) = self.args.consensus.replication_summary() else {
            return (
                Status::Healthy,
                "no replication check known yet (the admin checks every context.repair_interval_ms)".into(),
            );
        };
        self.args.metrics.set_replication(s.average_replicas, s.below_r);
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
        if age > self.args.repair_interval * 3 + Duration::from_secs(10) {
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
        self.args.join.borrow().state == JoinState::Alone
    }

    async fn check_p2p(&self) -> (Status, String) {
        let snap = match self.args.client.snapshot().await {
            Ok(s) => s,
            Err(e) => return (Status::Unhealthy, e.to_string()),
        };
        let join = self.args.join.borrow().clone();
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
        let snap = match self.args.client.snapshot().await {
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
        match self.args.prober.probe("health", self.args.probe_timeout).await {
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
        let key = format!("/bzzz/health/{}", self.args.client.local_peer_id()).into_bytes();
        let value: [u8; 16] = rand::random();
        let put = match self.args.client.put_record(key.clone(), value.to_vec(), None).await {
            Ok(p) => p,
            Err(e) => return (Status::Unhealthy, format!("put failed: {e}")),
        };
        match self.args.client.get_record(key).await {
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
        let s = self.args.consensus.status();
        let timeout = self.args.consensus.admin_timeout();
        let without = self.args.consensus.without_admin_for();
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
        let store = self.args.store.clone();
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
