//! Bootstrap support for bzzz nodes: how a node finds the mesh.
//!
//! This crate holds everything a node needs to join the libp2p mesh through
//! its configured bootstrap peers, independent of the network stack itself:
//!
//! * [`Mode`]: whether the process runs as an ordinary agent or as a
//!   dedicated bootstrap (DHT seed) node.
//! * [`BootstrapPeer`]: one operator-supplied bootstrap address, parsed from a
//!   multiaddr (`/ip4/1.2.3.4/tcp/9000`, `/dns4/tasks.dht-bootstrap/tcp/9101`,
//!   optionally ending in `/p2p/<peer id>`) or a `host:port` shorthand, and
//!   resolved to every address a DNS name has (Docker Swarm's
//!   `tasks.<service>` name returns one record per task).
//! * [`Backoff`]: exponential backoff with jitter for dial retries.
//! * [`run_join_loop`]: the long-running task that dials the bootstrap peers
//!   until at least one connects, starts a Kademlia bootstrap, watches the
//!   routing table, and re-joins when it empties ([`run_join_loop_with_targets`]
//!   lets the node change the peers and ask for a re-join while it runs). It talks to the network only
//!   through the [`Dialer`] trait and publishes its progress as a
//!   [`JoinStatus`] on a `tokio::sync::watch` channel for health checks and
//!   `/api/status`.

mod backoff;
mod error;
mod join;
mod mode;
mod peer;

pub use backoff::{Backoff, BackoffConfig};
pub use error::{BootstrapError, ParseModeError};
pub use join::{
    DIAL_TIMEOUT, Dialer, JoinConfig, JoinState, JoinStatus, JoinTargets, MIN_CHECK_INTERVAL, RESOLVE_TIMEOUT,
    run_join_loop, run_join_loop_with_targets,
};
pub use mode::Mode;
pub use peer::{BootstrapPeer, parse_peer_list};
