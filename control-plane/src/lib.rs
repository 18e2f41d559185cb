//! The control plane: users, organisations, environments, logical clusters, service
//! accounts, API keys, plans and limits, and placement of clusters into cells, over REST
//! (axum) and gRPC (tonic), stored with sqlx (SQLite or PostgreSQL).
//!
//! Talks to cells only through the cell API in `proto`. Must never depend on
//! `data-plane` or `cells` directly. (Empty until its issue lands; see ARCHITECTURE.md.)
