//! Kafka REST's consumer groups: a cluster's groups, one group, its consumers and its lags
//! (per partition and summarised), in the terms Kafka REST v3 shows them.
//!
//! Group state and committed offsets live on the cluster's brokers (the cell's internal
//! offsets topic), not in the cell controller, so these calls are Kafka-protocol calls to
//! the cluster's SASL bootstrap with the caller's own API key ([`crate::kafka_client`]):
//! the brokers' ACLs decide what a service account's key may see, and their tenant
//! namespace that a key sees only its own cluster's groups. Lag is computed as Kafka's
//! tools do: for every partition the group has committed an offset for (and whose topic
//! still exists), the log end offset (high watermark) minus the committed offset.

use super::kafka::ClusterKey;
use super::AppState;
use crate::error::{Error, Result};
use crate::kafka_client::{Credentials, GroupDescription, ListedGroup, Member, Session};
use crate::store::Cluster;
use tokio::sync::OwnedSemaphorePermit;

/// Longest group id (or consumer id) taken in a path.
pub const MAX_ID_LEN: usize = 255;

/// A group's state as Kafka REST names it.
pub fn state_name(kafka_state: &str) -> &'static str {
    match kafka_state {
        "PreparingRebalance" => "PREPARING_REBALANCE",
        "CompletingRebalance" => "COMPLETING_REBALANCE",
        "Stable" => "STABLE",
        "Dead" => "DEAD",
        "Empty" => "EMPTY",
        _ => "UNKNOWN",
    }
}

/// A consumer group as Kafka REST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    pub group_id: String,
    /// A group that only commits offsets (no group protocol, e.g. manual assignment).
    pub is_simple: bool,
    /// The partition assignor while the group is STABLE, else empty.
    pub partition_assignor: String,
    /// Kafka REST's state name (`STABLE`, `EMPTY`, ...).
    pub state: &'static str,
    /// The broker coordinating the group.
    pub coordinator: i32,
}

impl From<ListedGroup> for GroupInfo {
    fn from(g: ListedGroup) -> GroupInfo {
        GroupInfo {
            is_simple: g.protocol_type.is_empty(),
            partition_assignor: g.assignor,
            state: state_name(&g.state),
            coordinator: g.coordinator,
            group_id: g.group_id,
        }
    }
}

/// The lag of one partition the group has committed an offset for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset.
    pub current_offset: i64,
    /// The partition's high watermark.
    pub log_end_offset: i64,
    /// `log_end_offset - current_offset`, at least 0.
    pub lag: i64,
    /// The member the partition is assigned to; empty when none is.
    pub consumer_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
}

/// The largest and the total lag of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagSummary {
    /// The partition with the largest lag (the first in topic and partition order among
    /// equals); `None` when the group has committed no offsets.
    pub max: Option<PartitionLag>,
    pub total_lag: i64,
}

/// Checks an id taken from a path: 1 to 255 characters, no control characters.
pub fn validate_id(field: &str, id: &str) -> Result<()> {
    let ok =
        !id.is_empty() && id.chars().count() <= MAX_ID_LEN && !id.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{field} {id:?} is not valid: use 1 to {MAX_ID_LEN} characters without control \
             characters"
        )))
    }
}

/// A session with `cluster`'s brokers as `key`, holding one of the process's permits.
pub(crate) fn session(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
) -> Result<(OwnedSemaphorePermit, Session)> {
    let limits = state.config.kafka_client;
    let permit = state
        .kafka_sessions
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            Error::RateLimited(format!(
                "{} Kafka REST calls to clusters' brokers are in flight, the most this control \
             plane makes at once; retry shortly",
                limits.max_concurrent_sessions
            ))
        })?;
    let credentials = Credentials {
        key: key.key.clone(),
        secret: key.secret.clone(),
    };
    Ok((
        permit,
        Session::new(&cluster.bootstrap, credentials, limits)?,
    ))
}

/// The cluster's groups the key may describe, by id.
pub async fn list_groups(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
) -> Result<Vec<GroupInfo>> {
    let (_permit, mut session) = session(state, cluster, key)?;
    let groups = session.list_groups().await?;
    Ok(groups.into_iter().map(GroupInfo::from).collect())
}

/// One group and its members; 404 when the cluster has no such group.
pub async fn get_group(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
    group_id: &str,
) -> Result<(GroupInfo, Vec<Member>)> {
    validate_id("consumer_group_id", group_id)?;
    let (_permit, mut session) = session(state, cluster, key)?;
    let GroupDescription { group, members } = session.describe_group(group_id).await?;
    Ok((group.into(), members))
}

/// One member of a group; 404 when the group or the member is not there.
pub async fn get_consumer(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
    group_id: &str,
    consumer_id: &str,
) -> Result<Member> {
    validate_id("consumer_id", consumer_id)?;
    let (_, members) = get_group(state, cluster, key, group_id).await?;
    members
        .into_iter()
        .find(|m| m.member_id == consumer_id)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "consumer {consumer_id:?} is not a member of group {group_id:?}; list them with \
                 GET /kafka/v3/clusters/{}/consumer-groups/{{consumer_group_id}}/consumers",
                cluster.id
            ))
        })
}

/// The lag of every partition `group_id` has committed an offset for, by topic and
/// partition; 404 when the cluster has no such group.
pub async fn lags(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
    group_id: &str,
) -> Result<Vec<PartitionLag>> {
    validate_id("consumer_group_id", group_id)?;
    let (_permit, mut session) = session(state, cluster, key)?;
    let described = session.describe_group(group_id).await?;
    let committed = session.committed_offsets(group_id).await?;
    let partitions: Vec<(String, i32)> = committed.keys().cloned().collect();
    let ends = session.log_end_offsets(&partitions).await?;
    Ok(compute_lags(&described.members, &committed, &ends))
}

/// Lags from committed offsets and log ends, with the member each partition is assigned
/// to; partitions whose log end is unknown (their topic is gone) are left out.
fn compute_lags(
    members: &[Member],
    committed: &std::collections::BTreeMap<(String, i32), i64>,
    ends: &std::collections::HashMap<(String, i32), i64>,
) -> Vec<PartitionLag> {
    committed
        .iter()
        .filter_map(|((topic, partition), &current)| {
            let end = *ends.get(&(topic.clone(), *partition))?;
            let owner = members.iter().find(|m| {
                m.assignment
                    .iter()
                    .any(|(t, p)| t == topic && p == partition)
            });
            Some(PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                current_offset: current,
                log_end_offset: end,
                lag: (end - current).max(0),
                consumer_id: owner.map(|m| m.member_id.clone()).unwrap_or_default(),
                instance_id: owner.and_then(|m| m.instance_id.clone()),
                client_id: owner.map(|m| m.client_id.clone()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The largest and the total of `lags`.
pub fn summarize(lags: &[PartitionLag]) -> LagSummary {
    let mut max: Option<&PartitionLag> = None;
    for l in lags {
        if max.is_none_or(|m| l.lag > m.lag) {
            max = Some(l);
        }
    }
    LagSummary {
        max: max.cloned(),
        total_lag: lags.iter().map(|l| l.lag).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn member(id: &str, parts: &[(&str, i32)]) -> Member {
        Member {
            member_id: id.into(),
            instance_id: None,
            client_id: format!("client-{id}"),
            client_host: "/127.0.0.1".into(),
            assignment: parts.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        }
    }

    #[test]
    fn lags_follow_commits_and_log_ends() {
        let committed: BTreeMap<(String, i32), i64> = [
            (("a".to_string(), 0), 3),
            (("a".to_string(), 1), 10),
            (("b".to_string(), 0), 0),
            (("gone".to_string(), 0), 5),
        ]
        .into();
        let ends: HashMap<(String, i32), i64> = [
            (("a".to_string(), 0), 10),
            (("a".to_string(), 1), 10),
            (("b".to_string(), 0), 7),
        ]
        .into();
        let members = [member("m1", &[("a", 0)]), member("m2", &[("b", 0)])];
        let lags = compute_lags(&members, &committed, &ends);
        let got: Vec<(&str, i32, i64, &str)> = lags
            .iter()
            .map(|l| (l.topic.as_str(), l.partition, l.lag, l.consumer_id.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("a", 0, 7, "m1"), ("a", 1, 0, ""), ("b", 0, 7, "m2")]
        );
        let s = summarize(&lags);
        assert_eq!(s.total_lag, 14);
        let max = s.max.unwrap();
        assert_eq!((max.topic.as_str(), max.partition, max.lag), ("a", 0, 7));
        assert_eq!(max.client_id, "client-m1");
        assert_eq!(
            summarize(&[]),
            LagSummary {
                max: None,
                total_lag: 0
            }
        );
    }

    #[test]
    fn ids_and_states() {
        assert!(validate_id("g", "orders-app").is_ok());
        assert!(validate_id("g", "with space/and.dots").is_ok());
        assert!(validate_id("g", "").is_err());
        assert!(validate_id("g", "a\nb").is_err());
        assert!(validate_id("g", &"x".repeat(256)).is_err());
        assert_eq!(state_name("CompletingRebalance"), "COMPLETING_REBALANCE");
        assert_eq!(state_name("Stable"), "STABLE");
        assert_eq!(state_name("whatever"), "UNKNOWN");
    }
}
