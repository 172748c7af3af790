//! The text form of certificates: PEM-style blocks of base64, so they can be pasted, diffed and
//! kept as Docker secrets. A chain file holds the leaf first, then its issuer (if any).

use base64::Engine as _;
use prost::Message;

use crate::wire;

const BEGIN: &str = "-----BEGIN BZZZ CERTIFICATE-----";
const END: &str = "-----END BZZZ CERTIFICATE-----";
/// Most certificate blocks one file may hold (leaf, issuer, CA).
const MAX_BLOCKS: usize = 3;

/// Why a certificate file could not be read. Never contains the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No `BEGIN BZZZ CERTIFICATE` block.
    #[error("no \"{BEGIN}\" block")]
    NoBlock,
    /// A block is not closed, or its base64 does not decode.
    #[error("certificate block {0} is malformed (unterminated, or not base64)")]
    BadBlock(usize),
    /// A block does not hold a certificate.
    #[error("certificate block {0} does not decode as a certificate")]
    NotACertificate(usize),
    /// More blocks than a chain has.
    #[error("more than {MAX_BLOCKS} certificate blocks")]
    TooMany,
}

/// One certificate as a PEM-style block (with a trailing newline).
pub fn to_pem(cert: &wire::Certificate) -> String {
    block(BEGIN, END, &cert.encode_to_vec())
}

/// `bytes` as a PEM-style block: the `begin` line, base64 in lines of 64 characters, the `end`
/// line, each ending in a newline.
pub(super) fn block(begin: &str, end: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(b64.len() + 80);
    out.push_str(begin);
    out.push('\n');
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(end);
    out.push('\n');
    out
}

/// Every certificate block in `text`, in order.
pub fn from_pem(text: &str) -> Result<Vec<wire::Certificate>, PemError> {
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let index = certs.len() + 1;
        if certs.len() == MAX_BLOCKS {
            return Err(PemError::TooMany);
        }
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END).ok_or(PemError::BadBlock(index))?;
        let b64: String = after[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| PemError::BadBlock(index))?;
        if bytes.len() > 2 * super::MAX_CERT_BYTES {
            return Err(PemError::NotACertificate(index));
        }
        certs.push(wire::Certificate::decode(bytes.as_slice()).map_err(|_| PemError::NotACertificate(index))?);
        rest = &after[end + END.len()..];
    }
    if certs.is_empty() {
        return Err(PemError::NoBlock);
    }
    Ok(certs)
}

/// A node's chain as text: the leaf, then the issuer if any, then the CA if included.
pub fn chain_to_pem(chain: &wire::CertificateChain) -> String {
    [&chain.leaf, &chain.issuer, &chain.ca]
        .into_iter()
        .flatten()
        .map(to_pem)
        .collect()
}

/// Reads a chain file: the first block is the leaf; a second block is its issuer unless it is the
/// CA's self-signed certificate (told apart by kind), which goes to `ca`.
pub fn chain_from_pem(text: &str) -> Result<wire::CertificateChain, PemError> {
    let mut certs = from_pem(text)?.into_iter();
    let mut chain = wire::CertificateChain {
        leaf: certs.next(),
        issuer: None,
        ca: None,
    };
    for cert in certs {
        let is_ca = super::decode(&cert)
            .map(|i| i.kind == wire::CertKind::Ca)
            .unwrap_or(false);
        if is_ca {
            chain.ca = Some(cert);
        } else {
            chain.issuer = Some(cert);
        }
    }
    Ok(chain)
}
