//! [`NetworkMetrics`]: what the swarm owner counts (peers, gossip, DHT operations and the DHT
//! store, bootstrap progress), built from the registry at start.
//!
//! Every family is labelled with a closed enum and pre-creates every series it can emit, so
//! rates and alerts have a zero to start from and the exposed set never grows at run time.
//! Gossip topics are the one label not typed as an enum: they fold through [`topic_label`] into
//! the fixed list [`topic_labels`].

use bzzz_protocol::{RejectReason, topics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::metrics::{ErrorFamily, Errors, LabelValue, label_enum, latency_histogram, precreate};

/// The label of gossip on a dynamic issue room (`bzzz/meta/issue/<id>`).
pub(crate) const ISSUE_ROOMS: &str = "bzzz/meta/issue/*";
/// The label of gossip on any other topic.
pub(crate) const OTHER_TOPIC: &str = "other";

label_enum! {
    /// `component` values of `bzzz_errors_total` counted by the network.
    pub enum ErrorComponent {
        /// A connection failed or closed with an error.
        P2p => "p2p",
        /// A connection whose ping went unanswered, then closed.
        P2pPingFailed => "p2p_ping_failed",
        /// A publish failed.
        Pubsub => "pubsub",
        /// An inbound event was dropped: its service's queue was full.
        EventsDropped => "events_dropped",
        /// An inbound Raft RPC was dropped: the Raft queue was full.
        RaftInboundDropped => "raft_inbound_dropped",
        /// sled I/O errors inside the DHT record store.
        Storage => "storage",
    }
}

label_enum! {
    /// `outcome` of `bzzz_pubsub_messages_total`.
    pub enum PubsubOutcome {
        /// Published by this node.
        Published => "published",
        /// This node's publish failed.
        PublishFailed => "publish_failed",
        /// Received and accepted.
        Received => "received",
        /// Accepted, but a subscriber's queue was full.
        Dropped => "dropped",
        /// Rejected by envelope validation.
        Rejected => "rejected",
    }
}

label_enum! {
    /// `operation` of `bzzz_dht_operation_latency_seconds`.
    pub enum DhtOperation {
        /// A put.
        Put => "put",
        /// A get.
        Get => "get",
    }
}

label_enum! {
    /// `outcome` of `bzzz_dht_put_operations_total` and `bzzz_dht_get_operations_total`.
    pub(crate) enum DhtOutcome {
        /// Completed.
        Success => "success",
        /// Failed (or, for a get, found nothing).
        Failure => "failure",
    }
}

label_enum! {
    /// `reason` of `bzzz_dht_records_rejected_total`.
    pub enum StoreReject {
        /// The value exceeded the record size limit.
        TooLarge => "too_large",
        /// The store was full.
        StoreFull => "store_full",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicOutcome {
    topic: &'static str,
    outcome: PubsubOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: DhtOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: DhtOperation,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreRejectLabel {
    reason: StoreReject,
}

/// Every `topic` label value: the known topics, issue rooms, and `other`.
pub(crate) fn topic_labels() -> impl Iterator<Item = &'static str> {
    topics::ALL.into_iter().chain([ISSUE_ROOMS, OTHER_TOPIC])
}

/// Folds topics into a bounded label set: known topics as is, rooms as one label, else `other`.
pub(crate) fn topic_label(topic: &str) -> &'static str {
    if let Some(known) = topics::ALL.into_iter().find(|t| *t == topic) {
        known
    } else if topic.starts_with(topics::META_ISSUE_PREFIX) {
        ISSUE_ROOMS
    } else {
        OTHER_TOPIC
    }
}

/// The network's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NetworkMetrics {
    connected_peers: Gauge,
    routing_table_peers: Gauge,
    pubsub_messages: Family<TopicOutcome, Counter>,
    pubsub_rejected: Family<RejectLabel, Counter>,
    dht_puts: Family<OutcomeLabel, Counter>,
    dht_gets: Family<OutcomeLabel, Counter>,
    dht_latency: Family<OperationLabel, Histogram, fn() -> Histogram>,
    records_stored: Gauge,
    provider_records: Gauge,
    records_rejected: Family<StoreRejectLabel, Counter>,
    dial_attempts: Counter,
    consecutive_failures: Gauge,
    errors: Errors<ErrorComponent>,
}

impl NetworkMetrics {
    /// Registers the network's families in `registry` and pre-creates their series.
    pub fn new(registry: &mut Registry, errors: &ErrorFamily) -> Self {
        let m = NetworkMetrics {
            connected_peers: Gauge::default(),
            routing_table_peers: Gauge::default(),
            pubsub_messages: Family::default(),
            pubsub_rejected: Family::default(),
            dht_puts: Family::default(),
            dht_gets: Family::default(),
            dht_latency: Family::new_with_constructor(latency_histogram),
            records_stored: Gauge::default(),
            provider_records: Gauge::default(),
            records_rejected: Family::default(),
            dial_attempts: Counter::default(),
            consecutive_failures: Gauge::default(),
            errors: errors.scoped(),
        };
        let r = registry;
        r.register(
            "bzzz_p2p_connected_peers",
            "Peers this node currently has a connection to",
            m.connected_peers.clone(),
        );
        r.register(
            "bzzz_dht_routing_table_peers",
            "Peers in this node's Kademlia routing table",
            m.routing_table_peers.clone(),
        );
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
            m.dht_puts.clone(),
        );
        r.register(
            "bzzz_dht_get_operations",
            "DHT get operations started by this node, by outcome",
            m.dht_gets.clone(),
        );
        r.register(
            "bzzz_dht_operation_latency_seconds",
            "Latency of DHT operations started by this node, in seconds",
            m.dht_latency.clone(),
        );
        r.register(
            "bzzz_dht_records_stored",
            "Records held in this node's persistent DHT store",
            m.records_stored.clone(),
        );
        r.register(
            "bzzz_dht_provider_records",
            "Provider records in this node's DHT store",
            m.provider_records.clone(),
        );
        r.register(
            "bzzz_dht_records_rejected",
            "Records refused by this node's DHT store, by reason",
            m.records_rejected.clone(),
        );
        r.register(
            "bzzz_bootstrap_dial_attempts",
            "Bootstrap dial rounds made by this node",
            m.dial_attempts.clone(),
        );
        r.register(
            "bzzz_bootstrap_consecutive_failures",
            "Consecutive failed bootstrap dial rounds; 0 when joined or alone",
            m.consecutive_failures.clone(),
        );
        precreate(
            &m.pubsub_messages,
            topic_labels().flat_map(|topic| {
                PubsubOutcome::ALL
                    .iter()
                    .map(move |&outcome| TopicOutcome { topic, outcome })
            }),
        );
        precreate(
            &m.pubsub_rejected,
            RejectReason::ALL.map(|r| RejectLabel { reason: r.as_str() }),
        );
        let outcomes = || DhtOutcome::ALL.iter().map(|&outcome| OutcomeLabel { outcome });
        precreate(&m.dht_puts, outcomes());
        precreate(&m.dht_gets, outcomes());
        precreate(
            &m.dht_latency,
            DhtOperation::ALL.iter().map(|&operation| OperationLabel { operation }),
        );
        precreate(
            &m.records_rejected,
            StoreReject::ALL.iter().map(|&reason| StoreRejectLabel { reason }),
        );
        m
    }

    /// Counts an error of `component`.
    pub fn error(&self, component: ErrorComponent) {
        self.errors.inc(component);
    }

    /// Sets the number of connected peers.
    pub fn set_connected_peers(&self, n: usize) {
        self.connected_peers.set(n as i64);
    }

    /// Sets the number of peers in the routing table.
    pub fn set_routing_table_peers(&self, n: usize) {
        self.routing_table_peers.set(n as i64);
    }

    /// Counts a gossip message on `topic` (folded by [`topic_label`]) with `outcome`.
    pub fn pubsub(&self, topic: &str, outcome: PubsubOutcome) {
        self.pubsub_messages
            .get_or_create(&TopicOutcome {
                topic: topic_label(topic),
                outcome,
            })
            .inc();
    }

    /// Counts a gossip envelope rejected for `reason` (the message itself is counted by
    /// [`NetworkMetrics::pubsub`] with [`PubsubOutcome::Rejected`]).
    pub fn pubsub_rejected(&self, reason: RejectReason) {
        self.pubsub_rejected
            .get_or_create(&RejectLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Records a DHT operation's outcome and latency.
    pub fn dht_op(&self, operation: DhtOperation, ok: bool, seconds: f64) {
        let outcome = OutcomeLabel {
            outcome: if ok { DhtOutcome::Success } else { DhtOutcome::Failure },
        };
        match operation {
            DhtOperation::Put => self.dht_puts.get_or_create(&outcome).inc(),
            DhtOperation::Get => self.dht_gets.get_or_create(&outcome).inc(),
        };
        self.dht_latency
            .get_or_create(&OperationLabel { operation })
            .observe(seconds);
    }

    /// Sets the DHT store's record and provider-record counts.
    pub fn set_store_counts(&self, records: u64, provider_records: u64) {
        self.records_stored.set(records as i64);
        self.provider_records.set(provider_records as i64);
    }

    /// Records in the DHT store, as of the last [`NetworkMetrics::set_store_counts`].
    pub fn records_stored(&self) -> i64 {
        self.records_stored.get()
    }

    /// Adds `by` records the DHT store refused for `reason`.
    pub fn store_rejected(&self, reason: StoreReject, by: u64) {
        self.records_rejected
            .get_or_create(&StoreRejectLabel { reason })
            .inc_by(by);
    }

    /// Adds `by` sled I/O errors of the DHT store.
    pub fn store_errors(&self, by: u64) {
        if by > 0 {
            self.errors.inc_by(ErrorComponent::Storage, by);
        }
    }

    /// Adds `by` bootstrap dial rounds and sets the consecutive failures.
    pub fn bootstrap_progress(&self, dial_rounds: u64, consecutive_failures: u64) {
        self.dial_attempts.inc_by(dial_rounds);
        self.consecutive_failures.set(consecutive_failures as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dynamic room topics fold into one label so remote input cannot grow the label set.
    #[test]
    fn topic_labels_are_bounded() {
        assert_eq!(topic_label("bzzz/health/v1"), "bzzz/health/v1");
        assert_eq!(topic_label("bzzz/meta/issue/123"), "bzzz/meta/issue/*");
        assert_eq!(topic_label("anything"), "other");
    }

    /// The series pre-created at start are exactly those the methods can emit: calling every
    /// method with every label value adds no series, and every pre-created one is reachable.
    #[test]
    fn precreated_series_are_the_emitted_series() {
        let mut registry = Registry::default();
        let errors = ErrorFamily::register(&mut registry);
        let m = NetworkMetrics::new(&mut registry, &errors);
        let before = crate::metrics::series(&registry);
        for &c in ErrorComponent::ALL {
            m.error(c);
        }
        m.set_connected_peers(1);
        m.set_routing_table_peers(1);
        for topic in topics::ALL.into_iter().chain(["bzzz/meta/issue/42", "anything"]) {
            for &o in PubsubOutcome::ALL {
                m.pubsub(topic, o);
            }
        }
        for r in RejectReason::ALL {
            m.pubsub_rejected(r);
        }
        for &op in DhtOperation::ALL {
            m.dht_op(op, true, 0.01);
            m.dht_op(op, false, 0.01);
        }
        m.set_store_counts(1, 1);
        for &r in StoreReject::ALL {
            m.store_rejected(r, 1);
        }
        m.store_errors(1);
        m.bootstrap_progress(1, 1);
        crate::metrics::assert_precreated_is_emitted(&before, &crate::metrics::series(&registry));
    }
}
