//! The domain's answers as the API's types ([`bzzz_client::types`]), for the domain types that
//! live below this crate's HTTP contract (`bzzz-storage`, `bzzz-bootstrap`) or carry more than
//! the API shows.

use bzzz_client::types as api;

use crate::health::probe::{ProbeReceipt, ProbeReport};
use crate::health::{CheckResult, Status, Summary};

pub(crate) fn health_status(s: Status) -> api::HealthStatus {
    match s {
        Status::Healthy => api::HealthStatus::Healthy,
        Status::Degraded => api::HealthStatus::Degraded,
        Status::Unhealthy => api::HealthStatus::Unhealthy,
    }
}

pub(crate) fn summary(s: Summary) -> api::HealthSummary {
    api::HealthSummary {
        status: health_status(s.status),
        score: s.score,
        components: s.components.into_iter().map(|(k, v)| (k, health_status(v))).collect(),
    }
}

pub(crate) fn check_result(c: CheckResult) -> api::CheckResult {
    api::CheckResult {
        status: health_status(c.status),
        latency_ms: c.latency_ms,
        last_success: c.last_success,
        last_run: Some(c.last_run),
        message: c.message,
    }
}

/// Every check by name, for `/health/checks`: those that have not run yet on this node (it just
/// started) as `pending`, so the answer always names every check.
pub(crate) fn all_checks(
    mut results: std::collections::BTreeMap<&'static str, CheckResult>,
) -> std::collections::BTreeMap<String, api::CheckResult> {
    use crate::metrics::LabelValue as _;
    crate::health::Check::ALL
        .iter()
        .map(|check| {
            let name = check.name();
            let result = results.remove(name).map_or_else(pending_check, check_result);
            (name.to_string(), result)
        })
        .collect()
}

fn pending_check() -> api::CheckResult {
    api::CheckResult {
        status: api::HealthStatus::Pending,
        latency_ms: 0.0,
        last_success: None,
        last_run: None,
        message: "not run yet".into(),
    }
}

pub(crate) fn probe_report(r: ProbeReport) -> api::ProbeReport {
    api::ProbeReport {
        probe_id: r.probe_id,
        expected: r.expected,
        receivers: r
            .receivers
            .into_iter()
            .map(|ProbeReceipt { peer_id, round_trip_ms }| api::ProbeReceipt { peer_id, round_trip_ms })
            .collect(),
        missing: r.missing,
        waited_ms: r.waited_ms,
    }
}

pub(crate) fn mode(m: bzzz_bootstrap::Mode) -> api::NodeMode {
    match m {
        bzzz_bootstrap::Mode::Agent => api::NodeMode::Agent,
        bzzz_bootstrap::Mode::Bootstrap => api::NodeMode::Bootstrap,
    }
}

pub(crate) fn join_status(j: bzzz_bootstrap::JoinStatus) -> api::JoinStatus {
    use bzzz_bootstrap::JoinState as S;
    api::JoinStatus {
        state: match j.state {
            S::Alone => api::JoinState::Alone,
            S::Joining => api::JoinState::Joining,
            S::Joined => api::JoinState::Joined,
            S::Retrying => api::JoinState::Retrying,
        },
        configured_peers: j.configured_peers,
        attempts: j.attempts,
        consecutive_failures: j.consecutive_failures,
        last_error: j.last_error,
        last_success_unix_ms: j.last_success_unix_ms,
        next_retry_in_ms: j.next_retry_in_ms,
        rebootstraps: j.rebootstraps,
    }
}

pub(crate) fn cache_clear(r: bzzz_storage::CacheClearReport) -> api::CacheClearReport {
    api::CacheClearReport {
        expired_records_removed: r.expired_records_removed,
        cached_records_removed: r.cached_records_removed,
        corrupt_entries_removed: r.corrupt_entries_removed,
        expired_provider_records_removed: r.expired_provider_records_removed,
        orphan_provider_records_removed: r.orphan_provider_records_removed,
        context_records_kept: r.context_records_kept,
        own_records_kept: r.own_records_kept,
        provider_records_kept: r.provider_records_kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node whose checks have not run lists every check as pending (never `{}`); a check that
    /// ran is shown as it ran.
    #[test]
    fn every_check_is_listed_pending_until_it_runs() {
        let none = all_checks(Default::default());
        let names: Vec<&str> = none.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "dht-health",
                "election-health",
                "p2p-connectivity",
                "pubsub-health",
                "replication-health",
                "storage-health"
            ]
        );
        assert!(
            none.values()
                .all(|c| c.status == api::HealthStatus::Pending && c.last_run.is_none())
        );

        let mut ran = std::collections::BTreeMap::new();
        ran.insert(
            "dht-health",
            CheckResult {
                status: Status::Healthy,
                latency_ms: 1.0,
                last_success: Some(5),
                last_run: 5,
                message: "ok".into(),
            },
        );
        let some = all_checks(ran);
        assert_eq!(some.len(), 6);
        assert_eq!(some["dht-health"].status, api::HealthStatus::Healthy);
        assert_eq!(some["dht-health"].last_run, Some(5));
        assert_eq!(some["p2p-connectivity"].status, api::HealthStatus::Pending);
    }
}
