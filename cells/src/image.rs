//! The cell's metadata image: what the committed metadata records add up to.
//!
//! The controller's state machine and every broker hold one and change it only through
//! [`CellImage::apply`], with the records of committed Raft entries in commit order, so
//! all of them agree on the image at each offset. Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use proto::cell::v1::{
    metadata_record::Record, AclRecord, BrokerRecord, CredentialRecord, LogicalClusterRecord,
    MetadataRecord, PartitionRecord, TopicRecord,
};
use uuid::Uuid;

/// One topic and its partitions.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicImage {
    pub id: Uuid,
    /// The logical cluster (tenant) the topic belongs to.
    pub cluster_id: String,
    pub name: String,
    pub configs: BTreeMap<String, String>,
    pub partitions: BTreeMap<i32, PartitionRecord>,
}

/// The whole metadata of one cell at one offset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellImage {
    /// The Raft log index of the last entry applied (0 before any).
    pub offset: u64,
    pub brokers: BTreeMap<i32, BrokerRecord>,
    pub clusters: BTreeMap<String, LogicalClusterRecord>,
    pub credentials: HashMap<String, CredentialRecord>,
    pub topics: HashMap<Uuid, TopicImage>,
    /// (cluster id, topic name) → topic id.
    pub topic_names: HashMap<(String, String), Uuid>,
    pub acls: Vec<AclRecord>,
}

/// A topic id from its 16-byte wire form; `None` for anything else.
pub fn topic_uuid(bytes: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(bytes).ok()
}

impl CellImage {
    /// Applies the records of one committed entry. A snapshot (`is_snapshot`) replaces
    /// the image. Records naming things that do not exist are ignored: the controller
    /// validated them against the same image, so this only happens to a broker that
    /// joined mid-stream, and it then gets a snapshot.
    pub fn apply(&mut self, offset: u64, is_snapshot: bool, records: &[MetadataRecord]) {
        if is_snapshot {
            *self = CellImage::default();
        }
        for record in records {
            if let Some(r) = &record.record {
                self.apply_one(r);
            }
        }
        self.offset = offset;
    }

    fn apply_one(&mut self, record: &Record) {
        match record {
            Record::Broker(b) => {
                self.brokers.insert(b.broker_id, b.clone());
            }
            Record::BrokerState(s) => {
                if let Some(b) = self.brokers.get_mut(&s.broker_id) {
                    if b.broker_epoch == s.broker_epoch {
                        b.state = s.state;
                    }
                }
            }
            Record::LogicalCluster(c) => {
                self.clusters.insert(c.cluster_id.clone(), c.clone());
            }
            Record::RemoveLogicalCluster(c) => {
                self.clusters.remove(&c.cluster_id);
                self.credentials.retain(|_, k| k.cluster_id != c.cluster_id);
                self.acls.retain(|a| a.cluster_id != c.cluster_id);
                let ids: Vec<Uuid> = self
                    .topics
                    .values()
                    .filter(|t| t.cluster_id == c.cluster_id)
                    .map(|t| t.id)
                    .collect();
                for id in ids {
                    self.remove_topic(id);
                }
            }
            Record::Credential(k) => {
                self.credentials.insert(k.api_key.clone(), k.clone());
            }
            Record::RemoveCredential(k) => {
                self.credentials.remove(&k.api_key);
            }
            Record::Topic(t) => self.put_topic(t),
            Record::RemoveTopic(t) => {
                if let Some(id) = topic_uuid(&t.topic_id) {
                    self.remove_topic(id);
                }
            }
            Record::TopicConfig(c) => {
                if let Some(t) = topic_uuid(&c.topic_id).and_then(|id| self.topics.get_mut(&id)) {
                    for k in &c.remove {
                        t.configs.remove(k);
                    }
                    for (k, v) in &c.set {
                        t.configs.insert(k.clone(), v.clone());
                    }
                }
            }
            Record::Partition(p) => {
                if let Some(t) = topic_uuid(&p.topic_id).and_then(|id| self.topics.get_mut(&id)) {
                    t.partitions.insert(p.partition, p.clone());
                }
            }
            Record::Acl(a) => {
                if !self.acls.contains(a) {
                    self.acls.push(a.clone());
                }
            }
            Record::RemoveAcl(r) => {
                if let Some(a) = &r.acl {
                    self.acls.retain(|x| x != a);
                }
            }
        }
    }

    fn put_topic(&mut self, t: &TopicRecord) {
        let Some(id) = topic_uuid(&t.topic_id) else {
            return;
        };
        let configs = t
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let entry = self.topics.entry(id).or_insert_with(|| TopicImage {
            id,
            cluster_id: t.cluster_id.clone(),
            name: t.name.clone(),
            configs: BTreeMap::new(),
            partitions: BTreeMap::new(),
        });
        entry.configs = configs;
        self.topic_names
            .insert((t.cluster_id.clone(), t.name.clone()), id);
    }

    fn remove_topic(&mut self, id: Uuid) {
        if let Some(t) = self.topics.remove(&id) {
            self.topic_names.remove(&(t.cluster_id, t.name));
        }
    }

    /// The topic `name` of logical cluster `cluster_id`.
    pub fn topic(&self, cluster_id: &str, name: &str) -> Option<&TopicImage> {
        let id = self
            .topic_names
            .get(&(cluster_id.to_string(), name.to_string()))?;
        self.topics.get(id)
    }

    /// The records that rebuild this image from nothing (a snapshot).
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let wrap = |r: Record| MetadataRecord { record: Some(r) };
        let mut out = Vec::new();
        out.extend(self.brokers.values().cloned().map(Record::Broker).map(wrap));
        out.extend(
            self.clusters
                .values()
                .cloned()
                .map(Record::LogicalCluster)
                .map(wrap),
        );
        let mut keys: Vec<&CredentialRecord> = self.credentials.values().collect();
        keys.sort_by(|a, b| a.api_key.cmp(&b.api_key));
        out.extend(keys.into_iter().cloned().map(Record::Credential).map(wrap));
        let mut topics: Vec<&TopicImage> = self.topics.values().collect();
        topics.sort_by_key(|t| t.id);
        for t in topics {
            out.push(wrap(Record::Topic(TopicRecord {
                cluster_id: t.cluster_id.clone(),
                name: t.name.clone(),
                topic_id: t.id.as_bytes().to_vec(),
                configs: t
                    .configs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })));
            out.extend(
                t.partitions
                    .values()
                    .cloned()
                    .map(Record::Partition)
                    .map(wrap),
            );
        }
        out.extend(self.acls.iter().cloned().map(Record::Acl).map(wrap));
        out
    }

    /// Partitions hosted by `broker_id` (as leader or follower).
    pub fn partitions_of(
        &self,
        broker_id: i32,
    ) -> impl Iterator<Item = (&TopicImage, &PartitionRecord)> {
        self.topics.values().flat_map(move |t| {
            t.partitions
                .values()
                .filter(move |p| p.replicas.contains(&broker_id))
                .map(move |p| (t, p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{BrokerState, BrokerStateRecord, RemoveLogicalClusterRecord};

    fn rec(r: Record) -> MetadataRecord {
        MetadataRecord { record: Some(r) }
    }

    fn sample() -> (CellImage, Uuid) {
        let id = Uuid::new_v4();
        let mut image = CellImage::default();
        image.apply(
            1,
            false,
            &[
                rec(Record::Broker(BrokerRecord {
                    broker_id: 1,
                    broker_epoch: 7,
                    state: BrokerState::Fenced as i32,
                    ..Default::default()
                })),
                rec(Record::LogicalCluster(LogicalClusterRecord {
                    cluster_id: "lkc-a".into(),
                    ..Default::default()
                })),
                rec(Record::Topic(TopicRecord {
                    cluster_id: "lkc-a".into(),
                    name: "orders".into(),
                    topic_id: id.as_bytes().to_vec(),
                    configs: Default::default(),
                })),
                rec(Record::Partition(PartitionRecord {
                    topic_id: id.as_bytes().to_vec(),
                    partition: 0,
                    replicas: vec![1, 2, 3],
                    isr: vec![1, 2, 3],
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                })),
            ],
        );
        (image, id)
    }

    #[test]
    fn snapshot_records_rebuild_the_same_image() {
        let (image, _) = sample();
        let mut rebuilt = CellImage::default();
        rebuilt.apply(image.offset, true, &image.to_records());
        assert_eq!(rebuilt, image);
    }

    #[test]
    fn broker_state_needs_the_current_epoch() {
        let (mut image, _) = sample();
        let stale = BrokerStateRecord {
            broker_id: 1,
            broker_epoch: 6,
            state: BrokerState::Active as i32,
        };
        image.apply(2, false, &[rec(Record::BrokerState(stale))]);
        assert_eq!(image.brokers[&1].state, BrokerState::Fenced as i32);
        let current = BrokerStateRecord {
            broker_epoch: 7,
            ..stale
        };
        image.apply(3, false, &[rec(Record::BrokerState(current))]);
        assert_eq!(image.brokers[&1].state, BrokerState::Active as i32);
        assert_eq!(image.offset, 3);
    }

    #[test]
    fn removing_a_logical_cluster_removes_its_topics() {
        let (mut image, id) = sample();
        assert!(image.topic("lkc-a", "orders").is_some());
        assert_eq!(image.partitions_of(2).count(), 1);
        image.apply(
            2,
            false,
            &[rec(Record::RemoveLogicalCluster(
                RemoveLogicalClusterRecord {
                    cluster_id: "lkc-a".into(),
                },
            ))],
        );
        assert!(image.topic("lkc-a", "orders").is_none());
        assert!(!image.topics.contains_key(&id));
        assert!(image.clusters.is_empty());
    }
}
