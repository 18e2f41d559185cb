//! The crate's one error enum, and its gRPC status at the edge. Kafka error codes that
//! travel inside responses (per topic, per partition) are in [`codes`].
//!
//! Must never depend on the controller or the server: everything else maps into this.

use tonic::{Code, Status};

/// The metadata key a follower's `unavailable` answer names the leader's gRPC address in.
pub const LEADER_KEY: &str = "tributary-leader";

/// Kafka error codes the controller answers with.
pub mod codes {
    pub const NONE: i32 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i32 = 6;
    pub const INVALID_TOPIC_EXCEPTION: i32 = 17;
    pub const TOPIC_ALREADY_EXISTS: i32 = 36;
    pub const INVALID_PARTITIONS: i32 = 37;
    pub const INVALID_REPLICATION_FACTOR: i32 = 38;
    pub const NOT_CONTROLLER: i32 = 41;
    pub const INVALID_REQUEST: i32 = 42;
    pub const POLICY_VIOLATION: i32 = 44;
    pub const FENCED_LEADER_EPOCH: i32 = 74;
    pub const STALE_BROKER_EPOCH: i32 = 77;
    pub const THROTTLING_QUOTA_EXCEEDED: i32 = 89;
    pub const INVALID_UPDATE_VERSION: i32 = 95;
    pub const UNKNOWN_TOPIC_ID: i32 = 100;
    pub const INELIGIBLE_REPLICA: i32 = 107;
}

#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// This voter is not the Raft leader; `leader` is the leader's gRPC address if known.
    #[error("this controller is not the leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader { leader: Option<String> },
    #[error("broker {0} is not registered; register first")]
    UnknownBroker(i32),
    #[error("broker {broker_id} epoch {epoch} is stale (current {current}); register again")]
    StaleBrokerEpoch {
        broker_id: i32,
        epoch: i64,
        current: i64,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Raft: {0}")]
    Raft(String),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    /// A call to a controller failed (client side); the status is the last one seen.
    #[error("controller call failed: {0}")]
    Rpc(Status),
    #[error("configuration: {0}")]
    Config(String),
}

impl From<CellError> for Status {
    fn from(e: CellError) -> Status {
        let msg = e.to_string();
        match e {
            CellError::NotLeader { leader } => {
                let mut s = Status::unavailable(msg);
                if let Ok(v) = leader.unwrap_or_default().parse() {
                    s.metadata_mut().insert(LEADER_KEY, v);
                }
                s
            }
            CellError::UnknownBroker(_) | CellError::NotFound(_) => Status::not_found(msg),
            CellError::StaleBrokerEpoch { .. } => Status::failed_precondition(msg),
            CellError::InvalidArgument(_) | CellError::Config(_) => Status::invalid_argument(msg),
            CellError::Raft(_) => Status::unavailable(msg),
            CellError::Io(_) => Status::internal(msg),
            CellError::Rpc(s) => s,
        }
    }
}

impl CellError {
    /// Whether a client should try again (elsewhere): leader changes and unreachable voters.
    pub fn is_retriable(&self) -> bool {
        match self {
            CellError::NotLeader { .. } | CellError::Raft(_) => true,
            CellError::Rpc(s) => matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
            ),
            _ => false,
        }
    }
}
