//! Process metrics, read from `/proc/self` and the cgroup memory limit at every scrape: the
//! standard `process_*` names Prometheus client libraries export, and `bzzz_memory_limit_bytes`
//! so an alert can compare resident memory with the container's limit.
//!
//! On other operating systems, and for any file that cannot be read or parsed, the metric is
//! left out of the scrape (never a made-up value, never an error for the whole scrape).
//!
//! [`ProcessMetrics`] also holds the two node-wide gauges that belong to no subsystem:
//! `bzzz_uptime_seconds` (set by the `/metrics` handler at each scrape) and `bzzz_build_info`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`). Linux fixes it at 100
/// for user space on every architecture it supports; Prometheus' own `procfs` assumes the same.
pub(crate) const USER_HZ: f64 = 100.0;

/// A cgroup v2 memory limit file.
pub(crate) const CGROUP_V2_MEMORY_MAX: &str = "/sys/fs/cgroup/memory.max";
/// A cgroup v1 memory limit file.
pub(crate) const CGROUP_V1_MEMORY_LIMIT: &str = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
/// Limits at or above this many bytes mean "no limit" (cgroup v1 reports an unlimited group as
/// 9223372036854771712, the largest page-aligned `i64`).
pub(crate) const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// Label set of the build-info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    /// Crate version.
    pub version: String,
    /// `agent` or `bootstrap`.
    pub mode: String,
}

/// The node-wide metrics: uptime and build info, plus the [`ProcessCollector`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProcessMetrics {
    /// Process uptime in seconds (`bzzz_uptime_seconds`), set at each scrape.
    pub uptime_seconds: Gauge,
    /// Constant 1, labelled with the version and mode (`bzzz_build_info`).
    pub build_info: Family<BuildLabel, Gauge>,
}

impl ProcessMetrics {
    /// Registers uptime, build info (set to 1 for `version` and `mode`) and the process collector.
    pub fn register(registry: &mut Registry, version: &str, mode: &str) -> Self {
        let m = ProcessMetrics {
            uptime_seconds: Gauge::default(),
            build_info: Family::default(),
        };
        registry.register(
            "bzzz_uptime_seconds",
            "Seconds since the node started",
            m.uptime_seconds.clone(),
        );
        registry.register(
            "bzzz_build_info",
            "Constant 1, labelled with the bzzz version and node mode",
            m.build_info.clone(),
        );
        m.build_info
            .get_or_create(&BuildLabel {
                version: version.into(),
                mode: mode.into(),
            })
            .set(1);
        registry.register_collector(Box::new(ProcessCollector));
        m
    }
}

/// Process metrics registered as a collector: every value is read when `/metrics` is scraped.
#[derive(Debug, Default)]
pub(crate) struct ProcessCollector;

/// One scrape's readings; `None` is left out of the output.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ProcessSample {
    /// Resident set size, in bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// Soft limit of open file descriptors.
    pub max_fds: Option<u64>,
    /// Process start time, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// The cgroup memory limit, in bytes (absent when unlimited).
    pub memory_limit_bytes: Option<u64>,
}

impl ProcessSample {
    /// Reads everything it can for this process.
    pub(crate) fn read() -> ProcessSample {
        #[cfg(target_os = "linux")]
        {
            let read = |p: &str| std::fs::read_to_string(p).ok();
            let mut s = ProcessSample::default();
            if let Some(status) = read("/proc/self/status") {
                s.resident_memory_bytes = status_kib(&status, "VmRSS:").map(|k| k.saturating_mul(1024));
                s.virtual_memory_bytes = status_kib(&status, "VmSize:").map(|k| k.saturating_mul(1024));
            }
            if let Some(stat) = read("/proc/self/stat").as_deref().and_then(parse_stat) {
                s.cpu_seconds = Some((stat.utime_ticks + stat.stime_ticks) as f64 / USER_HZ);
                if let Some(btime) = read("/proc/stat").as_deref().and_then(parse_boot_time) {
                    s.start_time_seconds = Some(btime as f64 + stat.start_ticks as f64 / USER_HZ);
                }
            }
            s.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
            s.max_fds = read("/proc/self/limits").as_deref().and_then(parse_max_open_files);
            s.memory_limit_bytes = read(CGROUP_V2_MEMORY_MAX)
                .or_else(|| read(CGROUP_V1_MEMORY_LIMIT))
                .as_deref()
                .and_then(parse_cgroup_memory_limit);
            s
        }
        #[cfg(not(target_os = "linux"))]
        {
            ProcessSample::default()
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessSample::read();
        let gauges: [(&str, &str, Option<f64>); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (soft limit).",
                s.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
            (
                "bzzz_memory_limit_bytes",
                "Memory limit of the process's cgroup in bytes (absent when unlimited).",
                s.memory_limit_bytes.map(|v| v as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
                g.encode(m)?;
            }
        }
        if let Some(v) = s.cpu_seconds {
            // Exposed as `process_cpu_seconds_total` (the encoder adds `_total` to counters).
            let c = ConstCounter::new(v);
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?;
            c.encode(m)?;
        }
        Ok(())
    }
}

/// The value in KiB of a `/proc/<pid>/status` line such as `VmRSS:   1756 kB`.
pub(crate) fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let mut it = line[field.len()..].split_whitespace();
    let value = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// The fields of `/proc/<pid>/stat` the metrics use, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Time in user mode (field 14).
    pub utime_ticks: u64,
    /// Time in kernel mode (field 15).
    pub stime_ticks: u64,
    /// Start time after boot (field 22).
    pub start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<Stat> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state), so field n is at n - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
    })
}

/// The boot time (`btime`, seconds since the Unix epoch) from `/proc/stat`.
pub(crate) fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of `Max open files` from `/proc/<pid>/limits` (`None` when unlimited).
pub(crate) fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// A cgroup memory limit file's content: `max` (v2) or an absurdly large value (v1's "no
/// limit") is `None`.
pub(crate) fn parse_cgroup_memory_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse::<u64>().ok().filter(|&v| v > 0 && v < UNLIMITED_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str =
        "Name:\tbzzz\nUmask:\t0022\nVmPeak:\t  3060 kB\nVmSize:\t  123456 kB\nVmRSS:\t    1756 kB\nRssAnon:\t 108 kB\n";

    /// Memory sizes come from the kB fields of `/proc/self/status`.
    #[test]
    fn status_fields_parse() {
        assert_eq!(status_kib(STATUS, "VmRSS:"), Some(1756));
        assert_eq!(status_kib(STATUS, "VmSize:"), Some(123_456));
        assert_eq!(status_kib(STATUS, "VmSwap:"), None, "absent field");
        assert_eq!(status_kib("VmRSS:\tlots kB\n", "VmRSS:"), None, "not a number");
        assert_eq!(status_kib("VmRSS:\t12 MB\n", "VmRSS:"), None, "unknown unit");
    }

    /// CPU and start times are counted from the last `)`, so a command name with spaces and
    /// parentheses cannot shift the fields.
    #[test]
    fn stat_fields_parse_past_odd_command_names() {
        let plain = "11068 (cat) R 11063 11063 4772 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 42730 3133440 389 18446744073709551615";
        assert_eq!(
            parse_stat(plain),
            Some(Stat {
                utime_ticks: 7,
                stime_ticks: 3,
                start_ticks: 42_730
            })
        );
        let odd = "42 (my (odd) name) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0 1000 3133440 389";
        let s = parse_stat(odd).expect("parses");
        assert_eq!((s.utime_ticks, s.stime_ticks, s.start_ticks), (250, 50, 1000));
        assert_eq!(parse_stat("42 (cut) S 1 2"), None, "truncated");
        assert_eq!(parse_stat("no parens at all"), None);
    }

    /// The boot time and the open-files soft limit are found by their line.
    #[test]
    fn boot_time_and_fd_limit_parse() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1795488292\nprocesses 9\n"),
            Some(1_795_488_292)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             96365                96365                processes \n\
                      Max open files            20000                40000                files     \n";
        assert_eq!(parse_max_open_files(limits), Some(20_000));
        let unlimited = "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_max_open_files(unlimited), None);
    }

    /// A real limit is kept; v2's `max` and v1's huge "unlimited" value are left out.
    #[test]
    fn cgroup_memory_limits_parse() {
        assert_eq!(parse_cgroup_memory_limit("4294967296\n"), Some(4_294_967_296));
        assert_eq!(parse_cgroup_memory_limit("max\n"), None);
        assert_eq!(parse_cgroup_memory_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_memory_limit("garbage"), None);
        assert_eq!(parse_cgroup_memory_limit(""), None);
    }

    /// On Linux the collector reads this process: memory, CPU, descriptors and start time are
    /// present and plausible.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read() {
        let s = ProcessSample::read();
        assert!(s.resident_memory_bytes.is_some_and(|v| v > 0), "rss: {s:?}");
        assert!(
            s.virtual_memory_bytes >= s.resident_memory_bytes,
            "virtual below resident: {s:?}"
        );
        assert!(s.cpu_seconds.is_some(), "cpu: {s:?}");
        assert!(s.open_fds.is_some_and(|v| v >= 3), "fds: {s:?}");
        assert!(s.start_time_seconds.is_some_and(|v| v > 1.0e9), "start: {s:?}");
    }
}
