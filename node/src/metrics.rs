//! Prometheus metrics: one registry for bzzz's own metrics and libp2p's (under `libp2p_`).
//!
//! Names are part of the operator contract (the runbook and the alert rules query them); never
//! rename one. Counters get the `_total` suffix from the client library on exposition.
//! Process metrics (`process_*`, `bzzz_memory_limit_bytes`) are read at scrape time by the
//! [`process`] collector.

pub mod process;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set with one `component` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    /// Component name, e.g. `p2p`, `pubsub`, `dht`, `storage`.
    pub component: String,
}

/// Label set with one `check` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    /// Health check name, e.g. `dht-health`.
    pub check: String,
}

/// Label set of gossip message counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicOutcome {
    /// Topic; dynamic rooms are folded into `bzzz/meta/issue/*` to bound cardinality.
    pub topic: String,
    /// `published`, `publish_failed`, `received`, `rejected`, `dropped`.
    pub outcome: String,
}

/// Label set with one `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why, as a short snake_case word.
    pub reason: String,
}

/// Label set with one `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `success` or `failure`.
    pub outcome: String,
}

/// Label set with one `operation` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// `put` or `get`.
    pub operation: String,
}

/// Label set with one `follower` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FollowerLabel {
    /// Raft node id of the follower.
    pub follower: String,
}

/// Label set of the build-info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    /// Crate version.
    pub version: String,
    /// `agent` or `bootstrap`.
    pub mode: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Metric names (as exposed, with `_total` on counters) that the runbook and alert rules query:
/// a contract, checked by tests.
pub const CONTRACT_METRICS: [&str; 14] = [
    "bzzz_system_health_score",
    "bzzz_component_health_score",
    "bzzz_health_checks_passed_total",
    "bzzz_health_checks_failed_total",
    "bzzz_p2p_connected_peers",
    "bzzz_errors_total",
    "bzzz_pubsub_messages_total",
    "bzzz_dht_put_operations_total",
    "bzzz_dht_get_operations_total",
    "bzzz_dht_operation_latency_seconds",
    "bzzz_dht_records_stored",
    "bzzz_election_state",
    "bzzz_election_term",
    "bzzz_admin_is_self",
];

/// Component labels of `bzzz_errors_total`.
pub const ERROR_COMPONENTS: [&str; 6] = [
    "p2p",
    "pubsub",
    "probe",
    "probe_ack_dropped",
    "events_dropped",
    "storage",
];

/// Every bzzz metric. Cheap to clone (all handles are `Arc`s inside).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Overall health score, 0 (unhealthy) to 1 (healthy).
    pub system_health_score: Gauge<f64, AtomicU64>,
    /// Health score per component, 0 to 1.
    pub component_health_score: Family<ComponentLabel, Gauge<f64, AtomicU64>>,
    /// Health check runs that passed, per check.
    pub health_checks_passed: Family<CheckLabel, Counter>,
    /// Health check runs that failed, per check.
    pub health_checks_failed: Family<CheckLabel, Counter>,
    /// Currently connected peers.
    pub p2p_connected_peers: Gauge,
    /// Peers in the Kademlia routing table.
    pub dht_routing_table_peers: Gauge,
    /// Errors, per component.
    pub errors: Family<ComponentLabel, Counter>,
    /// Gossip messages per topic and outcome.
    pub pubsub_messages: Family<TopicOutcome, Counter>,
    /// Rejected gossip envelopes per reason.
    pub pubsub_rejected: Family<ReasonLabel, Counter>,
    /// DHT puts by outcome.
    pub dht_put_operations: Family<OutcomeLabel, Counter>,
    /// DHT gets by outcome.
    pub dht_get_operations: Family<OutcomeLabel, Counter>,
    /// DHT operation latency in seconds, per operation.
    pub dht_operation_latency_seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
    /// Records in this node's DHT store.
    pub dht_records_stored: Gauge,
    /// Records refused by this node's DHT store, per reason.
    pub dht_records_rejected: Family<ReasonLabel, Counter>,
    /// Bootstrap dial rounds.
    pub bootstrap_dial_attempts: Counter,
    /// Consecutive failed bootstrap dial rounds (0 when joined or alone).
    pub bootstrap_consecutive_failures: Gauge,
    /// Process uptime in seconds.
    pub uptime_seconds: Gauge,
    /// Constant 1, labelled with the version and mode.
    pub build_info: Family<BuildLabel, Gauge>,
    /// This node's election state: 0 observer (not eligible), 1 learner, 2 follower,
    /// 3 candidate, 4 leader (admin).
    pub election_state: Gauge,
    /// Highest Raft term this node knows.
    pub election_term: Gauge,
    /// Admin changes this node has observed.
    pub election_leader_changes: Counter,
    /// 1 while this node is the admin, else 0.
    pub admin_is_self: Gauge,
    /// Times this node, still Raft leader, stopped acting as admin because no quorum acknowledged
    /// it within the lease (an overloaded or cut-off admin).
    pub admin_lease_lapses: Counter,
    /// Pre-vote rounds this node ran as a would-be candidate, by outcome (`won`, `lost`).
    pub election_prevote_rounds: Family<OutcomeLabel, Counter>,
    /// Time from proposing a Raft command to its commit, in seconds.
    pub raft_commit_latency_seconds: Histogram,
    /// On the admin: log entries each follower is behind.
    pub raft_replication_lag: Family<FollowerLabel, Gauge>,
    /// Context writes through this node's API, by outcome ([`CONTEXT_OUTCOMES`]).
    pub context_puts: Family<OutcomeLabel, Counter>,
    /// Context reads through this node's API, by outcome ([`CONTEXT_OUTCOMES`]).
    pub context_gets: Family<OutcomeLabel, Counter>,
    /// Fetched context records that failed verification or decryption on this node.
    pub context_decrypt_failures: Counter,
    /// Context records this node refused to store, by where they came from (`rpc`, `dht_put`).
    pub context_records_rejected: Family<ReasonLabel, Counter>,
    /// On the admin, at its last replication check: indexed records with fewer than R live holders.
    pub context_records_below_r: Gauge,
    /// Copies of context records the admin's replication check made.
    pub context_repairs: Counter,
    /// On the admin, at its last replication check: average live holders of the indexed records.
    pub dht_replication_factor: Gauge<f64, AtomicU64>,
    /// Provider records in this node's DHT store (its own announcements and other peers').
    pub dht_provider_records: Gauge,
    /// Current key epoch of each role this node knows.
    pub role_key_epoch: Family<RoleLabel, Gauge>,
    /// Config reloads (SIGHUP or `POST /api/config/reload`), by outcome (`success`, `failure`).
    pub config_reloads: Family<OutcomeLabel, Counter>,
}

/// Label set with one `role` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// A role name of the policy (bounded by the policy's role limit).
    pub role: String,
}

/// The `outcome` values of `bzzz_context_puts_total` and `bzzz_context_gets_total`.
pub const CONTEXT_OUTCOMES: [&str; 6] = [
    "success",
    "bad_request",
    "forbidden",
    "not_found",
    "unavailable",
    "failure",
];

impl Metrics {
    /// Creates every metric and registers it in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            system_health_score: Gauge::default(),
            component_health_score: Family::default(),
            health_checks_passed: Family::default(),
            health_checks_failed: Family::default(),
            p2p_connected_peers: Gauge::default(),
            dht_routing_table_peers: Gauge::default(),
            errors: Family::default(),
            pubsub_messages: Family::default(),
            pubsub_rejected: Family::default(),
            dht_put_operations: Family::default(),
            dht_get_operations: Family::default(),
            dht_operation_latency_seconds: Family::new_with_constructor(latency_histogram),
            dht_records_stored: Gauge::default(),
            dht_records_rejected: Family::default(),
            bootstrap_dial_attempts: Counter::default(),
            bootstrap_consecutive_failures: Gauge::default(),
            uptime_seconds: Gauge::default(),
            build_info: Family::default(),
            election_state: Gauge::default(),
            election_term: Gauge::default(),
            election_leader_changes: Counter::default(),
            admin_is_self: Gauge::default(),
            admin_lease_lapses: Counter::default(),
            election_prevote_rounds: Family::default(),
            raft_commit_latency_seconds: latency_histogram(),
            raft_replication_lag: Family::default(),
            context_puts: Family::default(),
            context_gets: Family::default(),
            context_decrypt_failures: Counter::default(),
            context_records_rejected: Family::default(),
            context_records_below_r: Gauge::default(),
            context_repairs: Counter::default(),
            dht_replication_factor: Gauge::default(),
            dht_provider_records: Gauge::default(),
            role_key_epoch: Family::default(),
            config_reloads: Family::default(),
        };
        let r = registry;
        r.register(
            "bzzz_system_health_score",
            "Overall node health score from 0 (unhealthy) to 1 (healthy)",
            m.system_health_score.clone(),
        );
        r.register(
            "bzzz_component_health_score",
            "Health score per component from 0 (unhealthy) to 1 (healthy)",
            m.component_health_score.clone(),
        );
        r.register(
            "bzzz_health_checks_passed",
            "Health check runs that passed, per check",
            m.health_checks_passed.clone(),
        );
        r.register(
            "bzzz_health_checks_failed",
            "Health check runs that failed, per check",
            m.health_checks_failed.clone(),
        );
        r.register(
            "bzzz_p2p_connected_peers",
            "Peers this node currently has a connection to",
            m.p2p_connected_peers.clone(),
        );
        r.register(
            "bzzz_dht_routing_table_peers",
            "Peers in this node's Kademlia routing table",
            m.dht_routing_table_peers.clone(),
        );
        r.register("bzzz_errors", "Errors by component", m.errors.clone());
        r.register(
            "bzzz_pubsub_messages",
            "Gossip messages by topic and outcome (published, publish_failed, received, rejected, dropped)",
            m.pubsub_messages.clone(),
        );
        r.register(
            "bzzz_pubsub_rejected",
            "Gossip envelopes rejected before any handler, by reason",
            m.pubsub_rejected.clone(),
        );
        r.register(
            "bzzz_dht_put_operations",
            "DHT put operations started by this node, by outcome",
            m.dht_put_operations.clone(),
        );
        r.register(
            "bzzz_dht_get_operations",
            "DHT get operations started by this node, by outcome",
            m.dht_get_operations.clone(),
        );
        r.register(
            "bzzz_dht_operation_latency_seconds",
            "Latency of DHT operations started by this node, in seconds",
            m.dht_operation_latency_seconds.clone(),
        );
        r.register(
            "bzzz_dht_records_stored",
            "Records held in this node's persistent DHT store",
            m.dht_records_stored.clone(),
        );
        r.register(
            "bzzz_dht_records_rejected",
            "Records refused by this node's DHT store, by reason",
            m.dht_records_rejected.clone(),
        );
        r.register(
            "bzzz_bootstrap_dial_attempts",
            "Bootstrap dial rounds made by this node",
            m.bootstrap_dial_attempts.clone(),
        );
        r.register(
            "bzzz_bootstrap_consecutive_failures",
            "Consecutive failed bootstrap dial rounds; 0 when joined or alone",
            m.bootstrap_consecutive_failures.clone(),
        );
        r.register(
            "bzzz_uptime_seconds",
            "Seconds since the node started",
            m.uptime_seconds.clone(),
        );
        r.register(
            "bzzz_build_info",
            "Constant 1, labelled with the bzzz version and node mode",
            m.build_info.clone(),
        );
        r.register(
            "bzzz_election_state",
            "Election state of this node: 0 observer (not eligible), 1 learner, 2 follower, 3 candidate, 4 leader",
            m.election_state.clone(),
        );
        r.register(
            "bzzz_election_term",
            "Highest Raft term this node knows",
            m.election_term.clone(),
        );
        r.register(
            "bzzz_election_leader_changes",
            "Admin changes observed by this node",
            m.election_leader_changes.clone(),
        );
        r.register(
            "bzzz_admin_is_self",
            "1 while this node is the admin, else 0",
            m.admin_is_self.clone(),
        );
        r.register(
            "bzzz_admin_lease_lapses",
            "Times this node, still Raft leader, stopped acting as admin for lack of a quorum acknowledgement",
            m.admin_lease_lapses.clone(),
        );
        r.register(
            "bzzz_election_prevote_rounds",
            "Pre-vote rounds this node ran before starting an election, by outcome (won, lost)",
            m.election_prevote_rounds.clone(),
        );
        r.register(
            "bzzz_raft_commit_latency_seconds",
            "Time from proposing a Raft command to its commit, in seconds",
            m.raft_commit_latency_seconds.clone(),
        );
        r.register(
            "bzzz_raft_replication_lag_entries",
            "On the admin: log entries each follower is behind",
            m.raft_replication_lag.clone(),
        );
        r.register(
            "bzzz_context_puts",
            "Context writes through this node's API, by outcome",
            m.context_puts.clone(),
        );
        r.register(
            "bzzz_context_gets",
            "Context reads through this node's API, by outcome",
            m.context_gets.clone(),
        );
        r.register(
            "bzzz_context_decrypt_failures",
            "Fetched context records that failed verification or decryption on this node",
            m.context_decrypt_failures.clone(),
        );
        r.register(
            "bzzz_context_records_rejected",
            "Context records this node refused to store, by source (rpc, dht_put)",
            m.context_records_rejected.clone(),
        );
        r.register(
            "bzzz_context_records_below_replication",
            "Indexed context records still below R live holders after the admin's last replication check and repair",
            m.context_records_below_r.clone(),
        );
        r.register(
            "bzzz_context_repairs",
            "Copies of context records made by the admin's replication check",
            m.context_repairs.clone(),
        );
        r.register(
            "bzzz_dht_replication_factor",
            "Average live holders of the indexed context records at the admin's last replication check (every node reports the admin's figure)",
            m.dht_replication_factor.clone(),
        );
        r.register(
            "bzzz_dht_provider_records",
            "Provider records in this node's DHT store",
            m.dht_provider_records.clone(),
        );
        r.register(
            "bzzz_role_key_epoch",
            "Current key epoch of each role this node knows",
            m.role_key_epoch.clone(),
        );
        r.register(
            "bzzz_config_reloads",
            "Config reloads (SIGHUP or POST /api/config/reload) by outcome: success, or failure (the file was refused and the running config stays)",
            m.config_reloads.clone(),
        );
        r.register_collector(Box::new(process::ProcessCollector));
        for outcome in CONTEXT_OUTCOMES {
            let l = OutcomeLabel {
                outcome: outcome.into(),
            };
            m.context_puts.get_or_create(&l).get();
            m.context_gets.get_or_create(&l).get();
        }
        for outcome in ["success", "failure"] {
            m.config_reloads
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.into(),
                })
                .get();
        }
        for source in ["rpc", "dht_put"] {
            m.context_records_rejected
                .get_or_create(&ReasonLabel { reason: source.into() })
                .get();
        }
        for reason in bzzz_protocol::RejectReason::ALL {
            m.pubsub_rejected
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str().into(),
                })
                .get();
        }
        // Pre-create series so rates and alerts have a zero to start from.
        for topic in bzzz_protocol::topics::ALL {
            for outcome in PUBSUB_OUTCOMES {
                m.pubsub_messages
                    .get_or_create(&TopicOutcome {
                        topic: topic.into(),
                        outcome: outcome.into(),
                    })
                    .get();
            }
        }
        for outcome in ["won", "lost"] {
            m.election_prevote_rounds
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.into(),
                })
                .get();
        }
        for component in ERROR_COMPONENTS {
            m.errors
                .get_or_create(&ComponentLabel {
                    component: component.into(),
                })
                .get();
        }
        for (check, _) in crate::health::CHECKS {
            let l = CheckLabel { check: check.into() };
            m.health_checks_passed.get_or_create(&l).get();
            m.health_checks_failed.get_or_create(&l).get();
        }
        for outcome in ["success", "failure"] {
            let l = OutcomeLabel {
                outcome: outcome.into(),
            };
            m.dht_put_operations.get_or_create(&l).get();
            m.dht_get_operations.get_or_create(&l).get();
        }
        m
    }

    /// Counts an error of `component`.
    pub fn error(&self, component: &str) {
        self.errors
            .get_or_create(&ComponentLabel {
                component: component.into(),
            })
            .inc();
    }

    /// Counts a gossip message on `topic` with `outcome`.
    pub fn pubsub(&self, topic: &str, outcome: &str) {
        self.pubsub_messages
            .get_or_create(&TopicOutcome {
                topic: topic_label(topic).into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Counts a context record refused from `source` (`rpc` or `dht_put`).
    pub fn context_record_rejected(&self, source: &str) {
        self.context_records_rejected
            .get_or_create(&ReasonLabel { reason: source.into() })
            .inc();
    }

    /// Records a DHT operation's outcome and latency.
    pub fn dht_op(&self, operation: &str, ok: bool, seconds: f64) {
        let outcome = OutcomeLabel {
            outcome: if ok { "success" } else { "failure" }.into(),
        };
        match operation {
            "put" => self.dht_put_operations.get_or_create(&outcome).inc(),
            _ => self.dht_get_operations.get_or_create(&outcome).inc(),
        };
        self.dht_operation_latency_seconds
            .get_or_create(&OperationLabel {
                operation: operation.into(),
            })
            .observe(seconds);
    }
}

/// The `outcome` values of `bzzz_pubsub_messages_total`.
pub const PUBSUB_OUTCOMES: [&str; 5] = ["published", "publish_failed", "received", "dropped", "rejected"];

/// Folds topics into a bounded label set: known topics as is, rooms as one label, else `other`.
pub fn topic_label(topic: &str) -> &str {
    if bzzz_protocol::topics::ALL.contains(&topic) {
        topic
    } else if topic.starts_with(bzzz_protocol::topics::META_ISSUE_PREFIX) {
        "bzzz/meta/issue/*"
    } else {
        "other"
    }
}

/// The registry and the bzzz metrics in it, shared by the node's tasks.
#[derive(Clone)]
pub struct MetricsHandle {
    /// The registry, frozen after start; encoded on every scrape.
    pub registry: Arc<Registry>,
    /// bzzz's own metrics.
    pub metrics: Metrics,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// Encodes the registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Encodes the registry in the Prometheus text format 0.0.4 (what `curl` and `promtool check
    /// metrics` read), converted from the OpenMetrics output.
    pub fn encode_prometheus_text(&self) -> Result<String, std::fmt::Error> {
        Ok(openmetrics_to_prometheus_text(&self.encode()?))
    }
}

/// Converts OpenMetrics text to Prometheus text format 0.0.4: counter families are named with
/// their `_total` suffix in `# HELP`/`# TYPE`, `unknown` becomes `untyped`, `info` becomes a
/// gauge named `<name>_info`, and `# UNIT` and `# EOF` lines are dropped.
pub fn openmetrics_to_prometheus_text(om: &str) -> String {
    use std::collections::HashMap;
    // First pass: the type of every family.
    let mut types: HashMap<&str, &str> = HashMap::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some(ty)) = (it.next(), it.next()) {
                types.insert(name, ty);
            }
        }
    }
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("HELP", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("TYPE", r)));
        if let Some((kind, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let ty = types.get(name).copied().unwrap_or("unknown");
            let new_name = match ty {
                "counter" => format!("{name}_total"),
                "info" => format!("{name}_info"),
                _ => name.to_string(),
            };
            let tail = if kind == "TYPE" {
                match ty {
                    "unknown" => "untyped",
                    "info" => "gauge",
                    other => other,
                }
            } else {
                tail
            };
            out.push_str(&format!("# {kind} {new_name} {tail}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the runbook queries is exposed with HELP text under its contract name.
    #[test]
    fn contract_names_are_exposed() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.error("p2p");
        m.pubsub("bzzz/health/v1", "published");
        m.dht_op("put", true, 0.01);
        m.component_health_score
            .get_or_create(&ComponentLabel {
                component: "dht".into(),
            })
            .set(1.0);
        m.health_checks_passed
            .get_or_create(&CheckLabel {
                check: "dht-health".into(),
            })
            .inc();
        m.health_checks_failed
            .get_or_create(&CheckLabel {
                check: "dht-health".into(),
            })
            .inc();
        let h = MetricsHandle {
            registry: Arc::new(registry),
            metrics: m,
        };
        let text = h.encode().expect("encodes");
        for name in CONTRACT_METRICS {
            assert!(
                text.contains(&format!("\n{name}")),
                "metric {name} missing from:\n{text}"
            );
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split_whitespace().nth(2).unwrap_or_default();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "metric {name} has no HELP text"
            );
        }
    }

    /// The process metrics are in the registry's output with HELP text, under their standard
    /// names (Linux only: elsewhere they are left out).
    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_exposed() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        let h = MetricsHandle {
            registry: Arc::new(registry),
            metrics: m,
        };
        let text = h.encode_prometheus_text().expect("encodes");
        for name in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} missing from:\n{text}"
            );
            assert!(text.contains(&format!("\n{name} ")), "{name} has no sample in:\n{text}");
        }
    }

    /// Dynamic room topics fold into one label so remote input cannot grow the label set.
    #[test]
    fn topic_labels_are_bounded() {
        assert_eq!(topic_label("bzzz/health/v1"), "bzzz/health/v1");
        assert_eq!(topic_label("bzzz/meta/issue/123"), "bzzz/meta/issue/*");
        assert_eq!(topic_label("anything"), "other");
    }
}
