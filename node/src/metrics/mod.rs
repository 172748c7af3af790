//! The metrics plumbing every subsystem shares: one registry for bzzz's own metrics and
//! libp2p's (under `libp2p_`), its encoding, and the list of names that are a contract.
//!
//! Names are part of the operator contract (the runbook and the alert rules query them); never
//! rename one. Counters get the `_total` suffix from the client library on exposition.
//!
//! This module knows no subsystem. Each service owns its metrics struct, built from the registry
//! at start: `network::metrics`, `consensus::metrics`, `context::metrics`, `health::metrics`,
//! `ops::metrics`. Here: [`MetricsHandle`] (the frozen registry, encoding, [`MetricsHandle::sample`]),
//! [`ErrorFamily`] (`bzzz_errors_total`, which every subsystem counts into through its own
//! component enum), [`label_enum!`] for typed label values, and [`process`] (`process_*`,
//! `bzzz_memory_limit_bytes`, `bzzz_uptime_seconds`, `bzzz_build_info`).

mod errors;
mod labels;
mod optional;
pub(crate) mod process;

use std::sync::Arc;

use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use errors::{ErrorFamily, Errors};
pub use labels::LabelValue;
pub(crate) use labels::label_enum;
pub use optional::OptionalGauge;
pub use process::ProcessMetrics;

/// The latency buckets of bzzz's histograms: 0.5 ms .. ~16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Creates the series of every label set in `labels` (each starts at zero), so rates and alerts
/// have a zero to start from.
pub fn precreate<S, M, C>(family: &Family<S, M, C>, labels: impl IntoIterator<Item = S>)
where
    S: Clone + std::hash::Hash + Eq,
    C: MetricConstructor<M>,
{
    for l in labels {
        drop(family.get_or_create(&l));
    }
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

/// The registry, frozen after start, shared by the node's tasks and the `/metrics` handler.
#[derive(Clone)]
pub struct MetricsHandle {
    /// The registry; encoded on every scrape.
    pub registry: Arc<Registry>,
    /// Uptime and build info (the handler sets the uptime at each scrape).
    pub process: ProcessMetrics,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// Freezes `registry`.
    pub fn new(registry: Registry, process: ProcessMetrics) -> Self {
        MetricsHandle {
            registry: Arc::new(registry),
            process,
        }
    }

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

    /// The current value of one series, by its exposed name (counters with `_total`) and its
    /// exact label set (in any order); `None` when no such series is exposed. Encodes the whole
    /// registry: for tests and tools, not for hot paths.
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self.encode_prometheus_text().ok()?;
        sample(&text, name, labels)
    }
}

/// The value of the series `name{labels}` (labels in any order) in Prometheus or OpenMetrics
/// text, if present.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    want.sort();
    text.lines().filter_map(parse_sample).find_map(|(n, mut l, v)| {
        l.sort();
        (n == name && l == want).then_some(v)
    })
}

/// Label pairs of one series.
type Labels = Vec<(String, String)>;

/// One sample line: name, labels, value. `None` for comments and lines that do not parse.
fn parse_sample(line: &str) -> Option<(&str, Labels, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    match series.split_once('{') {
        None => Some((series, Vec::new(), value)),
        Some((name, rest)) => Some((name, parse_labels(rest.strip_suffix('}')?)?, value)),
    }
}

/// `a="x",b="y"` (values escaped with `\`) into pairs.
fn parse_labels(mut rest: &str) -> Option<Labels> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut end = None;
        let mut chars = after.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.to_string(), value));
        rest = &after[end?..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Some(out)
}

/// The series in an encoding of `registry`, with their values: what tests compare to prove a
/// metrics struct pre-creates exactly what it can emit.
#[cfg(test)]
pub(crate) fn series(registry: &Registry) -> std::collections::BTreeMap<String, f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Asserts that exercising every emitting method (between `before` and `after`) created no
/// series beyond the pre-created ones, and reached every one of them (each series other than a
/// histogram bucket is non-zero afterwards).
#[cfg(test)]
pub(crate) fn assert_precreated_is_emitted(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) {
    let keys = |m: &std::collections::BTreeMap<String, f64>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(after),
        keys(before),
        "emitting created series that were not pre-created"
    );
    for (series, value) in after {
        assert!(
            series.contains("_bucket{") || *value != 0.0,
            "pre-created series {series} is never emitted"
        );
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

    /// The process metrics are in the registry's output with HELP text, under their standard
    /// names (Linux only: elsewhere they are left out).
    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_exposed() {
        let mut registry = Registry::default();
        let process = ProcessMetrics::register(&mut registry, "0.0.0", "agent");
        let h = MetricsHandle::new(registry, process);
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
        assert_eq!(
            h.sample("bzzz_build_info", &[("mode", "agent"), ("version", "0.0.0")]),
            Some(1.0)
        );
    }

    /// `sample` finds a series by name and label set in any order, and nothing else.
    #[test]
    fn samples_are_found_by_name_and_labels() {
        let text =
            "# HELP x_total X\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"uote\"} 3\nx_total{a=\"2\"} 4\ny 0.5\n";
        assert_eq!(sample(text, "x_total", &[("b", "q\"uote"), ("a", "1")]), Some(3.0));
        assert_eq!(sample(text, "x_total", &[("a", "2")]), Some(4.0));
        assert_eq!(sample(text, "x_total", &[("a", "3")]), None);
        assert_eq!(sample(text, "x_total", &[]), None, "a label set must match exactly");
        assert_eq!(sample(text, "y", &[]), Some(0.5));
    }
}
