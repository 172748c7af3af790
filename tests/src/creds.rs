//! Throwaway cluster credentials for tests: a cluster CA (in memory, its certificate in a temp
//! dir) and a mesh key, as an operator would make them with `bzzz ca init` and `bzzz keygen
//! mesh-key`. [`ClusterCredentials::apply`] points a node's config at them;
//! [`ClusterCredentials::enroll`] signs the node's certificate into its data dir, voter if the
//! config makes it admin-eligible, with its agent role.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use bzzz_node::Config;
use bzzz_node::admission::files::{self, CertificateAuthority, NodeGrant};
use libp2p::PeerId;
use tempfile::TempDir;

/// Validity of test certificates unless a test asks otherwise.
pub const TEST_CERT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Roles the test issuer (held by every voter) may certify through join tokens.
pub const TEST_ISSUER_ROLES: &[&str] = &["agent", "developer"];

/// A cluster CA, an issuer and a mesh key in a temp dir.
pub struct ClusterCredentials {
    ca: CertificateAuthority,
    dir: TempDir,
}

impl std::fmt::Debug for ClusterCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCredentials")
            .field("cluster", &self.ca.cluster_id())
            .finish_non_exhaustive()
    }
}

impl ClusterCredentials {
    /// A new CA and mesh key.
    pub fn new() -> Result<ClusterCredentials> {
        let dir = tempfile::Builder::new().prefix("bzzz-test-ca-").tempdir()?;
        let ca = CertificateAuthority::init(dir.path(), "test-cluster", Duration::from_secs(365 * 86_400))
            .context("creating the test CA")?;
        files::write_mesh_key(&dir.path().join("mesh.key")).context("writing the test mesh key")?;
        ca.create_issuer(
            dir.path(),
            "test-issuer",
            TEST_ISSUER_ROLES.iter().map(|r| (*r).to_owned()).collect(),
            false,
            Duration::from_secs(30 * 86_400),
        )
        .context("creating the test issuer")?;
        Ok(ClusterCredentials { ca, dir })
    }

    /// The CA (to sign certificates a test needs: expired, for another peer, ...).
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The CA directory (`ca.key`, `ca.crt`, `mesh.key`), for `bzzz ca` verbs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate file (`admission.ca_cert_file`).
    pub fn ca_cert_file(&self) -> PathBuf {
        self.dir.path().join(files::CA_CERT_FILE)
    }

    /// The mesh key file (`p2p.swarm_key_file`).
    pub fn mesh_key_file(&self) -> PathBuf {
        self.dir.path().join("mesh.key")
    }

    /// Points `config` at this cluster's CA and mesh key.
    pub fn apply(&self, config: &mut Config) {
        config.admission.ca_cert_file = Some(self.ca_cert_file());
        config.p2p.swarm_key_file = Some(self.mesh_key_file());
    }

    /// Gives the node `config` describes the issuer if it is a voter (admin-eligible agent), so
    /// it serves joins with a token.
    pub fn arm_issuer(&self, config: &mut Config) {
        if config.election.eligible && config.node.mode == bzzz_bootstrap::Mode::Agent {
            config.admission.issuer_key_file = Some(self.dir.path().join(files::ISSUER_KEY_FILE));
            config.admission.issuer_cert_file = Some(self.dir.path().join(files::ISSUER_CERT_FILE));
        }
    }

    /// The cluster fingerprint (`admission.ca_fingerprint` of a joining node).
    pub fn cluster_id(&self) -> String {
        self.ca.cluster_id().to_string()
    }

    /// Signs the certificate of the node `config` describes into its data dir (creating its
    /// identity if needed): voter if `election.eligible`, with its agent role.
    pub fn enroll(&self, config: &Config) -> Result<PeerId> {
        self.enroll_with(config, &NodeGrant::for_config(config, TEST_CERT_TTL))
    }

    /// Like [`ClusterCredentials::enroll`] with an explicit grant.
    pub fn enroll_with(&self, config: &Config, grant: &NodeGrant) -> Result<PeerId> {
        self.ca
            .enroll(&config.node.data_dir, config.node.identity_key_file.as_deref(), grant)
            .with_context(|| format!("enrolling the node in {}", config.node.data_dir.display()))
    }
}
