//! Cluster certificates: who is a member of which cluster, with which rights, until when.
//!
//! The model is Nebula's, with one extra level for online issuance:
//!
//! - The **cluster CA** is an ed25519 key kept offline by the operator. Its self-signed
//!   certificate is the [`TrustAnchor`] every node is configured with, and the SHA-256 of its
//!   public key is the [`ClusterId`].
//! - An **issuer** certificate, signed by the CA, lets an online key (held by voters) sign node
//!   certificates for join tokens, but only within its scope: the roles it lists, voter only if it
//!   says voter, and never past its own expiry.
//! - A **node** certificate binds one peer id (its identity key) to the roles it may hold, whether
//!   it may vote, a serial and a validity window.
//! - An **operator** certificate binds a key whose signatures authorise operator requests.
//!
//! [`TrustAnchor::verify`] checks a presented [`wire::CertificateChain`]: signatures, kinds,
//! cluster id, validity, the subject's peer id, the issuer's scope and the revocation list.
//! Signatures cover the body bytes exactly as carried, so nothing is ever re-encoded.

mod pem;
mod revocation;
#[cfg(test)]
mod tests;

use libp2p_identity::{Keypair, PeerId, ed25519};
use prost::Message;
use sha2::Digest;

use crate::wire;
pub use crate::wire::CertKind;
pub use pem::{PemError, chain_from_pem, chain_to_pem, from_pem, to_pem};
pub use revocation::{MAX_REVOKED_SERIALS, RevocationList, revocation_from_pem, revocation_to_pem, sign_revocation};

/// Version of the certificate body format.
pub const CERT_VERSION: u32 = 1;
/// Largest encoded certificate accepted, in bytes.
pub const MAX_CERT_BYTES: usize = 4096;
/// Most roles one certificate may list.
pub const MAX_ROLES: usize = 32;
/// Longest role or name in a certificate, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Clock skew tolerated on `not_before`, in milliseconds (a certificate issued by a node whose
/// clock runs a little ahead is still accepted at once).
pub const NOT_BEFORE_SKEW_MS: u64 = 60_000;
/// What every signature is computed over, before the body bytes.
const SIGNING_DOMAIN: &[u8] = b"bzzz-cert-v1\0";

/// A cluster's identity: the SHA-256 of its CA's raw ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterId(pub [u8; 32]);

impl ClusterId {
    /// The id of the cluster whose CA has this public key.
    pub fn of(ca: &ed25519::PublicKey) -> ClusterId {
        ClusterId(sha2::Sha256::digest(ca.to_bytes()).into())
    }

    /// Parses the 64 hex digits of [`ClusterId`]'s `Display` (an optional `sha256:` prefix is
    /// accepted).
    pub fn parse(text: &str) -> Result<ClusterId, CertError> {
        let hex = text.trim().strip_prefix("sha256:").unwrap_or(text.trim());
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CertError::Malformed(
                "a cluster fingerprint is 64 hex digits (optionally prefixed with sha256:)".into(),
            ));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| CertError::Malformed("a cluster fingerprint is hex".into()))?;
        }
        Ok(ClusterId(out))
    }

    fn from_slice(bytes: &[u8]) -> Result<ClusterId, CertError> {
        <[u8; 32]>::try_from(bytes)
            .map(ClusterId)
            .map_err(|_| CertError::Malformed("cluster id is not 32 bytes".into()))
    }
}

impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterId({self})")
    }
}

/// Why a certificate or chain was refused. [`CertError::reason`] is a stable metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Does not decode, or a field is out of bounds.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A body version this build does not know.
    #[error("unsupported certificate version {0}")]
    UnsupportedVersion(u32),
    /// The certificate is of another kind than the place it is used needs.
    #[error("certificate is a {found:?} certificate, expected {expected:?}")]
    WrongKind {
        /// What it is.
        found: CertKind,
        /// What was needed.
        expected: CertKind,
    },
    /// Issued for another cluster.
    #[error("certificate belongs to cluster {found}, not {expected}")]
    WrongCluster {
        /// The cluster it names.
        found: ClusterId,
        /// This node's cluster.
        expected: ClusterId,
    },
    /// A signature does not verify.
    #[error("certificate signature does not verify ({0})")]
    BadSignature(&'static str),
    /// Past `not_after` (of the certificate or of a certificate above it).
    #[error("certificate {serial:016x} expired at {not_after_ms} ms")]
    Expired {
        /// The expired certificate.
        serial: u64,
        /// When it expired, ms since the Unix epoch.
        not_after_ms: u64,
    },
    /// Before `not_before`.
    #[error("certificate {serial:016x} is not valid before {not_before_ms} ms")]
    NotYetValid {
        /// The certificate.
        serial: u64,
        /// When it becomes valid.
        not_before_ms: u64,
    },
    /// The certificate names another peer than the one that presented it.
    #[error("certificate is for peer {certified}, presented by {presenter}")]
    PeerMismatch {
        /// Whom the certificate names (boxed: a `PeerId` is large and errors travel by value).
        certified: Box<PeerId>,
        /// Who presented it (authenticated by the transport).
        presenter: Box<PeerId>,
    },
    /// On the revocation list.
    #[error("certificate {0:016x} is revoked")]
    Revoked(u64),
    /// Signed by a key that is neither the CA nor the presented issuer.
    #[error("certificate is signed by an issuer that was not presented")]
    IssuerMissing,
    /// Outside its issuer's scope (a role or the voter right the issuer may not give, or a
    /// validity past the issuer's).
    #[error("certificate is outside its issuer's scope: {0}")]
    IssuerScope(String),
}

impl CertError {
    /// A stable, low-cardinality label for metrics and wire verdicts.
    pub fn reason(&self) -> &'static str {
        match self {
            CertError::Malformed(_) => "malformed",
            CertError::UnsupportedVersion(_) => "unsupported_version",
            CertError::WrongKind { .. } => "wrong_kind",
            CertError::WrongCluster { .. } => "wrong_cluster",
            CertError::BadSignature(_) => "bad_signature",
            CertError::Expired { .. } => "expired",
            CertError::NotYetValid { .. } => "not_yet_valid",
            CertError::PeerMismatch { .. } => "peer_mismatch",
            CertError::Revoked(_) => "revoked",
            CertError::IssuerMissing => "issuer_missing",
            CertError::IssuerScope(_) => "issuer_scope",
        }
    }
}

/// What a certificate says, decoded and bounds-checked (its signature is checked separately).
#[derive(Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// What it is for.
    pub kind: CertKind,
    /// The cluster it belongs to.
    pub cluster_id: ClusterId,
    /// The subject's ed25519 public key.
    pub subject: ed25519::PublicKey,
    /// Human name.
    pub name: String,
    /// Node: roles it may hold. Issuer: roles it may certify.
    pub roles: Vec<String>,
    /// Node: may vote. Issuer: may certify voters.
    pub voter: bool,
    /// Serial (what revocation names).
    pub serial: u64,
    /// Valid from, ms since the Unix epoch.
    pub not_before_ms: u64,
    /// Valid until, ms since the Unix epoch.
    pub not_after_ms: u64,
    /// The signer's public key.
    pub issuer_key: ed25519::PublicKey,
}

impl std::fmt::Debug for CertInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertInfo")
            .field("kind", &self.kind)
            .field("cluster_id", &self.cluster_id)
            .field("peer_id", &self.peer_id())
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("voter", &self.voter)
            .field("serial", &format_args!("{:016x}", self.serial))
            .field("not_before_ms", &self.not_before_ms)
            .field("not_after_ms", &self.not_after_ms)
            .finish()
    }
}

impl CertInfo {
    /// The peer id of the subject key (for a node certificate: the node's peer id).
    pub fn peer_id(&self) -> PeerId {
        libp2p_identity::PublicKey::from(self.subject.clone()).to_peer_id()
    }

    /// Whether `role` is listed.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    fn check_time(&self, now_ms: u64) -> Result<(), CertError> {
        if now_ms > self.not_after_ms {
            return Err(CertError::Expired {
                serial: self.serial,
                not_after_ms: self.not_after_ms,
            });
        }
        if now_ms.saturating_add(NOT_BEFORE_SKEW_MS) < self.not_before_ms {
            return Err(CertError::NotYetValid {
                serial: self.serial,
                not_before_ms: self.not_before_ms,
            });
        }
        Ok(())
    }

    /// The body to sign for this content.
    fn to_body(&self) -> wire::CertificateBody {
        wire::CertificateBody {
            version: CERT_VERSION,
            kind: self.kind as i32,
            cluster_id: self.cluster_id.0.to_vec(),
            subject_key: self.subject.to_bytes().to_vec(),
            name: self.name.clone(),
            roles: self.roles.clone(),
            voter: self.voter,
            serial: self.serial,
            not_before_ms: self.not_before_ms,
            not_after_ms: self.not_after_ms,
            issuer_key: self.issuer_key.to_bytes().to_vec(),
        }
    }
}

/// Why a certificate could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The signing key is not an ed25519 key.
    #[error("certificates are signed with ed25519 keys only")]
    NotEd25519,
    /// The content is out of bounds (names, roles, validity).
    #[error(transparent)]
    Invalid(#[from] CertError),
}

/// Signs `info` with `key`, whose public half must be `info.issuer_key`. The content is checked
/// against the same bounds a verifier applies, so a signed certificate always decodes.
pub fn sign(info: &CertInfo, key: &Keypair) -> Result<wire::Certificate, SignError> {
    let ed = key.clone().try_into_ed25519().map_err(|_| SignError::NotEd25519)?;
    if ed.public() != info.issuer_key {
        return Err(CertError::Malformed("issuer_key is not the public half of the signing key".into()).into());
    }
    let body = info.to_body().encode_to_vec();
    let cert = wire::Certificate {
        signature: ed.sign(&signing_input(&body)),
        body,
    };
    // Round-trip through the decoder so sign and verify can never disagree on bounds.
    decode(&cert)?;
    Ok(cert)
}

/// A self-signed CA certificate for `key`, valid from `now_ms` for `ttl_ms`.
pub fn self_signed_ca(
    key: &Keypair,
    name: &str,
    now_ms: u64,
    ttl_ms: u64,
    serial: u64,
) -> Result<wire::Certificate, SignError> {
    let ed = key.clone().try_into_ed25519().map_err(|_| SignError::NotEd25519)?;
    let public = ed.public();
    let info = CertInfo {
        kind: CertKind::Ca,
        cluster_id: ClusterId::of(&public),
        subject: public.clone(),
        name: name.to_owned(),
        roles: Vec::new(),
        voter: true,
        serial,
        not_before_ms: now_ms,
        not_after_ms: now_ms.saturating_add(ttl_ms),
        issuer_key: public,
    };
    sign(&info, key)
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    input.extend_from_slice(SIGNING_DOMAIN);
    input.extend_from_slice(body);
    input
}

fn ed25519_key(bytes: &[u8], field: &str) -> Result<ed25519::PublicKey, CertError> {
    ed25519::PublicKey::try_from_bytes(bytes)
        .map_err(|_| CertError::Malformed(format!("{field} is not an ed25519 public key")))
}

/// Decodes and bounds-checks a certificate's body. Does not check the signature.
pub fn decode(cert: &wire::Certificate) -> Result<CertInfo, CertError> {
    if cert.body.len() > MAX_CERT_BYTES {
        return Err(CertError::Malformed(format!(
            "body of {} bytes is above the {MAX_CERT_BYTES}-byte limit",
            cert.body.len()
        )));
    }
    let body = wire::CertificateBody::decode(cert.body.as_slice())
        .map_err(|_| CertError::Malformed("body does not decode".into()))?;
    if body.version != CERT_VERSION {
        return Err(CertError::UnsupportedVersion(body.version));
    }
    let kind = match CertKind::try_from(body.kind) {
        Ok(CertKind::Unspecified) | Err(_) => return Err(CertError::Malformed("unknown certificate kind".into())),
        Ok(k) => k,
    };
    if body.roles.len() > MAX_ROLES {
        return Err(CertError::Malformed(format!("more than {MAX_ROLES} roles")));
    }
    for role in &body.roles {
        if role.is_empty()
            || role.len() > MAX_NAME_BYTES
            || !role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(CertError::Malformed(format!(
                "role names are 1 to {MAX_NAME_BYTES} of A-Z a-z 0-9 _ -"
            )));
        }
    }
    if body.name.len() > MAX_NAME_BYTES || body.name.chars().any(char::is_control) {
        return Err(CertError::Malformed(format!(
            "name is longer than {MAX_NAME_BYTES} bytes or has control characters"
        )));
    }
    if body.not_after_ms < body.not_before_ms {
        return Err(CertError::Malformed("not_after is before not_before".into()));
    }
    Ok(CertInfo {
        kind,
        cluster_id: ClusterId::from_slice(&body.cluster_id)?,
        subject: ed25519_key(&body.subject_key, "subject_key")?,
        name: body.name,
        roles: body.roles,
        voter: body.voter,
        serial: body.serial,
        not_before_ms: body.not_before_ms,
        not_after_ms: body.not_after_ms,
        issuer_key: ed25519_key(&body.issuer_key, "issuer_key")?,
    })
}

/// Decodes `cert` and checks it is signed by `signer`.
fn decode_signed_by(
    cert: &wire::Certificate,
    signer: &ed25519::PublicKey,
    which: &'static str,
) -> Result<CertInfo, CertError> {
    let info = decode(cert)?;
    if &info.issuer_key != signer || !signer.verify(&signing_input(&cert.body), &cert.signature) {
        return Err(CertError::BadSignature(which));
    }
    Ok(info)
}

fn expect_kind(info: &CertInfo, expected: CertKind) -> Result<(), CertError> {
    if info.kind != expected {
        return Err(CertError::WrongKind {
            found: info.kind,
            expected,
        });
    }
    Ok(())
}

/// A verified certificate: what the presenting peer may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The leaf certificate's content.
    pub leaf: CertInfo,
    /// The issuer certificate's serial, when an issuer (not the CA) signed the leaf.
    pub issuer_serial: Option<u64>,
}

impl Verified {
    /// When the first certificate of the chain expires, ms since the Unix epoch.
    pub fn not_after_ms(&self) -> u64 {
        self.leaf.not_after_ms
    }
}

/// The cluster CA's certificate, checked once: what every chain is verified against.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    ca: CertInfo,
    cert: wire::Certificate,
}

impl std::fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchor")
            .field("cluster_id", &self.ca.cluster_id)
            .field("name", &self.ca.name)
            .finish_non_exhaustive()
    }
}

impl TrustAnchor {
    /// Accepts a CA certificate: self-signed, of kind CA, whose cluster id is its key's hash.
    pub fn new(cert: wire::Certificate) -> Result<TrustAnchor, CertError> {
        let info = decode(&cert)?;
        expect_kind(&info, CertKind::Ca)?;
        let ca = decode_signed_by(&cert, &info.subject, "ca self-signature")?;
        if ca.cluster_id != ClusterId::of(&ca.subject) {
            return Err(CertError::Malformed(
                "the CA's cluster id is not the hash of its key".into(),
            ));
        }
        Ok(TrustAnchor { ca, cert })
    }

    /// Accepts a CA certificate only if its cluster id is `pinned` (a joining node that was
    /// given the fingerprint, kubeadm's `--discovery-token-ca-cert-hash`).
    pub fn pinned(cert: wire::Certificate, pinned: ClusterId) -> Result<TrustAnchor, CertError> {
        let anchor = TrustAnchor::new(cert)?;
        if anchor.cluster_id() != pinned {
            return Err(CertError::WrongCluster {
                found: anchor.cluster_id(),
                expected: pinned,
            });
        }
        Ok(anchor)
    }

    /// The cluster this anchor defines.
    pub fn cluster_id(&self) -> ClusterId {
        self.ca.cluster_id
    }

    /// The CA certificate's content.
    pub fn info(&self) -> &CertInfo {
        &self.ca
    }

    /// The CA certificate as it travels.
    pub fn certificate(&self) -> &wire::Certificate {
        &self.cert
    }

    /// Verifies a node's chain presented by `presenter` at `now_ms`: the leaf is a node
    /// certificate of this cluster naming `presenter`, signed by the CA or by a presented issuer
    /// that the CA signed and whose scope covers the leaf; every certificate is within its
    /// validity and no serial is `revoked`.
    pub fn verify_node(
        &self,
        chain: &wire::CertificateChain,
        presenter: &PeerId,
        now_ms: u64,
        revoked: &dyn Fn(u64) -> bool,
    ) -> Result<Verified, CertError> {
        let verified = self.verify_leaf(chain, CertKind::Node, now_ms, revoked)?;
        let certified = verified.leaf.peer_id();
        if &certified != presenter {
            return Err(CertError::PeerMismatch {
                certified: Box::new(certified),
                presenter: Box::new(*presenter),
            });
        }
        Ok(verified)
    }

    /// Verifies an operator certificate (signed by the CA itself; issuers cannot make
    /// operators).
    pub fn verify_operator(
        &self,
        cert: &wire::Certificate,
        now_ms: u64,
        revoked: &dyn Fn(u64) -> bool,
    ) -> Result<CertInfo, CertError> {
        let chain = wire::CertificateChain {
            leaf: Some(cert.clone()),
            issuer: None,
            ca: None,
        };
        Ok(self.verify_leaf(&chain, CertKind::Operator, now_ms, revoked)?.leaf)
    }

    /// Verifies an issuer certificate (signed by the CA).
    pub fn verify_issuer(
        &self,
        cert: &wire::Certificate,
        now_ms: u64,
        revoked: &dyn Fn(u64) -> bool,
    ) -> Result<CertInfo, CertError> {
        let info = decode(cert)?;
        expect_kind(&info, CertKind::Issuer)?;
        self.check_cluster(&info)?;
        let info = decode_signed_by(cert, &self.ca.subject, "issuer not signed by the CA")?;
        info.check_time(now_ms)?;
        if revoked(info.serial) {
            return Err(CertError::Revoked(info.serial));
        }
        Ok(info)
    }

    fn check_cluster(&self, info: &CertInfo) -> Result<(), CertError> {
        if info.cluster_id != self.ca.cluster_id {
            return Err(CertError::WrongCluster {
                found: info.cluster_id,
                expected: self.ca.cluster_id,
            });
        }
        Ok(())
    }

    fn verify_leaf(
        &self,
        chain: &wire::CertificateChain,
        kind: CertKind,
        now_ms: u64,
        revoked: &dyn Fn(u64) -> bool,
    ) -> Result<Verified, CertError> {
        let leaf_cert = chain
            .leaf
            .as_ref()
            .ok_or_else(|| CertError::Malformed("the chain has no certificate".into()))?;
        let leaf = decode(leaf_cert)?;
        expect_kind(&leaf, kind)?;
        self.check_cluster(&leaf)?;
        self.ca.check_time(now_ms)?;
        let (leaf, issuer_serial) = if leaf.issuer_key == self.ca.subject {
            (
                decode_signed_by(leaf_cert, &self.ca.subject, "leaf not signed by the CA")?,
                None,
            )
        } else {
            if kind != CertKind::Node {
                return Err(CertError::IssuerScope(format!(
                    "only the CA signs {kind:?} certificates"
                )));
            }
            let issuer_cert = chain.issuer.as_ref().ok_or(CertError::IssuerMissing)?;
            let issuer = self.verify_issuer(issuer_cert, now_ms, revoked)?;
            if issuer.subject != leaf.issuer_key {
                return Err(CertError::IssuerMissing);
            }
            let leaf = decode_signed_by(leaf_cert, &issuer.subject, "leaf not signed by its issuer")?;
            if let Some(role) = leaf.roles.iter().find(|r| !issuer.has_role(r)) {
                return Err(CertError::IssuerScope(format!("issuer may not certify role {role}")));
            }
            if leaf.voter && !issuer.voter {
                return Err(CertError::IssuerScope("issuer may not certify voters".into()));
            }
            if leaf.not_after_ms > issuer.not_after_ms {
                return Err(CertError::IssuerScope("valid past its issuer".into()));
            }
            (leaf, Some(issuer.serial))
        };
        leaf.check_time(now_ms)?;
        if revoked(leaf.serial) {
            return Err(CertError::Revoked(leaf.serial));
        }
        Ok(Verified { leaf, issuer_serial })
    }
}

/// Builds the content of a certificate for `subject` signed by `issuer_key`. `now_ms` and
/// `ttl_ms` give the validity window.
#[allow(clippy::too_many_arguments)]
pub fn new_info(
    kind: CertKind,
    cluster_id: ClusterId,
    subject: ed25519::PublicKey,
    name: &str,
    roles: Vec<String>,
    voter: bool,
    serial: u64,
    now_ms: u64,
    ttl_ms: u64,
    issuer_key: ed25519::PublicKey,
) -> CertInfo {
    CertInfo {
        kind,
        cluster_id,
        subject,
        name: name.to_owned(),
        roles,
        voter,
        serial,
        not_before_ms: now_ms,
        not_after_ms: now_ms.saturating_add(ttl_ms),
        issuer_key,
    }
}

/// The ed25519 public half of a libp2p identity (None for other key types).
pub fn ed25519_public(key: &libp2p_identity::PublicKey) -> Option<ed25519::PublicKey> {
    key.clone().try_into_ed25519().ok()
}

/// The ed25519 public key behind a peer id, when the peer id inlines it (always, for ed25519).
pub fn peer_public_key(peer: &PeerId) -> Option<ed25519::PublicKey> {
    let mh = peer.as_ref();
    // Identity multihash (code 0) of a protobuf-encoded public key.
    if mh.code() != 0 {
        return None;
    }
    libp2p_identity::PublicKey::try_decode_protobuf(mh.digest())
        .ok()
        .and_then(|k| ed25519_public(&k))
}
