//! The node's metrics at start: one registry, and every subsystem's metrics struct built from
//! it. The node hands each struct to the service that owns it; `metrics/` itself names no
//! subsystem.

use prometheus_client::registry::Registry;

use crate::admission::AdmissionMetrics;
use crate::consensus::ElectionMetrics;
use crate::context::ContextMetrics;
use crate::health::HealthMetrics;
use crate::metrics::{ErrorFamily, ProcessMetrics};
use crate::network::NetworkMetrics;
use crate::ops::OpsMetrics;

/// Every subsystem's metrics, registered in one registry.
#[derive(Clone, Debug)]
pub(crate) struct NodeMetrics {
    pub process: ProcessMetrics,
    pub network: NetworkMetrics,
    pub election: ElectionMetrics,
    pub context: ContextMetrics,
    pub health: HealthMetrics,
    pub ops: OpsMetrics,
    pub admission: AdmissionMetrics,
}

impl NodeMetrics {
    /// Registers every subsystem's metrics in `registry`; `mode` labels `bzzz_build_info`.
    pub(crate) fn register(registry: &mut Registry, mode: &str) -> Self {
        let errors = ErrorFamily::register(registry);
        let context = ContextMetrics::new(registry, &errors);
        let network = NetworkMetrics::new(registry, &errors);
        NodeMetrics {
            process: ProcessMetrics::register(registry, env!("CARGO_PKG_VERSION"), mode),
            network,
            election: ElectionMetrics::new(registry, &errors),
            context,
            health: HealthMetrics::new(registry, &errors),
            ops: OpsMetrics::new(registry),
            admission: AdmissionMetrics::new(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CONTRACT_METRICS, MetricsHandle};

    /// Every metric the runbook queries is exposed under its contract name, before anything
    /// happened, and every exposed metric has HELP text.
    #[test]
    fn contract_names_are_exposed() {
        let mut registry = Registry::default();
        let m = NodeMetrics::register(&mut registry, "agent");
        let h = MetricsHandle::new(registry, m.process.clone());
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

    /// The `component` values of `bzzz_errors_total` are the documented ones, each counted by
    /// exactly one subsystem (a value in two enums would be one series counted twice).
    #[test]
    fn error_components_are_documented_and_owned_once() {
        use crate::metrics::LabelValue;
        let mut all: Vec<&str> = Vec::new();
        all.extend(crate::network::metrics::ErrorComponent::ALL.iter().map(|c| c.as_str()));
        all.extend(
            crate::consensus::metrics::ErrorComponent::ALL
                .iter()
                .map(|c| c.as_str()),
        );
        all.extend(crate::context::metrics::ErrorComponent::ALL.iter().map(|c| c.as_str()));
        all.extend(crate::health::metrics::ErrorComponent::ALL.iter().map(|c| c.as_str()));
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "a component in two subsystems: {all:?}");
        let mut registry = Registry::default();
        let m = NodeMetrics::register(&mut registry, "agent");
        let h = MetricsHandle::new(registry, m.process);
        let docs = include_str!("../../../docs/metrics.md");
        let row = docs
            .lines()
            .find(|l| l.starts_with("| `bzzz_errors_total`"))
            .expect("bzzz_errors_total is documented");
        for component in all {
            assert!(row.contains(component), "{component} missing from docs/metrics.md");
            assert_eq!(
                h.sample("bzzz_errors_total", &[("component", component)]),
                Some(0.0),
                "{component} not pre-created"
            );
        }
    }

    /// A peer's rejected context put (judged by the context service's validator) counts into
    /// the context family's `dht_put` series.
    #[test]
    fn dht_put_rejections_reach_the_context_family() {
        use crate::network::{RecordValidator, Verdict};
        let mut registry = Registry::default();
        let m = NodeMetrics::register(&mut registry, "agent");
        let validator = crate::context::ContextRecordValidator::new(1024, m.context.clone());
        let key = bzzz_protocol::context::dht_key(&[7u8; 32]);
        assert!(matches!(validator.validate(&key, b"not a record"), Verdict::Reject(_)));
        assert_eq!(validator.validate(b"/other/key", b"anything"), Verdict::Ordinary);
        let h = MetricsHandle::new(registry, m.process);
        assert_eq!(
            h.sample("bzzz_context_records_rejected_total", &[("reason", "dht_put")]),
            Some(1.0)
        );
        assert_eq!(
            h.sample("bzzz_context_records_rejected_total", &[("reason", "rpc")]),
            Some(0.0)
        );
    }
}
