//! The bzzz daemon: a peer-to-peer mesh node for AI agents.
//!
//! One owner task per stateful subsystem, reached through cloneable handles over bounded
//! channels:
//!
//! ```text
//!                    ┌────────────────────────── Node (supervisor) ──────────────────────────┐
//!  HTTP :8080/:8081 ─► api/ (axum; answers bzzz_client::types) ─► AppState { handles }       │
//!                    │        │ Command + oneshot reply                 │                    │
//!                    │        ▼                                         ▼                    │
//!                    │  network::EventLoop (sole owner of the Swarm:   Consensus · Context   │
//!                    │   gossipsub · kad on sled · identify · ping ·    · Prober · Checker   │
//!                    │   /bzzz/rpc/1 · /bzzz/raft/1)                    · Ops                 │
//!                    │        │ verified gossip ──► per-topic subscriber queues              │
//!                    │        │ Inbound (bounded, one queue per kind):                       │
//!                    │        │   context requests ──► context::ContextService               │
//!                    │        │   probe acks       ──► health::Prober                        │
//!                    │        │   join requests    ──► consensus (join loop)                 │
//!                    │        │   raft RPCs        ──► consensus::transport ──► openraft      │
//!                    │        │ kad PUT_VALUE ──► RecordValidator (injected by context)      │
//!                    │  LocalRecords: the node's own DHT reads/writes, straight to sled      │
//!                    │  bzzz_bootstrap::run_join_loop (dial with backoff, re-bootstrap)      │
//!                    └───────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Operator actions ([`ops`], reached through `AppState` and from `main` on `SIGHUP`): config
//! reload, peers clear (re-bootstrap through the join loop's targets), DHT reprovide and cache
//! clear (batched commands to the event loop), and streamed backups of the sled database.
//!
//! Shutdown order: HTTP, services (join loop, health, probes, consensus, context), network,
//! final sled flush. The top-level modules import each other without a cycle (checked by
//! `tests/tests/t01_layout.rs`); ADR 0012 records the seams.
//!
//! Metrics: each subsystem owns its metrics struct, built from the one registry at start
//! (`network::NetworkMetrics`, `consensus::ElectionMetrics`, `context::ContextMetrics`,
//! `health::HealthMetrics`, `ops::OpsMetrics`); [`metrics`] holds only the registry, encoding,
//! the contract list and the process metrics.

pub mod admission;
pub(crate) mod api;
pub(crate) mod auth;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod context;
pub mod crypto;
pub mod dev;
pub mod health;
pub(crate) mod identity;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ops;
pub(crate) mod ratelimit;

pub use config::Config;
pub use node::{Node, NodeError};
