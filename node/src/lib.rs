//! The bzzz daemon: a peer-to-peer mesh node for AI agents.
//!
//! One owner task per stateful subsystem, reached through cloneable handles over bounded
//! channels:
//!
//! ```text
//!                       ┌──────────────────────── Node (supervisor) ───────────────────────┐
//!  HTTP :8080 / :8081 ──► api (axum) ──► AppState { Client, Prober, Health, Metrics }      │
//!                       │                    │ Command + oneshot reply                     │
//!                       │                    ▼                                             │
//!                       │   network::EventLoop  (sole owner of the libp2p Swarm:           │
//!                       │     gossipsub · kad on sled · identify · ping · /bzzz/rpc/1)     │
//!                       │        │ verified gossip → per-topic subscriber queues           │
//!                       │        │ Event::ProbeAck → probe router                          │
//!                       │        ▼                                                         │
//!                       │   health::probe (responder + router) · health::Checker           │
//!                       │   bzzz_bootstrap::run_join_loop (dial with backoff, re-bootstrap)│
//!                       └──────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Operator actions ([`ops`], reached through `AppState` and from `main` on `SIGHUP`): config
//! reload, peers clear (re-bootstrap through the join loop's targets), DHT reprovide and cache
//! clear (batched commands to the event loop), and streamed backups of the sled database.
//!
//! Shutdown order: HTTP, services (join loop, health, probes), network, final sled flush.
//!
//! Metrics: each subsystem owns its metrics struct, built from the one registry at start
//! (`network::NetworkMetrics`, `consensus::ElectionMetrics`, `context::ContextMetrics`,
//! `health::HealthMetrics`, `ops::OpsMetrics`); [`metrics`] holds only the registry, encoding,
//! the contract list and the process metrics.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod context;
pub mod crypto;
pub mod dev;
pub mod health;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ops;

pub use config::Config;
pub use node::{Node, NodeError};
