//! The online issuer a voter holds (`admission.issuer_key_file`, `admission.issuer_cert_file`,
//! made by `bzzz ca issuer`): it signs certificates for nodes that redeemed a join token, within
//! the scope the CA gave it (its roles, the voter right only if it says so, never past its own
//! expiry). See ADR 0014.

use std::path::Path;

use bzzz_protocol::cert::{self, CertInfo, CertKind, TrustAnchor};
use bzzz_protocol::wire::{Certificate, CertificateChain};
use libp2p::PeerId;
use libp2p::identity::Keypair;

use super::files::FileError;
use super::join::Grant;

/// An issuer key and its verified certificate.
pub struct Issuer {
    key: Keypair,
    cert: Certificate,
    info: CertInfo,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("serial", &format_args!("{:016x}", self.info.serial))
            .field("roles", &self.info.roles)
            .field("voter", &self.info.voter)
            .finish_non_exhaustive()
    }
}

/// Why the issuer would not sign a certificate.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The grant asks for more than the issuer's scope.
    #[error("the issuer may not certify {0}")]
    Scope(String),
    /// The peer id carries no ed25519 key, or signing failed.
    #[error("cannot sign: {0}")]
    Sign(String),
}

impl Issuer {
    /// Renews `leaf` (a node certificate this cluster's issuer signed): the same subject, name,
    /// serial, roles and voter right, valid from `now_ms` for as long as `leaf` was (capped by
    /// the issuer's own expiry).
    pub fn renew(&self, anchor: &TrustAnchor, leaf: &CertInfo, now_ms: u64) -> Result<CertificateChain, IssueError> {
        self.check_scope(&leaf.roles, leaf.voter)?;
        let ttl_ms = leaf.not_after_ms.saturating_sub(leaf.not_before_ms);
        let (subject, roles) = (leaf.subject.clone(), leaf.roles.clone());
        self.sign_leaf(
            anchor,
            subject,
            &leaf.name,
            roles,
            leaf.voter,
            leaf.serial,
            now_ms,
            ttl_ms,
        )
    }

    /// Loads the issuer key and certificate and checks that the certificate is an issuer
    /// certificate of `anchor`'s cluster, valid now, and belongs to the key.
    pub fn load(key_file: &Path, cert_file: &Path, anchor: &TrustAnchor, now_ms: u64) -> Result<Issuer, FileError> {
        let invalid = |reason: String| FileError::Invalid {
            path: cert_file.to_owned(),
            reason,
        };
        let key = crate::identity::read_private_key_file(key_file)?;
        let text = std::fs::read_to_string(cert_file).map_err(|source| FileError::Io {
            path: cert_file.to_owned(),
            source,
        })?;
        let cert = cert::from_pem(&text)
            .map_err(|e| invalid(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| invalid("no certificate".into()))?;
        let info = anchor
            .verify_issuer(&cert, now_ms, &|_| false)
            .map_err(|e| invalid(format!("not a valid issuer certificate of this cluster: {e}")))?;
        if cert::ed25519_public(&key.public()).as_ref() != Some(&info.subject) {
            return Err(invalid(format!("does not belong to the key in {}", key_file.display())));
        }
        if info.kind != CertKind::Issuer {
            return Err(invalid("not an issuer certificate".into()));
        }
        Ok(Issuer { key, cert, info })
    }

    /// The issuer certificate's content.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// Whether the issuer may certify `roles` and, if `voter`, the voter right.
    pub fn check_scope(&self, roles: &[String], voter: bool) -> Result<(), IssueError> {
        if let Some(role) = roles.iter().find(|r| !self.info.has_role(r)) {
            return Err(IssueError::Scope(format!(
                "role {role:?} (its roles: {})",
                self.info.roles.join(", ")
            )));
        }
        if voter && !self.info.voter {
            return Err(IssueError::Scope("voters (`bzzz ca issuer --voter` gives that)".into()));
        }
        Ok(())
    }

    /// Signs a node certificate for `peer` with the grant's roles and voter right, valid from
    /// `now_ms` for the grant's validity but never past the issuer's own expiry. The chain carries
    /// the issuer and CA certificates, so any node of the cluster can verify it.
    pub fn sign_node(
        &self,
        anchor: &TrustAnchor,
        peer: &PeerId,
        name: &str,
        grant: &Grant,
        now_ms: u64,
    ) -> Result<CertificateChain, IssueError> {
        self.check_scope(&grant.roles, grant.voter)?;
        let subject = cert::peer_public_key(peer)
            .ok_or_else(|| IssueError::Sign(format!("peer id {peer} does not carry an ed25519 key")))?;
        let (roles, serial) = (grant.roles.clone(), rand::random());
        self.sign_leaf(
            anchor,
            subject,
            name,
            roles,
            grant.voter,
            serial,
            now_ms,
            grant.cert_ttl_ms,
        )
    }

    /// Signs a node certificate valid from `now_ms` for `ttl_ms`, never past the issuer's own
    /// expiry, and returns it with the issuer and CA certificates, so any node of the cluster can
    /// verify it.
    #[allow(clippy::too_many_arguments)]
    fn sign_leaf(
        &self,
        anchor: &TrustAnchor,
        subject: libp2p::identity::ed25519::PublicKey,
        name: &str,
        roles: Vec<String>,
        voter: bool,
        serial: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<CertificateChain, IssueError> {
        let ttl_ms = ttl_ms.min(self.info.not_after_ms.saturating_sub(now_ms));
        let issuer_key = cert::ed25519_public(&self.key.public())
            .ok_or_else(|| IssueError::Sign("the issuer key is not ed25519".into()))?;
        let info = cert::new_info(
            CertKind::Node,
            anchor.cluster_id(),
            subject,
            name,
            roles,
            voter,
            serial,
            now_ms,
            ttl_ms,
            issuer_key,
        );
        let leaf = cert::sign(&info, &self.key).map_err(|e| IssueError::Sign(e.to_string()))?;
        Ok(CertificateChain {
            leaf: Some(leaf),
            issuer: Some(self.cert.clone()),
            ca: Some(anchor.certificate().clone()),
        })
    }
}
