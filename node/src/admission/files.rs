//! Credential files: the cluster CA (`ca.key`, `ca.crt`), node certificate chains, and the mesh
//! key. Used by `bzzz ca …`, `bzzz keygen mesh-key`, `bzzz dev` and the test harness.
//!
//! Private files (keys) are written 0600 under a temporary name and renamed, and are never
//! replaced; errors name the file and the problem, never key material.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bzzz_protocol::cert::{self, CertInfo, CertKind, ClusterId, TrustAnchor};
use bzzz_protocol::wire::{Certificate, CertificateChain};
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;
use libp2p::identity::Keypair;

/// File name of the CA's private key in a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the CA's certificate in a CA directory (what every node is given).
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of a node's certificate chain in its data dir (the default `admission.cert_file`).
pub const NODE_CERT_FILE: &str = "node.crt";
/// File name of the CA certificate a node that joined with a token learned, in its data dir.
pub const LEARNED_CA_FILE: &str = "ca.crt";
/// File name of an issuer's private key (`bzzz ca issuer`).
pub const ISSUER_KEY_FILE: &str = "issuer.key";
/// File name of an issuer's certificate (`bzzz ca issuer`).
pub const ISSUER_CERT_FILE: &str = "issuer.crt";

/// Why a credential file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no certificate of the expected form.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A private file already exists and would be replaced.
    #[error("{path} already exists; remove it first if replacing it is intended")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A key file could not be used.
    #[error(transparent)]
    Key(#[from] crate::identity::IdentityError),
    /// A certificate could not be signed.
    #[error("cannot sign: {0}")]
    Sign(#[from] cert::SignError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> FileError {
    FileError::Invalid {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads a CA certificate file: the trust anchor.
pub fn read_anchor(path: &Path) -> Result<TrustAnchor, FileError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let first = cert::from_pem(&text)
        .map_err(|e| invalid(path, e))?
        .into_iter()
        .next()
        .ok_or_else(|| invalid(path, "no certificate"))?;
    TrustAnchor::new(first).map_err(|e| invalid(path, format!("not a cluster CA certificate: {e}")))
}

/// Reads a node's certificate chain file (leaf first, then its issuer if any).
pub fn read_chain(path: &Path) -> Result<CertificateChain, FileError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    cert::chain_from_pem(&text).map_err(|e| invalid(path, e))
}

/// Writes a public file (a certificate) atomically, mode 0644, replacing any previous one.
pub fn write_public(path: &Path, text: &str) -> Result<(), FileError> {
    write_atomic(path, text.as_bytes(), 0o644)
}

/// Writes a private file (a key) atomically, mode 0600; refuses to replace an existing one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if path.exists() {
        return Err(FileError::Exists { path: path.to_owned() });
    }
    write_atomic(path, bytes, 0o600)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

/// A new libp2p pre-shared key (the mesh key) in its file format.
pub fn mesh_key_text() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", hex::encode(bytes))
}

/// Writes a new mesh key to `path` (mode 0600; never replaces a file).
pub fn write_mesh_key(path: &Path) -> Result<(), FileError> {
    write_private(path, mesh_key_text().as_bytes())
}

/// Parses a validity like `90d`, `24h`, `30m`, `45s` or `10y` (365 days).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90d, 24h, 30m, 45s or 10y"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "y" => 365 * 86_400,
        _ => {
            return Err(format!(
                "`{text}`: expected a number and one of the units s, m, h, d, y, like 90d"
            ));
        }
    };
    if n == 0 {
        return Err(format!("`{text}`: a validity must be above zero"));
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// What a node certificate grants.
#[derive(Debug, Clone)]
pub struct NodeGrant {
    /// Human name (for listings; not used for authorisation).
    pub name: String,
    /// Roles the node may hold.
    pub roles: Vec<String>,
    /// Whether it may be a Raft voter.
    pub voter: bool,
    /// Validity from now.
    pub ttl: Duration,
}

impl NodeGrant {
    /// The grant the node `config` describes: named by its agent id, its agent role, voter if
    /// admin-eligible (what `bzzz dev` and the test harness sign for each node).
    pub fn for_config(config: &crate::config::Config, ttl: Duration) -> NodeGrant {
        NodeGrant {
            name: config.agent.id.clone(),
            roles: vec![config.agent.role.clone()],
            voter: config.election.eligible,
            ttl,
        }
    }
}

/// The cluster CA: its key and its certificate. Kept offline by the operator; `bzzz dev` and
/// the tests make throwaway ones.
pub struct CertificateAuthority {
    key: Keypair,
    anchor: TrustAnchor,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cluster_id", &self.anchor.cluster_id())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a CA named `name`, valid for `ttl`, and writes `ca.key` (0600) and `ca.crt` into
    /// `dir`. Refuses to replace an existing `ca.key`.
    pub fn init(dir: &Path, name: &str, ttl: Duration) -> Result<CertificateAuthority, FileError> {
        let key_path = dir.join(CA_KEY_FILE);
        if key_path.exists() {
            return Err(FileError::Exists { path: key_path });
        }
        let ca = CertificateAuthority::generate(name, ttl)?;
        let bytes = zeroize::Zeroizing::new(
            ca.key
                .to_protobuf_encoding()
                .expect("an ed25519 key always has a protobuf encoding"),
        );
        write_private(&key_path, &bytes)?;
        write_public(&dir.join(CA_CERT_FILE), &cert::to_pem(ca.anchor.certificate()))?;
        Ok(ca)
    }

    /// A CA in memory only.
    pub fn generate(name: &str, ttl: Duration) -> Result<CertificateAuthority, FileError> {
        let key = Keypair::generate_ed25519();
        let cert = cert::self_signed_ca(&key, name, now_unix_ms(), ttl_ms(ttl), rand::random())?;
        let anchor = TrustAnchor::new(cert).map_err(cert::SignError::Invalid)?;
        Ok(CertificateAuthority { key, anchor })
    }

    /// Loads a CA from `dir` (`ca.key`, which must be private, and `ca.crt`), checking that they
    /// belong together.
    pub fn load(dir: &Path) -> Result<CertificateAuthority, FileError> {
        let key = crate::identity::read_private_key_file(&dir.join(CA_KEY_FILE))?;
        let cert_path = dir.join(CA_CERT_FILE);
        let anchor = read_anchor(&cert_path)?;
        let public = cert::ed25519_public(&key.public());
        if public.as_ref() != Some(&anchor.info().subject) {
            return Err(invalid(
                &cert_path,
                format!("does not belong to the key in {CA_KEY_FILE}"),
            ));
        }
        Ok(CertificateAuthority { key, anchor })
    }

    /// The cluster id (the CA fingerprint).
    pub fn cluster_id(&self) -> ClusterId {
        self.anchor.cluster_id()
    }

    /// The CA certificate.
    pub fn anchor(&self) -> &TrustAnchor {
        &self.anchor
    }

    /// Writes the CA certificate (public) to `path`.
    pub fn write_cert(&self, path: &Path) -> Result<(), FileError> {
        write_public(path, &cert::to_pem(self.anchor.certificate()))
    }

    /// Signs a node certificate for `peer`.
    pub fn sign_node(&self, peer: &PeerId, grant: &NodeGrant) -> Result<CertificateChain, FileError> {
        let subject = cert::peer_public_key(peer).ok_or_else(|| {
            FileError::Sign(cert::SignError::Invalid(cert::CertError::Malformed(format!(
                "peer id {peer} does not carry an ed25519 key"
            ))))
        })?;
        let leaf = self.sign(
            CertKind::Node,
            subject,
            &grant.name,
            grant.roles.clone(),
            grant.voter,
            grant.ttl,
        )?;
        Ok(CertificateChain {
            leaf: Some(leaf),
            issuer: None,
            ca: None,
        })
    }

    /// Signs a certificate of any kind for the ed25519 key `subject`.
    pub fn sign(
        &self,
        kind: CertKind,
        subject: libp2p::identity::ed25519::PublicKey,
        name: &str,
        roles: Vec<String>,
        voter: bool,
        ttl: Duration,
    ) -> Result<Certificate, FileError> {
        let now = now_unix_ms();
        // Never valid past the CA itself.
        let ttl = ttl_ms(ttl).min(self.anchor.info().not_after_ms.saturating_sub(now));
        let info: CertInfo = cert::new_info(
            kind,
            self.cluster_id(),
            subject,
            name,
            roles,
            voter,
            rand::random(),
            now,
            ttl,
            self.anchor.info().subject.clone(),
        );
        Ok(cert::sign(&info, &self.key)?)
    }

    /// Creates an issuer: a new key and its certificate, whose scope is `roles` (and voters, if
    /// `voter`), valid for `ttl`; writes `issuer.key` (0600, never replaced) and `issuer.crt` into
    /// `dir`. Returns the certificate's serial.
    pub fn create_issuer(
        &self,
        dir: &Path,
        name: &str,
        roles: Vec<String>,
        voter: bool,
        ttl: Duration,
    ) -> Result<u64, FileError> {
        let key_path = dir.join(ISSUER_KEY_FILE);
        if key_path.exists() {
            return Err(FileError::Exists { path: key_path });
        }
        let key = libp2p::identity::ed25519::Keypair::generate();
        let cert = self.sign(CertKind::Issuer, key.public(), name, roles, voter, ttl)?;
        let serial = cert::decode(&cert).map_err(cert::SignError::Invalid)?.serial;
        let bytes = zeroize::Zeroizing::new(
            Keypair::from(key)
                .to_protobuf_encoding()
                .expect("an ed25519 key always has a protobuf encoding"),
        );
        write_private(&key_path, &bytes)?;
        write_public(&dir.join(ISSUER_CERT_FILE), &cert::to_pem(&cert))?;
        Ok(serial)
    }

    /// A revocation list naming `serials`, signed by this CA (`bzzz ca revoke`).
    pub fn revoke(&self, serials: &[u64]) -> Result<bzzz_protocol::wire::Revocation, FileError> {
        Ok(cert::sign_revocation(
            &self.key,
            self.cluster_id(),
            serials,
            now_unix_ms(),
        )?)
    }

    /// Creates (or reuses) the node's identity (`key_file`, else `<data_dir>/identity.key`) and
    /// writes a node certificate for it to `<data_dir>/node.crt`: what `bzzz dev` and the test
    /// harness do for each node.
    pub fn enroll(&self, data_dir: &Path, key_file: Option<&Path>, grant: &NodeGrant) -> Result<PeerId, FileError> {
        let key = crate::identity::load_or_create(data_dir, key_file)?;
        let peer = key.public().to_peer_id();
        let chain = self.sign_node(&peer, grant)?;
        write_public(&data_dir.join(NODE_CERT_FILE), &cert::chain_to_pem(&chain))?;
        Ok(peer)
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA written by `init` loads back, signs a node certificate that its anchor verifies, and
    /// its key file is private; `init` never replaces a CA.
    #[test]
    fn ca_files_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::init(dir.path(), "test", Duration::from_secs(3600)).expect("init");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "ca.key must be private, mode {mode:o}");
        }
        assert!(matches!(
            CertificateAuthority::init(dir.path(), "again", Duration::from_secs(60)),
            Err(FileError::Exists { .. })
        ));
        let loaded = CertificateAuthority::load(dir.path()).expect("load");
        assert_eq!(loaded.cluster_id(), ca.cluster_id());

        let node_dir = dir.path().join("node");
        let grant = NodeGrant {
            name: "n1".into(),
            roles: vec!["agent".into()],
            voter: true,
            ttl: Duration::from_secs(600),
        };
        let peer = loaded.enroll(&node_dir, None, &grant).expect("enroll");
        let chain = read_chain(&node_dir.join(NODE_CERT_FILE)).expect("chain");
        let anchor = read_anchor(&dir.path().join(CA_CERT_FILE)).expect("anchor");
        let v = anchor
            .verify_node(&chain, &peer, now_unix_ms(), &|_| false)
            .expect("verifies");
        assert!(v.leaf.voter && v.leaf.has_role("agent"));
    }

    /// Validities parse with their unit; nonsense is refused with the expected form.
    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_ttl("0d").is_err());
        assert!(parse_ttl("5 weeks").expect_err("refused").contains("90d"));
        assert!(parse_ttl("99999999999999999999y").is_err());
    }

    /// A mesh key file is in libp2p's format and loads as a pre-shared key.
    #[test]
    fn mesh_key_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mesh.key");
        write_mesh_key(&path).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        text.trim()
            .parse::<libp2p::pnet::PreSharedKey>()
            .expect("a generated mesh key is a libp2p pre-shared key");
        assert!(matches!(write_mesh_key(&path), Err(FileError::Exists { .. })));
    }
}
