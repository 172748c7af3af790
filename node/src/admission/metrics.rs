//! [`AdmissionMetrics`]: how every connection's admission ended, by reason, whether admission is
//! on, and when this node's own certificate expires.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use bzzz_protocol::cert::CertError;

use crate::metrics::{LabelValue, OptionalGauge, label_enum};

label_enum! {
    /// `outcome` of `bzzz_admission_total`.
    pub(crate) enum Outcome {
        /// Both sides admitted each other: the connection is open.
        Admitted => "admitted",
        /// This node refused the peer.
        Refused => "refused",
        /// The peer refused this node (see the node's log for its message).
        RefusedByPeer => "refused_by_peer",
        /// The handshake did not finish (timeout, connection error, garbage).
        Failed => "failed",
        /// An admitted peer was disconnected because its certificate became invalid.
        Disconnected => "disconnected",
    }
}

label_enum! {
    /// `reason` of `bzzz_admission_total`.
    pub(crate) enum Reason {
        /// Admitted: no reason.
        None => "none",
        /// No certificate presented.
        NoCertificate => "no_certificate",
        /// Not the `/bzzz/admit/1` protocol.
        UnsupportedProtocol => "unsupported_protocol",
        /// A certificate that does not decode or is out of bounds.
        Malformed => "malformed",
        /// A certificate format version this build does not know.
        UnsupportedVersion => "unsupported_version",
        /// Not a node certificate.
        WrongKind => "wrong_kind",
        /// A certificate of another cluster.
        WrongCluster => "wrong_cluster",
        /// A signature that does not verify.
        BadSignature => "bad_signature",
        /// Expired.
        Expired => "expired",
        /// Not valid yet.
        NotYetValid => "not_yet_valid",
        /// The certificate names another peer.
        PeerMismatch => "peer_mismatch",
        /// On the revocation list.
        Revoked => "revoked",
        /// Signed by an issuer that was not presented.
        IssuerMissing => "issuer_missing",
        /// Outside its issuer's scope.
        IssuerScope => "issuer_scope",
        /// A node without a certificate asked to join, and this node cannot serve joins (it is
        /// not a voter holding the issuer key), or a joiner for another cluster.
        JoinUnavailable => "join_unavailable",
        /// The handshake took longer than its bound.
        Timeout => "timeout",
        /// The connection failed or sent something that is not a handshake message.
        Protocol => "protocol",
        /// The peer sent a reason this build does not know.
        Other => "other",
    }
}

impl From<&CertError> for Reason {
    fn from(e: &CertError) -> Reason {
        match e {
            CertError::Malformed(_) => Reason::Malformed,
            CertError::UnsupportedVersion(_) => Reason::UnsupportedVersion,
            CertError::WrongKind { .. } => Reason::WrongKind,
            CertError::WrongCluster { .. } => Reason::WrongCluster,
            CertError::BadSignature(_) => Reason::BadSignature,
            CertError::Expired { .. } => Reason::Expired,
            CertError::NotYetValid { .. } => Reason::NotYetValid,
            CertError::PeerMismatch { .. } => Reason::PeerMismatch,
            CertError::Revoked(_) => Reason::Revoked,
            CertError::IssuerMissing => Reason::IssuerMissing,
            CertError::IssuerScope(_) => Reason::IssuerScope,
        }
    }
}

impl Reason {
    /// The reason named by a peer's verdict (remote input: unknown text maps to `Other`).
    pub(crate) fn parse(text: &str) -> Reason {
        use crate::metrics::LabelValue;
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == text)
            .unwrap_or(Reason::Other)
    }
}

label_enum! {
    /// `outcome` of `bzzz_revocations_total`.
    pub(crate) enum RevocationOutcome {
        /// A new CA-signed revocation list was stored and applied.
        Applied => "applied",
        /// A list this node already held.
        Duplicate => "duplicate",
        /// Not a valid revocation of this cluster's CA (refused).
        Invalid => "invalid",
    }
}

label_enum! {
    /// `outcome` of `bzzz_admission_joins_total`: how a join this voter served ended.
    pub(crate) enum JoinOutcome {
        /// The token was redeemed and a certificate issued.
        Issued => "issued",
        /// Unknown token id or wrong secret.
        TokenInvalid => "token_invalid",
        /// The token expired.
        TokenExpired => "token_expired",
        /// The token has no uses left.
        TokenUsedUp => "token_used_up",
        /// The token was revoked.
        TokenRevoked => "token_revoked",
        /// The admin could not be reached or refused (no admin, not committed in time).
        Unavailable => "unavailable",
        /// The exchange failed (timeout, connection, a malformed message, signing).
        Failed => "failed",
        /// Too many joins at once: refused before asking the admin.
        RateLimited => "rate_limited",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JoinLabel {
    outcome: JoinOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevocationLabel {
    outcome: RevocationOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    outcome: Outcome,
    reason: Reason,
}

/// Which (outcome, reason) series exist: the reasons each outcome can have.
fn series() -> Vec<AdmissionLabels> {
    use crate::metrics::LabelValue;
    let refusal = |r: &Reason| !matches!(r, Reason::None | Reason::Timeout | Reason::Protocol);
    let mut out = vec![AdmissionLabels {
        outcome: Outcome::Admitted,
        reason: Reason::None,
    }];
    for outcome in [Outcome::Refused, Outcome::RefusedByPeer] {
        out.extend(
            Reason::ALL
                .iter()
                .filter(|r| refusal(r) && (outcome == Outcome::RefusedByPeer || **r != Reason::Other))
                .map(|r| AdmissionLabels { outcome, reason: *r }),
        );
    }
    for reason in [Reason::Timeout, Reason::Protocol] {
        out.push(AdmissionLabels {
            outcome: Outcome::Failed,
            reason,
        });
    }
    for reason in [Reason::Expired, Reason::Revoked] {
        out.push(AdmissionLabels {
            outcome: Outcome::Disconnected,
            reason,
        });
    }
    out
}

/// Admission's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    total: Family<AdmissionLabels, Counter>,
    enabled: Gauge,
    open_mesh: Gauge,
    revocations: Family<RevocationLabel, Counter>,
    joins: Family<JoinLabel, Counter>,
    own_expiry: OptionalGauge,
}

impl AdmissionMetrics {
    /// Registers admission's families in `registry`, with every (outcome, reason) series at 0.
    pub fn new(registry: &mut Registry) -> Self {
        let m = AdmissionMetrics {
            total: Family::default(),
            enabled: Gauge::default(),
            open_mesh: Gauge::default(),
            revocations: Family::default(),
            joins: Family::default(),
            own_expiry: OptionalGauge::register(
                registry,
                "bzzz_certificate_expiry_timestamp_seconds",
                "When this node's own certificate expires, seconds since the Unix epoch (absent when admission is off)",
            ),
        };
        registry.register(
            "bzzz_admission",
            "Admission handshakes of P2P connections and disconnections of peers whose certificate became invalid, by outcome and reason",
            m.total.clone(),
        );
        registry.register(
            "bzzz_admission_enabled",
            "1 when this node admits only peers with a certificate of its cluster; 0 when no CA is configured (open admission)",
            m.enabled.clone(),
        );
        registry.register(
            "bzzz_p2p_insecure_open_mesh",
            "1 when the node runs without a mesh key (p2p.insecure_open_mesh): any host that reaches the P2P port can connect",
            m.open_mesh.clone(),
        );
        registry.register(
            "bzzz_revocations",
            "CA-signed revocation lists received (API or gossip), by outcome: applied, duplicate, invalid",
            m.revocations.clone(),
        );
        registry.register(
            "bzzz_admission_joins",
            "Joins with a token this voter served (a node without a certificate asking for one), by outcome",
            m.joins.clone(),
        );
        crate::metrics::precreate(&m.joins, JoinOutcome::ALL.iter().map(|&outcome| JoinLabel { outcome }));
        crate::metrics::precreate(
            &m.revocations,
            RevocationOutcome::ALL
                .iter()
                .map(|&outcome| RevocationLabel { outcome }),
        );
        crate::metrics::precreate(&m.total, series());
        m
    }

    /// Counts one admission outcome.
    pub(crate) fn count(&self, outcome: Outcome, reason: Reason) {
        self.total.get_or_create(&AdmissionLabels { outcome, reason }).inc();
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.set(i64::from(on));
    }

    pub(crate) fn revocation(&self, outcome: RevocationOutcome) {
        self.revocations.get_or_create(&RevocationLabel { outcome }).inc();
    }

    pub(crate) fn join(&self, outcome: JoinOutcome) {
        self.joins.get_or_create(&JoinLabel { outcome }).inc();
    }

    pub(crate) fn set_insecure_open_mesh(&self, open: bool) {
        self.open_mesh.set(i64::from(open));
    }

    pub(crate) fn set_own_expiry(&self, not_after_ms: u64) {
        self.own_expiry.set(not_after_ms as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pre-created series can be emitted, and emitting creates no other series; a
    /// reason a peer sends that this build does not know is counted as `other`.
    #[test]
    fn precreated_series_are_exactly_the_emitted_ones() {
        let mut registry = Registry::default();
        let m = AdmissionMetrics::new(&mut registry);
        m.set_enabled(true);
        m.set_own_expiry(1_000);
        let before = crate::metrics::series(&registry);
        for l in series() {
            m.count(l.outcome, l.reason);
        }
        m.set_insecure_open_mesh(true);
        for &o in RevocationOutcome::ALL {
            m.revocation(o);
        }
        for &o in JoinOutcome::ALL {
            m.join(o);
        }
        assert_eq!(Reason::parse("expired"), Reason::Expired);
        assert_eq!(Reason::parse("<script>"), Reason::Other);
        let after = crate::metrics::series(&registry);
        crate::metrics::assert_precreated_is_emitted(&before, &after);
    }
}
