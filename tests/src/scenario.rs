//! The frame every multi-node scenario test shares: run alone ([`exclusive`]), within
//! [`TEST_TIMEOUT`] ([`bounded`]), on a fresh [`TestCluster`] that is shut down afterwards
//! ([`TestCluster::scenario`]).

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use bzzz_node::Config;

use crate::TestCluster;

/// Serialises tests that must not share the 2-core machine with other multi-node tests (Raft
/// timings): hold the guard for the whole test.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Overall limit of one scenario test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs a scenario test body under [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = Result<()>>>(f: F) -> Result<()> {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .context("test exceeded its overall timeout")?
}

impl TestCluster {
    /// One scenario test: waits for the other multi-node tests of this binary ([`exclusive`]),
    /// starts `n` nodes with `tweak` ([`TestCluster::start_with`]), runs `body` on them, and
    /// shuts them down whether `body` succeeded or not; all of it within [`TEST_TIMEOUT`].
    ///
    /// ```no_run
    /// # async fn demo() -> anyhow::Result<()> {
    /// use bzzz_tests::TestCluster;
    /// TestCluster::scenario(3, |_, _| {}, async |cluster| {
    ///     cluster.wait_connected(2, std::time::Duration::from_secs(20)).await
    /// })
    /// .await
    /// # }
    /// ```
    pub async fn scenario<B>(n: usize, tweak: impl Fn(usize, &mut Config), body: B) -> Result<()>
    where
        B: AsyncFnOnce(&mut TestCluster) -> Result<()>,
    {
        let _one_at_a_time = exclusive().await;
        bounded(async {
            let mut cluster = TestCluster::start_with(n, tweak).await?;
            let outcome = body(&mut cluster).await;
            cluster.shutdown().await;
            outcome
        })
        .await
    }
}
