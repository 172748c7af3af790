//! Revocation lists signed by the cluster CA (Nebula's blocklist, distributed): the serials they
//! name are refused at admission and disconnected everywhere. A list is signed by the CA key
//! itself, so any node verifies it with its trust anchor alone, whoever relayed it.

use base64::Engine as _;
use libp2p_identity::Keypair;
use prost::Message;

use super::{CertError, ClusterId, SignError, TrustAnchor};
use crate::wire;

/// Most serials one revocation list may name.
pub const MAX_REVOKED_SERIALS: usize = 4096;
/// Largest encoded revocation accepted, in bytes.
const MAX_REVOCATION_BYTES: usize = 8 * MAX_REVOKED_SERIALS + 1024;
const REVOCATION_DOMAIN: &[u8] = b"bzzz-revocation-v1\0";
const BEGIN: &str = "-----BEGIN BZZZ REVOCATION-----";
const END: &str = "-----END BZZZ REVOCATION-----";

/// What a verified revocation list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// The cluster it applies to.
    pub cluster_id: ClusterId,
    /// The revoked certificate serials.
    pub serials: Vec<u64>,
    /// When the CA signed it, ms since the Unix epoch.
    pub issued_at_ms: u64,
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(REVOCATION_DOMAIN.len() + body.len());
    input.extend_from_slice(REVOCATION_DOMAIN);
    input.extend_from_slice(body);
    input
}

/// Signs a revocation of `serials` with the CA key `ca` of `cluster_id`.
pub fn sign_revocation(
    ca: &Keypair,
    cluster_id: ClusterId,
    serials: &[u64],
    now_ms: u64,
) -> Result<wire::Revocation, SignError> {
    if serials.is_empty() || serials.len() > MAX_REVOKED_SERIALS {
        return Err(CertError::Malformed(format!(
            "a revocation names 1 to {MAX_REVOKED_SERIALS} serials, not {}",
            serials.len()
        ))
        .into());
    }
    let ed = ca.clone().try_into_ed25519().map_err(|_| SignError::NotEd25519)?;
    if ClusterId::of(&ed.public()) != cluster_id {
        return Err(CertError::Malformed("the signing key is not this cluster's CA".into()).into());
    }
    let body = wire::RevocationBody {
        cluster_id: cluster_id.0.to_vec(),
        serials: serials.to_vec(),
        issued_at_ms: now_ms,
    }
    .encode_to_vec();
    Ok(wire::Revocation {
        signature: ed.sign(&signing_input(&body)),
        body,
    })
}

impl TrustAnchor {
    /// Verifies a revocation list: signed by this cluster's CA, for this cluster, bounded.
    pub fn verify_revocation(&self, r: &wire::Revocation) -> Result<RevocationList, CertError> {
        if r.body.len() > MAX_REVOCATION_BYTES {
            return Err(CertError::Malformed(format!(
                "revocation of {} bytes is above the {MAX_REVOCATION_BYTES}-byte limit",
                r.body.len()
            )));
        }
        if !self.info().subject.verify(&signing_input(&r.body), &r.signature) {
            return Err(CertError::BadSignature("revocation is not signed by the cluster CA"));
        }
        let body = wire::RevocationBody::decode(r.body.as_slice())
            .map_err(|_| CertError::Malformed("revocation body does not decode".into()))?;
        let cluster = ClusterId(
            body.cluster_id
                .as_slice()
                .try_into()
                .map_err(|_| CertError::Malformed("revocation cluster id is not 32 bytes".into()))?,
        );
        if cluster != self.cluster_id() {
            return Err(CertError::WrongCluster {
                found: cluster,
                expected: self.cluster_id(),
            });
        }
        if body.serials.is_empty() || body.serials.len() > MAX_REVOKED_SERIALS {
            return Err(CertError::Malformed(format!(
                "a revocation names 1 to {MAX_REVOKED_SERIALS} serials"
            )));
        }
        Ok(RevocationList {
            cluster_id: cluster,
            serials: body.serials,
            issued_at_ms: body.issued_at_ms,
        })
    }
}

/// A revocation as a PEM-style text block.
pub fn revocation_to_pem(r: &wire::Revocation) -> String {
    super::pem::block(BEGIN, END, &r.encode_to_vec())
}

/// Reads the revocation block in `text`. Errors never contain the text.
pub fn revocation_from_pem(text: &str) -> Result<wire::Revocation, CertError> {
    let start = text
        .find(BEGIN)
        .ok_or_else(|| CertError::Malformed(format!("no \"{BEGIN}\" block")))?;
    let after = &text[start + BEGIN.len()..];
    let end = after
        .find(END)
        .ok_or_else(|| CertError::Malformed("the revocation block is not terminated".into()))?;
    let b64: String = after[..end].chars().filter(|c| !c.is_whitespace()).collect();
    if b64.len() > 2 * MAX_REVOCATION_BYTES {
        return Err(CertError::Malformed("the revocation block is too large".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| CertError::Malformed("the revocation block is not base64".into()))?;
    wire::Revocation::decode(bytes.as_slice())
        .map_err(|_| CertError::Malformed("the revocation block does not decode".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A revocation signed by the CA verifies and round-trips through its text form; one signed
    /// by another key, for another cluster, tampered with, or empty is refused.
    #[test]
    fn revocations_verify_only_from_this_clusters_ca() {
        let ca = Keypair::generate_ed25519();
        let cert = super::super::self_signed_ca(&ca, "c", 0, u64::MAX / 2, 1).expect("ca");
        let anchor = TrustAnchor::new(cert).expect("anchor");
        let r = sign_revocation(&ca, anchor.cluster_id(), &[7, 9], 5).expect("sign");
        let text = revocation_to_pem(&r);
        let back = revocation_from_pem(&text).expect("parses");
        let list = anchor.verify_revocation(&back).expect("verifies");
        assert_eq!(list.serials, vec![7, 9]);
        assert_eq!(list.issued_at_ms, 5);

        let other = Keypair::generate_ed25519();
        let other_id = ClusterId::of(&other.clone().try_into_ed25519().expect("ed").public());
        let foreign = sign_revocation(&other, other_id, &[7], 5).expect("sign");
        assert!(matches!(
            anchor.verify_revocation(&foreign),
            Err(CertError::BadSignature(_))
        ));
        assert!(sign_revocation(&other, anchor.cluster_id(), &[7], 5).is_err());
        let mut tampered = r.clone();
        tampered.body.push(0);
        assert!(anchor.verify_revocation(&tampered).is_err());
        assert!(sign_revocation(&ca, anchor.cluster_id(), &[], 5).is_err());
        assert!(revocation_from_pem("garbage").is_err());
    }
}
