//! The cell controller's metrics, through the `metrics` facade (the binary installs the
//! Prometheus recorder and serves `/metrics`; without it these calls are no-ops). Names
//! and labels are the contract in `docs/metrics.md`; they follow Kafka's controller
//! metrics (`ActiveControllerCount`, `OfflinePartitionsCount`, ...).
//!
//! - Raft state of this voter (term, leader, applied index), every [`GAUGE_EVERY`].
//! - What the metadata image adds up to (brokers by state, topics, partitions, offline and
//!   under-replicated partitions, ...), reported by the active controller only and 0 on
//!   the other voters, as Kafka does, so a sum over a cell's voters is the cell's value.
//! - Events seen by the active controller: records committed and the commit latency, ISR
//!   shrinks and expands, partition leader changes, broker registrations and fencings.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use openraft::ServerState;
use proto::cell::v1::{metadata_record::Record, BrokerState, MetadataRecord};
use tokio_util::sync::CancellationToken;

use crate::controller::Controller;
use crate::image::{topic_uuid, CellImage};

/// How often the gauges are recomputed.
pub const GAUGE_EVERY: Duration = Duration::from_secs(1);

pub const RAFT_TERM: &str = "tributary_controller_raft_term";
pub const RAFT_LEADER_ID: &str = "tributary_controller_raft_leader_id";
pub const RAFT_LAST_APPLIED: &str = "tributary_controller_raft_last_applied_index";
pub const RAFT_LAST_LOG: &str = "tributary_controller_raft_last_log_index";
pub const ACTIVE: &str = "tributary_controller_active";
pub const BROKERS: &str = "tributary_controller_brokers";
pub const LOGICAL_CLUSTERS: &str = "tributary_controller_logical_clusters";
pub const TOPICS: &str = "tributary_controller_topics";
pub const PARTITIONS: &str = "tributary_controller_partitions";
pub const OFFLINE: &str = "tributary_controller_offline_partitions";
pub const UNDER_REPLICATED: &str = "tributary_controller_under_replicated_partitions";
pub const IMBALANCE: &str = "tributary_controller_preferred_replica_imbalance";
pub const RECORDS_COMMITTED: &str = "tributary_controller_metadata_records_committed_total";
pub const COMMIT_LATENCY: &str = "tributary_controller_metadata_commit_latency_seconds";
pub const ISR_CHANGES: &str = "tributary_controller_isr_changes_total";
pub const LEADER_CHANGES: &str = "tributary_controller_partition_leader_changes_total";
pub const REGISTRATIONS: &str = "tributary_controller_broker_registrations_total";
pub const FENCINGS: &str = "tributary_controller_broker_fencings_total";

const BROKER_STATES: [BrokerState; 4] = [
    BrokerState::Active,
    BrokerState::Fenced,
    BrokerState::ControlledShutdown,
    BrokerState::Draining,
];

/// Registers help texts (call once the recorder is installed).
pub fn describe() {
    describe_gauge!(RAFT_TERM, "Current Raft term of this voter.");
    describe_gauge!(
        RAFT_LEADER_ID,
        "Node id of the Raft leader as this voter knows it; -1 when it knows none."
    );
    describe_gauge!(
        RAFT_LAST_APPLIED,
        "Raft log index of the last entry applied to this voter's metadata image (the metadata offset)."
    );
    describe_gauge!(
        RAFT_LAST_LOG,
        "Raft log index of the last entry in this voter's log."
    );
    describe_gauge!(
        ACTIVE,
        "1 on the voter that leads the cell (the active controller), 0 elsewhere."
    );
    describe_gauge!(
        BROKERS,
        "Registered brokers by state (active, fenced, controlled_shutdown, draining); active controller only."
    );
    describe_gauge!(
        LOGICAL_CLUSTERS,
        "Logical clusters (tenants) in the cell; active controller only."
    );
    describe_gauge!(
        TOPICS,
        "Topics in the cell, every tenant; active controller only."
    );
    describe_gauge!(
        PARTITIONS,
        "Partitions in the cell, every tenant; active controller only."
    );
    describe_gauge!(
        OFFLINE,
        "Partitions without a leader; active controller only."
    );
    describe_gauge!(
        UNDER_REPLICATED,
        "Partitions whose committed ISR is smaller than their replica set; active controller only."
    );
    describe_gauge!(
        IMBALANCE,
        "Partitions not led by their preferred (first) replica; active controller only."
    );
    describe_counter!(
        RECORDS_COMMITTED,
        "Metadata records committed through Raft by this voter while it led."
    );
    describe_histogram!(
        COMMIT_LATENCY,
        metrics::Unit::Seconds,
        "Time to commit and apply one metadata entry through Raft (the leader's client_write)."
    );
    describe_counter!(
        ISR_CHANGES,
        "Committed ISR changes by direction (shrink, expand), counted by the active controller."
    );
    describe_counter!(
        LEADER_CHANGES,
        "Committed partition leader changes (elections, failovers, moves), counted by the active controller."
    );
    describe_counter!(
        REGISTRATIONS,
        "Broker registrations with a new incarnation (a broker process started), counted by the active controller."
    );
    describe_counter!(
        FENCINGS,
        "Brokers fenced because they missed their session, counted by the active controller."
    );
}

/// Sets the gauges every [`GAUGE_EVERY`] until `shutdown`.
pub async fn run(controller: Arc<Controller>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(GAUGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let m = controller.raft().metrics().borrow().clone();
        gauge!(RAFT_TERM).set(m.current_term as f64);
        gauge!(RAFT_LEADER_ID).set(m.current_leader.map_or(-1.0, |id| id as f64));
        gauge!(RAFT_LAST_APPLIED).set(m.last_applied.map_or(0.0, |l| l.index as f64));
        gauge!(RAFT_LAST_LOG).set(m.last_log_index.unwrap_or(0) as f64);
        let active = m.state == ServerState::Leader;
        gauge!(ACTIVE).set(if active { 1.0 } else { 0.0 });
        let stats = if active {
            ImageStats::of(&controller.hub().image())
        } else {
            ImageStats::default()
        };
        stats.publish();
    }
}

/// What the image adds up to.
#[derive(Default, Debug, PartialEq)]
pub(crate) struct ImageStats {
    brokers: BTreeMap<&'static str, u64>,
    clusters: u64,
    topics: u64,
    partitions: u64,
    offline: u64,
    under_replicated: u64,
    imbalance: u64,
}

fn state_label(s: BrokerState) -> &'static str {
    match s {
        BrokerState::Active => "active",
        BrokerState::Fenced => "fenced",
        BrokerState::ControlledShutdown => "controlled_shutdown",
        BrokerState::Draining => "draining",
        _ => "unknown",
    }
}

impl ImageStats {
    pub(crate) fn of(image: &CellImage) -> ImageStats {
        let mut s = ImageStats {
            clusters: image.clusters.len() as u64,
            topics: image.topics.len() as u64,
            ..ImageStats::default()
        };
        for b in image.brokers.values() {
            let state = BrokerState::try_from(b.state).unwrap_or(BrokerState::Unspecified);
            *s.brokers.entry(state_label(state)).or_default() += 1;
        }
        for p in image.topics.values().flat_map(|t| t.partitions.values()) {
            s.partitions += 1;
            if p.leader < 0 {
                s.offline += 1;
            }
            if p.isr.len() < p.replicas.len() {
                s.under_replicated += 1;
            }
            if p.leader >= 0 && p.replicas.first() != Some(&p.leader) {
                s.imbalance += 1;
            }
        }
        s
    }

    fn publish(&self) {
        for state in BROKER_STATES {
            let label = state_label(state);
            let n = self.brokers.get(label).copied().unwrap_or(0);
            gauge!(BROKERS, "state" => label).set(n as f64);
        }
        gauge!(LOGICAL_CLUSTERS).set(self.clusters as f64);
        gauge!(TOPICS).set(self.topics as f64);
        gauge!(PARTITIONS).set(self.partitions as f64);
        gauge!(OFFLINE).set(self.offline as f64);
        gauge!(UNDER_REPLICATED).set(self.under_replicated as f64);
        gauge!(IMBALANCE).set(self.imbalance as f64);
    }
}

/// ISR shrinks and expands and leader changes that `records` make to `image` (the image
/// they were validated against).
#[derive(Default, Debug, PartialEq)]
pub(crate) struct PartitionChanges {
    pub shrinks: u64,
    pub expands: u64,
    pub leader_changes: u64,
}

impl PartitionChanges {
    pub(crate) fn of(image: &CellImage, records: &[MetadataRecord]) -> PartitionChanges {
        let mut c = PartitionChanges::default();
        for r in records {
            let Some(Record::Partition(new)) = &r.record else {
                continue;
            };
            let Some(old) = topic_uuid(&new.topic_id)
                .and_then(|id| image.topics.get(&id))
                .and_then(|t| t.partitions.get(&new.partition))
            else {
                continue; // a new partition: no change of an existing one
            };
            if old.isr.iter().any(|b| !new.isr.contains(b)) {
                c.shrinks += 1;
            }
            if new.isr.iter().any(|b| !old.isr.contains(b)) {
                c.expands += 1;
            }
            if old.leader != new.leader {
                c.leader_changes += 1;
            }
        }
        c
    }

    pub(crate) fn publish(&self) {
        if self.shrinks > 0 {
            counter!(ISR_CHANGES, "direction" => "shrink").increment(self.shrinks);
        }
        if self.expands > 0 {
            counter!(ISR_CHANGES, "direction" => "expand").increment(self.expands);
        }
        if self.leader_changes > 0 {
            counter!(LEADER_CHANGES).increment(self.leader_changes);
        }
    }
}

/// One committed entry of `records` records, which took `elapsed`.
pub(crate) fn committed(records: usize, elapsed: Duration) {
    counter!(RECORDS_COMMITTED).increment(records as u64);
    histogram!(COMMIT_LATENCY).record(elapsed.as_secs_f64());
}

pub(crate) fn broker_registered() {
    counter!(REGISTRATIONS).increment(1);
}

pub(crate) fn broker_fenced() {
    counter!(FENCINGS).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{BrokerRecord, PartitionRecord, TopicRecord};
    use uuid::Uuid;

    fn wrap(r: Record) -> MetadataRecord {
        MetadataRecord { record: Some(r) }
    }

    fn partition(id: Uuid, index: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> Record {
        Record::Partition(PartitionRecord {
            topic_id: id.as_bytes().to_vec(),
            partition: index,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            ..PartitionRecord::default()
        })
    }

    fn image() -> (CellImage, Uuid) {
        let id = Uuid::new_v4();
        let mut image = CellImage::default();
        let mut records = vec![wrap(Record::Topic(TopicRecord {
            topic_id: id.as_bytes().to_vec(),
            cluster_id: "lkc-1".into(),
            name: "t".into(),
            ..TopicRecord::default()
        }))];
        records.push(wrap(partition(id, 0, 1, &[1, 2, 3], &[1, 2, 3])));
        records.push(wrap(partition(id, 1, 3, &[2, 3, 1], &[3])));
        records.push(wrap(partition(id, 2, -1, &[3, 1, 2], &[])));
        for (broker, state) in [(1, BrokerState::Active), (2, BrokerState::Fenced)] {
            records.push(wrap(Record::Broker(BrokerRecord {
                broker_id: broker,
                state: state as i32,
                ..BrokerRecord::default()
            })));
        }
        image.apply(1, false, &records);
        (image, id)
    }

    #[test]
    fn image_stats_count_offline_under_replicated_and_imbalanced_partitions() {
        let (image, _) = image();
        let s = ImageStats::of(&image);
        assert_eq!(s.topics, 1);
        assert_eq!(s.partitions, 3);
        assert_eq!(s.offline, 1);
        assert_eq!(s.under_replicated, 2);
        assert_eq!(
            s.imbalance, 1,
            "partition 1 is led by 3, not its preferred 2"
        );
        assert_eq!(s.brokers.get("active"), Some(&1));
        assert_eq!(s.brokers.get("fenced"), Some(&1));
    }

    #[test]
    fn partition_changes_are_isr_shrinks_expands_and_leader_moves() {
        let (image, id) = image();
        let records = vec![
            wrap(partition(id, 0, 2, &[1, 2, 3], &[2, 3])), // shrink + new leader
            wrap(partition(id, 1, 3, &[2, 3, 1], &[3, 2])), // expand
            wrap(partition(id, 2, 3, &[3, 1, 2], &[3])),    // expand + elected
            wrap(partition(id, 7, 1, &[1], &[1])),          // new partition: not a change
        ];
        let c = PartitionChanges::of(&image, &records);
        assert_eq!(
            c,
            PartitionChanges {
                shrinks: 1,
                expands: 2,
                leader_changes: 2
            }
        );
    }
}
