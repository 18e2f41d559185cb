//! Kafka REST v3 consumer groups of a cluster, in Confluent's v3 shapes:
//! `/kafka/v3/clusters/{cluster_id}/consumer-groups` (`KafkaConsumerGroupList`),
//! `.../consumer-groups/{consumer_group_id}` (`KafkaConsumerGroup`), `.../consumers` and
//! `.../consumers/{consumer_id}` (`KafkaConsumer`), `.../lags` and
//! `.../lags/{topic_name}/partitions/{partition_id}` (`KafkaConsumerLag`) and
//! `.../lag-summary` (`KafkaConsumerGroupLagSummary`). Authenticated with an API key of the
//! cluster ([`ClusterKeyCaller`]); the rules are in [`crate::service::kafka_groups`].
//!
//! Related links name Confluent's resources even where this API does not serve them yet
//! (`.../brokers/{id}`, `.../topics/{t}/partitions/{p}`, a consumer's `assignments`).

use super::kafka::{
    cluster_url, kafka_crn, ClusterKeyCaller, CollectionMeta, Related, ResourceMeta,
};
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::kafka_client::Member;
use crate::service::kafka_groups::{self, GroupInfo, PartitionLag};
use crate::store::Cluster;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use utoipa::ToSchema;

/// What stays unescaped in a path segment (RFC 3986 unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A consumer group (`KafkaConsumerGroup`).
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumerGroup {
    #[schema(example = "KafkaConsumerGroup")]
    kind: &'static str,
    metadata: ResourceMeta,
    cluster_id: String,
    consumer_group_id: String,
    /// A group that only commits offsets (no group protocol, e.g. manual assignment).
    is_simple: bool,
    /// The partition assignor while the group is STABLE (e.g. `range`), else empty.
    partition_assignor: String,
    #[schema(
        example = "STABLE",
        pattern = "^(UNKNOWN|PREPARING_REBALANCE|COMPLETING_REBALANCE|STABLE|DEAD|EMPTY)$"
    )]
    state: &'static str,
    /// The broker coordinating the group.
    coordinator: Related,
    consumers: Related,
    lag_summary: Related,
}

/// The cluster's consumer groups, by id (`KafkaConsumerGroupList`).
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumerGroupList {
    #[schema(example = "KafkaConsumerGroupList")]
    kind: &'static str,
    metadata: CollectionMeta,
    data: Vec<KafkaConsumerGroup>,
}

/// A member of a consumer group (`KafkaConsumer`).
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumer {
    #[schema(example = "KafkaConsumer")]
    kind: &'static str,
    metadata: ResourceMeta,
    cluster_id: String,
    consumer_group_id: String,
    /// The member id the coordinator gave it.
    consumer_id: String,
    /// Its `group.instance.id` (static membership), if any.
    instance_id: Option<String>,
    client_id: String,
    assignments: Related,
}

/// The members of a consumer group (`KafkaConsumerList`).
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumerList {
    #[schema(example = "KafkaConsumerList")]
    kind: &'static str,
    metadata: CollectionMeta,
    data: Vec<KafkaConsumer>,
}

/// The lag of a group on one partition (`KafkaConsumerLag`).
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumerLag {
    #[schema(example = "KafkaConsumerLag")]
    kind: &'static str,
    metadata: ResourceMeta,
    cluster_id: String,
    consumer_group_id: String,
    topic_name: String,
    partition_id: i32,
    /// The group's committed offset.
    current_offset: i64,
    /// The partition's high watermark.
    log_end_offset: i64,
    /// `log_end_offset - current_offset`.
    lag: i64,
    /// The member the partition is assigned to; empty when none is.
    consumer_id: String,
    instance_id: Option<String>,
    client_id: String,
}

/// A group's lag on every partition it has committed an offset for (`KafkaConsumerLagList`).
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumerLagList {
    #[schema(example = "KafkaConsumerLagList")]
    kind: &'static str,
    metadata: CollectionMeta,
    data: Vec<KafkaConsumerLag>,
}

/// A group's largest and total lag (`KafkaConsumerGroupLagSummary`). With no committed
/// offsets: both lags 0, empty names and `max_lag_partition_id` -1.
#[derive(Serialize, ToSchema)]
pub struct KafkaConsumerGroupLagSummary {
    #[schema(example = "KafkaConsumerGroupLagSummary")]
    kind: &'static str,
    metadata: ResourceMeta,
    cluster_id: String,
    consumer_group_id: String,
    /// The member assigned the partition with the largest lag; empty when none is.
    max_lag_consumer_id: String,
    max_lag_instance_id: Option<String>,
    max_lag_client_id: String,
    max_lag_topic_name: String,
    max_lag_partition_id: i32,
    max_lag: i64,
    total_lag: i64,
    /// Absent when no member is assigned the partition with the largest lag.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_lag_consumer: Option<Related>,
    /// Absent when the group has committed no offsets.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_lag_partition: Option<Related>,
}

fn groups_url(base: &str, cluster: &str) -> String {
    format!("{}/consumer-groups", cluster_url(base, cluster))
}

fn group_url(base: &str, cluster: &str, group: &str) -> String {
    format!("{}/{}", groups_url(base, cluster), segment(group))
}

fn group_crn(c: &Cluster, group: &str) -> String {
    format!("{}/consumer-group={group}", kafka_crn(c))
}

fn related(url: String) -> Related {
    Related { related: url }
}

fn group_view(base: &str, c: &Cluster, g: GroupInfo) -> KafkaConsumerGroup {
    let url = group_url(base, &c.id, &g.group_id);
    KafkaConsumerGroup {
        kind: "KafkaConsumerGroup",
        metadata: ResourceMeta {
            self_url: url.clone(),
            resource_name: group_crn(c, &g.group_id),
        },
        cluster_id: c.id.clone(),
        is_simple: g.is_simple,
        partition_assignor: g.partition_assignor,
        state: g.state,
        coordinator: related(format!(
            "{}/brokers/{}",
            cluster_url(base, &c.id),
            g.coordinator
        )),
        consumers: related(format!("{url}/consumers")),
        lag_summary: related(format!("{url}/lag-summary")),
        consumer_group_id: g.group_id,
    }
}

fn consumer_view(base: &str, c: &Cluster, group: &str, m: Member) -> KafkaConsumer {
    let url = format!(
        "{}/consumers/{}",
        group_url(base, &c.id, group),
        segment(&m.member_id)
    );
    KafkaConsumer {
        kind: "KafkaConsumer",
        metadata: ResourceMeta {
            self_url: url.clone(),
            resource_name: format!("{}/consumer={}", group_crn(c, group), m.member_id),
        },
        cluster_id: c.id.clone(),
        consumer_group_id: group.to_string(),
        consumer_id: m.member_id,
        instance_id: m.instance_id,
        client_id: m.client_id,
        assignments: related(format!("{url}/assignments")),
    }
}

fn partition_url(base: &str, c: &Cluster, topic: &str, partition: i32) -> String {
    format!(
        "{}/topics/{topic}/partitions/{partition}",
        cluster_url(base, &c.id)
    )
}

fn lag_view(base: &str, c: &Cluster, group: &str, l: PartitionLag) -> KafkaConsumerLag {
    KafkaConsumerLag {
        kind: "KafkaConsumerLag",
        metadata: ResourceMeta {
            self_url: format!(
                "{}/lags/{}/partitions/{}",
                group_url(base, &c.id, group),
                l.topic,
                l.partition
            ),
            resource_name: format!(
                "{}/lag={}/partition={}",
                group_crn(c, group),
                l.topic,
                l.partition
            ),
        },
        cluster_id: c.id.clone(),
        consumer_group_id: group.to_string(),
        topic_name: l.topic,
        partition_id: l.partition,
        current_offset: l.current_offset,
        log_end_offset: l.log_end_offset,
        lag: l.lag,
        consumer_id: l.consumer_id,
        instance_id: l.instance_id,
        client_id: l.client_id,
    }
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups",
    operation_id = "listKafkaConsumerGroups",
    tag = "kafka",
    params(("cluster_id" = String, Path, description = "The cluster (`lkc-...`)")),
    responses(
        (status = 200, description = "The groups the key may describe, by id", body = KafkaConsumerGroupList),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn list_groups(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<KafkaConsumerGroupList>> {
    let c = &caller.cluster;
    let groups = kafka_groups::list_groups(&state, c, &caller.key).await?;
    let base = state.base_url(&headers);
    Ok(Json(KafkaConsumerGroupList {
        kind: "KafkaConsumerGroupList",
        metadata: CollectionMeta {
            self_url: groups_url(&base, &c.id),
        },
        data: groups
            .into_iter()
            .map(|g| group_view(&base, c, g))
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}",
    operation_id = "getKafkaConsumerGroup",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("consumer_group_id" = String, Path, description = "The group (1 to 255 characters)"),
    ),
    responses(
        (status = 200, description = "The group", body = KafkaConsumerGroup),
        (status = 400, description = "Invalid group id", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such group in it", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn get_group(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, group_id)): Path<(String, String)>,
) -> Result<Json<KafkaConsumerGroup>> {
    let (group, _) =
        kafka_groups::get_group(&state, &caller.cluster, &caller.key, &group_id).await?;
    Ok(Json(group_view(
        &state.base_url(&headers),
        &caller.cluster,
        group,
    )))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}/consumers",
    operation_id = "listKafkaConsumers",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("consumer_group_id" = String, Path, description = "The group (1 to 255 characters)"),
    ),
    responses(
        (status = 200, description = "The group's members", body = KafkaConsumerList),
        (status = 400, description = "Invalid group id", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such group in it", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn list_consumers(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, group_id)): Path<(String, String)>,
) -> Result<Json<KafkaConsumerList>> {
    let c = &caller.cluster;
    let (_, members) = kafka_groups::get_group(&state, c, &caller.key, &group_id).await?;
    let base = state.base_url(&headers);
    Ok(Json(KafkaConsumerList {
        kind: "KafkaConsumerList",
        metadata: CollectionMeta {
            self_url: format!("{}/consumers", group_url(&base, &c.id, &group_id)),
        },
        data: members
            .into_iter()
            .map(|m| consumer_view(&base, c, &group_id, m))
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}/consumers/{consumer_id}",
    operation_id = "getKafkaConsumer",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("consumer_group_id" = String, Path, description = "The group (1 to 255 characters)"),
        ("consumer_id" = String, Path, description = "The member id (1 to 255 characters)"),
    ),
    responses(
        (status = 200, description = "The member", body = KafkaConsumer),
        (status = 400, description = "Invalid group or consumer id", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, no such group, or no such member", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn get_consumer(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, group_id, consumer_id)): Path<(String, String, String)>,
) -> Result<Json<KafkaConsumer>> {
    let c = &caller.cluster;
    let member =
        kafka_groups::get_consumer(&state, c, &caller.key, &group_id, &consumer_id).await?;
    Ok(Json(consumer_view(
        &state.base_url(&headers),
        c,
        &group_id,
        member,
    )))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}/lags",
    operation_id = "listKafkaConsumerLags",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("consumer_group_id" = String, Path, description = "The group (1 to 255 characters)"),
    ),
    responses(
        (status = 200, description = "The group's lag on every partition it committed an offset for, by topic and partition", body = KafkaConsumerLagList),
        (status = 400, description = "Invalid group id", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such group in it", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn list_lags(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, group_id)): Path<(String, String)>,
) -> Result<Json<KafkaConsumerLagList>> {
    let c = &caller.cluster;
    let lags = kafka_groups::lags(&state, c, &caller.key, &group_id).await?;
    let base = state.base_url(&headers);
    Ok(Json(KafkaConsumerLagList {
        kind: "KafkaConsumerLagList",
        metadata: CollectionMeta {
            self_url: format!("{}/lags", group_url(&base, &c.id, &group_id)),
        },
        data: lags
            .into_iter()
            .map(|l| lag_view(&base, c, &group_id, l))
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}/lags/{topic_name}/partitions/{partition_id}",
    operation_id = "getKafkaConsumerLag",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("consumer_group_id" = String, Path, description = "The group (1 to 255 characters)"),
        ("topic_name" = String, Path, description = "The topic"),
        ("partition_id" = i32, Path, description = "The partition", minimum = 0),
    ),
    responses(
        (status = 200, description = "The group's lag on the partition", body = KafkaConsumerLag),
        (status = 400, description = "Invalid group id or partition", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, no such group, or no offset committed for the partition", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn get_lag(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, group_id, topic, partition)): Path<(String, String, String, String)>,
) -> Result<Json<KafkaConsumerLag>> {
    let partition: i32 = partition.parse().ok().filter(|p| *p >= 0).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "partition_id {partition:?} is not a partition number (0 or more)"
        ))
    })?;
    let c = &caller.cluster;
    let lag = kafka_groups::lags(&state, c, &caller.key, &group_id)
        .await?
        .into_iter()
        .find(|l| l.topic == topic && l.partition == partition)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "group {group_id:?} has committed no offset for partition {partition} of topic \
                 {topic:?}; list its lags with GET {}/lags",
                group_url("", &c.id, &group_id)
            ))
        })?;
    Ok(Json(lag_view(&state.base_url(&headers), c, &group_id, lag)))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}/lag-summary",
    operation_id = "getKafkaConsumerGroupLagSummary",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("consumer_group_id" = String, Path, description = "The group (1 to 255 characters)"),
    ),
    responses(
        (status = 200, description = "The group's largest and total lag", body = KafkaConsumerGroupLagSummary),
        (status = 400, description = "Invalid group id", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The cluster's brokers refused the key (a service account without the ACL)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such group in it", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn get_lag_summary(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, group_id)): Path<(String, String)>,
) -> Result<Json<KafkaConsumerGroupLagSummary>> {
    let c = &caller.cluster;
    let lags = kafka_groups::lags(&state, c, &caller.key, &group_id).await?;
    let summary = kafka_groups::summarize(&lags);
    let base = state.base_url(&headers);
    let url = group_url(&base, &c.id, &group_id);
    let max = summary.max;
    Ok(Json(KafkaConsumerGroupLagSummary {
        kind: "KafkaConsumerGroupLagSummary",
        metadata: ResourceMeta {
            self_url: format!("{url}/lag-summary"),
            resource_name: format!("{}/lag-summary", group_crn(c, &group_id)),
        },
        cluster_id: c.id.clone(),
        consumer_group_id: group_id.clone(),
        max_lag_consumer: max
            .as_ref()
            .filter(|m| !m.consumer_id.is_empty())
            .map(|m| related(format!("{url}/consumers/{}", segment(&m.consumer_id)))),
        max_lag_partition: max
            .as_ref()
            .map(|m| related(partition_url(&base, c, &m.topic, m.partition))),
        max_lag_consumer_id: max
            .as_ref()
            .map(|m| m.consumer_id.clone())
            .unwrap_or_default(),
        max_lag_instance_id: max.as_ref().and_then(|m| m.instance_id.clone()),
        max_lag_client_id: max
            .as_ref()
            .map(|m| m.client_id.clone())
            .unwrap_or_default(),
        max_lag_topic_name: max.as_ref().map(|m| m.topic.clone()).unwrap_or_default(),
        max_lag_partition_id: max.as_ref().map_or(-1, |m| m.partition),
        max_lag: max.as_ref().map_or(0, |m| m.lag),
        total_lag: summary.total_lag,
    }))
}
