//! The Tributary broker: the Kafka wire protocol, the durable segmented log, topics,
//! idempotent produce, fetch, admin APIs and classic consumer groups; in a cell, many
//! tenants at once ([`namespace`]: each connection bound to one logical cluster by SASL
//! ([`auth`]), every request authorized ([`authz`])).
//!
//! Request flow (see `ARCHITECTURE.md`): [`server`] accepts connections on a pre-bound
//! listener (on SASL_SSL, [`tls`] does the handshake first) -> [`connection`] reads length-prefixed frames under a hard size bound ->
//! [`codec`] decodes them with the `kafka-protocol` crate -> [`handler`] dispatches each
//! request to the broker state ([`broker::Broker`]) -> responses go back in request order.
//!
//! This crate owns everything a single broker process needs to serve clients. It must never
//! depend on the control plane, billing or loadtest crates: the control plane talks to
//! brokers only through the cell's metadata, never by linking broker code.

pub mod alloc_guard;
pub mod auth;
pub mod authz;
pub mod broker;
pub mod cell;
pub mod codec;
pub mod config;
pub mod connection;
pub mod error;
pub mod flusher;
pub mod fsutil;
pub mod group;
pub mod handler;
pub mod log;
pub mod metrics;
pub mod namespace;
pub mod partition;
pub mod producer_ids;
pub mod producer_state;
pub mod quota;
pub mod replica_set;
pub mod sasl;
pub mod scram;
pub mod server;
pub mod throttle;
pub mod tls;
pub mod topic_config;
pub mod usage;
