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
        last_run: c.last_run,
        message: c.message,
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
