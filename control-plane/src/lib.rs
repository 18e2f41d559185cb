//! The control plane: users, organisations, environments, logical clusters, service
//! accounts, API keys, plans and limits, and placement of clusters into cells, over REST
//! (axum) and gRPC (tonic), stored with sqlx (SQLite or PostgreSQL).
//!
//! Talks to cells only through the cell API in `proto`. Must never depend on
//! `data-plane` or `cells` directly.
//!
//! What is here so far (the foundation):
//! - [`store`]: one set of migrations (`control-plane/migrations/`) for SQLite (default, a
//!   file in the data dir, WAL mode) and PostgreSQL; organisations, users, sessions and
//!   environments.
//! - [`api`]: the REST API (axum): sign-up, login, bearer-token auth and
//!   `/org/v2/environments`, every route scoped to the caller's organisation.
//! - [`ratelimit`]: a bounded per-client-IP token bucket in front of sign-up and login.
//! - [`error`]: the crate's one error type, mapped to HTTP status and Confluent's error
//!   envelope at the edge.
//!
//! Still to come: clusters, service accounts, API keys, gRPC, provisioning into cells.

pub mod api;
pub mod error;
pub mod ratelimit;
pub mod store;
mod util;

pub use api::{router, serve, ApiConfig, AppState};
pub use error::{Error, Result};
pub use store::Store;
