//! [`HealthMetrics`]: health scores and check counts, the admin's replication figures (which
//! `replication-health` reads), and the prober's errors, built from the registry at start.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Check, Component};
use crate::metrics::{ErrorFamily, Errors, LabelValue, OptionalGauge, label_enum, precreate};

label_enum! {
    /// `component` values of `bzzz_errors_total` counted by health.
    pub enum ErrorComponent {
        /// A malformed probe, or an acknowledgement that could not be sent.
        Probe => "probe",
        /// A probe not acknowledged: too many acknowledgements in flight.
        ProbeAckDropped => "probe_ack_dropped",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: Component,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    check: Check,
}

/// Health's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HealthMetrics {
    system_score: Gauge<f64, AtomicU64>,
    component_score: Family<ComponentLabel, Gauge<f64, AtomicU64>>,
    checks_passed: Family<CheckLabel, Counter>,
    checks_failed: Family<CheckLabel, Counter>,
    /// Absent until the first replication check (0 would claim no record has a live copy).
    replication_factor: OptionalGauge,
    records_below_r: Gauge,
    errors: Errors<ErrorComponent>,
}

impl HealthMetrics {
    /// Registers health's families in `registry` and pre-creates one series per check and per
    /// component (scores start at 0: no check has run, so the node reads unhealthy).
    pub fn new(registry: &mut Registry, errors: &ErrorFamily) -> Self {
        let m = HealthMetrics {
            system_score: Gauge::default(),
            component_score: Family::default(),
            checks_passed: Family::default(),
            checks_failed: Family::default(),
            replication_factor: OptionalGauge::register(
                registry,
                "bzzz_dht_replication_factor",
                "Average live holders of the indexed context records at the admin's last replication check (every node reports the admin's figure; absent until the first check)",
            ),
            records_below_r: Gauge::default(),
            errors: errors.scoped(),
        };
        let r = registry;
        r.register(
            "bzzz_system_health_score",
            "Overall node health score from 0 (unhealthy) to 1 (healthy)",
            m.system_score.clone(),
        );
        r.register(
            "bzzz_component_health_score",
            "Health score per component from 0 (unhealthy) to 1 (healthy)",
            m.component_score.clone(),
        );
        r.register(
            "bzzz_health_checks_passed",
            "Health check runs that passed, per check",
            m.checks_passed.clone(),
        );
        r.register(
            "bzzz_health_checks_failed",
            "Health check runs that failed, per check",
            m.checks_failed.clone(),
        );
        r.register(
            "bzzz_context_records_below_replication",
            "Indexed context records still below R live holders after the admin's last replication check and repair",
            m.records_below_r.clone(),
        );
        let checks = || Check::ALL.iter().map(|&check| CheckLabel { check });
        precreate(&m.checks_passed, checks());
        precreate(&m.checks_failed, checks());
        precreate(
            &m.component_score,
            Component::ALL.iter().map(|&component| ComponentLabel { component }),
        );
        m
    }

    /// Counts an error of `component`.
    pub fn error(&self, component: ErrorComponent) {
        self.errors.inc(component);
    }

    /// Counts a run of `check`: passed (healthy or degraded) or failed (unhealthy).
    pub fn check_ran(&self, check: Check, passed: bool) {
        let family = if passed {
            &self.checks_passed
        } else {
            &self.checks_failed
        };
        family.get_or_create(&CheckLabel { check }).inc();
    }

    /// Sets the node's overall score.
    pub fn set_system_score(&self, score: f64) {
        self.system_score.set(score);
    }

    /// Sets one component's score.
    pub fn set_component_score(&self, component: Component, score: f64) {
        self.component_score
            .get_or_create(&ComponentLabel { component })
            .set(score);
    }

    /// Sets the admin's last replication figures: average live holders, records below R.
    pub fn set_replication(&self, average_replicas: f64, below_r: u64) {
        self.replication_factor.set(average_replicas);
        self.records_below_r.set(below_r as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series pre-created at start are exactly those the methods can emit.
    #[test]
    fn precreated_series_are_the_emitted_series() {
        let mut registry = Registry::default();
        let errors = ErrorFamily::register(&mut registry);
        let m = HealthMetrics::new(&mut registry, &errors);
        let before = crate::metrics::series(&registry);
        for &c in ErrorComponent::ALL {
            m.error(c);
        }
        for &check in Check::ALL {
            m.check_ran(check, true);
            m.check_ran(check, false);
            m.set_component_score(check.component(), 1.0);
        }
        m.set_system_score(1.0);
        m.set_replication(2.0, 1);
        let mut after = crate::metrics::series(&registry);
        // The one exception, on purpose: the admin's replication factor is absent until the
        // first replication check sets it (0 would read as "no record has a live copy").
        assert!(!before.contains_key("bzzz_dht_replication_factor"));
        assert_eq!(after.remove("bzzz_dht_replication_factor"), Some(2.0));
        crate::metrics::assert_precreated_is_emitted(&before, &after);
    }
}
