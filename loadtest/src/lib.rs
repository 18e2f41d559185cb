//! `loadtest`: an OpenMessaging-Benchmark-style load generator for Kafka-compatible brokers, built on
//! librdkafka (the `rdkafka` crate) so it measures what real clients see.
//!
//! Map of the crate, one concern per module:
//! - [`workload`]: the run spec (YAML + flags), validation, tenants and credentials;
//! - [`clients`]: librdkafka configuration per tenant (PLAINTEXT or SASL/PLAIN) and topic creation;
//! - [`pacer`]: drift-free rate limiting;
//! - [`producer`] / [`consumer`]: the per-client threads and the payload timestamp;
//! - [`stats`]: histograms, counters and rate math; [`collector`]: live windows -> results;
//! - [`run`]: orchestration and the progress line; [`result`]: JSON result and summary text;
//! - [`limits`]: what the machine can do (loopback TCP, disk write and fsync) for ratios;
//!   [`commit_floor`]: the disk's acks=-1 latency floor, taken beside a latency run;
//! - [`timeline`]: acks per 100 ms and the longest gap (failover); [`verify`]: record ids and the read-back;
//! - [`provision`]: topics for many tenants with bounded concurrency;
//! - [`plot`]: PNG charts from result files; [`mock`]: librdkafka's in-process mock cluster for self-tests.

pub mod clients;
pub mod collector;
pub mod commit_floor;
pub mod consumer;
pub mod limits;
pub mod mock;
pub mod pacer;
pub mod plot;
pub mod producer;
pub mod provision;
pub mod result;
pub mod run;
pub mod stats;
pub mod timeline;
pub mod verify;
pub mod workload;
