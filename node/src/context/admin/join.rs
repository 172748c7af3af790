//! Join tokens on the admin (ADR 0014): redeeming one for a node joining through a voter, and
//! creating or revoking one for an operator (a request made on a voter's API). Only voters may
//! ask: they hold the issuer key, so a voter asking is no more power than it already has.

use std::sync::Weak;

use bzzz_protocol::wire::{ContextOk, JoinGrant, JoinTokenChange, RedeemJoin, context_response, join_token_change};
use bzzz_storage::raft::join_tokens::{self, JoinTokenRecord};
use bzzz_storage::raft::{Command, JoinRefusal, Response};
use bzzz_storage::util::now_unix_ms;
use futures::future::BoxFuture;
use libp2p::PeerId;

use super::{ContextError, ContextService, acting};
use crate::admission::join::{Grant, RedeemRefusal};

/// Refuses a peer that is not a certified voter (always passes when admission is off).
fn require_voter(service: &ContextService, peer: &PeerId, what: &str) -> Result<(), ContextError> {
    service
        .inner
        .admission
        .voter_check(peer, None)
        .map_err(|_| ContextError::forbidden(format!("only a voter may ask the admin to {what}")))
}

/// Proposes a join token command; a rejection is the caller's mistake (bad request).
async fn propose(service: &ContextService, command: Command) -> Result<Response, ContextError> {
    let (raft, _, term) = acting(service)?;
    let written = raft
        .client_write(bzzz_storage::raft::Request::new(command, term))
        .await
        .map_err(|e| ContextError::unavailable(format!("cluster state not written: {e}")))?;
    match written.data {
        Response::Rejected { reason } => Err(ContextError::bad_request(reason)),
        r => Ok(r),
    }
}

fn grant_view(id: &str, decided: Result<join_tokens::JoinGrant, JoinRefusal>) -> JoinGrant {
    match decided {
        Ok(g) => JoinGrant {
            roles: g.roles,
            voter: g.voter,
            cert_ttl_ms: g.cert_ttl_ms,
            ..JoinGrant::default()
        },
        Err(refusal) => JoinGrant {
            refused: refusal.code().to_owned(),
            message: refusal.explain(id),
            ..JoinGrant::default()
        },
    }
}

/// A voter asks the admin to redeem a token for the node joining through it. Checked against
/// the admin's state first, so a wrong secret never reaches the log; then committed through Raft
/// (which applies the same rule), so uses are counted exactly once across admins.
pub(crate) async fn redeem(
    service: &ContextService,
    peer: PeerId,
    request: RedeemJoin,
) -> Result<context_response::Body, ContextError> {
    require_voter(service, &peer, "redeem a join token")?;
    let (_, sm, _) = acting(service)?;
    let hash: [u8; 32] = request
        .secret_hash
        .as_slice()
        .try_into()
        .map_err(|_| ContextError::bad_request("secret_hash is not 32 bytes"))?;
    PeerId::from_bytes(&request.peer_id).map_err(|_| ContextError::bad_request("peer_id is not a peer id"))?;
    let now = now_unix_ms();
    let stored = if join_tokens::check_token_id(&request.token_id).is_ok() {
        sm.join_token(&request.token_id)?
    } else {
        None
    };
    let decided = match join_tokens::judge_redemption(stored.as_ref(), &hash, &request.peer_id, now) {
        Err(refusal) => Err(refusal),
        Ok(_) => match propose(
            service,
            Command::RedeemJoinToken {
                id: request.token_id.clone(),
                secret_hash: hash,
                peer_id: request.peer_id.clone(),
                at_ms: now,
            },
        )
        .await?
        {
            Response::JoinToken(decided) => decided,
            other => {
                return Err(ContextError::internal(format!(
                    "the state machine answered a redemption with {other:?}"
                )));
            }
        },
    };
    Ok(context_response::Body::JoinGrant(grant_view(
        &request.token_id,
        decided,
    )))
}

/// A voter asks the admin to create or revoke a token (an operator's request on its API).
pub(crate) async fn change(
    service: &ContextService,
    peer: PeerId,
    change: JoinTokenChange,
) -> Result<context_response::Body, ContextError> {
    require_voter(service, &peer, "change join tokens")?;
    let command = match change.change {
        Some(join_token_change::Change::Create(spec)) => {
            let now = now_unix_ms();
            let token = JoinTokenRecord {
                secret_hash: spec
                    .secret_hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| ContextError::bad_request("secret_hash is not 32 bytes"))?,
                roles: spec.roles,
                voter: spec.voter,
                cert_ttl_ms: spec.cert_ttl_ms,
                created_ms: now,
                expires_ms: now.saturating_add(spec.ttl_ms),
                uses: spec.uses,
                redeemed: Vec::new(),
                revoked: false,
                description: spec.description,
            };
            join_tokens::check_new_token(&spec.id, &token).map_err(ContextError::bad_request)?;
            Command::CreateJoinToken { id: spec.id, token }
        }
        Some(join_token_change::Change::Revoke(id)) => Command::RevokeJoinToken { id },
        None => return Err(ContextError::bad_request("empty join token change")),
    };
    propose(service, command).await?;
    Ok(context_response::Body::Ok(ContextOk {}))
}

/// On the admin: adds the join token this node's configuration seeds the cluster with, once,
/// if the cluster does not hold its id (ADR 0014). Revoked or expired, it stays so.
pub(crate) async fn seed_token(
    service: &ContextService,
    sm: &bzzz_storage::raft::SledStateMachine,
    ctx: &crate::consensus::duties::DutyContext,
) -> Result<(), ContextError> {
    let Some(seed) = service.inner.admission.seed_token() else {
        return Ok(());
    };
    if sm.join_token(seed.token.id())?.is_some() {
        return Ok(());
    }
    let now = now_unix_ms();
    let token = JoinTokenRecord {
        secret_hash: seed.token.secret_hash(),
        roles: seed.roles.clone(),
        voter: false,
        cert_ttl_ms: crate::admission::join::SEED_CERT_TTL_MS,
        created_ms: now,
        expires_ms: now.saturating_add(seed.ttl_ms),
        uses: seed.uses,
        redeemed: Vec::new(),
        revoked: false,
        description: "seeded from admission.seed_join_token_file".into(),
    };
    join_tokens::check_new_token(seed.token.id(), &token).map_err(ContextError::bad_request)?;
    let written = ctx
        .raft
        .client_write(bzzz_storage::raft::Request::new(
            Command::CreateJoinToken {
                id: seed.token.id().to_owned(),
                token,
            },
            ctx.term,
        ))
        .await
        .map_err(|e| ContextError::unavailable(format!("cluster state not written: {e}")))?;
    match written.data {
        Response::Rejected { reason } => Err(ContextError::bad_request(format!("seed join token: {reason}"))),
        _ => {
            tracing::info!(token = %seed.token.id(), uses = seed.uses, roles = ?seed.roles, "seed join token added to the cluster");
            Ok(())
        }
    }
}

/// Redeems tokens for the joins this voter serves, through the admin. Holds the service weakly:
/// admission outlives nothing it is given.
#[derive(Debug)]
pub(crate) struct ClusterRedeemer(pub(crate) Weak<super::super::Inner>);

impl crate::admission::Redeemer for ClusterRedeemer {
    fn redeem(
        &self,
        joiner: PeerId,
        token_id: String,
        secret_hash: [u8; 32],
    ) -> BoxFuture<'static, Result<Grant, RedeemRefusal>> {
        let service = self.0.upgrade().map(|inner| ContextService { inner });
        Box::pin(async move {
            let service = service.ok_or_else(|| RedeemRefusal::unavailable("the node is shutting down"))?;
            let answer = service
                .ask(RedeemJoin {
                    token_id,
                    secret_hash: secret_hash.to_vec(),
                    peer_id: joiner.to_bytes(),
                })
                .await
                .map_err(|e| RedeemRefusal::unavailable(e.to_string()))?;
            if answer.refused.is_empty() {
                Ok(Grant {
                    roles: answer.roles,
                    voter: answer.voter,
                    cert_ttl_ms: answer.cert_ttl_ms,
                })
            } else {
                Err(RedeemRefusal {
                    code: answer.refused,
                    message: answer.message,
                })
            }
        })
    }
}
