//! Kafka REST v3 for each cluster: `/kafka/v3/clusters/{cluster_id}/topics` (list,
//! create), `.../topics/{topic_name}` (get, delete), `.../topics/{topic_name}/configs`
//! (list) and `.../configs/{name}` (get), in Confluent's v3 shapes (`KafkaTopic`, `KafkaTopicList`, `KafkaTopicConfig`,
//! `KafkaTopicConfigList`). Authenticated with an API key of that cluster as HTTP Basic
//! ([`ClusterCaller`]; [`ClusterKeyCaller`] also keeps the key and secret for routes that
//! call the cluster's brokers with them); the rules are in [`crate::service::kafka`].
//! Errors answer the API's one envelope. Also the v3 pieces the consumer-group and ACL
//! routes (`kafka_groups.rs`, `kafka_acls.rs`) share: metadata, links, CRNs.

use super::auth::authorization;
use super::extract::ApiJson;
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::service::cluster_crn;
use crate::service::kafka::{self, ClusterKey, NewTopic, TopicInfo};
use crate::store::Cluster;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// The cluster of the path, authenticated by one of its API keys (HTTP Basic).
pub struct ClusterCaller(pub Cluster);

impl FromRequestParts<AppState> for ClusterCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let cluster_id = path_cluster_id(parts, state).await?;
        kafka::authenticate(state, &cluster_id, authorization(parts))
            .await
            .map(ClusterCaller)
    }
}

/// The `cluster_id` of the request's path (a malformed path is a 400 in the envelope).
async fn path_cluster_id(parts: &mut Parts, state: &AppState) -> Result<String> {
    let params = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| Error::InvalidArgument(format!("invalid path: {}", e.body_text())))?;
    Ok(params.0.get("cluster_id").cloned().unwrap_or_default())
}

/// The cluster of the path and the API key (with its secret) that authenticated for it:
/// what calls to the cluster's brokers authenticate with.
pub struct ClusterKeyCaller {
    pub cluster: Cluster,
    pub key: ClusterKey,
}

impl FromRequestParts<AppState> for ClusterKeyCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let cluster_id = path_cluster_id(parts, state).await?;
        let (cluster, key) =
            kafka::authenticate_key(state, &cluster_id, authorization(parts)).await?;
        Ok(ClusterKeyCaller { cluster, key })
    }
}

/// `metadata` of a v3 resource.
#[derive(Serialize, ToSchema)]
#[schema(as = KafkaResourceMetadata)]
pub struct ResourceMeta {
    /// The URL of this resource.
    #[serde(rename = "self")]
    pub(super) self_url: String,
    /// Its CRN, e.g. `crn://tributary.cloud/organization=.../kafka=lkc-abc123/topic=orders`.
    pub(super) resource_name: String,
}

/// `metadata` of a v3 list (never paginated: a cluster's topics come in one answer).
#[derive(Serialize, ToSchema)]
#[schema(as = KafkaCollectionMetadata)]
pub struct CollectionMeta {
    /// The URL of this list.
    #[serde(rename = "self")]
    pub(super) self_url: String,
}

/// A link to related resources.
#[derive(Serialize, ToSchema)]
pub struct Related {
    pub(super) related: String,
}

/// The CRN of a cluster as Kafka REST's resources start theirs.
pub(super) fn kafka_crn(c: &Cluster) -> String {
    cluster_crn(&c.organization_id, Some(&c.environment_id), &c.id)
}

/// `{base}/kafka/v3/clusters/{cluster}`.
pub(super) fn cluster_url(base: &str, cluster: &str) -> String {
    format!("{base}/kafka/v3/clusters/{cluster}")
}

/// A topic (`KafkaTopic`).
#[derive(Serialize, ToSchema)]
pub struct KafkaTopic {
    #[schema(example = "KafkaTopic")]
    kind: &'static str,
    metadata: ResourceMeta,
    /// The cluster (`lkc-...`).
    cluster_id: String,
    topic_name: String,
    /// Always false: internal topics are not the tenant's.
    is_internal: bool,
    replication_factor: i32,
    partitions_count: i32,
    /// The topic's configs.
    configs: Related,
}

/// The cluster's topics, by name (`KafkaTopicList`).
#[derive(Serialize, ToSchema)]
pub struct KafkaTopicList {
    #[schema(example = "KafkaTopicList")]
    kind: &'static str,
    metadata: CollectionMeta,
    data: Vec<KafkaTopic>,
}

/// One config of a topic (`KafkaTopicConfig`).
#[derive(Serialize, ToSchema)]
pub struct KafkaTopicConfig {
    #[schema(example = "KafkaTopicConfig")]
    kind: &'static str,
    metadata: ResourceMeta,
    cluster_id: String,
    topic_name: String,
    #[schema(example = "retention.ms")]
    name: String,
    value: String,
    /// Always false: only the topic's own configs are listed.
    is_default: bool,
    is_read_only: bool,
    is_sensitive: bool,
    #[schema(example = "DYNAMIC_TOPIC_CONFIG")]
    source: &'static str,
}

/// The configs set on a topic (`KafkaTopicConfigList`); configs left at the brokers'
/// defaults are not listed.
#[derive(Serialize, ToSchema)]
pub struct KafkaTopicConfigList {
    #[schema(example = "KafkaTopicConfigList")]
    kind: &'static str,
    metadata: CollectionMeta,
    data: Vec<KafkaTopicConfig>,
}

/// One config to set on a new topic.
#[derive(Deserialize, ToSchema)]
#[schema(as = KafkaConfigEntry)]
#[serde(deny_unknown_fields)]
pub struct ConfigEntry {
    /// A supported topic config: cleanup.policy, retention.ms, retention.bytes,
    /// segment.bytes, segment.ms, max.message.bytes, min.insync.replicas,
    /// message.timestamp.type.
    #[schema(example = "retention.ms", min_length = 1, max_length = 255)]
    name: String,
    #[schema(example = "86400000", max_length = 1024)]
    value: String,
}

/// A new topic.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// 1 to 249 letters, digits, '.', '_' or '-' (not "." or "..").
    #[schema(example = "orders", pattern = "^[A-Za-z0-9._-]{1,249}$")]
    topic_name: String,
    /// Absent: the cell's default.
    #[schema(minimum = 1, maximum = 10000, example = 6)]
    partitions_count: Option<i32>,
    /// Absent: the cell's default (at most the cell's brokers).
    #[schema(minimum = 1, maximum = 16, example = 3)]
    replication_factor: Option<i32>,
    #[schema(max_items = 64)]
    configs: Option<Vec<ConfigEntry>>,
    /// Only check that the topic could be created.
    validate_only: Option<bool>,
}

fn topics_url(base: &str, cluster: &str) -> String {
    format!("{}/topics", cluster_url(base, cluster))
}

fn configs_url(base: &str, cluster: &str, topic: &str) -> String {
    format!("{}/{topic}/configs", topics_url(base, cluster))
}

fn config_view(base: &str, c: &Cluster, topic: &str, name: &str, value: &str) -> KafkaTopicConfig {
    KafkaTopicConfig {
        kind: "KafkaTopicConfig",
        metadata: ResourceMeta {
            self_url: format!("{}/{name}", configs_url(base, &c.id, topic)),
            resource_name: format!("{}/config={name}", topic_crn(c, topic)),
        },
        cluster_id: c.id.clone(),
        topic_name: topic.to_string(),
        name: name.to_string(),
        value: value.to_string(),
        is_default: false,
        is_read_only: false,
        is_sensitive: false,
        source: "DYNAMIC_TOPIC_CONFIG",
    }
}

fn topic_crn(c: &Cluster, topic: &str) -> String {
    format!("{}/topic={topic}", kafka_crn(c))
}

fn topic_view(base: &str, c: &Cluster, t: TopicInfo) -> KafkaTopic {
    let url = format!("{}/{}", topics_url(base, &c.id), t.name);
    KafkaTopic {
        kind: "KafkaTopic",
        metadata: ResourceMeta {
            self_url: url.clone(),
            resource_name: topic_crn(c, &t.name),
        },
        cluster_id: c.id.clone(),
        is_internal: false,
        replication_factor: t.replication_factor,
        partitions_count: t.partitions_count,
        configs: Related {
            related: format!("{url}/configs"),
        },
        topic_name: t.name,
    }
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/topics",
    operation_id = "listKafkaTopics",
    tag = "kafka",
    params(("cluster_id" = String, Path, description = "The cluster (`lkc-...`)")),
    responses(
        (status = 200, description = "The cluster's topics, by name", body = KafkaTopicList),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 503, description = "The cluster's cell is unreachable", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn list_topics(
    ClusterCaller(cluster): ClusterCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<KafkaTopicList>> {
    let topics = kafka::list_topics(&state, &cluster).await?;
    let base = state.base_url(&headers);
    Ok(Json(KafkaTopicList {
        kind: "KafkaTopicList",
        metadata: CollectionMeta {
            self_url: topics_url(&base, &cluster.id),
        },
        data: topics
            .into_iter()
            .map(|t| topic_view(&base, &cluster, t))
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/kafka/v3/clusters/{cluster_id}/topics",
    operation_id = "createKafkaTopic",
    tag = "kafka",
    params(("cluster_id" = String, Path, description = "The cluster (`lkc-...`)")),
    request_body = CreateTopic,
    responses(
        (status = 201, description = "The new topic", body = KafkaTopic),
        (status = 400, description = "Invalid name, partitions, replication factor or config", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation", body = ErrorEnvelope),
        (status = 409, description = "The topic exists, or the cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 503, description = "The cluster's cell is unreachable", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn create_topic(
    ClusterCaller(cluster): ClusterCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateTopic>,
) -> Result<(StatusCode, Json<KafkaTopic>)> {
    let configs = req.configs.unwrap_or_default();
    let topic = kafka::create_topic(
        &state,
        &cluster,
        NewTopic {
            name: req.topic_name,
            partitions_count: req.partitions_count,
            replication_factor: req.replication_factor,
            configs: configs.into_iter().map(|c| (c.name, c.value)).collect(),
            validate_only: req.validate_only.unwrap_or(false),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(topic_view(&state.base_url(&headers), &cluster, topic)),
    ))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}",
    operation_id = "getKafkaTopic",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("topic_name" = String, Path, description = "The topic"),
    ),
    responses(
        (status = 200, description = "The topic", body = KafkaTopic),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such topic", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 503, description = "The cluster's cell is unreachable", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn get_topic(
    ClusterCaller(cluster): ClusterCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, topic_name)): Path<(String, String)>,
) -> Result<Json<KafkaTopic>> {
    let topic = kafka::get_topic(&state, &cluster, &topic_name).await?;
    Ok(Json(topic_view(&state.base_url(&headers), &cluster, topic)))
}

#[utoipa::path(
    delete,
    path = "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}",
    operation_id = "deleteKafkaTopic",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("topic_name" = String, Path, description = "The topic"),
    ),
    responses(
        (status = 204, description = "Deleted, with its data"),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such topic", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 503, description = "The cluster's cell is unreachable", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn delete_topic(
    ClusterCaller(cluster): ClusterCaller,
    State(state): State<AppState>,
    Path((_cluster_id, topic_name)): Path<(String, String)>,
) -> Result<StatusCode> {
    kafka::delete_topic(&state, &cluster, &topic_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/configs",
    operation_id = "listKafkaTopicConfigs",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("topic_name" = String, Path, description = "The topic"),
    ),
    responses(
        (status = 200, description = "The configs set on the topic (defaults are not listed)", body = KafkaTopicConfigList),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, or no such topic", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 503, description = "The cluster's cell is unreachable", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn list_topic_configs(
    ClusterCaller(cluster): ClusterCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, topic_name)): Path<(String, String)>,
) -> Result<Json<KafkaTopicConfigList>> {
    let topic = kafka::get_topic(&state, &cluster, &topic_name).await?;
    let base = state.base_url(&headers);
    let data = topic
        .configs
        .iter()
        .map(|(name, value)| config_view(&base, &cluster, &topic.name, name, value))
        .collect();
    Ok(Json(KafkaTopicConfigList {
        kind: "KafkaTopicConfigList",
        metadata: CollectionMeta {
            self_url: configs_url(&base, &cluster.id, &topic.name),
        },
        data,
    }))
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/configs/{name}",
    operation_id = "getKafkaTopicConfig",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        ("topic_name" = String, Path, description = "The topic"),
        ("name" = String, Path, description = "The config, e.g. `retention.ms`"),
    ),
    responses(
        (status = 200, description = "The config, if set on the topic", body = KafkaTopicConfig),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation, no such topic, or the config is not set on it", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 503, description = "The cluster's cell is unreachable", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn get_topic_config(
    ClusterCaller(cluster): ClusterCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((_cluster_id, topic_name, name)): Path<(String, String, String)>,
) -> Result<Json<KafkaTopicConfig>> {
    let topic = kafka::get_topic(&state, &cluster, &topic_name).await?;
    let value = topic.configs.get(&name).ok_or_else(|| {
        Error::NotFound(format!(
            "config {name:?} is not set on topic {:?}; list its configs with GET {}",
            topic.name,
            configs_url("", &cluster.id, &topic.name)
        ))
    })?;
    let base = state.base_url(&headers);
    Ok(Json(config_view(
        &base,
        &cluster,
        &topic.name,
        &name,
        value,
    )))
}
