//! Wire contracts between Tributary's services and their clients: the gRPC services and
//! messages (tonic + prost) that the control plane, the cell controllers, the brokers and
//! API users speak.
//!
//! Owns only generated types. Must never depend on any other Tributary crate: every
//! service depends on `proto`, never the other way round. The `.proto` sources are in
//! `proto/proto/`; `build.rs` compiles them with a vendored `protoc`.

/// The control plane's gRPC face (`tributary.controlplane.v1`): sign-up, login,
/// environments, clusters, service accounts and API keys, mirroring its REST resources.
pub mod controlplane {
    pub mod v1 {
        tonic::include_proto!("tributary.controlplane.v1");
    }
}

/// The cell API (`tributary.cell.v1`): metadata records, the broker-facing RPCs, the
/// control-plane RPCs and the controllers' Raft transport.
pub mod cell {
    pub mod v1 {
        tonic::include_proto!("tributary.cell.v1");
    }
}
