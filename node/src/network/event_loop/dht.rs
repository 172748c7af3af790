//! Kademlia events: query progress for waiting callers, routing-table changes, and the records
//! and provider announcements peers put into this node's store (judged by the injected
//! [`super::super::RecordValidator`]).

use super::*;

impl EventLoop {
    pub(super) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed { id, result, step, .. } if self.maintenance_queries.contains(&id) => {
                self.on_maintenance_progress(id, &result, step.last);
            }
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => match result {
                QueryResult::PutRecord(r) => {
                    if let Some((reply, started)) = self.pending_puts.remove(&id) {
                        let ok = r.is_ok();
                        self.metrics
                            .dht_op(DhtOperation::Put, ok, started.elapsed().as_secs_f64());
                        let _ = reply.send(match r {
                            Ok(_) => Ok(PutOutcome { replicated: true }),
                            Err(e) => Err(NetworkError::Dht {
                                operation: "put",
                                reason: e.to_string(),
                            }),
                        });
                    }
                }
                QueryResult::GetRecord(r) => self.on_get_progress(id, r, step.last),
                QueryResult::GetProviders(r) => {
                    if let Some((_, found)) = self.pending_providers.get_mut(&id)
                        && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &r
                    {
                        found.extend(providers.iter().copied());
                    }
                    if step.last
                        && let Some((reply, found)) = self.pending_providers.remove(&id)
                    {
                        let answer = match r {
                            Err(e) if found.is_empty() => Err(NetworkError::Dht {
                                operation: "providers",
                                reason: e.to_string(),
                            }),
                            _ => Ok(found.into_iter().collect()),
                        };
                        let _ = reply.send(answer);
                    }
                }
                QueryResult::Bootstrap(Err(e)) => tracing::debug!(error = %e, "kademlia bootstrap step failed"),
                _ => {}
            },
            kad::Event::RoutingUpdated { .. } => {
                let n = self.routing_table_size();
                self.metrics.set_routing_table_peers(n);
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => self.on_inbound_put(source, record),
            kad::Event::InboundRequest {
                request: kad::InboundRequest::AddProvider { record: Some(record) },
            } => {
                if !self.kad_stores.allow(&record.provider) {
                    tracing::debug!(peer = %record.provider, "provider record not stored: the peer's store rate is used up");
                    return;
                }
                if let Err(e) =
                    libp2p::kad::store::RecordStore::add_provider(self.swarm.behaviour_mut().kad.store_mut(), record)
                {
                    tracing::debug!(error = %e, "provider record not stored");
                }
            }
            _ => {}
        }
    }

    /// A record a peer put with Kademlia `PUT_VALUE`: stored only if the injected
    /// [`RecordValidator`] accepts it (context records must be valid, signed records whose hash is
    /// their key; they never expire here, the Raft index decides their life).
    pub(super) fn on_inbound_put(&mut self, source: PeerId, mut record: Record) {
        if !self.kad_stores.allow(&source) {
            tracing::debug!(peer = %source, "dht record not stored: the peer's store rate is used up");
            return;
        }
        match self.validator.validate(record.key.as_ref(), &record.value) {
            Verdict::Ordinary => {}
            Verdict::Keep => record.expires = None,
            Verdict::Reject(reason) => {
                tracing::debug!(peer = %source, %reason, "record from a dht put rejected");
                return;
            }
        }
        if let Err(e) = libp2p::kad::store::RecordStore::put(self.swarm.behaviour_mut().kad.store_mut(), record) {
            tracing::debug!(peer = %source, error = %e, "dht record from a peer not stored");
        }
    }

    pub(super) fn on_get_progress(
        &mut self,
        id: QueryId,
        result: Result<GetRecordOk, kad::GetRecordError>,
        last: bool,
    ) {
        let answer = match result {
            Ok(GetRecordOk::FoundRecord(r)) => Ok(r.record.value),
            Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(kad::GetRecordError::NotFound { .. }) => {
                Err(NetworkError::NotFound)
            }
            Err(e) => Err(NetworkError::Dht {
                operation: "get",
                reason: e.to_string(),
            }),
        };
        // Answer the first result only; later progress of the same query is ignored.
        let waiting = match self.pending_gets.get_mut(&id) {
            Some(pending @ PendingGet::Waiting(..)) => std::mem::replace(pending, PendingGet::Answered),
            _ => PendingGet::Answered,
        };
        if let PendingGet::Waiting(reply, started) = waiting {
            let ok = answer.is_ok();
            self.metrics
                .dht_op(DhtOperation::Get, ok, started.elapsed().as_secs_f64());
            let _ = reply.send(answer);
            if ok && let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                // First record is enough: stop the query instead of waiting for more.
                q.finish();
            }
        }
        if last {
            self.pending_gets.remove(&id);
        }
    }
}
