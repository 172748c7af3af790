//! [`ContextMetrics`]: context reads and writes through this node's API, records refused or
//! failing verification, repairs, and role key epochs, built from the registry at start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::{ErrorFamily, Errors, LabelValue, label_enum, precreate};

label_enum! {
    /// `component` values of `bzzz_errors_total` counted by the context service.
    pub enum ErrorComponent {
        /// A role key sealed to this node does not open, or the admin answered a holder badly.
        Context => "context",
    }
}

label_enum! {
    /// `outcome` of `bzzz_context_puts_total` and `bzzz_context_gets_total`.
    pub enum ContextOutcome {
        /// Done.
        Success => "success",
        /// Invalid address, temporal part, body or size, or a conflict.
        BadRequest => "bad_request",
        /// No operator token or role allows it.
        Forbidden => "forbidden",
        /// No such record or version.
        NotFound => "not_found",
        /// The admin or the holders could not be reached in time.
        Unavailable => "unavailable",
        /// Anything else.
        Failure => "failure",
    }
}

label_enum! {
    /// Where a refused context record came from: the `reason` of
    /// `bzzz_context_records_rejected_total`.
    pub enum RecordSource {
        /// A holder RPC.
        Rpc => "rpc",
        /// A peer's Kademlia put.
        DhtPut => "dht_put",
    }
}

/// A context API operation, counted in `bzzz_context_puts_total` or `bzzz_context_gets_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A write or a delete.
    Put,
    /// A read.
    Get,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: ContextOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    reason: RecordSource,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: String,
}

/// The context service's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ContextMetrics {
    puts: Family<OutcomeLabel, Counter>,
    gets: Family<OutcomeLabel, Counter>,
    decrypt_failures: Counter,
    records_rejected: Family<SourceLabel, Counter>,
    repairs: Counter,
    role_key_epoch: Family<RoleLabel, Gauge>,
    errors: Errors<ErrorComponent>,
}

impl ContextMetrics {
    /// Registers the context families in `registry` and pre-creates their series (role key
    /// epochs have one series per role, created when the role's key is first seen).
    pub fn new(registry: &mut Registry, errors: &ErrorFamily) -> Self {
        let m = ContextMetrics {
            puts: Family::default(),
            gets: Family::default(),
            decrypt_failures: Counter::default(),
            records_rejected: Family::default(),
            repairs: Counter::default(),
            role_key_epoch: Family::default(),
            errors: errors.scoped(),
        };
        let r = registry;
        r.register(
            "bzzz_context_puts",
            "Context writes through this node's API, by outcome",
            m.puts.clone(),
        );
        r.register(
            "bzzz_context_gets",
            "Context reads through this node's API, by outcome",
            m.gets.clone(),
        );
        r.register(
            "bzzz_context_decrypt_failures",
            "Fetched context records that failed verification or decryption on this node",
            m.decrypt_failures.clone(),
        );
        r.register(
            "bzzz_context_records_rejected",
            "Context records this node refused to store, by source (rpc, dht_put)",
            m.records_rejected.clone(),
        );
        r.register(
            "bzzz_context_repairs",
            "Copies of context records made by the admin's replication check",
            m.repairs.clone(),
        );
        r.register(
            "bzzz_role_key_epoch",
            "Current key epoch of each role this node knows",
            m.role_key_epoch.clone(),
        );
        let outcomes = || ContextOutcome::ALL.iter().map(|&outcome| OutcomeLabel { outcome });
        precreate(&m.puts, outcomes());
        precreate(&m.gets, outcomes());
        precreate(
            &m.records_rejected,
            RecordSource::ALL.iter().map(|&reason| SourceLabel { reason }),
        );
        m
    }

    /// Counts an error of `component`.
    pub fn error(&self, component: ErrorComponent) {
        self.errors.inc(component);
    }

    /// Counts an API operation's outcome.
    pub fn operation(&self, op: Operation, outcome: ContextOutcome) {
        let family = match op {
            Operation::Put => &self.puts,
            Operation::Get => &self.gets,
        };
        family.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Counts a fetched record that failed verification or decryption.
    pub fn decrypt_failure(&self) {
        self.decrypt_failures.inc();
    }

    /// Counts a context record refused from `source`.
    pub fn record_rejected(&self, source: RecordSource) {
        self.records_rejected
            .get_or_create(&SourceLabel { reason: source })
            .inc();
    }

    /// Counts `n` copies made by a replication check.
    pub fn repairs(&self, n: u64) {
        self.repairs.inc_by(n);
    }

    /// Sets the key epoch of `role`.
    pub fn role_key_epoch(&self, role: &str, epoch: u64) {
        self.role_key_epoch
            .get_or_create(&RoleLabel { role: role.into() })
            .set(epoch as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series pre-created at start are exactly those the methods can emit (role epochs
    /// aside: one series per role this node learns).
    #[test]
    fn precreated_series_are_the_emitted_series() {
        let mut registry = Registry::default();
        let errors = ErrorFamily::register(&mut registry);
        let m = ContextMetrics::new(&mut registry, &errors);
        let before = crate::metrics::series(&registry);
        for &c in ErrorComponent::ALL {
            m.error(c);
        }
        for &o in ContextOutcome::ALL {
            m.operation(Operation::Put, o);
            m.operation(Operation::Get, o);
        }
        m.decrypt_failure();
        m.record_rejected(RecordSource::Rpc);
        m.record_rejected(RecordSource::DhtPut);
        m.repairs(2);
        crate::metrics::assert_precreated_is_emitted(&before, &crate::metrics::series(&registry));
        m.role_key_epoch("dev", 3);
        assert_eq!(
            crate::metrics::series(&registry).get("bzzz_role_key_epoch{role=\"dev\"}"),
            Some(&3.0)
        );
    }
}
