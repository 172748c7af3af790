//! [`OptionalGauge`]: a gauge with no sample until it is first set, for figures that do not exist
//! yet (a Prometheus gauge reads 0 from registration, which would claim a measurement).

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// A gauge that is absent from `/metrics` until [`OptionalGauge::set`] is first called. Cheap to
/// clone; clones share the value.
#[derive(Debug, Clone)]
pub struct OptionalGauge {
    name: &'static str,
    help: &'static str,
    value: Arc<Mutex<Option<f64>>>,
}

impl OptionalGauge {
    /// Registers the gauge `name` (the full metric name) in `registry`.
    pub fn register(registry: &mut Registry, name: &'static str, help: &'static str) -> Self {
        let gauge = OptionalGauge {
            name,
            help,
            value: Arc::default(),
        };
        registry.register_collector(Box::new(gauge.clone()));
        gauge
    }

    /// Sets the value; the gauge is exported from now on.
    pub fn set(&self, value: f64) {
        *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
    }

    /// The value, if set.
    pub fn get(&self) -> Option<f64> {
        *self.value.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Collector for OptionalGauge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(value) = self.get() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(value);
        let metric = encoder.encode_descriptor(self.name, self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Absent (no sample, no descriptor) until set; then one unlabelled sample.
    #[test]
    fn absent_until_set() {
        let mut registry = Registry::default();
        let g = OptionalGauge::register(&mut registry, "bzzz_test_figure", "A test figure");
        let text = |r: &Registry| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, r).expect("encode");
            out
        };
        assert!(!text(&registry).contains("bzzz_test_figure"), "{}", text(&registry));
        g.set(2.5);
        let out = text(&registry);
        assert_eq!(super::super::sample(&out, "bzzz_test_figure", &[]), Some(2.5), "{out}");
    }
}
