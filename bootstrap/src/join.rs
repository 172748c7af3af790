//! The join loop: dial bootstrap peers until joined, then watch the routing table.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::backoff::{Backoff, BackoffConfig};
use crate::peer::BootstrapPeer;

/// Longest the join loop waits for one dial before counting it as failed.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest the join loop waits for one DNS lookup before counting the peer as failed.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest routing-table check interval the join loop uses; smaller configured values are raised to it.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Where the node's join stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinState {
    /// No bootstrap peers are configured (e.g. the first bootstrap node); healthy.
    Alone,
    /// The first dial round (or the first round after losing the mesh) is running.
    Joining,
    /// At least one bootstrap peer connected; the routing table is being watched.
    Joined,
    /// Every address failed in the last round; backing off before the next one.
    Retrying,
}

/// How the node's join is going; published on a `tokio::sync::watch` channel
/// for health checks and `/api/status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JoinStatus {
    /// Current state of the join.
    pub state: JoinState,
    /// The configured bootstrap peers, as the operator wrote them.
    pub configured_peers: Vec<String>,
    /// Dial rounds started so far (one round dials every resolved address once).
    pub attempts: u64,
    /// Rounds in a row in which no address connected (0 once joined).
    pub consecutive_failures: u32,
    /// Most recent failure, human readable and naming the address (cleared by a round without failures).
    pub last_error: Option<String>,
    /// When a bootstrap dial last succeeded, in milliseconds since the Unix epoch.
    pub last_success_unix_ms: Option<u64>,
    /// While backing off: delay before the next round, in milliseconds.
    pub next_retry_in_ms: Option<u64>,
    /// Times the loop went back to the bootstrap peers (and re-ran a Kademlia
    /// bootstrap) because the routing table or the connection set emptied.
    pub rebootstraps: u64,
}

impl JoinStatus {
    /// Initial status for these configured peers: `Alone` when there are none, else `Joining`.
    pub fn new(peers: &[BootstrapPeer]) -> Self {
        JoinStatus {
            state: if peers.is_empty() {
                JoinState::Alone
            } else {
                JoinState::Joining
            },
            configured_peers: peers.iter().map(ToString::to_string).collect(),
            attempts: 0,
            consecutive_failures: 0,
            last_error: None,
            last_success_unix_ms: None,
            next_retry_in_ms: None,
            rebootstraps: 0,
        }
    }

    /// True when the node is where it should be: `Alone` (nothing to join) or `Joined`.
    pub fn is_healthy(&self) -> bool {
        matches!(self.state, JoinState::Alone | JoinState::Joined)
    }
}

/// What the join loop needs from the network; bzzz-node implements it on its network client.
pub trait Dialer: Clone + Send + Sync + 'static {
    /// Dials one address; resolves when the connection is established
    /// (`Ok(remote peer id)`) or failed (`Err(reason)`).
    fn dial(&self, addr: Multiaddr) -> impl Future<Output = Result<PeerId, String>> + Send;
    /// Number of peers in the Kademlia routing table.
    fn routing_table_size(&self) -> impl Future<Output = usize> + Send;
    /// Number of currently connected peers.
    fn connected_peers(&self) -> impl Future<Output = usize> + Send;
    /// Starts a Kademlia bootstrap (self lookup).
    fn kad_bootstrap(&self) -> impl Future<Output = ()> + Send;
}

/// Settings of [`run_join_loop`].
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// Bootstrap peers to dial; empty means the node runs alone.
    pub peers: Vec<BootstrapPeer>,
    /// Backoff between failed dial rounds.
    pub backoff: BackoffConfig,
    /// How often to check the routing table once joined (default 5 s; at least [`MIN_CHECK_INTERVAL`]).
    pub check_interval: Duration,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            peers: Vec::new(),
            backoff: BackoffConfig::default(),
            check_interval: Duration::from_secs(5),
        }
    }
}

/// What the join loop dials, changeable while it runs (a config reload, `bzzz peers clear`):
/// send a new value on the `watch` channel given to [`run_join_loop_with_targets`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinTargets {
    /// Bootstrap peers to dial, from the next dial round on; empty means the node runs alone.
    pub peers: Vec<BootstrapPeer>,
    /// A request counter: raising it asks for a dial round now, even while joined (the loop
    /// compares it with the last value it saw). Counts as a rebootstrap.
    pub rejoin: u64,
}

/// Joins the mesh through the configured bootstrap peers and keeps it joined,
/// until `shutdown` completes.
///
/// With no peers it sets the state to `Alone` and returns at once. Otherwise
/// it runs dial rounds: every peer is resolved (a DNS failure counts as a
/// failure of that peer and is logged) and every resolved address is dialled
/// concurrently (each dial bounded by [`DIAL_TIMEOUT`], each lookup by
/// [`RESOLVE_TIMEOUT`]). If at least one dial succeeds the state becomes
/// `Joined`, the backoff is reset and `kad_bootstrap()` is called; otherwise
/// the state becomes `Retrying`, the loop sleeps `backoff.next_delay()`
/// (published as `next_retry_in_ms`) and tries again, forever, logging every
/// failure at warn with the attempt count and reason.
///
/// Once joined it only checks, every `check_interval`, that the routing table
/// and the connection set are non-empty; a connected node is never re-dialled.
/// When either is empty it logs, increments `rebootstraps` and goes back to
/// dial rounds (with backoff).
///
/// The status is reset to [`JoinStatus::new`] for `config.peers` on start;
/// this loop is meant to be the channel's only writer.
///
/// Cancel-safe: dropping the future (or completing `shutdown`) stops the loop
/// and aborts in-flight dials and lookups; the last published status stays.
pub async fn run_join_loop<D: Dialer>(
    dialer: D,
    config: JoinConfig,
    status: watch::Sender<JoinStatus>,
    shutdown: impl Future<Output = ()> + Send,
) {
    if config.peers.is_empty() {
        status.send_replace(JoinStatus::new(&config.peers));
        info!("no bootstrap peers configured; running alone");
        return;
    }
    // The sender lives as long as the loop, so the targets never change.
    let (_targets_tx, targets) = watch::channel(JoinTargets {
        peers: config.peers.clone(),
        rejoin: 0,
    });
    run_join_loop_with_targets(dialer, config, targets, status, shutdown).await;
}

/// Like [`run_join_loop`], with the peers taken from `targets` (`config.peers` is ignored) so they
/// can change while the loop runs:
/// - new peers are used from the next dial round on; a loop backing off tries them at once;
/// - a raised [`JoinTargets::rejoin`] makes a joined loop count a rebootstrap and dial now;
/// - with no peers the loop is `Alone` and waits for some (it does not return).
///
/// If the sender of `targets` is dropped the targets stay as they last were. Cancel-safe like
/// [`run_join_loop`].
pub async fn run_join_loop_with_targets<D: Dialer>(
    dialer: D,
    config: JoinConfig,
    mut targets: watch::Receiver<JoinTargets>,
    status: watch::Sender<JoinStatus>,
    shutdown: impl Future<Output = ()> + Send,
) {
    status.send_replace(JoinStatus::new(&targets.borrow_and_update().peers));
    tokio::select! {
        biased;
        () = shutdown => {
            info!("bootstrap join loop stopped by shutdown");
        }
        () = join_forever(&dialer, &config, &mut targets, &status) => {}
    }
    status.send_modify(|s| s.next_retry_in_ms = None);
}

/// Waits for the next change of the targets; never resolves once their sender is gone.
async fn targets_changed(targets: &mut watch::Receiver<JoinTargets>) {
    if targets.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The body of [`run_join_loop_with_targets`]; never returns.
async fn join_forever<D: Dialer>(
    dialer: &D,
    config: &JoinConfig,
    targets: &mut watch::Receiver<JoinTargets>,
    status: &watch::Sender<JoinStatus>,
) {
    let mut backoff = Backoff::new(config.backoff.clone());
    let check_interval = config.check_interval.max(MIN_CHECK_INTERVAL);
    let mut round: u64 = 0;
    // The rejoin counter as of the last dial round.
    let mut seen_rejoin;
    loop {
        let peers = targets.borrow_and_update().peers.clone();
        if peers.is_empty() {
            status.send_modify(|s| {
                s.state = JoinState::Alone;
                s.configured_peers.clear();
                s.next_retry_in_ms = None;
            });
            info!("no bootstrap peers configured; running alone");
            targets_changed(targets).await;
            continue;
        }
        // Dial until at least one bootstrap peer connects.
        let joined = loop {
            // A dial round answers every rejoin request made before it.
            let (peers, rejoin) = {
                let t = targets.borrow_and_update();
                (t.peers.clone(), t.rejoin)
            };
            seen_rejoin = rejoin;
            if peers.is_empty() {
                break false;
            }
            round = round.saturating_add(1);
            status.send_modify(|s| {
                s.attempts = round;
                s.next_retry_in_ms = None;
                s.configured_peers = peers.iter().map(ToString::to_string).collect();
            });
            info!(attempt = round, peers = peers.len(), "dialling bootstrap peers");
            let outcome = dial_round(dialer, &peers, round).await;
            if outcome.connected > 0 {
                backoff.reset();
                let now = unix_ms_now();
                status.send_modify(|s| {
                    s.state = JoinState::Joined;
                    s.consecutive_failures = 0;
                    s.last_error = outcome.failures.last().cloned();
                    s.last_success_unix_ms = Some(now);
                    s.next_retry_in_ms = None;
                });
                info!(
                    attempt = round,
                    connected = outcome.connected,
                    failed = outcome.failures.len(),
                    "joined the mesh through bootstrap peers"
                );
                break true;
            }
            let delay = backoff.next_delay();
            let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            let last_error = outcome
                .failures
                .last()
                .cloned()
                .unwrap_or_else(|| "no bootstrap address to dial".to_owned());
            let mut failures_in_a_row = 0;
            status.send_modify(|s| {
                s.state = JoinState::Retrying;
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                s.last_error = Some(last_error.clone());
                s.next_retry_in_ms = Some(delay_ms);
                failures_in_a_row = s.consecutive_failures;
            });
            warn!(
                attempt = round,
                consecutive_failures = failures_in_a_row,
                retry_in_ms = delay_ms,
                last_error = %last_error,
                "could not reach any bootstrap peer; will retry"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = targets_changed(targets) => {
                    // New peers or an explicit request: try them now.
                    backoff.reset();
                    info!("bootstrap targets changed; dialling now");
                }
            }
        };
        if !joined {
            continue;
        }

        dialer.kad_bootstrap().await;
        debug!("kademlia bootstrap started");

        // Joined: watch the routing table and connections; never re-dial while they are fine.
        loop {
            tokio::select! {
                () = tokio::time::sleep(check_interval) => {}
                () = targets_changed(targets) => {
                    let t = targets.borrow().clone();
                    status.send_modify(|s| {
                        s.configured_peers = t.peers.iter().map(ToString::to_string).collect();
                    });
                    if t.rejoin != seen_rejoin {
                        let mut total = 0;
                        status.send_modify(|s| {
                            s.rebootstraps = s.rebootstraps.saturating_add(1);
                            s.state = JoinState::Joining;
                            total = s.rebootstraps;
                        });
                        info!(rebootstraps = total, "re-bootstrap requested; dialling bootstrap peers now");
                        break;
                    }
                    info!(peers = t.peers.len(), "bootstrap peers changed; used from the next re-bootstrap");
                    continue;
                }
            }
            let table = dialer.routing_table_size().await;
            let connected = dialer.connected_peers().await;
            if table == 0 || connected == 0 {
                let mut total = 0;
                status.send_modify(|s| {
                    s.rebootstraps = s.rebootstraps.saturating_add(1);
                    s.state = JoinState::Joining;
                    total = s.rebootstraps;
                });
                warn!(
                    routing_table_size = table,
                    connected_peers = connected,
                    rebootstraps = total,
                    "lost the mesh; dialling bootstrap peers again"
                );
                break;
            }
            debug!(
                routing_table_size = table,
                connected_peers = connected,
                "mesh membership ok"
            );
        }
    }
}

/// Result of one dial round.
#[derive(Debug, Default)]
struct RoundOutcome {
    /// Addresses that connected.
    connected: usize,
    /// Human-readable failures, each naming the address or peer.
    failures: Vec<String>,
}

/// Result of dialling one configured peer: per resolved address, the dial
/// result; or a single resolution failure.
type PeerResults = Vec<(String, Result<PeerId, String>)>;

/// Resolves and dials every peer concurrently and waits for all dials to finish.
async fn dial_round<D: Dialer>(dialer: &D, peers: &[BootstrapPeer], round: u64) -> RoundOutcome {
    let mut tasks = JoinSet::new();
    for peer in peers {
        tasks.spawn(dial_peer(dialer.clone(), peer.clone()));
    }
    let mut outcome = RoundOutcome::default();
    while let Some(joined) = tasks.join_next().await {
        let results = match joined {
            Ok(results) => results,
            Err(e) => vec![("bootstrap dial task".to_owned(), Err(e.to_string()))],
        };
        for (target, result) in results {
            match result {
                Ok(peer) => {
                    outcome.connected += 1;
                    info!(attempt = round, addr = %target, %peer, "connected to bootstrap peer");
                }
                Err(reason) => {
                    warn!(attempt = round, addr = %target, error = %reason, "bootstrap dial failed");
                    outcome.failures.push(format!("{target}: {reason}"));
                }
            }
        }
    }
    outcome
}

/// Resolves one peer and dials each of its addresses concurrently.
async fn dial_peer<D: Dialer>(dialer: D, peer: BootstrapPeer) -> PeerResults {
    let addrs = match tokio::time::timeout(RESOLVE_TIMEOUT, peer.resolve()).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => return vec![(peer.to_string(), Err(e.to_string()))],
        Err(_) => {
            return vec![(
                peer.to_string(),
                Err(format!("dns lookup timed out after {} s", RESOLVE_TIMEOUT.as_secs())),
            )];
        }
    };
    let mut dials = JoinSet::new();
    for addr in addrs {
        let dialer = dialer.clone();
        dials.spawn(async move {
            let result = match tokio::time::timeout(DIAL_TIMEOUT, dialer.dial(addr.clone())).await {
                Ok(r) => r,
                Err(_) => Err(format!("dial timed out after {} s", DIAL_TIMEOUT.as_secs())),
            };
            (addr.to_string(), result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = dials.join_next().await {
        results.push(match joined {
            Ok(r) => r,
            Err(e) => (peer.to_string(), Err(format!("dial task failed: {e}"))),
        });
    }
    results
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;
    use tokio::time::Instant;

    /// Scripted stand-in for the node's network client.
    #[derive(Clone)]
    struct FakeDialer {
        inner: Arc<Mutex<FakeState>>,
    }

    struct FakeState {
        /// Dial calls (counted over all addresses) that fail before dials start succeeding.
        fail_first: usize,
        /// Addresses that are always refused.
        refuse: Vec<Multiaddr>,
        /// Every dial: when, and which address.
        dials: Vec<(Instant, Multiaddr)>,
        routing_table: usize,
        connected: usize,
        /// Routing table size after a Kademlia bootstrap.
        table_after_bootstrap: usize,
        kad_bootstraps: usize,
        remote: PeerId,
    }

    impl FakeDialer {
        fn new(fail_first: usize) -> Self {
            FakeDialer {
                inner: Arc::new(Mutex::new(FakeState {
                    fail_first,
                    refuse: Vec::new(),
                    dials: Vec::new(),
                    routing_table: 0,
                    connected: 0,
                    table_after_bootstrap: 4,
                    kad_bootstraps: 0,
                    remote: PeerId::random(),
                })),
            }
        }

        fn state(&self) -> MutexGuard<'_, FakeState> {
            self.inner.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Dialer for FakeDialer {
        async fn dial(&self, addr: Multiaddr) -> Result<PeerId, String> {
            let mut s = self.state();
            s.dials.push((Instant::now(), addr.clone()));
            if s.dials.len() <= s.fail_first || s.refuse.contains(&addr) {
                return Err("connection refused".to_owned());
            }
            s.connected += 1;
            Ok(s.remote)
        }

        async fn routing_table_size(&self) -> usize {
            self.state().routing_table
        }

        async fn connected_peers(&self) -> usize {
            self.state().connected
        }

        async fn kad_bootstrap(&self) {
            let mut s = self.state();
            s.kad_bootstraps += 1;
            s.routing_table = s.table_after_bootstrap;
        }
    }

    fn peers(list: &[&str]) -> Vec<BootstrapPeer> {
        list.iter()
            .map(|p| match BootstrapPeer::parse(p) {
                Ok(peer) => peer,
                Err(e) => panic!("test peer {p:?} should parse, got {e}"),
            })
            .collect()
    }

    fn config(list: &[&str]) -> JoinConfig {
        JoinConfig {
            peers: peers(list),
            backoff: BackoffConfig {
                jitter: 0.0,
                ..BackoffConfig::default()
            },
            check_interval: Duration::from_secs(5),
        }
    }

    struct Running {
        status: watch::Receiver<JoinStatus>,
        stop: Option<oneshot::Sender<()>>,
        handle: JoinHandle<()>,
    }

    fn start(dialer: &FakeDialer, cfg: JoinConfig) -> Running {
        let (tx, rx) = watch::channel(JoinStatus::new(&cfg.peers));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        let handle = tokio::spawn(run_join_loop(dialer.clone(), cfg, tx, shutdown));
        Running {
            status: rx,
            stop: Some(stop_tx),
            handle,
        }
    }

    impl Running {
        /// Waits (in paused time, up to 10 virtual minutes) until the status satisfies `what`.
        async fn wait_for(&mut self, label: &str, what: impl FnMut(&JoinStatus) -> bool) -> JoinStatus {
            let got = tokio::time::timeout(Duration::from_secs(600), self.status.wait_for(what))
                .await
                .map(|r| r.map(|s| s.clone()));
            match got {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => panic!("waiting for {label}: expected the loop to keep running, got a closed channel"),
                Err(_) => panic!(
                    "waiting for {label}: expected it within 600 s, got status {:?}",
                    *self.status.borrow()
                ),
            }
        }

        async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            let done = tokio::time::timeout(Duration::from_secs(1), self.handle).await;
            assert!(
                matches!(done, Ok(Ok(()))),
                "expected the loop to stop within 1 s of shutdown, got {done:?}"
            );
        }
    }

    /// With no bootstrap peers the loop publishes `Alone` (healthy) and returns without dialling.
    #[tokio::test(start_paused = true)]
    async fn join_loop_alone_without_peers() {
        let dialer = FakeDialer::new(0);
        let (tx, rx) = watch::channel(JoinStatus::new(&[]));
        let done = tokio::time::timeout(
            Duration::from_secs(1),
            run_join_loop(dialer.clone(), JoinConfig::default(), tx, std::future::pending()),
        )
        .await;
        assert!(done.is_ok(), "expected the loop to return at once, got a timeout");
        let s = rx.borrow().clone();
        assert_eq!(s.state, JoinState::Alone, "expected Alone, got {s:?}");
        assert!(s.is_healthy(), "expected Alone to be healthy, got {s:?}");
        let dials = dialer.state().dials.len();
        assert_eq!(dials, 0, "expected no dials, got {dials}");
    }

    /// Failed rounds back off 250, 500, 1000, 2000 ms (Retrying, naming the address),
    /// then the first success gives Joined, calls kad_bootstrap exactly once, and a
    /// healthy joined node is never re-dialled.
    #[tokio::test(start_paused = true)]
    async fn join_loop_retries_with_growing_delays_then_joins() {
        let dialer = FakeDialer::new(4);
        let mut run = start(&dialer, config(&["/ip4/10.0.0.1/tcp/9000"]));

        let first = run.wait_for("first failure", |s| s.consecutive_failures == 1).await;
        assert_eq!(first.state, JoinState::Retrying, "expected Retrying, got {first:?}");
        assert_eq!(
            first.next_retry_in_ms,
            Some(250),
            "expected a 250 ms retry, got {first:?}"
        );
        let err = first.last_error.clone().unwrap_or_default();
        assert!(
            err.contains("/ip4/10.0.0.1/tcp/9000") && err.contains("connection refused"),
            "expected last_error to name the address and reason, got {err:?}"
        );
        assert!(!first.is_healthy(), "expected Retrying to be unhealthy, got {first:?}");

        let joined = run.wait_for("Joined", |s| s.state == JoinState::Joined).await;
        assert_eq!(joined.attempts, 5, "expected 5 rounds, got {joined:?}");
        assert_eq!(
            joined.consecutive_failures, 0,
            "expected failures reset, got {joined:?}"
        );
        assert!(
            joined.last_success_unix_ms.is_some() && joined.last_error.is_none(),
            "expected a success time and no error, got {joined:?}"
        );

        let times: Vec<Instant> = dialer.state().dials.iter().map(|(t, _)| *t).collect();
        let gaps: Vec<u128> = times
            .windows(2)
            .map(|w| w[1].duration_since(w[0]).as_millis())
            .collect();
        let want = [250u128, 500, 1000, 2000];
        let close = gaps.len() == want.len() && gaps.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 2);
        assert!(close, "expected gaps of {want:?} ms between rounds, got {gaps:?}");

        // Let many check intervals pass while the node stays healthy.
        tokio::time::sleep(Duration::from_secs(120)).await;
        let (dials, kads) = {
            let s = dialer.state();
            (s.dials.len(), s.kad_bootstraps)
        };
        assert_eq!(kads, 1, "expected exactly one kad_bootstrap, got {kads}");
        assert_eq!(dials, 5, "expected no re-dial of a connected node, got {dials} dials");
        let s = run.status.borrow().clone();
        assert_eq!(s.rebootstraps, 0, "expected no rebootstraps, got {s:?}");
        run.stop().await;
    }

    /// When the routing table empties the loop counts a rebootstrap, dials the
    /// bootstrap peers again and re-runs kad_bootstrap, then settles.
    #[tokio::test(start_paused = true)]
    async fn join_loop_rebootstraps_when_routing_table_empties() {
        let dialer = FakeDialer::new(0);
        let mut run = start(&dialer, config(&["/ip4/10.0.0.1/tcp/9000"]));
        run.wait_for("Joined", |s| s.state == JoinState::Joined).await;

        dialer.state().routing_table = 0;
        let s = run
            .wait_for("rejoin", |s| {
                s.rebootstraps == 1 && s.state == JoinState::Joined && s.attempts == 2
            })
            .await;
        assert_eq!(s.consecutive_failures, 0, "expected no failures, got {s:?}");

        tokio::time::sleep(Duration::from_secs(60)).await;
        let (dials, kads) = {
            let st = dialer.state();
            (st.dials.len(), st.kad_bootstraps)
        };
        assert_eq!(kads, 2, "expected two kad_bootstraps, got {kads}");
        assert_eq!(dials, 2, "expected two dials in total, got {dials}");
        let s = run.status.borrow().clone();
        assert_eq!(s.rebootstraps, 1, "expected one rebootstrap, got {s:?}");
        run.stop().await;
    }

    /// Losing every connection (routing table still non-empty) also sends the
    /// loop back to the bootstrap peers, with backoff while they stay down.
    #[tokio::test(start_paused = true)]
    async fn join_loop_rejoins_when_connections_drop() {
        let dialer = FakeDialer::new(0);
        let mut run = start(&dialer, config(&["/ip4/10.0.0.1/tcp/9000"]));
        run.wait_for("Joined", |s| s.state == JoinState::Joined).await;

        {
            let mut st = dialer.state();
            st.connected = 0;
            st.fail_first = 3; // the next two dials fail
        }
        let s = run
            .wait_for("retrying after loss", |s| {
                s.rebootstraps == 1 && s.state == JoinState::Retrying
            })
            .await;
        assert_eq!(
            s.next_retry_in_ms,
            Some(250),
            "expected backoff to restart at 250 ms, got {s:?}"
        );
        let s = run
            .wait_for("rejoined", |s| s.state == JoinState::Joined && s.rebootstraps == 1)
            .await;
        assert_eq!(s.attempts, 4, "expected 4 rounds in total, got {s:?}");
        let kads = dialer.state().kad_bootstraps;
        assert_eq!(kads, 2, "expected two kad_bootstraps, got {kads}");
        run.stop().await;
    }

    /// Starts a loop whose targets the test can change.
    fn start_with_targets(dialer: &FakeDialer, peers_list: &[&str]) -> (Running, watch::Sender<JoinTargets>) {
        let (targets_tx, targets_rx) = watch::channel(JoinTargets {
            peers: peers(peers_list),
            rejoin: 0,
        });
        let (tx, rx) = watch::channel(JoinStatus::new(&[]));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        let handle = tokio::spawn(run_join_loop_with_targets(
            dialer.clone(),
            config(&[]),
            targets_rx,
            tx,
            shutdown,
        ));
        let run = Running {
            status: rx,
            stop: Some(stop_tx),
            handle,
        };
        (run, targets_tx)
    }

    /// A raised rejoin counter makes a joined loop dial its bootstrap peers at once (a counted
    /// rebootstrap) although the mesh is fine; without it the loop would never re-dial.
    #[tokio::test(start_paused = true)]
    async fn join_loop_rejoins_on_request() {
        let dialer = FakeDialer::new(0);
        let (mut run, targets) = start_with_targets(&dialer, &["/ip4/10.0.0.1/tcp/9000"]);
        run.wait_for("Joined", |s| s.state == JoinState::Joined).await;
        targets.send_modify(|t| t.rejoin += 1);
        let s = run
            .wait_for("rejoined", |s| {
                s.state == JoinState::Joined && s.rebootstraps == 1 && s.attempts == 2
            })
            .await;
        assert_eq!(s.consecutive_failures, 0, "expected no failures, got {s:?}");
        let (dials, kads) = {
            let st = dialer.state();
            (st.dials.len(), st.kad_bootstraps)
        };
        assert_eq!((dials, kads), (2, 2), "expected a second dial and kad bootstrap");
        run.stop().await;
    }

    /// New peers are not dialled while joined, are shown in the status, and are the ones dialled
    /// at the next re-bootstrap.
    #[tokio::test(start_paused = true)]
    async fn join_loop_uses_new_peers_at_next_rebootstrap() {
        let dialer = FakeDialer::new(0);
        let (mut run, targets) = start_with_targets(&dialer, &["/ip4/10.0.0.1/tcp/9000"]);
        run.wait_for("Joined", |s| s.state == JoinState::Joined).await;
        targets.send_modify(|t| t.peers = peers(&["/ip4/10.0.0.7/tcp/9007"]));
        run.wait_for("new peers shown", |s| {
            s.configured_peers == vec!["/ip4/10.0.0.7/tcp/9007".to_string()]
        })
        .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(
            dialer.state().dials.len(),
            1,
            "a joined node must not re-dial on a peer change"
        );
        dialer.state().routing_table = 0;
        run.wait_for("rejoined", |s| s.state == JoinState::Joined && s.rebootstraps == 1)
            .await;
        let last = dialer.state().dials.last().map(|(_, a)| a.to_string());
        assert_eq!(
            last.as_deref(),
            Some("/ip4/10.0.0.7/tcp/9007"),
            "expected the re-bootstrap to dial the new peer"
        );
        run.stop().await;
    }

    /// With no peers the loop is Alone and waits; peers added later are dialled at once.
    #[tokio::test(start_paused = true)]
    async fn join_loop_alone_until_peers_arrive() {
        let dialer = FakeDialer::new(0);
        let (mut run, targets) = start_with_targets(&dialer, &[]);
        run.wait_for("Alone", |s| s.state == JoinState::Alone).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(dialer.state().dials.len(), 0, "expected no dials while alone");
        targets.send_modify(|t| t.peers = peers(&["/ip4/10.0.0.1/tcp/9000"]));
        run.wait_for("Joined", |s| s.state == JoinState::Joined).await;
        run.stop().await;
    }

    /// Every resolved address of every peer is dialled; a DNS failure only fails
    /// that peer, and one success is enough to join.
    #[tokio::test(start_paused = true)]
    async fn join_loop_dials_all_addresses_and_tolerates_dns_failure() {
        let dialer = FakeDialer::new(0);
        let refused: Multiaddr = match "/ip4/10.0.0.2/tcp/9002".parse() {
            Ok(a) => a,
            Err(e) => panic!("test multiaddr should parse, got {e}"),
        };
        dialer.state().refuse.push(refused.clone());
        let mut run = start(
            &dialer,
            config(&[
                "/dns4/localhost/tcp/9000",
                "/dns4/no-such-host.invalid/tcp/9001",
                "10.0.0.2:9002",
            ]),
        );
        let s = run.wait_for("Joined", |s| s.state == JoinState::Joined).await;
        let mut dialled: Vec<String> = dialer.state().dials.iter().map(|(_, a)| a.to_string()).collect();
        dialled.sort();
        let want = vec![
            "/ip4/10.0.0.2/tcp/9002".to_owned(),
            "/ip4/127.0.0.1/tcp/9000".to_owned(),
        ];
        assert_eq!(dialled, want, "expected dials to {want:?}, got {dialled:?}");
        let err = s.last_error.clone().unwrap_or_default();
        assert!(
            err.contains("no-such-host.invalid") || err.contains("10.0.0.2"),
            "expected last_error to name a failed peer, got {err:?}"
        );
        run.stop().await;
    }

    /// Completing `shutdown` stops a loop that is backing off, promptly, and no
    /// dials happen afterwards.
    #[tokio::test(start_paused = true)]
    async fn join_loop_stops_when_shutdown_fires() {
        let dialer = FakeDialer::new(usize::MAX);
        let mut run = start(&dialer, config(&["/ip4/10.0.0.1/tcp/9000"]));
        run.wait_for("two failures", |s| s.consecutive_failures >= 2).await;
        let status = run.status.clone();
        run.stop().await;
        let before = dialer.state().dials.len();
        tokio::time::sleep(Duration::from_secs(300)).await;
        let after = dialer.state().dials.len();
        assert_eq!(
            after, before,
            "expected no dials after shutdown, got {before} then {after}"
        );
        let s = status.borrow().clone();
        assert_eq!(
            s.next_retry_in_ms, None,
            "expected no pending retry after shutdown, got {s:?}"
        );
    }
}
