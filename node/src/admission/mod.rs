//! Admission: only peers holding a certificate of this cluster get a connection.
//!
//! Every P2P connection runs the `/bzzz/admit/1` handshake ([`handshake`]) after the noise
//! handshake and before the multiplexer: both sides send their certificate chain, each verifies
//! the other's against the cluster CA ([`bzzz_protocol::cert::TrustAnchor`]), and the connection
//! exists for the swarm only if both admit. A refused peer is never served anything: no gossip,
//! no RPC, no Kademlia, no place in the peer count. [`Admission`] holds the trust anchor, this
//! node's own chain, the revocation list and the certificate of every admitted peer, which
//! consensus and the context service read to decide who may vote or hold a role.
//!
//! [`files`] creates and reads the credential files (`bzzz ca …`, `bzzz keygen mesh-key`, `bzzz
//! dev` and the test harness use it).

pub mod files;
pub(crate) mod handshake;
pub(crate) mod metrics;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bzzz_protocol::cert::{CertError, TrustAnchor, Verified};
use bzzz_protocol::protocols;
use bzzz_protocol::wire::{AdmitHello, CertificateChain, Revocation};
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;
use prost::Message;

pub use files::{CertificateAuthority, FileError};
pub use metrics::AdmissionMetrics;
use metrics::{Outcome, Reason, RevocationOutcome};

/// Default bound on the whole certificate exchange of a new connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why admission could not be set up at start. Names the file and the problem, never a key.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// A credential file could not be read or does not hold what it should.
    #[error(transparent)]
    File(#[from] FileError),
    /// This node's own certificate does not verify against the configured CA.
    #[error("this node's certificate in {path} is not valid for this node: {source}")]
    OwnCertificate {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        source: CertError,
    },
    /// The stored revocation lists could not be read.
    #[error("cannot read the stored revocation lists: {0}")]
    Store(String),
    /// The configuration asks for the voter right the certificate does not give.
    #[error(
        "election.eligible is true but the certificate in {path} does not allow voting; sign one with `bzzz ca sign --voter` or set election.eligible: false"
    )]
    NotAVoter {
        /// The certificate file.
        path: PathBuf,
    },
}

/// Admission settings, resolved from the config at start.
#[derive(Debug, Clone)]
pub struct AdmissionSettings {
    /// The cluster CA certificate file (the trust anchor); `None` turns admission off.
    pub ca_cert_file: Option<PathBuf>,
    /// This node's certificate chain file.
    pub cert_file: PathBuf,
    /// Bound on the handshake of one connection.
    pub handshake_timeout: Duration,
    /// Whether this node wants to be a Raft voter (its certificate must allow it).
    pub wants_voter: bool,
}

impl AdmissionSettings {
    /// The settings `config` resolves to (the certificate file defaults to
    /// `<data_dir>/node.crt`; a voter is an admin-eligible node in agent mode).
    pub fn from_config(config: &crate::config::Config) -> AdmissionSettings {
        AdmissionSettings {
            ca_cert_file: config.admission.ca_cert_file.clone(),
            cert_file: config
                .admission
                .cert_file
                .clone()
                .unwrap_or_else(|| config.node.data_dir.join(files::NODE_CERT_FILE)),
            handshake_timeout: Duration::from_millis(config.admission.handshake_timeout_ms),
            wants_voter: config.election.eligible && config.node.mode == bzzz_bootstrap::Mode::Agent,
        }
    }
}

/// What admission knows about an admitted peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its verified certificate; `None` only when admission is off.
    pub cert: Option<Verified>,
}

impl Admitted {
    /// Whether its certificate gives the voter right (always true when admission is off, which
    /// keeps the pre-admission behaviour of an open mesh).
    pub fn voter(&self) -> bool {
        self.cert.as_ref().is_none_or(|c| c.leaf.voter)
    }

    /// Whether its certificate lists `role` (always true when admission is off).
    pub fn may_hold(&self, role: &str) -> bool {
        self.cert.as_ref().is_none_or(|c| c.leaf.has_role(role))
    }
}

/// Why a peer may not take part in consensus ([`Admission::voter_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoterRefusal {
    /// No valid certificate of this cluster (none presented, or it does not verify now).
    NotCertified,
    /// A valid certificate without the voter right.
    NotVoter,
}

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

/// Why this node refused a peer in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) reason: Reason,
    pub(crate) message: String,
}

/// The admission state of a node: shared by the transport (which admits), the event loop (which
/// disconnects peers whose certificate became invalid) and the services that authorise by
/// certificate. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Admission {
    local: PeerId,
    anchor: Option<TrustAnchor>,
    chain: RwLock<Option<Arc<CertificateChain>>>,
    local_cert: RwLock<Option<Verified>>,
    revoked: RwLock<HashSet<u64>>,
    peers: RwLock<HashMap<PeerId, Admitted>>,
    /// The CA-signed revocation lists applied, persisted (key: the first 16 bytes of the
    /// SHA-256 of the signed body; value: the encoded list).
    stored: RwLock<Option<sled::Tree>>,
    timeout: Duration,
    metrics: AdmissionMetrics,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why an admitted certificate is no longer valid at `now_ms` (expired, or its serial or its
/// issuer's serial revoked); `None` while it is valid. The one rule the sweep, the consensus
/// checks and the role grants share.
fn invalidity(cert: &Verified, now_ms: u64, revoked: &HashSet<u64>) -> Option<Reason> {
    if now_ms > cert.leaf.not_after_ms {
        Some(Reason::Expired)
    } else if revoked.contains(&cert.leaf.serial) || cert.issuer_serial.is_some_and(|s| revoked.contains(&s)) {
        Some(Reason::Revoked)
    } else {
        None
    }
}

impl Admission {
    /// Loads the trust anchor and this node's chain, and checks the chain is valid for `local`
    /// now (a node never starts with a certificate its peers would refuse).
    pub fn load(
        local: PeerId,
        settings: &AdmissionSettings,
        metrics: AdmissionMetrics,
    ) -> Result<Admission, AdmissionError> {
        let (anchor, chain, local_cert) = match &settings.ca_cert_file {
            None => {
                tracing::warn!(
                    "admission is OFF (admission.ca_cert_file is not set): any peer with the mesh key is admitted and trusted; create a cluster CA with `bzzz ca init`"
                );
                (None, None, None)
            }
            Some(ca_file) => {
                let anchor = files::read_anchor(ca_file)?;
                let chain = files::read_chain(&settings.cert_file)?;
                let verified = anchor
                    .verify_node(&chain, &local, now_unix_ms(), &|_| false)
                    .map_err(|source| AdmissionError::OwnCertificate {
                        path: settings.cert_file.clone(),
                        source,
                    })?;
                if settings.wants_voter && !verified.leaf.voter {
                    return Err(AdmissionError::NotAVoter {
                        path: settings.cert_file.clone(),
                    });
                }
                tracing::info!(
                    cluster = %anchor.cluster_id(),
                    serial = %format_args!("{:016x}", verified.leaf.serial),
                    roles = ?verified.leaf.roles,
                    voter = verified.leaf.voter,
                    "admission on: only peers with a certificate of this cluster are admitted"
                );
                (Some(anchor), Some(Arc::new(chain)), Some(verified))
            }
        };
        metrics.set_enabled(anchor.is_some());
        if let Some(v) = &local_cert {
            metrics.set_own_expiry(v.not_after_ms());
        }
        Ok(Admission {
            local,
            anchor,
            chain: RwLock::new(chain),
            local_cert: RwLock::new(local_cert),
            revoked: RwLock::new(HashSet::new()),
            peers: RwLock::new(HashMap::new()),
            stored: RwLock::new(None),
            timeout: settings.handshake_timeout,
            metrics,
        })
    }

    /// Whether certificates are checked (false only when no CA is configured).
    pub fn enabled(&self) -> bool {
        self.anchor.is_some()
    }

    /// The cluster this node belongs to, when admission is on.
    pub fn cluster_id(&self) -> Option<bzzz_protocol::cert::ClusterId> {
        self.anchor.as_ref().map(TrustAnchor::cluster_id)
    }

    /// This node's own verified certificate, when admission is on.
    pub fn local_certificate(&self) -> Option<Verified> {
        read(&self.local_cert).clone()
    }

    /// What an admitted peer's certificate says; `None` if the peer is not admitted (not
    /// connected, or refused).
    pub fn peer(&self, peer: &PeerId) -> Option<Admitted> {
        read(&self.peers).get(peer).cloned()
    }

    /// The valid certificate of `peer` now: this node's own for itself, else the one it presented
    /// at admission, unless that expired or was revoked since. `None` when admission is off or
    /// the peer is not admitted.
    pub fn certificate_of(&self, peer: &PeerId) -> Option<Verified> {
        let cert = if *peer == self.local {
            self.local_certificate()?
        } else {
            self.peer(peer)?.cert?
        };
        invalidity(&cert, now_unix_ms(), &read(&self.revoked))
            .is_none()
            .then_some(cert)
    }

    /// Number of peers currently admitted.
    pub fn admitted_count(&self) -> usize {
        read(&self.peers).len()
    }

    /// Whether `serial` is on the revocation list.
    pub fn is_revoked(&self, serial: u64) -> bool {
        read(&self.revoked).contains(&serial)
    }

    /// The hello this node sends: its chain and cluster.
    pub(crate) fn hello(&self) -> AdmitHello {
        AdmitHello {
            protocol: protocols::ADMIT.to_owned(),
            cluster_id: self.cluster_id().map(|c| c.0.to_vec()).unwrap_or_default(),
            chain: read(&self.chain).as_deref().cloned(),
            wants_join: false,
        }
    }

    /// Decides about a peer's hello: its chain must verify for `peer` now.
    pub(crate) fn judge(&self, peer: &PeerId, hello: &AdmitHello) -> Result<Admitted, Refusal> {
        if hello.protocol != protocols::ADMIT {
            return Err(Refusal {
                reason: Reason::UnsupportedProtocol,
                message: format!("expected {}", protocols::ADMIT),
            });
        }
        let Some(anchor) = &self.anchor else {
            return Ok(Admitted { cert: None });
        };
        let Some(chain) = &hello.chain else {
            return Err(Refusal {
                reason: Reason::NoCertificate,
                message: format!(
                    "no certificate presented; this mesh admits only nodes with a certificate of cluster {}",
                    anchor.cluster_id()
                ),
            });
        };
        let revoked = read(&self.revoked);
        anchor
            .verify_node(chain, peer, now_unix_ms(), &|s| revoked.contains(&s))
            .map(|v| Admitted { cert: Some(v) })
            .map_err(|e| Refusal {
                reason: Reason::from(&e),
                message: e.to_string(),
            })
    }

    /// Records `peer` as admitted (the handshake succeeded on a new connection).
    pub(crate) fn admit(&self, peer: PeerId, admitted: Admitted) {
        write(&self.peers).insert(peer, admitted);
        self.metrics.count(Outcome::Admitted, Reason::None);
    }

    /// Forgets a peer whose last connection closed.
    pub(crate) fn forget(&self, peer: &PeerId) {
        write(&self.peers).remove(peer);
    }

    /// Peers whose certificate is no longer valid (expired, or revoked since admission), with
    /// the reason; the event loop disconnects them.
    pub(crate) fn invalid_peers(&self, now_ms: u64) -> Vec<(PeerId, Reason)> {
        let revoked = read(&self.revoked);
        read(&self.peers)
            .iter()
            .filter_map(|(peer, a)| Some((*peer, invalidity(a.cert.as_ref()?, now_ms, &revoked)?)))
            .collect()
    }

    /// Whether `peer` may take part in consensus: a certificate of this cluster, valid now, that
    /// gives the voter right. The certificate is `chain` when the message carries one (gossip,
    /// which can arrive from a peer this node is not connected to), else the one `peer` presented
    /// at admission. Always `Ok` when admission is off (an open mesh trusts every peer).
    pub fn voter_check(&self, peer: &PeerId, chain: Option<&CertificateChain>) -> Result<(), VoterRefusal> {
        let Some(anchor) = &self.anchor else {
            return Ok(());
        };
        // A peer admitted on a direct connection already proved its certificate; the chain a
        // message carries is verified only for peers this node is not connected to.
        let voter = match (self.certificate_of(peer), chain) {
            (Some(admitted), _) => admitted.leaf.voter,
            (None, Some(chain)) => {
                let revoked = read(&self.revoked);
                anchor
                    .verify_node(chain, peer, now_unix_ms(), &|s| revoked.contains(&s))
                    .map_err(|_| VoterRefusal::NotCertified)?
                    .leaf
                    .voter
            }
            (None, None) => return Err(VoterRefusal::NotCertified),
        };
        if voter { Ok(()) } else { Err(VoterRefusal::NotVoter) }
    }

    /// This node's certificate chain, for the messages that carry it (admin heartbeats and
    /// formation announcements); `None` when admission is off.
    pub fn chain(&self) -> Option<CertificateChain> {
        read(&self.chain).as_deref().cloned()
    }

    /// Keeps the revocation lists in `tree` (the node's database) from now on, and applies the
    /// ones it already holds: a restarted node refuses what was revoked before. A stored list
    /// that no longer verifies (another CA configured) is skipped with a warning.
    pub fn attach_store(&self, tree: sled::Tree) -> Result<usize, AdmissionError> {
        let mut applied = 0;
        if let Some(anchor) = &self.anchor {
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
        let anchor = self.anchor.as_ref().ok_or(RevocationError::AdmissionOff)?;
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

    /// Number of revoked serials known.
    pub fn revoked_count(&self) -> usize {
        read(&self.revoked).len()
    }

    /// Counts a disconnection of a peer whose certificate became invalid.
    pub(crate) fn count_disconnect(&self, reason: Reason) {
        self.metrics.count(Outcome::Disconnected, reason);
    }

    /// Puts serials on the revocation list (from Raft or gossip); peers presenting them are
    /// refused from now on and disconnected by the event loop's next check.
    pub fn revoke(&self, serials: impl IntoIterator<Item = u64>) {
        write(&self.revoked).extend(serials);
    }

    /// The handshake bound.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &AdmissionMetrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests;
