//! Requests between nodes: answering a peer's context request (bounded by [`MAX_INBOUND`]),
//! sending one, and asking the admin with retries until it answers or the request times out.

use bzzz_protocol::wire::{
    ContextOk, DiscoverView, GrantRequest, HistoryView, JoinGrant, JoinTokenChange, MemberStatus, RedeemJoin,
    RegisterMember, ReplicationCheckRequest, ReplicationReport, RolesQuery, RolesView,
};

use super::*;

impl ContextService {
    /// Handles one inbound context request on its own task (bounded by [`MAX_INBOUND`]).
    pub(super) fn handle_inbound(&self, tracker: &TaskTracker, inbound: InboundContext) {
        let InboundContext {
            peer,
            request,
            channel,
            ticket,
        } = inbound;
        let me = self.clone();
        let permit = self.inner.inbound.clone().try_acquire_owned().ok();
        crate::logging::spawn(tracker, "context-request", async move {
            // The peer's quota slot is held until the answer is sent.
            let _ticket = ticket;
            let response = match permit {
                Some(_permit) => me.dispatch(peer, request).await,
                None => Err(ContextError::unavailable(
                    "node is busy with other context requests; retry",
                )),
            };
            let body = match response {
                Ok(body) => body,
                Err(e) => context_response::Body::Error(e.to_wire()),
            };
            let response = bzzz_protocol::wire::RpcResponse {
                body: Some(rpc_response::Body::Context(ContextResponse { body: Some(body) })),
            };
            if let Err(e) = me.inner.client.respond_rpc(channel, response).await {
                tracing::debug!(%peer, error = %e, "context response not sent");
            }
        });
    }

    /// Answers a request from `peer` (this node itself when it is the admin calling itself).
    pub(crate) async fn dispatch(
        &self,
        peer: PeerId,
        request: ContextRequest,
    ) -> Result<context_response::Body, ContextError> {
        use context_request::Body as Q;
        match request.body {
            Some(Q::Store(record)) => holder::store(self, peer, record).await,
            Some(Q::Fetch(key)) => holder::fetch(self, &key).await,
            Some(Q::Holds(keys)) => holder::holds(self, keys).await,
            Some(Q::Roles(_)) => admin::roles_view(self, peer),
            Some(Q::Register(r)) => admin::register(self, peer, r).await,
            Some(Q::Append(record)) => admin::append(self, peer, record).await,
            Some(Q::Resolve(address)) => admin::resolve(self, &address).await,
            Some(Q::History(q)) => admin::history(self, q).await,
            Some(Q::Discover(q)) => admin::discover(self, q).await,
            Some(Q::Grant(g)) => admin::grant(self, g).await,
            Some(Q::CheckReplication(r)) => replication::check_now(self, r).await,
            Some(Q::RedeemJoin(r)) => admin::join::redeem(self, peer, r).await,
            Some(Q::JoinToken(c)) => admin::join::change(self, peer, c).await,
            None => Err(ContextError::bad_request("empty or unknown context request")),
        }
    }

    /// Sends `body` to `peer` (or answers it here if `peer` is this node), within `timeout`.
    pub(crate) async fn request(
        &self,
        peer: PeerId,
        body: context_request::Body,
        timeout: Duration,
    ) -> Result<context_response::Body, ContextError> {
        let request = ContextRequest { body: Some(body) };
        if peer == self.inner.peer_id {
            return Box::pin(self.dispatch(peer, request)).await;
        }
        let rpc = RpcRequest {
            body: Some(rpc_request::Body::Context(request)),
        };
        let answer = tokio::time::timeout(timeout, self.inner.client.send_rpc(peer, rpc))
            .await
            .map_err(|_| ContextError::new(UcxlCode::Timeout, format!("{peer} did not answer within {timeout:?}")))??;
        match answer.body {
            Some(rpc_response::Body::Context(ContextResponse {
                body: Some(context_response::Body::Error(e)),
            })) => Err(ContextError::from_wire(&e)),
            Some(rpc_response::Body::Context(ContextResponse { body: Some(body) })) => Ok(body),
            Some(rpc_response::Body::Error(e)) => Err(ContextError::unavailable(format!(
                "{peer} refused the request: {} {}",
                e.code, e.message
            ))),
            _ => Err(ContextError::internal(format!(
                "{peer} sent an answer of the wrong type"
            ))),
        }
    }

    /// Sends `body` to the admin, retrying (another admin, a restarting one) until the request
    /// timeout. Errors the admin decided on (anything but unavailable or timeout) return at once.
    pub(crate) async fn ask_admin(&self, body: context_request::Body) -> Result<context_response::Body, ContextError> {
        let deadline = Instant::now() + Duration::from_millis(self.inner.config.request_timeout_ms);
        let mut delay = Duration::from_millis(25);
        loop {
            let admin = self.inner.consensus.admin();
            let left = deadline.saturating_duration_since(Instant::now());
            let err = match admin {
                Some(peer) => match self
                    .request(peer, body.clone(), left.max(Duration::from_millis(1)))
                    .await
                {
                    Ok(answer) => return Ok(answer),
                    Err(e) if matches!(e.code, UcxlCode::ServiceUnavailable | UcxlCode::Timeout) => e,
                    Err(e) => return Err(e),
                },
                None => ContextError::unavailable("no admin is known; the cluster is electing one or still forming"),
            };
            if Instant::now() + delay >= deadline || self.inner.shutdown.is_cancelled() {
                return Err(err);
            }
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Err(ContextError::unavailable("the node is shutting down")),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

/// A question only the admin answers, with the type of its answer: [`ContextService::ask`] sends
/// it with [`ContextService::ask_admin`]'s retries and checks the answer's type once, here.
pub(crate) trait AdminQuery {
    /// What the admin answers.
    type Answer;
    /// What the question is, for the error when the answer has the wrong type.
    const WHAT: &'static str;
    /// The request body.
    fn into_body(self) -> context_request::Body;
    /// The answer, if `body` is of this question's answer type.
    fn answer(body: context_response::Body) -> Option<Self::Answer>;
}

/// Index a stored record (the encoded `ContextRecord`) as the next version of its address.
pub(crate) struct Append(pub(crate) Vec<u8>);
/// Resolve an address (with an optional temporal part) to one version.
pub(crate) struct Resolve(pub(crate) String);

macro_rules! admin_query {
    ($query:ty, $what:literal, |$q:ident| $body:expr, $answer:ident($a:ident) => $out:ty = $value:expr) => {
        impl AdminQuery for $query {
            type Answer = $out;
            const WHAT: &'static str = $what;
            fn into_body(self) -> context_request::Body {
                let $q = self;
                $body
            }
            fn answer(body: context_response::Body) -> Option<$out> {
                match body {
                    context_response::Body::$answer($a) => Some($value),
                    _ => None,
                }
            }
        }
    };
}

admin_query!(Append, "an append", |q| context_request::Body::Append(q.0), Version(v) => VersionInfo = v);
admin_query!(Resolve, "a resolve", |q| context_request::Body::Resolve(q.0), Version(v) => VersionInfo = v);
admin_query!(HistoryQuery, "a history query", |q| context_request::Body::History(q), History(h) => HistoryView = h);
admin_query!(DiscoverQuery, "a discover query", |q| context_request::Body::Discover(q), Discover(d) => DiscoverView = d);
admin_query!(RolesQuery, "a roles query", |q| context_request::Body::Roles(q), Roles(r) => RolesView = r);
admin_query!(RegisterMember, "a registration", |q| context_request::Body::Register(q), Member(m) => MemberStatus = m);
admin_query!(GrantRequest, "a grant", |q| context_request::Body::Grant(q), Ok(o) => ContextOk = o);
admin_query!(RedeemJoin, "a join token redemption", |q| context_request::Body::RedeemJoin(q), JoinGrant(g) => JoinGrant = g);
admin_query!(JoinTokenChange, "a join token change", |q| context_request::Body::JoinToken(q), Ok(o) => ContextOk = o);
admin_query!(ReplicationCheckRequest, "a replication check", |q| context_request::Body::CheckReplication(q), Replication(r) => ReplicationReport = r);

impl ContextService {
    /// Asks the admin `query` (with [`Self::ask_admin`]'s retries) and returns its typed answer.
    pub(crate) async fn ask<Q: AdminQuery>(&self, query: Q) -> Result<Q::Answer, ContextError> {
        let answer = self.ask_admin(query.into_body()).await?;
        Q::answer(answer)
            .ok_or_else(|| ContextError::internal(format!("admin answered {} with the wrong type", Q::WHAT)))
    }
}
