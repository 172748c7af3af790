//! CA-signed revocation lists: verified against the anchor, stored durably in the node's
//! database, applied at start and on receipt (ADR 0013, decision 9).

use bzzz_protocol::cert::CertError;
use bzzz_protocol::wire::Revocation;
use prost::Message;

use super::metrics::RevocationOutcome;
use super::{Admission, AdmissionError, read, write};

/// The sled tree holding the CA-signed revocation lists a node applied.
pub const REVOCATIONS_TREE: &str = "admission_revocations";

/// Most CA-signed revocation lists a node stores (each names up to
/// [`bzzz_protocol::cert::MAX_REVOKED_SERIALS`] serials); past it, the CA should issue one list
/// naming every revoked serial.
pub const MAX_STORED_REVOCATIONS: usize = 256;

/// Why a revocation list was not applied. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// This node has no cluster CA to verify the list with.
    #[error("admission is off on this node (no admission.ca_cert_file): it cannot verify a revocation")]
    AdmissionOff,
    /// The list is not a valid revocation of this cluster's CA.
    #[error("not a valid revocation of this cluster: {0}")]
    Invalid(#[from] CertError),
    /// The store of revocation lists is full.
    #[error(
        "this node already stores {MAX_STORED_REVOCATIONS} revocation lists; have the CA issue one list naming every revoked serial"
    )]
    Full,
    /// The list could not be stored.
    #[error("cannot store the revocation: {0}")]
    Store(String),
}

/// A revocation list this node applied.
#[derive(Debug, Clone)]
pub struct AppliedRevocation {
    /// What it says.
    pub list: bzzz_protocol::cert::RevocationList,
    /// False when this node already held it (nothing changed).
    pub new: bool,
}

impl Admission {
    /// Keeps the revocation lists in `tree` (the node's database) from now on, and applies the
    /// ones it already holds: a restarted node refuses what was revoked before. A stored list
    /// that no longer verifies (another CA configured) is skipped with a warning.
    pub fn attach_store(&self, tree: sled::Tree) -> Result<usize, AdmissionError> {
        let mut applied = 0;
        if let Some(anchor) = self.anchor.get() {
            for item in tree.iter() {
                let (_, value) = item.map_err(|e| AdmissionError::Store(e.to_string()))?;
                let verified = Revocation::decode(value.as_ref())
                    .map_err(|_| CertError::Malformed("stored revocation does not decode".into()))
                    .and_then(|r| anchor.verify_revocation(&r));
                match verified {
                    Ok(list) => {
                        write(&self.revoked).extend(list.serials);
                        applied += 1;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored revocation list does not verify against this CA; skipped")
                    }
                }
            }
        }
        *write(&self.stored) = Some(tree);
        Ok(applied)
    }

    /// Verifies a CA-signed revocation list, stores it durably (flushed before this returns)
    /// and puts its serials on the revocation list: peers presenting them are refused from now
    /// on and disconnected within a second.
    pub fn apply_revocation(&self, r: &Revocation) -> Result<AppliedRevocation, RevocationError> {
        let anchor = self.anchor.get().ok_or(RevocationError::AdmissionOff)?;
        let list = match anchor.verify_revocation(r) {
            Ok(list) => list,
            Err(e) => {
                self.metrics.revocation(RevocationOutcome::Invalid);
                return Err(e.into());
            }
        };
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&r.body);
        let key = &digest[..16];
        let stored = read(&self.stored);
        let new = match stored.as_ref() {
            Some(tree) => {
                let store = |e: sled::Error| RevocationError::Store(e.to_string());
                if tree.contains_key(key).map_err(store)? {
                    false
                } else {
                    if tree.len() >= MAX_STORED_REVOCATIONS {
                        return Err(RevocationError::Full);
                    }
                    tree.insert(key, r.encode_to_vec()).map_err(store)?;
                    tree.flush().map_err(store)?;
                    true
                }
            }
            None => !list.serials.iter().all(|s| self.is_revoked(*s)),
        };
        write(&self.revoked).extend(list.serials.iter().copied());
        self.metrics.revocation(if new {
            RevocationOutcome::Applied
        } else {
            RevocationOutcome::Duplicate
        });
        if new {
            tracing::warn!(serials = ?list.serials.iter().map(|s| format!("{s:016x}")).collect::<Vec<_>>(), "certificates revoked by the cluster CA");
        }
        Ok(AppliedRevocation { list, new })
    }

    /// The revocation lists this node stores (the admin re-publishes them).
    pub fn revocations(&self) -> Vec<Revocation> {
        read(&self.stored)
            .as_ref()
            .map(|tree| {
                tree.iter()
                    .values()
                    .filter_map(Result::ok)
                    .filter_map(|v| Revocation::decode(v.as_ref()).ok())
                    .take(MAX_STORED_REVOCATIONS)
                    .collect()
            })
            .unwrap_or_default()
    }
}
