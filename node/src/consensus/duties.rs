//! Admin duties: work that runs only while this node is the Raft leader.
//!
//! Later issues register duties here (task assignment, context curation, key rotation,
//! replication repair, voter management). Each duty gets a [`DutyContext`] whose `token` is
//! cancelled the moment leadership is lost (step-down, partition, shutdown); the runner also
//! drops the duty's future at that moment, so a duty cannot outlive its term even if it ignores
//! the token.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Raft;
use crate::network::Client;

/// What a duty runs with.
#[derive(Clone)]
pub struct DutyContext {
    /// The Raft term this leadership belongs to; admin-only writes carry it (fencing).
    pub term: u64,
    /// This node's Raft id.
    pub node_id: u64,
    /// The Raft handle, for proposing commands.
    pub raft: Raft,
    /// The network.
    pub client: Client,
    /// Cancelled when leadership ends.
    pub token: CancellationToken,
    /// Metrics (duties that write through Raft record commit latency).
    pub metrics: super::metrics::ElectionMetrics,
}

impl std::fmt::Debug for DutyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DutyContext")
            .field("term", &self.term)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

type DutyFn = Arc<dyn Fn(DutyContext) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The duties to run while admin. Cheap to clone; register before the node starts.
#[derive(Clone, Default)]
pub struct DutyRegistry {
    duties: Arc<RwLock<Vec<(&'static str, DutyFn)>>>,
}

impl std::fmt::Debug for DutyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .duties
            .read()
            .map(|d| d.iter().map(|(n, _)| *n).collect())
            .unwrap_or_default();
        f.debug_struct("DutyRegistry").field("duties", &names).finish()
    }
}

impl DutyRegistry {
    /// Registers a duty under `name`.
    pub fn register<F, Fut>(&self, name: &'static str, duty: F)
    where
        F: Fn(DutyContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f: DutyFn = Arc::new(move |ctx| Box::pin(duty(ctx)));
        if let Ok(mut d) = self.duties.write() {
            d.push((name, f));
        }
    }

    /// Starts every duty for one leadership term.
    pub(crate) fn start_all(&self, ctx: DutyContext, tracker: &TaskTracker) {
        let duties = self.duties.read().map(|d| d.clone()).unwrap_or_default();
        for (name, duty) in duties {
            let ctx = ctx.clone();
            let token = ctx.token.clone();
            let term = ctx.term;
            crate::logging::spawn(tracker, "duty", async move {
                tracing::info!(duty = name, term, "admin duty started");
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = duty(ctx) => {}
                }
                tracing::info!(duty = name, term, "admin duty stopped");
            });
        }
    }
}
