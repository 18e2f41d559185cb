//! Wire contracts between Tributary's services: the gRPC services and messages (tonic +
//! prost) that the control plane, the cell controllers and the brokers speak.
//!
//! Owns only generated types and their thin conversions. Must never depend on any other
//! Tributary crate: every service depends on `proto`, never the other way round.
//! (Empty until the control plane and cells land; see ARCHITECTURE.md.)
