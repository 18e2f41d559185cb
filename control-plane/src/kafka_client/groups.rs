//! Consumer groups through the Kafka protocol: FindCoordinator, ListGroups (every broker
//! lists the groups it coordinates), DescribeGroups, OffsetFetch (a group's committed
//! offsets) and ListOffsets (the partitions' log end offsets).

use super::{refused, retriable, Session};
use crate::error::{Error, Result};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, HashMap};

/// FindCoordinator's key type for a consumer group.
const GROUP_KEY: i8 = 0;
/// ListOffsets' timestamp asking for the log end offset (the high watermark).
const LATEST: i64 = -1;
/// Most attempts of one retriable group call (each waits a little longer).
const MAX_ATTEMPTS: u32 = 8;

/// A group as ListGroups and DescribeGroups show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    /// The broker coordinating it.
    pub coordinator: i32,
    /// Kafka's state name: `Stable`, `Empty`, `PreparingRebalance`, ...
    pub state: String,
    /// `consumer` for consumer groups; empty for a group that only commits offsets.
    pub protocol_type: String,
    /// The partition assignor (e.g. `range`) while the group is Stable, else empty.
    pub assignor: String,
}

/// A member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The partitions assigned to it (consumer protocol groups while Stable).
    pub assignment: Vec<(String, i32)>,
}

/// A group and its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: ListedGroup,
    pub members: Vec<Member>,
}

/// The partitions of a consumer protocol assignment (`version` then the message); an
/// assignment that does not decode counts as none.
fn decode_assignment(protocol_type: &str, bytes: &Bytes) -> Vec<(String, i32)> {
    if protocol_type != "consumer" || bytes.len() < 2 {
        return Vec::new();
    }
    let mut buf = bytes.clone();
    let version = buf.get_i16();
    match ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic.as_str().to_string(), *p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl Session {
    /// The address of `group`'s coordinator.
    async fn coordinator(&mut self, group: &str) -> Result<String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr = self.any_broker().await?;
            let (version, resp) = self
                .call(&addr, VersionRange { min: 1, max: 6 }, |v| {
                    let req = FindCoordinatorRequest::default().with_key_type(GROUP_KEY);
                    if v >= 4 {
                        req.with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
                    } else {
                        req.with_key(StrBytes::from_string(group.to_string()))
                    }
                })
                .await?;
            let (code, message, node, host, port) = if version >= 4 {
                match resp.coordinators.into_iter().next() {
                    Some(c) => (c.error_code, c.error_message, c.node_id, c.host, c.port),
                    None => {
                        return Err(Error::Unavailable(format!(
                            "broker {addr} answered FindCoordinator without a coordinator"
                        )))
                    }
                }
            } else {
                (
                    resp.error_code,
                    resp.error_message,
                    resp.node_id,
                    resp.host,
                    resp.port,
                )
            };
            if code == 0 {
                let coordinator = format!("{}:{port}", host.as_str());
                self.brokers.insert(node.0, coordinator.clone());
                return Ok(coordinator);
            }
            if retriable(code) && attempt < MAX_ATTEMPTS && self.backoff(attempt).await {
                continue;
            }
            let what = format!("FindCoordinator for group {group:?}");
            return Err(refused(&addr, code, message.as_deref(), &what));
        }
    }

    /// Every group of the cluster the key may describe, by id.
    pub async fn list_groups(&mut self) -> Result<Vec<ListedGroup>> {
        self.metadata(Some(Vec::new())).await?;
        let brokers: Vec<(i32, String)> = self.brokers.clone().into_iter().collect();
        let mut groups = BTreeMap::new();
        for (id, addr) in brokers {
            let (_, resp) = self
                .call(&addr, VersionRange { min: 0, max: 4 }, |_| {
                    ListGroupsRequest::default()
                })
                .await?;
            if resp.error_code != 0 {
                return Err(refused(&addr, resp.error_code, None, "ListGroups"));
            }
            if resp.groups.is_empty() {
                continue;
            }
            let ids: Vec<GroupId> = resp.groups.iter().map(|g| g.group_id.clone()).collect();
            let (_, described) = self
                .call(&addr, VersionRange { min: 0, max: 5 }, |_| {
                    DescribeGroupsRequest::default().with_groups(ids)
                })
                .await?;
            let assignors: HashMap<String, (String, String)> = described
                .groups
                .into_iter()
                .filter(|d| d.error_code == 0)
                .map(|d| {
                    (
                        d.group_id.as_str().to_string(),
                        (d.group_state.to_string(), d.protocol_data.to_string()),
                    )
                })
                .collect();
            for g in resp.groups {
                let group_id = g.group_id.as_str().to_string();
                let (state, assignor) = assignors
                    .get(&group_id)
                    .cloned()
                    .unwrap_or_else(|| (g.group_state.to_string(), String::new()));
                groups.insert(
                    group_id.clone(),
                    ListedGroup {
                        group_id,
                        coordinator: id,
                        state,
                        protocol_type: g.protocol_type.to_string(),
                        assignor,
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// `group` and its members; [`Error::NotFound`] when the cluster has no such group.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr = self.coordinator(group).await?;
            let (_, resp) = self
                .call(&addr, VersionRange { min: 0, max: 6 }, |_| {
                    DescribeGroupsRequest::default()
                        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))])
                })
                .await?;
            let Some(d) = resp.groups.into_iter().next() else {
                return Err(Error::Unavailable(format!(
                    "broker {addr} answered DescribeGroups without the group"
                )));
            };
            let code = d.error_code;
            let gone = code == ResponseError::GroupIdNotFound.code()
                || (code == 0 && d.group_state.as_str() == "Dead" && d.members.is_empty());
            if gone {
                return Err(Error::NotFound(format!(
                    "consumer group {group:?} not found in this cluster; list its groups with \
                     GET /kafka/v3/clusters/{{cluster_id}}/consumer-groups"
                )));
            }
            if code != 0 {
                if retriable(code) && attempt < MAX_ATTEMPTS && self.backoff(attempt).await {
                    continue;
                }
                let what = format!("DescribeGroups for group {group:?}");
                return Err(refused(&addr, code, d.error_message.as_deref(), &what));
            }
            let coordinator = self
                .brokers
                .iter()
                .find(|(_, a)| **a == addr)
                .map_or(-1, |(id, _)| *id);
            let protocol_type = d.protocol_type.to_string();
            let members = d
                .members
                .into_iter()
                .map(|m| Member {
                    assignment: decode_assignment(&protocol_type, &m.member_assignment),
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                })
                .collect();
            return Ok(GroupDescription {
                group: ListedGroup {
                    group_id: group.to_string(),
                    coordinator,
                    state: d.group_state.to_string(),
                    protocol_type,
                    assignor: d.protocol_data.to_string(),
                },
                members,
            });
        }
    }

    /// `group`'s committed offsets: (topic, partition) -> offset, for partitions with one.
    pub async fn committed_offsets(&mut self, group: &str) -> Result<BTreeMap<(String, i32), i64>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr = self.coordinator(group).await?;
            let (_, resp) = self
                .call(&addr, VersionRange { min: 2, max: 7 }, |_| {
                    OffsetFetchRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                        .with_topics(None)
                })
                .await?;
            let mut code = resp.error_code;
            let mut offsets = BTreeMap::new();
            for t in resp.topics {
                for p in t.partitions {
                    if p.error_code != 0 {
                        code = p.error_code;
                    } else if p.committed_offset >= 0 {
                        offsets.insert(
                            (t.name.as_str().to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                }
            }
            if code == 0 {
                return Ok(offsets);
            }
            if retriable(code) && attempt < MAX_ATTEMPTS && self.backoff(attempt).await {
                continue;
            }
            let what = format!("OffsetFetch for group {group:?}");
            return Err(refused(&addr, code, None, &what));
        }
    }

    /// The log end offset (high watermark) of each of `partitions` that still exists.
    pub async fn log_end_offsets(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), i64>> {
        let mut ends = HashMap::new();
        let mut pending: Vec<(String, i32)> = partitions.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let mut topics: Vec<String> = pending.iter().map(|(t, _)| t.clone()).collect();
            topics.sort();
            topics.dedup();
            let meta = self.metadata(Some(topics)).await?;
            // Leader of each pending partition; deleted topics and partitions drop out.
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            let mut retry = Vec::new();
            let mut last_error = None;
            for t in &meta.topics {
                let Some(name) = &t.name else { continue };
                let name = name.as_str();
                if t.error_code != 0 {
                    if retriable(t.error_code)
                        && t.error_code != ResponseError::UnknownTopicOrPartition.code()
                    {
                        last_error = Some(t.error_code);
                        retry.extend(pending.iter().filter(|(n, _)| n == name).cloned());
                    } else if t.error_code != ResponseError::UnknownTopicOrPartition.code() {
                        return Err(refused(
                            "",
                            t.error_code,
                            None,
                            &format!("Metadata for topic {name:?}"),
                        ));
                    }
                    continue;
                }
                for p in &t.partitions {
                    let key = (name.to_string(), p.partition_index);
                    if !pending.contains(&key) {
                        continue;
                    }
                    if p.error_code != 0 || p.leader_id.0 < 0 {
                        last_error = Some(p.error_code);
                        retry.push(key);
                    } else {
                        by_leader.entry(p.leader_id.0).or_default().push(key);
                    }
                }
            }
            for (leader, parts) in by_leader {
                let addr = self.broker(leader).await?;
                let mut grouped: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (t, p) in &parts {
                    grouped.entry(t.clone()).or_default().push(*p);
                }
                let (_, resp) = self
                    .call(&addr, VersionRange { min: 1, max: 7 }, |_| {
                        let topics = grouped
                            .into_iter()
                            .map(|(t, ps)| {
                                ListOffsetsTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(t)))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|p| {
                                                ListOffsetsPartition::default()
                                                    .with_partition_index(p)
                                                    .with_timestamp(LATEST)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect();
                        ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(topics)
                    })
                    .await?;
                for t in resp.topics {
                    for p in t.partitions {
                        let key = (t.name.as_str().to_string(), p.partition_index);
                        match p.error_code {
                            0 => {
                                ends.insert(key, p.offset);
                            }
                            c if c == ResponseError::UnknownTopicOrPartition.code() => {}
                            c if retriable(c) => {
                                last_error = Some(c);
                                retry.push(key);
                            }
                            c => {
                                let what = format!("ListOffsets for topic {:?}", key.0);
                                return Err(refused(&addr, c, None, &what));
                            }
                        }
                    }
                }
            }
            pending = retry;
            if pending.is_empty() {
                break;
            }
            let again = attempt < MAX_ATTEMPTS && self.backoff(attempt).await;
            if !again {
                let code = last_error.unwrap_or(ResponseError::LeaderNotAvailable.code());
                return Err(refused("", code, None, "ListOffsets"));
            }
        }
        Ok(ends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn assignments_decode_or_count_as_none() {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![0, 2]),
        ]);
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(1);
        a.encode(&mut buf, 1).unwrap();
        let bytes = buf.freeze();
        assert_eq!(
            decode_assignment("consumer", &bytes),
            vec![("orders".to_string(), 0), ("orders".to_string(), 2)]
        );
        assert!(decode_assignment("connect", &bytes).is_empty());
        assert!(decode_assignment("consumer", &Bytes::from_static(&[0, 1, 0xff])).is_empty());
        assert!(decode_assignment("consumer", &Bytes::new()).is_empty());
    }
}
