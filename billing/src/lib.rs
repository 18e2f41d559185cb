//! Billing: exact per-tenant usage metering with idempotency keys, and pricing of that
//! usage into cost lines.
//!
//! Consumes usage events; must never depend on `data-plane` internals or `cells`.
//! (Empty until its issue lands; see ARCHITECTURE.md.)
