//! The control plane: users, organisations, environments, logical clusters, service
//! accounts, API keys, plans and limits, and placement of clusters into cells, over REST
//! (axum) and gRPC (tonic), stored with sqlx (SQLite or PostgreSQL).
//!
//! Talks to cells only through the cell API in `proto`. Must never depend on
//! `data-plane` or `cells` directly.
//!
//! What is here so far:
//! - [`service`]: every rule of the Cloud API (validation, organisation scoping, paging,
//!   key pushes), called by both faces; the REST handlers and the gRPC services hold none.
//! - [`store`]: one set of migrations (`control-plane/migrations/`) for SQLite (default, a
//!   file in the data dir, WAL mode) and PostgreSQL; organisations, users, sessions,
//!   environments, service accounts, API keys, plans, cells and clusters.
//! - [`grpc`]: the gRPC face (tonic, `tributary.controlplane.v1`) of the same API: the
//!   same service calls, authentication, errors (mapped to `tonic::Status` in one place)
//!   and pagination.
//! - [`api`]: the REST API (axum): sign-up, login, bearer-token and Cloud-API-key auth,
//!   `/org/v2/environments`, `/iam/v2/service-accounts`, `/iam/v2/api-keys` and
//!   `/cmk/v2/clusters`, every route scoped to the caller's organisation.
//! - Kafka REST v3 (`api/kafka*.rs`, [`service::kafka`], [`service::kafka_groups`],
//!   [`service::kafka_acls`]): each cluster's topics, with an API key of that cluster,
//!   through its cell's controller; its consumer groups, their lag, and its ACLs through
//!   its brokers ([`kafka_client`], a bounded Kafka admin client speaking with the
//!   caller's key).
//! - [`plans`]: limits per cluster kind, versioned in the store, sent to cells.
//! - [`cells`], [`placement`], [`reconciler`], [`propagate`]: the cells' gRPC clients,
//!   two-random-choices placement, the restart-safe provisioning loop and API-key
//!   propagation.
//! - [`api::openapi`]: the OpenAPI document (`GET /openapi.json`), generated with utoipa
//!   from the one route table the REST router is built from.
//! - [`operator`]: the operator API on its own listener (static token): each cell's load,
//!   brokers and tenants.
//! - The Metrics API (`api/metrics.rs`, [`service::metrics`], [`usage`]): Confluent's
//!   Metrics API v2 query of each cluster's usage, from per-minute points the usage
//!   collector ([`usage::run`]) derives from the cells' `GetTenantUsage`.
//! - [`ratelimit`]: a bounded per-client-IP token bucket in front of sign-up and login.
//! - [`metrics`]: HTTP, cluster-phase and reconciler metrics (the `metrics` facade; the
//!   names are the contract in `docs/metrics.md`).
//! - [`error`]: the crate's one error type, mapped to HTTP status and Confluent's error
//!   envelope at the edge.

pub mod api;
pub mod cells;
pub mod error;
pub mod grpc;
pub mod kafka_client;
pub mod metrics;
pub mod operator;
pub mod placement;
pub mod plans;
pub mod propagate;
pub mod ratelimit;
pub mod reconciler;
pub mod scram;
pub mod service;
pub mod store;
pub mod usage;
mod util;

pub use api::{router, serve, ApiConfig, AppState};
pub use error::{Error, Result};
pub use store::Store;
