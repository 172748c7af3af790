//! Joining with a token, on the `/bzzz/admit/1` handshake (ADR 0014).
//!
//! A node that has no certificate yet but holds a join token (`id.secret`) and the cluster
//! fingerprint dials a voter. Its hello says `wants_join`; the voter's hello carries the voter's
//! chain with the CA certificate. The joiner checks that chain against the pinned fingerprint
//! (a voter of *that* cluster) before it reveals anything; the voter offers the join
//! (`join_offered`) only if it holds the issuer key. Then:
//!
//! ```text
//!   joiner                                 voter
//!   AdmitHello{wants_join}   ──────►       ◄──────  AdmitHello{chain}
//!   AdmitVerdict{admitted}   ──────►       ◄──────  AdmitVerdict{join_offered}
//!   JoinWithToken            ──────►       (the admin redeems the token through Raft)
//!                            ◄──────       JoinResult{chain | code}
//!   (the connection closes; the joiner dials again with its certificate)
//! ```
//!
//! The secret leaves the joining node only on a noise channel to a peer that proved a voter
//! certificate of the pinned cluster; the voter forwards only its SHA-256 to the admin, which
//! keeps only hashes. Neither side ever logs it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bzzz_protocol::cert::{ClusterId, TrustAnchor};
use bzzz_protocol::wire::{AdmitHello, AdmitVerdict, CertificateChain, JoinResult, JoinWithToken};
use bzzz_storage::raft::join_tokens::{TOKEN_ID_LEN, TOKEN_SECRET_LEN, check_token_id};
use bzzz_storage::util::now_unix_ms;
use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite};
use libp2p::PeerId;
use sha2::Digest;

use super::files::{self, FileError};
use super::handshake::{read_frame, write_frame};
use super::metrics::{JoinOutcome, Reason};
use super::{Admission, read, write};

/// How long a voter gives one join (reading the token, the admin's redemption, signing):
/// inside the transport's 5 s bound on the whole connection upgrade.
pub(crate) const SERVE_BOUND: Duration = Duration::from_secs(3);
/// How long the admin's redemption may take.
const REDEEM_BOUND: Duration = Duration::from_millis(2_500);
/// How long a joining node waits for one voter to answer its token: inside the transport's 5 s
/// bound on the whole connection upgrade, and longer than the voter's own bound on serving it.
pub(crate) const JOINER_BOUND: Duration = Duration::from_millis(4_500);
/// Most joins one voter serves at once; more are refused (`rate_limited`) before the admin is
/// asked.
pub(crate) const MAX_CONCURRENT_JOINS: usize = 4;
/// Longest message from a peer quoted in a log line or an error, in characters.
const MAX_QUOTED: usize = 200;

/// A join token: `id.secret`. The secret is never shown by `Debug` or `Display`.
#[derive(Clone)]
pub struct JoinToken {
    id: String,
    secret: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinToken({}.<secret>)", self.id)
    }
}

/// Why a join token text is not one.
#[derive(Debug, thiserror::Error)]
#[error(
    "a join token is `id.secret`: {TOKEN_ID_LEN} and {TOKEN_SECRET_LEN} characters of a-z and 0-9 (`bzzz join-token create` prints one)"
)]
pub struct TokenFormatError;

impl JoinToken {
    /// Parses `id.secret`.
    pub fn parse(text: &str) -> Result<JoinToken, TokenFormatError> {
        let (id, secret) = text.trim().split_once('.').ok_or(TokenFormatError)?;
        let ok =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok(id, TOKEN_ID_LEN) || !ok(secret, TOKEN_SECRET_LEN) {
            return Err(TokenFormatError);
        }
        Ok(JoinToken {
            id: id.to_owned(),
            secret: zeroize::Zeroizing::new(secret.to_owned()),
        })
    }

    /// A new random token (what `bzzz join-token create` makes).
    pub fn generate() -> JoinToken {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect()
        };
        JoinToken {
            id: pick(TOKEN_ID_LEN),
            secret: zeroize::Zeroizing::new(pick(TOKEN_SECRET_LEN)),
        }
    }

    /// Reads a token file (the Docker secret `bzzz_join_token`). Errors name the file, never the
    /// content.
    pub fn read(path: &std::path::Path) -> Result<JoinToken, FileError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| FileError::Io {
            path: path.to_owned(),
            source,
        })?);
        JoinToken::parse(&text).map_err(|e| FileError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The whole token text, `id.secret`: only for the operator who created it.
    pub fn reveal(&self) -> String {
        format!("{}.{}", self.id, self.secret.as_str())
    }

    /// SHA-256 of the secret: what the cluster stores and compares.
    pub fn secret_hash(&self) -> [u8; 32] {
        hash_secret(&self.secret)
    }
}

/// A join token a voter's configuration seeds the cluster with (`admission.seed_join_token_file`):
/// the admin adds it once if the cluster does not hold its id.
#[derive(Debug, Clone)]
pub struct SeedToken {
    /// The token.
    pub token: JoinToken,
    /// Roles it gives.
    pub roles: Vec<String>,
    /// Nodes it may admit.
    pub uses: u32,
    /// How long it is accepted after the admin adds it, in milliseconds.
    pub ttl_ms: u64,
}

/// Validity of the certificates a seed token gives: 90 days (renewed by the voters before that).
pub const SEED_CERT_TTL_MS: u64 = 90 * 24 * 3600 * 1000;

/// SHA-256 of a token secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    sha2::Sha256::digest(secret.as_bytes()).into()
}

/// What the admin decided about a redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Roles the certificate lists.
    pub roles: Vec<String>,
    /// Whether it gives the voter right.
    pub voter: bool,
    /// Its validity, in milliseconds.
    pub cert_ttl_ms: u64,
}

/// Why a token was not redeemed: a stable code (`token_invalid`, `token_expired`,
/// `token_used_up`, `token_revoked`, `unavailable`) and a sentence for the joining node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemRefusal {
    /// The code.
    pub code: String,
    /// The sentence.
    pub message: String,
}

impl RedeemRefusal {
    /// The refusal for an admin that could not be reached or did not commit.
    pub fn unavailable(message: impl Into<String>) -> RedeemRefusal {
        RedeemRefusal {
            code: "unavailable".into(),
            message: message.into(),
        }
    }

    fn outcome(&self) -> JoinOutcome {
        match self.code.as_str() {
            "token_invalid" => JoinOutcome::TokenInvalid,
            "token_expired" => JoinOutcome::TokenExpired,
            "token_used_up" => JoinOutcome::TokenUsedUp,
            "token_revoked" => JoinOutcome::TokenRevoked,
            _ => JoinOutcome::Unavailable,
        }
    }
}

/// Redeems join tokens through the cluster (the context service asks the admin, which commits
/// the use through Raft). Set on a voter with [`Admission::set_redeemer`].
pub trait Redeemer: Send + Sync + std::fmt::Debug {
    /// Redeems token `token_id` with a secret hashing to `secret_hash` for `joiner`.
    fn redeem(
        &self,
        joiner: PeerId,
        token_id: String,
        secret_hash: [u8; 32],
    ) -> BoxFuture<'static, Result<Grant, RedeemRefusal>>;
}

/// The state of a node that has no certificate yet and a token to get one.
#[derive(Debug)]
pub(crate) struct Joining {
    pub(crate) token: JoinToken,
    pub(crate) pinned: ClusterId,
    pub(crate) cert_file: PathBuf,
    pub(crate) ca_file: PathBuf,
    pub(crate) wants_voter: bool,
    /// How the last attempt ended.
    pub(crate) last: Option<JoinAttempt>,
}

/// How one attempt to join through a voter ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinAttempt {
    /// The node now has its certificate.
    Joined,
    /// Refused for a reason another voter would repeat (the token is invalid, expired, used
    /// up or revoked, or the certificate does not give what the configuration needs): stop.
    Fatal(String),
    /// This voter could not help (another cluster, no issuer, no admin, a broken
    /// connection): try another, or again later.
    Retry(String),
}

fn quoted(text: &str) -> String {
    text.chars().take(MAX_QUOTED).collect()
}

impl Admission {
    /// Whether this node is waiting for a certificate (it has a join token and no valid
    /// certificate).
    pub fn joining(&self) -> bool {
        read(&self.joining).is_some()
    }

    /// The outcome of the last join attempt, taken (`None` if no attempt ended since).
    pub fn take_join_attempt(&self) -> Option<JoinAttempt> {
        if self.joining() {
            write(&self.joining).as_mut().and_then(|j| j.last.take())
        } else {
            Some(JoinAttempt::Joined)
        }
    }

    /// Sets what redeems join tokens on this node (a voter's context service).
    pub fn set_redeemer(&self, redeemer: Arc<dyn Redeemer>) {
        let _ = self.redeemer.set(redeemer);
    }

    fn record_attempt(&self, attempt: JoinAttempt) {
        if let Some(j) = write(&self.joining).as_mut() {
            j.last = Some(attempt);
        }
    }

    /// The hello of a joining node.
    pub(crate) fn join_hello(&self) -> Option<AdmitHello> {
        let pinned = read(&self.joining).as_ref()?.pinned;
        Some(AdmitHello {
            protocol: bzzz_protocol::protocols::ADMIT.to_owned(),
            cluster_id: pinned.0.to_vec(),
            chain: None,
            wants_join: true,
        })
    }

    /// Why this node cannot serve a join for a joiner that said `hello`, if it cannot.
    pub(crate) fn join_unavailable(&self, hello: &AdmitHello) -> Option<String> {
        let anchor = self.anchor.get()?;
        if hello.cluster_id != anchor.cluster_id().0 {
            return Some(format!(
                "this node belongs to cluster {}, not the one the joining node was given",
                anchor.cluster_id()
            ));
        }
        if self.issuer.is_none() || self.redeemer.get().is_none() {
            return Some(
                "this node does not issue certificates (it is not a voter holding the issuer key); give the joining node voters as bootstrap peers".into(),
            );
        }
        if !self.local_certificate().is_some_and(|c| c.leaf.voter) {
            return Some("this node is not a voter, so it does not issue certificates".into());
        }
        None
    }

    /// Installs the certificate a join gave this node: writes it (and the CA certificate) to
    /// disk, then uses it for every connection from now on.
    fn install(&self, anchor: TrustAnchor, chain: CertificateChain) -> Result<(), String> {
        let (cert_file, ca_file, wants_voter) = {
            let joining = read(&self.joining);
            let j = joining.as_ref().ok_or("this node is not joining")?;
            (j.cert_file.clone(), j.ca_file.clone(), j.wants_voter)
        };
        let verified = anchor
            .verify_node(&chain, &self.local, now_unix_ms(), &|_| false)
            .map_err(|e| format!("the voter sent a certificate this node cannot use: {e}"))?;
        if wants_voter && !verified.leaf.voter {
            return Err(
                "the join token does not give the voter right, but election.eligible is true: create a token with --voter, or set election.eligible: false".into(),
            );
        }
        let pem = bzzz_protocol::cert::to_pem(anchor.certificate());
        files::write_public(&ca_file, &pem).map_err(|e| e.to_string())?;
        files::write_public(&cert_file, &bzzz_protocol::cert::chain_to_pem(&chain)).map_err(|e| e.to_string())?;
        tracing::info!(
            cluster = %anchor.cluster_id(),
            serial = %format_args!("{:016x}", verified.leaf.serial),
            roles = ?verified.leaf.roles,
            voter = verified.leaf.voter,
            file = %cert_file.display(),
            "joined the cluster: certificate received and stored"
        );
        self.metrics.set_enabled(true);
        self.metrics.set_own_expiry(verified.not_after_ms());
        let _ = self.anchor.set(anchor);
        *write(&self.chain) = Some(Arc::new(chain));
        *write(&self.local_cert) = Some(verified);
        *write(&self.joining) = None;
        Ok(())
    }
}

fn io_err(kind: io::ErrorKind, message: impl Into<String>) -> io::Error {
    io::Error::new(kind, message.into())
}

/// The joining side, on a connection to `peer`: hello, check the voter, present the token,
/// install the certificate. Always ends the connection (an error for the transport); the
/// outcome is recorded for [`Admission::take_join_attempt`].
pub(crate) async fn as_joiner<C>(admission: &Admission, peer: PeerId, socket: &mut C) -> io::Error
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let attempt = match tokio::time::timeout(JOINER_BOUND, joiner_exchange(admission, peer, socket)).await {
        Ok(attempt) => attempt,
        Err(_) => JoinAttempt::Retry(format!("{peer} did not answer the join within {JOINER_BOUND:?}")),
    };
    match &attempt {
        JoinAttempt::Joined => {}
        JoinAttempt::Fatal(m) => tracing::error!(%peer, message = %m, "join refused"),
        JoinAttempt::Retry(m) => tracing::warn!(%peer, message = %m, "join not possible through this peer"),
    }
    let message = match &attempt {
        JoinAttempt::Joined => "joined; the connection is made again with the certificate".to_owned(),
        JoinAttempt::Fatal(m) | JoinAttempt::Retry(m) => m.clone(),
    };
    admission.record_attempt(attempt);
    io_err(io::ErrorKind::ConnectionAborted, message)
}

async fn joiner_exchange<C>(admission: &Admission, peer: PeerId, socket: &mut C) -> JoinAttempt
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let retry = |what: &str, e: io::Error| JoinAttempt::Retry(format!("{what} {peer}: {e}"));
    let Some(hello) = admission.join_hello() else {
        return JoinAttempt::Joined;
    };
    let pinned = read(&admission.joining).as_ref().map(|j| j.pinned);
    let Some(pinned) = pinned else {
        return JoinAttempt::Joined;
    };
    if let Err(e) = write_frame(socket, &hello).await {
        return retry("cannot send the join hello to", e);
    }
    let theirs: AdmitHello = match read_frame(socket).await {
        Ok(h) => h,
        Err(e) => return retry("no hello from", e),
    };
    // The peer must prove a voter certificate of the pinned cluster before the token is sent.
    let checked = theirs
        .chain
        .as_ref()
        .ok_or_else(|| "it presented no certificate".to_owned())
        .and_then(|chain| {
            let ca = chain
                .ca
                .clone()
                .ok_or_else(|| "its chain carries no CA certificate".to_owned())?;
            let anchor = TrustAnchor::pinned(ca, pinned).map_err(|e| e.to_string())?;
            let v = anchor
                .verify_node(chain, &peer, now_unix_ms(), &|_| false)
                .map_err(|e| e.to_string())?;
            if !v.leaf.voter {
                return Err("it is not a voter".to_owned());
            }
            Ok(anchor)
        });
    let anchor = match checked {
        Ok(anchor) => anchor,
        Err(why) => {
            let _ = write_frame(
                socket,
                &AdmitVerdict {
                    admitted: false,
                    reason: crate::metrics::LabelValue::as_str(Reason::WrongCluster).to_owned(),
                    message: format!("the joining node expects a voter of cluster {pinned}"),
                    join_offered: false,
                },
            )
            .await;
            return JoinAttempt::Retry(format!(
                "{peer} is not a voter of cluster {pinned}, so the token was not sent to it: {why}"
            ));
        }
    };
    let ours = AdmitVerdict {
        admitted: true,
        ..AdmitVerdict::default()
    };
    // A voter that cannot serve the join sends its refusal and closes at once: read it even if
    // this node's own verdict could not be written, so the operator learns why.
    let sent = write_frame(socket, &ours).await;
    let verdict: AdmitVerdict = match read_frame(socket).await {
        Ok(v) => v,
        Err(e) => return retry("no verdict from", sent.err().unwrap_or(e)),
    };
    if !verdict.join_offered {
        return JoinAttempt::Retry(format!(
            "{peer} does not serve joins ({}): {}",
            quoted(&verdict.reason),
            quoted(&verdict.message)
        ));
    }
    if let Err(e) = sent {
        return retry("cannot answer", e);
    }
    let token = match read(&admission.joining).as_ref() {
        Some(j) => j.token.clone(),
        None => return JoinAttempt::Joined,
    };
    let request = JoinWithToken {
        token_id: token.id.clone(),
        secret: token.secret.to_string(),
    };
    if let Err(e) = write_frame(socket, &request).await {
        return retry("cannot send the token to", e);
    }
    let result: JoinResult = match read_frame(socket).await {
        Ok(r) => r,
        Err(e) => return retry("no join result from", e),
    };
    match result.chain {
        Some(chain) if result.code.is_empty() => match admission.install(anchor, chain) {
            Ok(()) => JoinAttempt::Joined,
            Err(e) if e.contains("election.eligible") => JoinAttempt::Fatal(e),
            Err(e) => JoinAttempt::Retry(e),
        },
        _ => {
            let message = format!(
                "{peer} refused the join token ({}): {}",
                quoted(&result.code),
                quoted(&result.message)
            );
            if result.code.starts_with("token_") {
                JoinAttempt::Fatal(message)
            } else {
                JoinAttempt::Retry(message)
            }
        }
    }
}

/// The voter's side, after it offered the join: reads the joiner's verdict and token, has the
/// admin redeem the token, signs the certificate and sends it. Counted in
/// `bzzz_admission_joins_total`.
pub(crate) async fn serve<C>(admission: &Admission, peer: PeerId, socket: &mut C)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(_slot) = admission.join_slots.clone().try_acquire_owned() else {
        admission.metrics.join(JoinOutcome::RateLimited);
        let _ = write_frame(
            socket,
            &JoinResult {
                chain: None,
                code: "unavailable".into(),
                message: "this voter is serving other joins; try again".into(),
            },
        )
        .await;
        return;
    };
    let outcome = match tokio::time::timeout(SERVE_BOUND, serve_exchange(admission, peer, socket)).await {
        Ok(outcome) => outcome,
        Err(_) => JoinOutcome::Failed,
    };
    admission.metrics.join(outcome);
}

async fn serve_exchange<C>(admission: &Admission, peer: PeerId, socket: &mut C) -> JoinOutcome
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(theirs) = read_frame::<_, AdmitVerdict>(socket).await else {
        return JoinOutcome::Failed;
    };
    if !theirs.admitted {
        tracing::debug!(%peer, message = %quoted(&theirs.message), "a joining node did not accept this voter");
        return JoinOutcome::Failed;
    }
    let Ok(request) = read_frame::<_, JoinWithToken>(socket).await else {
        return JoinOutcome::Failed;
    };
    let secret = zeroize::Zeroizing::new(request.secret);
    let answer = match decide(admission, peer, &request.token_id, &secret).await {
        Ok(chain) => JoinResult {
            chain: Some(chain),
            ..JoinResult::default()
        },
        Err(refusal) => JoinResult {
            chain: None,
            code: refusal.code,
            message: refusal.message,
        },
    };
    let outcome = match answer.code.as_str() {
        "" => JoinOutcome::Issued,
        code => RedeemRefusal {
            code: code.to_owned(),
            message: String::new(),
        }
        .outcome(),
    };
    if outcome == JoinOutcome::Issued {
        tracing::info!(%peer, token = %quoted(&request.token_id), "issued a certificate to a node that joined with a token");
    } else {
        tracing::info!(%peer, token = %quoted(&request.token_id), code = %answer.code, "refused a join token");
    }
    match write_frame(socket, &answer).await {
        Ok(()) => outcome,
        Err(_) => JoinOutcome::Failed,
    }
}

async fn decide(
    admission: &Admission,
    peer: PeerId,
    token_id: &str,
    secret: &str,
) -> Result<CertificateChain, RedeemRefusal> {
    let invalid = || RedeemRefusal {
        code: "token_invalid".into(),
        message: format!(
            "join token {:?} is not valid in this cluster (unknown id, wrong secret, or a token of another cluster)",
            quoted(token_id)
        ),
    };
    if check_token_id(token_id).is_err() || secret.len() != TOKEN_SECRET_LEN {
        return Err(invalid());
    }
    let (Some(redeemer), Some(issuer), Some(anchor)) =
        (admission.redeemer.get(), &admission.issuer, admission.anchor.get())
    else {
        return Err(RedeemRefusal::unavailable("this node does not issue certificates"));
    };
    let grant = tokio::time::timeout(
        REDEEM_BOUND,
        redeemer.redeem(peer, token_id.to_owned(), hash_secret(secret)),
    )
    .await
    .map_err(|_| {
        RedeemRefusal::unavailable(format!(
            "the admin did not redeem the token within {REDEEM_BOUND:?}; try again"
        ))
    })??;
    issuer
        .sign_node(anchor, &peer, &format!("join:{token_id}"), &grant, now_unix_ms())
        .map_err(|e| RedeemRefusal::unavailable(format!("this voter cannot sign the certificate: {e}")))
}

/// Runs the joiner side when this node is joining; `None` otherwise.
pub(crate) async fn maybe_join<C>(admission: &Admission, peer: PeerId, socket: &mut C) -> Option<io::Error>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    if !admission.joining() {
        return None;
    }
    Some(as_joiner(admission, peer, socket).await)
}
