//! The broker's error type, mapped at the edge to Kafka error codes.
//!
//! Handlers return [`Error`]; the per-partition or per-request error code that goes on
//! the wire is [`Error::kafka_code`]. Module-level errors (log, groups) convert into it.

use kafka_protocol::ResponseError;

/// Every way a broker operation can fail, with the Kafka error it surfaces as.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    #[error("topic already exists: {0}")]
    TopicAlreadyExists(String),
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("unsupported record format: {0}")]
    UnsupportedForMessageFormat(String),
    #[error("record batch too large: {0}")]
    MessageTooLarge(String),
    #[error("offset out of range: {0}")]
    OffsetOutOfRange(String),
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error("out of order sequence number: {0}")]
    OutOfOrderSequenceNumber(String),
    #[error("producer fenced: {0}")]
    InvalidProducerEpoch(String),
    #[error("unknown producer id: {0}")]
    UnknownProducerId(String),
    #[error("invalid required acks: {0}")]
    InvalidRequiredAcks(i16),
    #[error("storage error: {0}")]
    Storage(#[from] std::io::Error),
    #[error("broker is shutting down")]
    ShuttingDown,
    #[error("this broker does not lead {0}")]
    NotLeaderOrFollower(String),
    #[error("fenced leader epoch: {0}")]
    FencedLeaderEpoch(String),
    #[error("unknown leader epoch: {0}")]
    UnknownLeaderEpoch(String),
    #[error("not enough in-sync replicas: {0}")]
    NotEnoughReplicas(String),
    #[error("timed out: {0}")]
    RequestTimedOut(String),
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    #[error("the cell controller is unavailable: {0}")]
    ControllerUnavailable(String),
    #[error("not authorized to access topic: {0}")]
    TopicAuthorization(String),
    #[error("not authorized to access group: {0}")]
    GroupAuthorization(String),
    #[error("not authorized to {0} on the cluster")]
    ClusterAuthorization(String),
    /// An error the cell controller answered with, as a Kafka error code and message.
    #[error("{message}")]
    Controller { code: i16, message: String },
    /// A KIP-599 partition mutation quota is used up: retry after `throttle_ms`.
    #[error("{message}")]
    Throttled { message: String, throttle_ms: i32 },
}

impl Error {
    /// The Kafka error this maps to on the wire.
    pub fn kafka_error(&self) -> ResponseError {
        use ResponseError as K;
        match self {
            Error::UnknownTopicOrPartition(_) => K::UnknownTopicOrPartition,
            Error::TopicAlreadyExists(_) => K::TopicAlreadyExists,
            Error::InvalidTopic(_) => K::InvalidTopicException,
            Error::InvalidPartitions(_) => K::InvalidPartitions,
            Error::InvalidReplicationFactor(_) => K::InvalidReplicationFactor,
            Error::InvalidConfig(_) => K::InvalidConfig,
            Error::InvalidRequest(_) => K::InvalidRequest,
            Error::CorruptMessage(_) => K::CorruptMessage,
            Error::InvalidRecord(_) => K::InvalidRecord,
            Error::UnsupportedForMessageFormat(_) => K::UnsupportedForMessageFormat,
            Error::MessageTooLarge(_) => K::MessageTooLarge,
            Error::OffsetOutOfRange(_) => K::OffsetOutOfRange,
            Error::InvalidTimestamp(_) => K::InvalidTimestamp,
            Error::OutOfOrderSequenceNumber(_) => K::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch(_) => K::InvalidProducerEpoch,
            Error::UnknownProducerId(_) => K::UnknownProducerId,
            Error::InvalidRequiredAcks(_) => K::InvalidRequiredAcks,
            Error::Storage(_) => K::KafkaStorageError,
            Error::ShuttingDown => K::NotLeaderOrFollower,
            Error::NotLeaderOrFollower(_) => K::NotLeaderOrFollower,
            Error::FencedLeaderEpoch(_) => K::FencedLeaderEpoch,
            Error::UnknownLeaderEpoch(_) => K::UnknownLeaderEpoch,
            Error::NotEnoughReplicas(_) => K::NotEnoughReplicas,
            Error::RequestTimedOut(_) => K::RequestTimedOut,
            Error::PolicyViolation(_) => K::PolicyViolation,
            // Clients retry this one, after refreshing metadata.
            Error::ControllerUnavailable(_) => K::NotController,
            Error::TopicAuthorization(_) => K::TopicAuthorizationFailed,
            Error::GroupAuthorization(_) => K::GroupAuthorizationFailed,
            Error::ClusterAuthorization(_) => K::ClusterAuthorizationFailed,
            Error::Controller { code, .. } => {
                ResponseError::try_from_code(*code).unwrap_or(K::UnknownServerError)
            }
            Error::Throttled { .. } => K::ThrottlingQuotaExceeded,
        }
    }

    /// The throttle time a client should honour for this error (0 for most).
    pub fn throttle_ms(&self) -> i32 {
        match self {
            Error::Throttled { throttle_ms, .. } => *throttle_ms,
            _ => 0,
        }
    }

    /// The numeric Kafka error code.
    pub fn kafka_code(&self) -> i16 {
        self.kafka_error().code()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
