//! Kafka's classic consumer group coordinator (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup / OffsetCommit / OffsetFetch / DescribeGroups / ListGroups / DeleteGroups),
//! with durable committed offsets.
//!
//! Layout (each file owns one concern):
//! - [`state`]: the per-group state machine (Kafka's `GroupMetadata` plus the transitions of
//!   its `GroupCoordinator`): members, generations, protocol selection, static membership,
//!   KIP-394 pending members, and the timers it asks for. No I/O, no clocks of its own.
//! - [`coordinator`]: [`GroupCoordinator`], the request API. Maps `kafka-protocol` requests
//!   to the state machine, version by version, runs the timers, long-polls Join/Sync.
//! - [`offsets`]: OffsetCommit / OffsetFetch / offset expiry and the admin APIs
//!   (Describe/List/DeleteGroups), all on the coordinator.
//! - [`store`]: [`GroupStore`], the durability boundary, with [`FileGroupStore`] (an
//!   append-only CRC-checked log with grouped fsyncs and snapshot compaction) and
//!   [`MemoryGroupStore`] (tests, and a stand-in for a replicated store).
//!
//! Group ids are opaque strings: the coordinator never parses them (a tenant layer prefixes
//! them before they get here).

mod coordinator;
mod offsets;
mod state;
mod store;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use coordinator::GroupCoordinator;
pub use state::GroupState;
pub use store::{FileGroupStore, GroupStore, Materialized, MemoryGroupStore, Record, StoreFuture};

/// Coordinator settings (Kafka's `group.*` and `offsets.retention.*` broker configs).
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub min_session_timeout: Duration,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout: Duration,
    /// How long the first rebalance of an empty group waits for more members
    /// (`group.initial.rebalance.delay.ms`). Zero completes it as soon as everyone joined.
    pub initial_rebalance_delay: Duration,
    /// How long committed offsets of an empty group are kept (`offsets.retention.minutes`).
    pub offsets_retention: Duration,
}

impl Default for GroupConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::from_secs(3),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What the coordinator needs to know about topics (to reject commits for partitions that
/// don't exist). `group` is the coordinator's key for the group, which says whose topics
/// count ([`crate::namespace`]).
pub trait TopicView: Send + Sync + 'static {
    fn partition_exists(&self, group: &str, topic: &str, partition: i32) -> bool;
}

/// Failures of the group subsystem itself (storage); protocol-level failures are Kafka
/// error codes in the responses, never this type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    #[error("group store I/O error: {0}")]
    Io(String),
    #[error("group store is closed or failed earlier and no longer accepts writes: {0}")]
    Unavailable(String),
}

impl From<std::io::Error> for GroupError {
    fn from(e: std::io::Error) -> Self {
        GroupError::Io(e.to_string())
    }
}
