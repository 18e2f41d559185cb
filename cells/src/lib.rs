//! A cell: a group of brokers with its own Raft metadata quorum (openraft).
//!
//! Owns the cell controller (the quorum, its durable log and snapshots, the metadata
//! image it commits, broker sessions and fencing, partition leadership and ISR changes,
//! replica placement inside the cell) and the client brokers and the control plane use
//! to reach it. The broker itself (replication, logs) lives in `data-plane`, which
//! depends on this crate for [`image`] and the controller client.
//!
//! [`quota`] is the quota coordinator: it splits each tenant's cell-wide quotas among the
//! brokers from the usage they report with their heartbeats. [`usage`] keeps the brokers'
//! latest cumulative usage counters for the control plane's Metrics API.
//!
//! [`metrics`] records the controller's metrics through the `metrics` facade (names in
//! `docs/metrics.md`).
//!
//! Depends on `proto` for its API. Must never depend on `data-plane`, `control-plane` or
//! `billing`.

pub mod acl;
pub mod client;
pub mod config;
pub mod controller;
pub mod error;
pub mod image;
pub mod metrics;
pub mod node;
pub mod quota;
pub mod raft;
pub mod server;
pub mod usage;
pub mod watch;

pub use config::ControllerConfig;
pub use error::CellError;
pub use node::ControllerNode;
