//! Request-response protocols (`/bzzz/rpc/1`, `/bzzz/raft/1`): answers to this node's requests go
//! to their waiting callers; requests from peers go to the queue of the service that owns their
//! kind ([`super::super::inbound`]) or are answered here (probe acknowledgements, joins).

use super::*;

fn rpc_error(code: &str, message: &str) -> RpcResponse {
    RpcResponse {
        body: Some(rpc_response::Body::Error(RpcError {
            code: code.into(),
            message: message.into(),
        })),
    }
}

/// Settles the outbound side of a request-response event (answers and failures go to the waiting
/// caller) and hands an inbound request back to be answered.
fn split_event<Req, Resp>(
    event: request_response::Event<Req, Resp>,
    pending: &mut Pending<Resp>,
    protocol: &'static str,
) -> Option<(PeerId, Req, request_response::ResponseChannel<Resp>)> {
    match event {
        request_response::Event::Message { peer, message, .. } => match message {
            request_response::Message::Request { request, channel, .. } => Some((peer, request, channel)),
            request_response::Message::Response { request_id, response } => {
                if let Some(reply) = pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
                None
            }
        },
        request_response::Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Err(NetworkError::Rpc {
                    peer,
                    reason: error.to_string(),
                }));
            }
            None
        }
        request_response::Event::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, protocol, "inbound request failed");
            None
        }
        request_response::Event::ResponseSent { .. } => None,
    }
}

impl EventLoop {
    pub(super) fn on_rpc(&mut self, event: request_response::Event<RpcRequest, RpcResponse>) {
        if let Some((peer, request, channel)) = split_event(event, &mut self.pending_rpcs, "rpc") {
            if let Some(rpc_request::Body::Context(request)) = request.body {
                let Some(ticket) = self.context_quota.take(peer) else {
                    // Answered at once, so the sender backs off instead of waiting for a timeout.
                    let busy = rpc_error(
                        "busy",
                        "too many context requests from this peer are queued or in progress; retry",
                    );
                    let _ = self.swarm.behaviour_mut().rpc.send_response(channel, busy);
                    return;
                };
                let inbound = InboundContext {
                    peer,
                    request,
                    channel,
                    ticket,
                };
                if let Err(e) = self.inbound.context.try_send(inbound) {
                    // The request's stream closes unanswered; the sender sees a failure and retries.
                    self.metrics.error(ErrorComponent::EventsDropped);
                    tracing::debug!(%peer, reason = %e, "context request dropped: queue full");
                }
                return;
            }
            let response = self.on_rpc_request(peer, request);
            if self.swarm.behaviour_mut().rpc.send_response(channel, response).is_err() {
                tracing::debug!(%peer, "rpc response not sent: stream closed");
            }
        }
    }

    pub(super) fn on_raft(&mut self, event: request_response::Event<RaftRequest, RaftResponse>) {
        if let Some((peer, request, channel)) = split_event(event, &mut self.pending_raft, "raft") {
            // Over its quota or a full queue: the request is dropped and the sender's Raft
            // retries. The quota keeps one peer's flood from filling the queue.
            let Some(ticket) = self.raft_quota.take(peer) else {
                self.metrics.error(ErrorComponent::RaftInboundDropped);
                tracing::debug!(%peer, "inbound raft rpc dropped: the peer's quota is used up");
                return;
            };
            let inbound = InboundRaft {
                peer,
                request,
                channel,
                ticket,
            };
            if let Err(e) = self.inbound.raft.try_send(inbound) {
                self.metrics.error(ErrorComponent::RaftInboundDropped);
                tracing::debug!(%peer, reason = %e, "inbound raft rpc dropped");
            }
        }
    }

    pub(super) fn on_rpc_request(&mut self, peer: PeerId, request: RpcRequest) -> RpcResponse {
        match request.body {
            Some(rpc_request::Body::ProbeAck(ack)) if ack.probe_id.len() == bzzz_protocol::envelope::NONCE_LEN => {
                let ack = ProbeAck {
                    from: peer,
                    probe_id: ack.probe_id,
                };
                if self.inbound.probe_acks.try_send(ack).is_err() {
                    self.metrics.error(ErrorComponent::EventsDropped);
                }
                RpcResponse {
                    body: Some(rpc_response::Body::Ack(Ack {})),
                }
            }
            Some(rpc_request::Body::ProbeAck(_)) => rpc_error("bad_request", "probe id must be 16 bytes"),
            // Routed to the context service before this; never answered here.
            Some(rpc_request::Body::Context(_)) => rpc_error("unsupported", "context request not routed"),
            Some(rpc_request::Body::JoinCluster(join)) => {
                if self.inbound.joins.try_send(JoinRequest { from: peer, join }).is_err() {
                    self.metrics.error(ErrorComponent::EventsDropped);
                }
                RpcResponse {
                    body: Some(rpc_response::Body::Ack(Ack {})),
                }
            }
            Some(rpc_request::Body::CertificateUpdate(chain)) => match self.admission.update_peer(&peer, &chain) {
                Ok(()) => RpcResponse {
                    body: Some(rpc_response::Body::Ack(Ack {})),
                },
                Err(e) => rpc_error("forbidden", &e),
            },
            Some(rpc_request::Body::RenewCertificate(_)) => match self.admission.renew_for(&peer) {
                Ok(chain) => {
                    tracing::info!(%peer, "renewed a peer's certificate");
                    RpcResponse {
                        body: Some(rpc_response::Body::Certificate(chain)),
                    }
                }
                Err(e) => rpc_error("forbidden", &e),
            },
            None => rpc_error("unsupported", "empty or unknown rpc request"),
        }
    }
}
