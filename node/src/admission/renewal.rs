//! Certificate renewal without a restart or a disconnect.
//!
//! A node renews its certificate once a third of its validity is left:
//! - a certificate an issuer signed (a node that joined with a token) is renewed by any connected
//!   voter holding the issuer, over RPC (`RenewCertificate`): the voter signs the same serial,
//!   roles and voter right with a fresh validity of the same length (capped by the issuer). The
//!   serial stays, so a revocation names every renewal of a certificate, and a revoked or expired
//!   certificate cannot be renewed (the voter renews only a certificate valid now);
//! - a certificate the CA signed is renewed by the operator, offline: `bzzz ca sign` of the same
//!   node into the node's certificate file. The node picks the newer file up by itself.
//!
//! Either way the node then sends its new chain to every connected peer (`CertificateUpdate`),
//! which verifies it and keeps it for that peer's open connections: nobody disconnects it when
//! the old certificate's time runs out. New connections present the new chain.

use bzzz_protocol::cert::Verified;
use bzzz_protocol::wire::CertificateChain;
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;

use super::{Admission, Admitted, files, read, write};

/// How often one peer may ask this voter for a renewal (one every 10 s, bursts of 3).
pub(crate) const RENEWALS_PER_SECOND: f64 = 0.1;
pub(crate) const RENEWAL_BURST: f64 = 3.0;
/// Most peers whose renewal requests are tracked at once.
pub(crate) const MAX_RENEWING_PEERS: usize = 4096;

/// Whether a certificate valid from `not_before_ms` to `not_after_ms` should be renewed at
/// `now_ms`: once a third of its validity (at least a second) is left.
pub fn due(not_before_ms: u64, not_after_ms: u64, now_ms: u64) -> bool {
    let lifetime = not_after_ms.saturating_sub(not_before_ms);
    let left = not_after_ms.saturating_sub(now_ms);
    left <= (lifetime / 3).max(1_000)
}

impl Admission {
    /// Whether this node's own certificate is due for renewal now.
    pub fn renewal_due(&self) -> bool {
        self.local_certificate()
            .is_some_and(|c| due(c.leaf.not_before_ms, c.leaf.not_after_ms, now_unix_ms()))
    }

    /// Whether this node's certificate was signed by an issuer (renewable by a voter).
    pub fn issued_online(&self) -> bool {
        self.local_certificate().is_some_and(|c| c.issuer_serial.is_some())
    }

    /// Voters this node is connected to that can renew an issuer-signed certificate.
    pub fn connected_voters(&self) -> Vec<PeerId> {
        read(&self.peers)
            .iter()
            .filter(|(_, a)| a.voter() && a.cert.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Peers currently admitted (the ones a renewed chain is sent to).
    pub fn admitted_peers(&self) -> Vec<PeerId> {
        read(&self.peers).keys().copied().collect()
    }

    /// A voter's renewal of `peer`'s certificate: the same serial, roles and voter right, valid
    /// from now for as long as the current one was, capped by the issuer. Only a certificate an
    /// issuer signed and that is valid now is renewed, at most once every 10 s per peer.
    pub(crate) fn renew_for(&self, peer: &PeerId) -> Result<CertificateChain, String> {
        let (Some(issuer), Some(anchor)) = (&self.issuer, self.anchor.get()) else {
            return Err("this node holds no issuer key".into());
        };
        if !self.local_certificate().is_some_and(|c| c.leaf.voter) {
            return Err("this node is not a voter".into());
        }
        if !self.renewals.allow(peer) {
            return Err("too many renewal requests; retry later".into());
        }
        let current = self
            .certificate_of(peer)
            .ok_or("no valid certificate of this cluster to renew")?;
        if current.issuer_serial.is_none() {
            return Err("a certificate the CA signed is renewed by the operator (`bzzz ca sign`)".into());
        }
        issuer
            .renew(anchor, &current.leaf, now_unix_ms())
            .map_err(|e| e.to_string())
    }

    /// Keeps `peer`'s renewed chain for its open connections. It must verify for `peer` now (this
    /// cluster, not revoked), last longer than the one held and keep the voter right (a change of
    /// the voter right needs a new connection, and its admission). An issuer's renewal keeps the
    /// serial; an operator's `bzzz ca sign` makes a new one.
    pub(crate) fn update_peer(&self, peer: &PeerId, chain: &CertificateChain) -> Result<(), String> {
        let anchor = self.anchor.get().ok_or("admission is off on this node")?;
        let verified = {
            let revoked = read(&self.revoked);
            anchor
                .verify_node(chain, peer, now_unix_ms(), &|s| revoked.contains(&s))
                .map_err(|e| e.to_string())?
        };
        let mut peers = write(&self.peers);
        let current = peers.get(peer).and_then(|a| a.cert.as_ref()).ok_or("not admitted")?;
        if current.leaf.voter != verified.leaf.voter {
            return Err("the new certificate changes the voter right; connect again to present it".into());
        }
        if verified.leaf.not_after_ms <= current.leaf.not_after_ms {
            return Err("the certificate is not newer than the one held".into());
        }
        peers.insert(*peer, Admitted { cert: Some(verified) });
        Ok(())
    }

    /// Installs a renewal of this node's own certificate: it must verify for this node now, keep
    /// the voter right, and last longer than the current one. Written to the certificate file first
    /// (unless it came from there), then used for new connections and the messages that carry it.
    pub fn install_renewal(&self, chain: CertificateChain, write_file: bool) -> Result<Verified, String> {
        let anchor = self.anchor.get().ok_or("admission is off on this node")?;
        let verified = anchor
            .verify_node(&chain, &self.local, now_unix_ms(), &|s| self.is_revoked(s))
            .map_err(|e| e.to_string())?;
        let current = self.local_certificate().ok_or("this node has no certificate")?;
        if verified.leaf.voter != current.leaf.voter {
            return Err("the renewal changes the voter right; restart the node to take it".into());
        }
        if verified.leaf.not_after_ms <= current.leaf.not_after_ms {
            return Err("not newer than the current certificate".into());
        }
        if write_file {
            files::write_public(&self.cert_file, &bzzz_protocol::cert::chain_to_pem(&chain))
                .map_err(|e| e.to_string())?;
        }
        tracing::info!(
            serial = %format_args!("{:016x}", verified.leaf.serial),
            not_after_ms = verified.leaf.not_after_ms,
            "certificate renewed"
        );
        self.metrics.set_own_expiry(verified.not_after_ms());
        *write(&self.chain) = Some(std::sync::Arc::new(chain));
        *write(&self.local_cert) = Some(verified.clone());
        Ok(verified)
    }

    /// The certificate file's chain, if it holds a valid certificate for this node that lasts
    /// longer than the current one (the operator renewed it with `bzzz ca sign`).
    pub fn renewed_file(&self) -> Option<CertificateChain> {
        let anchor = self.anchor.get()?;
        let current = self.local_certificate()?;
        let chain = files::read_chain(&self.cert_file).ok()?;
        let verified = anchor
            .verify_node(&chain, &self.local, now_unix_ms(), &|s| self.is_revoked(s))
            .ok()?;
        (verified.leaf.not_after_ms > current.leaf.not_after_ms).then_some(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    /// Due once a third of the validity is left, never before; at least a second before expiry.
    #[test]
    fn renewal_is_due_in_the_last_third() {
        assert!(!due(0, 90_000, 59_000));
        assert!(due(0, 90_000, 60_000));
        assert!(due(0, 90_000, 95_000), "expired is due");
        assert!(due(0, 1_500, 600), "a second before expiry at the latest");
    }
}
