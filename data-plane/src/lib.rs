//! The Tributary broker: the Kafka wire protocol, the durable segmented log, topics,
//! idempotent produce, fetch, admin APIs and classic consumer groups.
//!
//! Request flow (see `ARCHITECTURE.md`): [`server`] accepts connections on a pre-bound
//! listener -> [`connection`] reads length-prefixed frames under a hard size bound ->
//! [`codec`] decodes them with the `kafka-protocol` crate -> [`handler`] dispatches each
//! request to the broker state ([`broker::Broker`]) -> responses go back in request order.
//!
//! This crate owns everything a single broker process needs to serve clients. It must never
//! depend on the control plane, billing or loadtest crates: the control plane talks to
//! brokers only through the cell's metadata, never by linking broker code.

pub mod config;
pub mod error;
pub mod log;
pub mod group;
