//! Join tokens (schema 3): short-lived, use-limited credentials with which a new node obtains its
//! certificate from the cluster (kubeadm's bootstrap tokens).
//!
//! A token is `id.secret`: the id is public (listings, logs), the secret is known only to the
//! operator who created the token and to the node it was given to. The state machine keeps the
//! SHA-256 of the secret, never the secret, with the roles and voter right a certificate obtained
//! with it carries, its expiry, how many nodes may use it and which already did. Tokens live in
//! the cluster key-value map under [`JOIN_TOKENS_NS`] (key: the id), with the list of ids under
//! [`JOIN_TOKEN_INDEX_NS`], so the count is bounded inside the apply transaction
//! ([`MAX_JOIN_TOKENS`]).
//!
//! Redeeming is idempotent per node: a node that already redeemed a token (its answer was lost)
//! redeems it again without using up another use.

use super::apply::{ApplyTx, TxResult, reject};
use super::cluster::{check_peer_id, excerpt, validate_role_name};
use super::schema::{KV_TREE, kv_key};
use super::{Response, codec_err};
use crate::codec;
use crate::store::StorageError;

/// The cluster key-value namespace of join tokens (key: token id, value: [`JoinTokenRecord`]).
pub const JOIN_TOKENS_NS: &str = "join_tokens";
/// The namespace of the token index (one key, [`JOIN_TOKEN_INDEX_KEY`]: the ids, in order).
pub const JOIN_TOKEN_INDEX_NS: &str = "join_token_index";
/// The key of the token index.
pub const JOIN_TOKEN_INDEX_KEY: &str = "ids";
/// Most tokens the cluster keeps; expired and revoked ones are dropped when a new one is created.
pub const MAX_JOIN_TOKENS: usize = 256;
/// Most nodes one token may admit.
pub const MAX_TOKEN_USES: u32 = 1000;
/// Most roles a token may give.
pub const MAX_TOKEN_ROLES: usize = 16;
/// Longest token description, in bytes.
pub const MAX_TOKEN_DESCRIPTION: usize = 256;
/// Length of a token id: six characters of `[a-z0-9]` (kubeadm's format).
pub const TOKEN_ID_LEN: usize = 6;
/// Length of a token secret: sixteen characters of `[a-z0-9]` (about 82 bits).
pub const TOKEN_SECRET_LEN: usize = 16;

/// A join token as the cluster stores it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JoinTokenRecord {
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// Roles a certificate obtained with the token lists.
    pub roles: Vec<String>,
    /// Whether such a certificate gives the voter right.
    pub voter: bool,
    /// How long such a certificate is valid, in milliseconds.
    pub cert_ttl_ms: u64,
    /// When the token was created, ms since the Unix epoch.
    pub created_ms: u64,
    /// When it stops being accepted, ms since the Unix epoch.
    pub expires_ms: u64,
    /// How many nodes may use it.
    pub uses: u32,
    /// The peer ids (bytes) of the nodes that used it, in order.
    pub redeemed: Vec<Vec<u8>>,
    /// Revoked by an operator: no longer accepted.
    pub revoked: bool,
    /// What the operator said it is for (not a secret).
    pub description: String,
}

impl JoinTokenRecord {
    /// Uses left.
    pub fn uses_left(&self) -> u32 {
        self.uses.saturating_sub(self.redeemed.len() as u32)
    }

    /// Whether redeeming it can no longer succeed at `now_ms` (expired or revoked); such tokens
    /// are dropped when room is needed.
    pub fn dead(&self, now_ms: u64) -> bool {
        self.revoked || now_ms >= self.expires_ms
    }
}

/// Why a token was not redeemed. Stable codes ([`JoinRefusal::code`]) travel to the joining node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinRefusal {
    /// No such token, or the secret does not match (not told apart, so an id alone reveals
    /// nothing).
    Invalid,
    /// Past its expiry.
    Expired,
    /// Every use taken.
    UsedUp,
    /// Revoked by an operator.
    Revoked,
}

impl JoinRefusal {
    /// The stable code: `token_invalid`, `token_expired`, `token_used_up`, `token_revoked`.
    pub fn code(self) -> &'static str {
        match self {
            JoinRefusal::Invalid => "token_invalid",
            JoinRefusal::Expired => "token_expired",
            JoinRefusal::UsedUp => "token_used_up",
            JoinRefusal::Revoked => "token_revoked",
        }
    }

    /// A sentence for the joining node's operator.
    pub fn explain(self, id: &str) -> String {
        match self {
            JoinRefusal::Invalid => format!(
                "join token {id:?} is not valid in this cluster (unknown id, wrong secret, or a token of another cluster)"
            ),
            JoinRefusal::Expired => {
                format!("join token {id:?} has expired; create a new one with `bzzz join-token create`")
            }
            JoinRefusal::UsedUp => {
                format!("join token {id:?} has no uses left; create a new one with `bzzz join-token create`")
            }
            JoinRefusal::Revoked => format!("join token {id:?} was revoked by an operator"),
        }
    }
}

/// What redeeming a token gives: the content of the certificate the joining node receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JoinGrant {
    /// Roles the certificate lists.
    pub roles: Vec<String>,
    /// Whether it gives the voter right.
    pub voter: bool,
    /// Its validity, in milliseconds.
    pub cert_ttl_ms: u64,
}

/// Checks a token id: [`TOKEN_ID_LEN`] characters of `[a-z0-9]`.
pub fn check_token_id(id: &str) -> Result<(), String> {
    if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Err(format!(
            "token id {:?} is not {TOKEN_ID_LEN} characters of a-z and 0-9",
            excerpt(id)
        ));
    }
    Ok(())
}

/// Decides a redemption of `token` by `peer_id` at `now_ms` with a secret hashing to
/// `secret_hash`: the one rule the state machine applies and the admin checks before proposing.
/// A node that already redeemed the token gets its grant again without using a use.
pub fn judge_redemption(
    token: Option<&JoinTokenRecord>,
    secret_hash: &[u8; 32],
    peer_id: &[u8],
    now_ms: u64,
) -> Result<JoinGrant, JoinRefusal> {
    let token = token.ok_or(JoinRefusal::Invalid)?;
    if &token.secret_hash != secret_hash {
        return Err(JoinRefusal::Invalid);
    }
    if token.revoked {
        return Err(JoinRefusal::Revoked);
    }
    if now_ms >= token.expires_ms {
        return Err(JoinRefusal::Expired);
    }
    if !token.redeemed.iter().any(|p| p == peer_id) && token.uses_left() == 0 {
        return Err(JoinRefusal::UsedUp);
    }
    Ok(JoinGrant {
        roles: token.roles.clone(),
        voter: token.voter,
        cert_ttl_ms: token.cert_ttl_ms,
    })
}

/// Checks a new token's content (before it is proposed, and again when applied).
pub fn check_new_token(id: &str, token: &JoinTokenRecord) -> Result<(), String> {
    check_token_id(id)?;
    if token.roles.len() > MAX_TOKEN_ROLES {
        return Err(format!(
            "a token may give at most {MAX_TOKEN_ROLES} roles, not {}",
            token.roles.len()
        ));
    }
    for role in &token.roles {
        validate_role_name(role).map_err(|e| e.to_string())?;
    }
    if token.uses == 0 || token.uses > MAX_TOKEN_USES {
        return Err(format!("uses must be 1 to {MAX_TOKEN_USES}, not {}", token.uses));
    }
    if token.expires_ms <= token.created_ms {
        return Err("the token expires before it is created".to_owned());
    }
    if token.cert_ttl_ms == 0 {
        return Err("the certificate validity must be positive".to_owned());
    }
    if !token.redeemed.is_empty() || token.revoked {
        return Err("a new token cannot be used or revoked already".to_owned());
    }
    if token.description.len() > MAX_TOKEN_DESCRIPTION {
        return Err(format!(
            "the description is {} bytes, over the {MAX_TOKEN_DESCRIPTION} byte limit",
            token.description.len()
        ));
    }
    Ok(())
}

impl ApplyTx<'_> {
    fn token_key(id: &str) -> Vec<u8> {
        kv_key(JOIN_TOKENS_NS, id).unwrap_or_default()
    }

    fn token_index(&self) -> TxResult<Vec<String>> {
        let key = kv_key(JOIN_TOKEN_INDEX_NS, JOIN_TOKEN_INDEX_KEY).unwrap_or_default();
        match self.kv.get(key)? {
            Some(bytes) => self.decode(KV_TREE, &bytes),
            None => Ok(Vec::new()),
        }
    }

    fn token(&self, id: &str) -> TxResult<Option<JoinTokenRecord>> {
        match self.kv.get(Self::token_key(id))? {
            Some(bytes) => self.decode(KV_TREE, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores a new token, dropping expired and revoked ones when the cluster holds
    /// [`MAX_JOIN_TOKENS`].
    pub(super) fn create_join_token(&self, id: &str, token: &JoinTokenRecord) -> TxResult<Response> {
        if let Err(reason) = check_new_token(id, token) {
            return reject(format!("invalid join token: {reason}"));
        }
        if self.token(id)?.is_some() {
            return reject(format!("a join token with id {id:?} exists already"));
        }
        let mut index = self.token_index()?;
        if index.len() >= MAX_JOIN_TOKENS {
            let mut kept = Vec::with_capacity(index.len());
            for old in index {
                match self.token(&old)? {
                    Some(t) if !t.dead(token.created_ms) => kept.push(old),
                    _ => {
                        self.kv.remove(Self::token_key(&old))?;
                    }
                }
            }
            index = kept;
            if index.len() >= MAX_JOIN_TOKENS {
                return reject(format!(
                    "the cluster holds {MAX_JOIN_TOKENS} live join tokens; revoke some first"
                ));
            }
        }
        index.push(id.to_owned());
        self.kv.insert(Self::token_key(id), self.encode(KV_TREE, token)?)?;
        let index_key = kv_key(JOIN_TOKEN_INDEX_NS, JOIN_TOKEN_INDEX_KEY).unwrap_or_default();
        self.kv.insert(index_key, self.encode(KV_TREE, &index)?)?;
        Ok(Response::Ok)
    }

    /// Redeems a token for `peer_id` at `at_ms`: answered [`Response::JoinToken`].
    pub(super) fn redeem_join_token(
        &self,
        id: &str,
        secret_hash: &[u8; 32],
        peer_id: &[u8],
        at_ms: u64,
    ) -> TxResult<Response> {
        if let Err(reason) = check_peer_id("peer id", peer_id) {
            return reject(reason);
        }
        let token = if check_token_id(id).is_ok() {
            self.token(id)?
        } else {
            None
        };
        let decided = judge_redemption(token.as_ref(), secret_hash, peer_id, at_ms);
        if let (Ok(_), Some(mut token)) = (&decided, token)
            && !token.redeemed.iter().any(|p| p == peer_id)
        {
            token.redeemed.push(peer_id.to_vec());
            self.kv.insert(Self::token_key(id), self.encode(KV_TREE, &token)?)?;
        }
        Ok(Response::JoinToken(decided))
    }

    /// Revokes a token: redeeming it is refused from now on.
    pub(super) fn revoke_join_token(&self, id: &str) -> TxResult<Response> {
        let Some(mut token) = (if check_token_id(id).is_ok() {
            self.token(id)?
        } else {
            None
        }) else {
            return reject(format!("no join token with id {:?}", excerpt(id)));
        };
        token.revoked = true;
        self.kv.insert(Self::token_key(id), self.encode(KV_TREE, &token)?)?;
        Ok(Response::Ok)
    }
}

impl super::SledStateMachine {
    /// A join token by id.
    pub fn join_token(&self, id: &str) -> Result<Option<JoinTokenRecord>, StorageError> {
        match self.kv_get(JOIN_TOKENS_NS, id)? {
            Some(bytes) => codec::decode(&bytes).map(Some).map_err(codec_err(KV_TREE)),
            None => Ok(None),
        }
    }

    /// Every join token the cluster keeps (at most [`MAX_JOIN_TOKENS`]), by id.
    pub fn join_tokens(&self) -> Result<Vec<(String, JoinTokenRecord)>, StorageError> {
        self.kv_list(JOIN_TOKENS_NS, MAX_JOIN_TOKENS + 1)?
            .into_iter()
            .map(|(id, bytes)| Ok((id, codec::decode(&bytes).map_err(codec_err(KV_TREE))?)))
            .collect()
    }
}
