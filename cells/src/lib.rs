//! A cell: a group of brokers with its own Raft metadata quorum (openraft), replication
//! inside the cell, broker health and automated mitigation.
//!
//! Depends on `proto` for its API and on `data-plane` for the broker it runs. Must never
//! depend on `control-plane` or `billing`. (Empty until its issue lands; see ARCHITECTURE.md.)
