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
pub mod issuer;
pub mod join;
pub(crate) mod metrics;
pub mod renewal;
mod revocation;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bzzz_protocol::cert::{CertError, ClusterId, TrustAnchor, Verified};
use bzzz_protocol::protocols;
use bzzz_protocol::wire::{AdmitHello, CertificateChain};
use bzzz_storage::util::now_unix_ms;
use libp2p::PeerId;

pub use files::{CertificateAuthority, FileError};
pub use issuer::Issuer;
pub use join::{JoinAttempt, JoinToken, Redeemer, SeedToken};
pub use metrics::AdmissionMetrics;
use metrics::{Outcome, Reason};
pub use revocation::{AppliedRevocation, MAX_STORED_REVOCATIONS, REVOCATIONS_TREE, RevocationError};

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
    /// The CA certificate does not have the configured fingerprint.
    #[error("the CA certificate in {path} is of cluster {found}, but admission.ca_fingerprint is {expected}")]
    FingerprintMismatch {
        /// The CA certificate file.
        path: PathBuf,
        /// Its cluster id.
        found: ClusterId,
        /// The configured fingerprint.
        expected: ClusterId,
    },
    /// The issuer files are configured on a node that cannot use them.
    #[error("admission.issuer_key_file: {0}")]
    Issuer(String),
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
    /// The cluster fingerprint a joining node trusts (`admission.ca_fingerprint`).
    pub ca_fingerprint: Option<ClusterId>,
    /// Where a node that joined keeps the CA certificate it learned (`<data_dir>/ca.crt`).
    pub learned_ca_file: PathBuf,
    /// The join token file (`admission.join_token_file`).
    pub join_token_file: Option<PathBuf>,
    /// The issuer key and certificate files (`admission.issuer_key_file`, `issuer_cert_file`).
    pub issuer: Option<(PathBuf, PathBuf)>,
    /// The seed join token file and what the token gives (roles, uses, validity in ms).
    pub seed: Option<(PathBuf, Vec<String>, u32, u64)>,
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
            // Validated with the config: a fingerprint that does not parse never gets here.
            ca_fingerprint: config
                .admission
                .ca_fingerprint
                .as_deref()
                .and_then(|f| ClusterId::parse(f).ok()),
            learned_ca_file: config.node.data_dir.join(files::LEARNED_CA_FILE),
            join_token_file: config.admission.join_token_file.clone(),
            issuer: config
                .admission
                .issuer_key_file
                .clone()
                .zip(config.admission.issuer_cert_file.clone()),
            seed: config.admission.seed_join_token_file.clone().map(|f| {
                (
                    f,
                    config.admission.seed_join_token_roles.clone(),
                    config.admission.seed_join_token_uses,
                    config.admission.seed_join_token_ttl_hours.saturating_mul(3_600_000),
                )
            }),
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
    /// The trust anchor: set at start, or when a joining node receives its certificate.
    anchor: OnceLock<TrustAnchor>,
    /// Set while the node has a join token and no certificate.
    joining: RwLock<Option<join::Joining>>,
    /// The issuer key, on voters that serve joins.
    issuer: Option<Issuer>,
    /// Redeems join tokens through the admin (set by the context service).
    redeemer: OnceLock<Arc<dyn Redeemer>>,
    /// Bounds the joins served at once.
    join_slots: Arc<tokio::sync::Semaphore>,
    /// This node's certificate file (renewals are written to it).
    cert_file: PathBuf,
    /// Bounds how often one peer may ask this voter for a renewal.
    renewals: crate::ratelimit::PeerLimiter,
    /// The join token this voter's configuration seeds the cluster with.
    seed: Option<SeedToken>,
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
        let now = now_unix_ms();
        // The trust anchor: the configured CA file, else the one a join taught this node.
        let anchor = match (&settings.ca_cert_file, settings.ca_fingerprint) {
            (Some(file), pinned) => Some((files::read_anchor(file)?, file.clone(), pinned)),
            (None, Some(pinned)) if settings.learned_ca_file.exists() => Some((
                files::read_anchor(&settings.learned_ca_file)?,
                settings.learned_ca_file.clone(),
                Some(pinned),
            )),
            _ => None,
        };
        let anchor = match anchor {
            Some((anchor, path, Some(expected))) if anchor.cluster_id() != expected => {
                return Err(AdmissionError::FingerprintMismatch {
                    path,
                    found: anchor.cluster_id(),
                    expected,
                });
            }
            other => other.map(|(anchor, _, _)| anchor),
        };
        let token = settings.join_token_file.as_deref().map(JoinToken::read).transpose()?;
        if anchor.is_none() && settings.ca_fingerprint.is_none() {
            tracing::warn!(
                "admission is OFF (admission.ca_cert_file is not set): any peer with the mesh key is admitted and trusted; create a cluster CA with `bzzz ca init`"
            );
        }
        // This node's certificate: valid now, or (with a join token) to be obtained by joining.
        let mut joining = None;
        let mut own = None;
        if anchor.is_some() || settings.ca_fingerprint.is_some() {
            let checked = match &anchor {
                Some(anchor) if settings.cert_file.exists() || token.is_none() => {
                    let chain = files::read_chain(&settings.cert_file)?;
                    anchor
                        .verify_node(&chain, &local, now, &|_| false)
                        .map(|v| Some((chain, v)))
                        .map_err(|source| AdmissionError::OwnCertificate {
                            path: settings.cert_file.clone(),
                            source,
                        })
                }
                _ => Ok(None),
            };
            match (checked, token) {
                (Ok(Some((chain, verified))), _) => {
                    if settings.wants_voter && !verified.leaf.voter {
                        return Err(AdmissionError::NotAVoter {
                            path: settings.cert_file.clone(),
                        });
                    }
                    own = Some((chain, verified));
                }
                (Ok(None), Some(token)) | (Err(_), Some(token)) => {
                    let pinned = settings
                        .ca_fingerprint
                        .or(anchor.as_ref().map(TrustAnchor::cluster_id))
                        .ok_or_else(|| AdmissionError::Issuer("a join token needs admission.ca_fingerprint".into()))?;
                    tracing::info!(
                        cluster = %pinned,
                        token = token.id(),
                        "no valid certificate: this node joins with its token before it starts"
                    );
                    joining = Some(join::Joining {
                        token,
                        pinned,
                        cert_file: settings.cert_file.clone(),
                        ca_file: settings.learned_ca_file.clone(),
                        wants_voter: settings.wants_voter,
                        last: None,
                    });
                }
                (Err(e), None) => return Err(e),
                (Ok(None), None) => {
                    return Err(AdmissionError::Issuer(
                        "admission.ca_fingerprint is set, but this node has no certificate and no join token (admission.join_token_file)".into(),
                    ));
                }
            }
        }
        let issuer = match (&settings.issuer, &anchor) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(AdmissionError::Issuer(
                    "an issuer needs the cluster CA certificate (admission.ca_cert_file)".into(),
                ));
            }
            (Some((key, cert)), Some(anchor)) => {
                if !own.as_ref().is_some_and(|(_, v)| v.leaf.voter) {
                    return Err(AdmissionError::Issuer(
                        "only a voter (a certificate with the voter right) serves joins; remove the issuer files from this node".into(),
                    ));
                }
                let issuer = Issuer::load(key, cert, anchor, now)?;
                tracing::info!(
                    serial = %format_args!("{:016x}", issuer.info().serial),
                    roles = ?issuer.info().roles,
                    voter = issuer.info().voter,
                    "issuer loaded: this voter serves joins with a token"
                );
                Some(issuer)
            }
        };
        let seed = match (&settings.seed, &issuer) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(AdmissionError::Issuer(
                    "admission.seed_join_token_file needs the issuer files on this voter".into(),
                ));
            }
            (Some((file, roles, uses, ttl_ms)), Some(issuer)) => {
                issuer
                    .check_scope(roles, false)
                    .map_err(|e| AdmissionError::Issuer(format!("admission.seed_join_token_roles: {e}")))?;
                Some(SeedToken {
                    token: JoinToken::read(file)?,
                    roles: roles.clone(),
                    uses: *uses,
                    ttl_ms: *ttl_ms,
                })
            }
        };
        if let (Some(anchor), Some((_, verified))) = (&anchor, &own) {
            tracing::info!(
                cluster = %anchor.cluster_id(),
                serial = %format_args!("{:016x}", verified.leaf.serial),
                roles = ?verified.leaf.roles,
                voter = verified.leaf.voter,
                "admission on: only peers with a certificate of this cluster are admitted"
            );
        }
        metrics.set_enabled(anchor.is_some() || joining.is_some());
        if let Some((_, v)) = &own {
            metrics.set_own_expiry(v.not_after_ms());
        }
        let (chain, local_cert) = match own {
            Some((chain, verified)) => (Some(Arc::new(chain)), Some(verified)),
            None => (None, None),
        };
        let cell = OnceLock::new();
        if let Some(anchor) = anchor {
            let _ = cell.set(anchor);
        }
        Ok(Admission {
            local,
            anchor: cell,
            joining: RwLock::new(joining),
            issuer,
            redeemer: OnceLock::new(),
            join_slots: Arc::new(tokio::sync::Semaphore::new(join::MAX_CONCURRENT_JOINS)),
            cert_file: settings.cert_file.clone(),
            renewals: crate::ratelimit::PeerLimiter::new(
                renewal::RENEWALS_PER_SECOND,
                renewal::RENEWAL_BURST,
                renewal::MAX_RENEWING_PEERS,
            ),
            seed,
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
        self.anchor.get().is_some() || self.joining()
    }

    /// The cluster this node belongs to, when admission is on.
    pub fn cluster_id(&self) -> Option<bzzz_protocol::cert::ClusterId> {
        self.anchor.get().map(TrustAnchor::cluster_id)
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

    /// The join token this voter's configuration seeds the cluster with, if any.
    pub fn seed_token(&self) -> Option<&SeedToken> {
        self.seed.as_ref()
    }

    /// The issuer this voter signs joining nodes' certificates with, if it holds one.
    pub fn issuer(&self) -> Option<&Issuer> {
        self.issuer.as_ref()
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
    /// The chain carries the CA certificate, so a joining node that knows only the cluster
    /// fingerprint can check it.
    pub(crate) fn hello(&self) -> AdmitHello {
        let chain = read(&self.chain).as_deref().cloned().map(|mut chain| {
            if chain.ca.is_none() {
                chain.ca = self.anchor.get().map(|a| a.certificate().clone());
            }
            chain
        });
        AdmitHello {
            protocol: protocols::ADMIT.to_owned(),
            cluster_id: self.cluster_id().map(|c| c.0.to_vec()).unwrap_or_default(),
            chain,
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
        let Some(anchor) = self.anchor.get() else {
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
        let Some(anchor) = self.anchor.get() else {
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
