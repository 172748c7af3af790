//! Writing and reading one address: sealing a version for the readers of its role, placing it on
//! its holders and committing it through the admin; finding the current version and opening it.

use super::*;

struct WritePlan {
    epoch: u64,
    readers: Vec<(String, u64, RolePublicKey)>,
}

impl ContextService {
    pub(super) fn count<T>(&self, op: Operation, result: &Result<T, ContextError>) {
        let outcome = match result {
            Ok(_) => ContextOutcome::Success,
            Err(e) => e.outcome(),
        };
        self.inner.metrics.operation(op, outcome);
    }

    pub(super) async fn write(
        &self,
        address: &str,
        content: Vec<u8>,
        tombstone: bool,
    ) -> Result<PutResult, ContextError> {
        let addr = Address::parse(address)?;
        if addr.is_pattern() {
            return Err(ContextError::new(
                UcxlCode::InvalidAddress,
                "a write needs a concrete address; `any` is only for discover",
            ));
        }
        if addr.temporal().is_some() {
            return Err(ContextError::new(
                UcxlCode::TemporalInvalid,
                "a write cannot name a version: the index assigns the next one",
            ));
        }
        let base = addr.to_string();
        let role = addr.role().to_owned();
        let content_limit = self.inner.max_record_bytes.saturating_sub(64 * 1024);
        if content.len() > content_limit {
            return Err(ContextError::new(
                UcxlCode::PayloadTooLarge,
                format!(
                    "content of {} bytes exceeds the limit of {content_limit} bytes",
                    content.len()
                ),
            ));
        }
        let sealed = {
            let plan = self.write_plan(&role).await?;
            let identity = self.inner.identity.clone();
            let base = base.clone();
            tokio::task::spawn_blocking(move || {
                let readers: Vec<crate::crypto::record::Reader<'_>> =
                    plan.readers.iter().map(|(r, e, k)| (r.as_str(), *e, k)).collect();
                crate::crypto::seal_record(
                    &content,
                    &crate::crypto::record::NewRecord {
                        address: &base,
                        role: &role,
                        epoch: plan.epoch,
                        created_ms: now_unix_ms(),
                        tombstone,
                    },
                    &readers,
                    &identity,
                )
                .map(|r| prost::Message::encode_to_vec(&r))
            })
            .await
            .map_err(|e| ContextError::internal(format!("sealing task failed: {e}")))??
        };
        let record_key = crate::crypto::record::record_key(&sealed);
        let replicas = holder::replicate(self, &record_key, sealed.clone()).await?;
        let v = self.ask(rpc::Append(sealed)).await?;
        Ok(PutResult {
            address: base,
            version: v.version,
            record_key: hex::encode(record_key),
            duplicate: v.duplicate,
            replicas,
            tombstone,
        })
    }

    /// The epoch of `role` and the readers (role, epoch, public key) a record written for it is
    /// wrapped to. Refreshes the view once if this node does not (yet) hold the role.
    async fn write_plan(&self, role: &str) -> Result<WritePlan, ContextError> {
        for attempt in 0..2 {
            {
                let view = self.read_view();
                if view.granted.contains(role) {
                    let Some((epoch, _)) = view.epochs.get(role) else {
                        return Err(ContextError::unavailable(format!(
                            "role {role} has no key yet; the admin creates it shortly"
                        )));
                    };
                    let readers = view
                        .policy
                        .readers_of(role)
                        .into_iter()
                        .filter_map(|r| view.epochs.get(&r).map(|(e, k)| (r, *e, *k)))
                        .collect();
                    return Ok(WritePlan { epoch: *epoch, readers });
                }
                if attempt == 1 {
                    let why = if view.pending.contains(role) {
                        " (asked for; waits for an operator grant)"
                    } else {
                        ""
                    };
                    return Err(ContextError::forbidden(format!(
                        "this node does not hold role {role}{why}, so it cannot write under it"
                    )));
                }
            }
            members::refresh(self).await?;
        }
        Err(ContextError::internal("unreachable write plan state"))
    }

    pub(super) async fn read(&self, address: &str) -> Result<GetResult, ContextError> {
        let addr = Address::parse(address)?;
        if addr.is_pattern() {
            return Err(ContextError::new(
                UcxlCode::InvalidAddress,
                "a read needs a concrete address; use discover for patterns",
            ));
        }
        let v = self.ask(rpc::Resolve(addr.to_string())).await?;
        let version = version_view(&v);
        if v.tombstone {
            return Err(ContextError::not_found(format!(
                "{} was deleted at version {}",
                v.address, v.version
            )));
        }
        let key: [u8; 32] = v
            .record_key
            .as_slice()
            .try_into()
            .map_err(|_| ContextError::internal("admin sent a record key that is not 32 bytes"))?;
        let verified = holder::fetch_verified(self, &key).await?;
        for attempt in 0..2 {
            let opened = {
                let view = self.read_view();
                crate::crypto::open_verified(&verified, &v.address, &view.keys)
            };
            match opened {
                Ok(o) => {
                    return Ok(GetResult {
                        version,
                        opened_role: o.opened_role,
                        content: o.content,
                    });
                }
                Err(e) if e.kind() == crate::crypto::ErrorKind::Forbidden && attempt == 0 => {
                    members::refresh(self).await?;
                }
                Err(e) => {
                    if e.kind() != crate::crypto::ErrorKind::Forbidden {
                        self.inner.metrics.decrypt_failure();
                    }
                    return Err(e.into());
                }
            }
        }
        Err(ContextError::internal("unreachable read state"))
    }
}
