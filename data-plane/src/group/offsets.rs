//! Committed offsets and the group admin APIs, on [`GroupCoordinator`].
//!
//! OffsetCommit validates against the group (Kafka's classic `validateOffsetCommit`), checks
//! every partition against the [`TopicView`](super::TopicView), appends the records to the
//! store under the groups lock (store order = commit order), and answers only once they are
//! durable. The commit becomes visible to OffsetFetch at that moment too (never a value that
//! could vanish in a crash); a per-partition sequence keeps a slower-finishing earlier commit
//! from overwriting a later one, and the group incarnation keeps a commit that raced a
//! DeleteGroups from resurrecting offsets.
//!
//! Expiry follows KIP-211: offsets of an empty consumer group expire `offsets_retention`
//! after it became empty; those of a standalone group (no protocol type) that long after
//! their commit; v2-4 `retention_time_ms` sets an explicit expiry. Empty groups without
//! offsets are removed.

use kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult,
    describe_groups_response::{DescribedGroup, DescribedGroupMember},
    list_groups_response::ListedGroup,
    offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
    offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::ResponseError as E;

use super::coordinator::{code, sb, GroupCoordinator};
use super::state::{CommittedOffset, Group, GroupState};
use super::store::{Record, StoreFuture};
use super::GroupError;

/// Kafka's `offset.metadata.max.bytes` default.
const MAX_METADATA: usize = 4096;
/// Authorized operations of a group with no authorizer: READ(3), DELETE(6), DESCRIBE(8).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Committed offsets of one group for the requested topics (`None` = all it has).
type FetchedTopics = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;
/// Per topic, per partition: the offset to commit, or why not.
type CommitResults = Vec<(String, Vec<(i32, Result<CommittedOffset, E>)>)>;

impl GroupCoordinator {
    pub async fn offset_commit(
        &self,
        req: OffsetCommitRequest,
        version: i16,
    ) -> OffsetCommitResponse {
        let group_id = req.group_id.0.as_str();
        let instance_id = req.group_instance_id.as_ref().map(|s| s.as_str());
        let generation = req.generation_id_or_member_epoch;
        let ctx = self.inner.ctx();
        let expire_ts_ms = (version <= 4 && req.retention_time_ms >= 0)
            .then(|| ctx.now_ms.saturating_add(req.retention_time_ms));
        // Per partition: the error, or the offset to commit.
        let mut results: CommitResults = Vec::new();
        let mut pending = None;
        {
            let mut groups = self.inner.lock();
            let group_error = if group_id.is_empty() {
                Err(E::InvalidGroupId)
            } else {
                match groups.map.get_mut(group_id) {
                    Some(g) => {
                        g.validate_commit(req.member_id.as_str(), instance_id, generation, &ctx)
                    }
                    None if generation < 0 => {
                        groups
                            .map
                            .insert(group_id.to_string(), Group::new(group_id, ctx.now_ms));
                        Ok(())
                    }
                    // v9+ know GROUP_ID_NOT_FOUND; older clients expect ILLEGAL_GENERATION.
                    None if version >= 9 => Err(E::GroupIdNotFound),
                    None => Err(E::IllegalGeneration),
                }
            };
            groups.commit_seq += 1;
            let seq = groups.commit_seq;
            let mut records = Vec::new();
            for t in &req.topics {
                let topic = t.name.0.as_str();
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let r = if let Err(e) = group_error {
                            Err(e)
                        } else if !self.inner.topics.partition_exists(
                            group_id,
                            topic,
                            p.partition_index,
                        ) {
                            Err(E::UnknownTopicOrPartition)
                        } else if p.committed_metadata.as_ref().map_or(0, |m| m.len())
                            > MAX_METADATA
                        {
                            Err(E::OffsetMetadataTooLarge)
                        } else {
                            let o = CommittedOffset {
                                offset: p.committed_offset,
                                leader_epoch: if version >= 6 {
                                    p.committed_leader_epoch
                                } else {
                                    -1
                                },
                                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                                commit_ts_ms: ctx.now_ms,
                                expire_ts_ms,
                                seq,
                            };
                            records.push(Record::Offset {
                                group: group_id.to_string(),
                                topic: topic.to_string(),
                                partition: p.partition_index,
                                offset: o.offset,
                                leader_epoch: o.leader_epoch,
                                metadata: o.metadata.clone(),
                                commit_ts_ms: o.commit_ts_ms,
                                expire_ts_ms: o.expire_ts_ms,
                            });
                            Ok(o)
                        };
                        (p.partition_index, r)
                    })
                    .collect();
                results.push((topic.to_string(), parts));
            }
            if !records.is_empty() {
                let incarnation = groups.map.get(group_id).map(|g| g.incarnation);
                pending = Some((self.inner.store.append(records), incarnation));
            }
        }
        let mut durable = Ok(());
        if let Some((done, incarnation)) = pending {
            durable = done.await;
            match &durable {
                Ok(()) => {
                    let mut groups = self.inner.lock();
                    if let Some(g) = groups.map.get_mut(group_id) {
                        if Some(g.incarnation) == incarnation {
                            for (topic, parts) in &results {
                                for (p, r) in parts {
                                    if let Ok(o) = r {
                                        let key = (topic.clone(), *p);
                                        if g.offsets.get(&key).is_none_or(|cur| cur.seq < o.seq) {
                                            g.offsets.insert(key, o.clone());
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "offset commit not durable")
                }
            }
        }
        let mut resp = OffsetCommitResponse::default();
        resp.topics = results
            .into_iter()
            .map(|(topic, parts)| {
                let mut t = OffsetCommitResponseTopic::default();
                t.name = TopicName(sb(topic));
                t.partitions = parts
                    .into_iter()
                    .map(|(p, r)| {
                        let mut x = OffsetCommitResponsePartition::default();
                        x.partition_index = p;
                        x.error_code = match (r, &durable) {
                            (Err(e), _) => e.code(),
                            (Ok(_), Err(_)) => E::CoordinatorNotAvailable.code(),
                            (Ok(_), Ok(())) => 0,
                        };
                        x
                    })
                    .collect();
                t
            })
            .collect();
        resp
    }

    pub async fn offset_fetch(&self, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        let mut resp = OffsetFetchResponse::default();
        if version >= 8 {
            resp.groups = req
                .groups
                .iter()
                .map(|g| {
                    let topics = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let (error, fetched) = self.fetch_offsets(g.group_id.0.as_str(), topics);
                    let mut out = OffsetFetchResponseGroup::default();
                    out.group_id = g.group_id.clone();
                    out.error_code = code(error);
                    out.topics = fetched
                        .into_iter()
                        .map(|(name, parts)| {
                            let mut t = OffsetFetchResponseTopics::default();
                            t.name = TopicName(sb(name));
                            t.partitions = parts
                                .into_iter()
                                .map(|(p, o)| {
                                    let mut x = OffsetFetchResponsePartitions::default();
                                    x.partition_index = p;
                                    x.committed_offset = o.as_ref().map_or(-1, |o| o.offset);
                                    x.committed_leader_epoch =
                                        o.as_ref().map_or(-1, |o| o.leader_epoch);
                                    x.metadata =
                                        Some(sb(o.and_then(|o| o.metadata).unwrap_or_default()));
                                    x
                                })
                                .collect();
                            t
                        })
                        .collect();
                    out
                })
                .collect();
            return resp;
        }
        let topics = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let (error, fetched) = self.fetch_offsets(req.group_id.0.as_str(), topics);
        if version >= 2 {
            resp.error_code = code(error);
        }
        resp.topics = fetched
            .into_iter()
            .map(|(name, parts)| {
                let mut t = OffsetFetchResponseTopic::default();
                t.name = TopicName(sb(name));
                t.partitions = parts
                    .into_iter()
                    .map(|(p, o)| {
                        let mut x = OffsetFetchResponsePartition::default();
                        x.partition_index = p;
                        x.committed_offset = o.as_ref().map_or(-1, |o| o.offset);
                        if version >= 5 {
                            x.committed_leader_epoch = o.as_ref().map_or(-1, |o| o.leader_epoch);
                        }
                        x.metadata = Some(sb(o.and_then(|o| o.metadata).unwrap_or_default()));
                        if version < 2 {
                            x.error_code = code(error);
                        }
                        x
                    })
                    .collect();
                t
            })
            .collect();
        resp
    }

    /// Offsets of one group; unknown group or partition -> `None` (offset -1), no error.
    fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> (Result<(), E>, FetchedTopics) {
        if group_id.is_empty() {
            return (Err(E::InvalidGroupId), Vec::new());
        }
        let groups = self.inner.lock();
        let group = groups.map.get(group_id);
        let fetched = match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(name, parts)| {
                    let parts = parts
                        .into_iter()
                        .map(|p| {
                            let o = group.and_then(|g| g.offsets.get(&(name.clone(), p)).cloned());
                            (p, o)
                        })
                        .collect();
                    (name, parts)
                })
                .collect(),
            None => {
                let mut out: FetchedTopics = Vec::new();
                for ((topic, p), o) in group.iter().flat_map(|g| g.offsets.iter()) {
                    match out.last_mut() {
                        Some((t, parts)) if t == topic => parts.push((*p, Some(o.clone()))),
                        _ => out.push((topic.clone(), vec![(*p, Some(o.clone()))])),
                    }
                }
                out
            }
        };
        (Ok(()), fetched)
    }

    pub async fn describe_groups(
        &self,
        req: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let groups = self.inner.lock();
        let mut resp = DescribeGroupsResponse::default();
        resp.groups = req
            .groups
            .iter()
            .map(|id| {
                let mut d = DescribedGroup::default();
                d.group_id = id.clone();
                if version >= 3 && req.include_authorized_operations {
                    d.authorized_operations = GROUP_OPERATIONS;
                }
                let Some(g) = groups.map.get(id.0.as_str()) else {
                    if id.0.is_empty() {
                        d.error_code = E::InvalidGroupId.code();
                    } else if version >= 6 {
                        d.error_code = E::GroupIdNotFound.code();
                        d.error_message = Some(sb(format!("Group {} not found.", id.0.as_str())));
                    }
                    d.group_state = sb(GroupState::Dead.as_str());
                    return d;
                };
                d.group_state = sb(g.state.as_str());
                d.protocol_type = sb(g.protocol_type.clone().unwrap_or_default());
                let stable = g.state == GroupState::Stable;
                if stable {
                    d.protocol_data = sb(g.protocol.clone().unwrap_or_default());
                }
                let protocol = g.protocol.clone().unwrap_or_default();
                d.members = g
                    .members
                    .values()
                    .map(|m| {
                        let mut x = DescribedGroupMember::default();
                        x.member_id = sb(m.id.clone());
                        if version >= 4 {
                            x.group_instance_id = m.instance_id.clone().map(sb);
                        }
                        x.client_id = sb(m.client_id.clone());
                        x.client_host = sb(m.client_host.clone());
                        if stable {
                            x.member_metadata = m.metadata(&protocol);
                            x.member_assignment = m.assignment.clone();
                        }
                        x
                    })
                    .collect();
                d
            })
            .collect();
        resp
    }

    pub async fn list_groups(&self, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let states: Vec<String> = if version >= 4 {
            req.states_filter.iter().map(|s| s.to_lowercase()).collect()
        } else {
            Vec::new()
        };
        let types: Vec<String> = if version >= 5 {
            req.types_filter.iter().map(|s| s.to_lowercase()).collect()
        } else {
            Vec::new()
        };
        let groups = self.inner.lock();
        let mut resp = ListGroupsResponse::default();
        if !types.is_empty() && !types.iter().any(|t| t == "classic") {
            return resp;
        }
        let mut listed: Vec<&Group> = groups
            .map
            .values()
            .filter(|g| states.is_empty() || states.contains(&g.state.as_str().to_lowercase()))
            .collect();
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        resp.groups = listed
            .into_iter()
            .map(|g| {
                let mut l = ListedGroup::default();
                l.group_id = GroupId(sb(g.id.clone()));
                l.protocol_type = sb(g.protocol_type.clone().unwrap_or_default());
                if version >= 4 {
                    l.group_state = sb(g.state.as_str());
                }
                if version >= 5 {
                    l.group_type = sb("classic");
                }
                l
            })
            .collect();
        resp
    }

    pub async fn delete_groups(
        &self,
        req: DeleteGroupsRequest,
        _version: i16,
    ) -> DeleteGroupsResponse {
        let mut results = Vec::new();
        let mut records = Vec::new();
        let done = {
            let mut groups = self.inner.lock();
            for id in &req.groups_names {
                let name = id.0.as_str();
                let error = match groups.map.get(name) {
                    _ if name.is_empty() => Err(E::InvalidGroupId),
                    None => Err(E::GroupIdNotFound),
                    Some(g) if g.state != GroupState::Empty => Err(E::NonEmptyGroup),
                    Some(_) => {
                        groups.map.remove(name);
                        records.push(Record::GroupDelete {
                            group: name.to_string(),
                        });
                        Ok(())
                    }
                };
                results.push((id.clone(), error));
            }
            (!records.is_empty()).then(|| self.inner.store.append(records))
        };
        let durable = match done {
            Some(f) => f.await,
            None => Ok(()),
        };
        let mut resp = DeleteGroupsResponse::default();
        resp.results = results
            .into_iter()
            .map(|(id, e)| {
                let mut r = DeletableGroupResult::default();
                r.group_id = id;
                r.error_code = match (e, &durable) {
                    (Ok(()), Err(_)) => E::CoordinatorNotAvailable.code(),
                    (e, _) => code(e),
                };
                r
            })
            .collect();
        resp
    }

    /// Drops expired offsets and empty groups without offsets (see the module docs).
    pub(super) fn expire_offsets(&self, now_ms: i64) -> StoreFuture<()> {
        let retention = self.inner.config.offsets_retention.as_millis() as i64;
        let mut records = Vec::new();
        let mut groups = self.inner.lock();
        let mut dead = Vec::new();
        for g in groups.map.values_mut() {
            if g.state != GroupState::Empty {
                continue;
            }
            let consumer_group = g.protocol_type.is_some();
            let state_ts = g.state_ts_ms;
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, o)| match o.expire_ts_ms {
                    Some(at) => now_ms >= at,
                    None if consumer_group => now_ms >= state_ts.saturating_add(retention),
                    None => now_ms >= o.commit_ts_ms.saturating_add(retention),
                })
                .map(|(k, _)| k.clone())
                .collect();
            for (topic, partition) in expired {
                g.offsets.remove(&(topic.clone(), partition));
                records.push(Record::OffsetDelete {
                    group: g.id.clone(),
                    topic,
                    partition,
                });
            }
            if g.offsets.is_empty() && g.pending_members.is_empty() && g.members.is_empty() {
                dead.push(g.id.clone());
            }
        }
        for id in dead {
            groups.map.remove(&id);
            records.push(Record::GroupDelete { group: id });
        }
        if records.is_empty() {
            return Box::pin(async { Ok::<(), GroupError>(()) });
        }
        tracing::info!(records = records.len(), "expiring group offsets");
        self.inner.store.append(records)
    }
}
