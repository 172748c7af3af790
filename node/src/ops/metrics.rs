//! [`OpsMetrics`]: operator actions, built from the registry at start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::metrics::{LabelValue, label_enum, precreate};

label_enum! {
    /// `outcome` of `bzzz_config_reloads_total`.
    pub(crate) enum ReloadOutcome {
        /// The new configuration is in force.
        Success => "success",
        /// The file (or token file) was refused; the running configuration stays.
        Failure => "failure",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: ReloadOutcome,
}

/// Operator-action metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OpsMetrics {
    config_reloads: Family<OutcomeLabel, Counter>,
}

impl OpsMetrics {
    /// Registers `bzzz_config_reloads_total` in `registry` and pre-creates its series.
    pub fn new(registry: &mut Registry) -> Self {
        let m = OpsMetrics {
            config_reloads: Family::default(),
        };
        registry.register(
            "bzzz_config_reloads",
            "Config reloads (SIGHUP or POST /api/config/reload) by outcome: success, or failure (the file was refused and the running config stays)",
            m.config_reloads.clone(),
        );
        precreate(
            &m.config_reloads,
            ReloadOutcome::ALL.iter().map(|&outcome| OutcomeLabel { outcome }),
        );
        m
    }

    /// Counts a config reload by its outcome.
    pub fn reload(&self, ok: bool) {
        let outcome = if ok {
            ReloadOutcome::Success
        } else {
            ReloadOutcome::Failure
        };
        self.config_reloads.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series pre-created at start are exactly those a reload can emit.
    #[test]
    fn precreated_series_are_the_emitted_series() {
        let mut registry = Registry::default();
        let m = OpsMetrics::new(&mut registry);
        let before = crate::metrics::series(&registry);
        m.reload(true);
        m.reload(false);
        crate::metrics::assert_precreated_is_emitted(&before, &crate::metrics::series(&registry));
    }
}
