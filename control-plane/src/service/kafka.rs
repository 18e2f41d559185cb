//! Kafka REST v3 for each cluster: who may call it (that cluster's API key), and topics.
//! (Consumer groups and ACLs: `kafka_groups.rs`, `kafka_acls.rs`.)
//!
//! [`authenticate`] takes `Authorization: Basic key:secret` and the cluster named in the
//! path: a wrong key or secret, a bearer token, a Cloud API key or a key of another of the
//! organisation's clusters is unauthenticated; a cluster outside the key's organisation is
//! not found, exactly as one that does not exist. Every topic call then goes to the
//! cluster's cell controller over the cell API, always for the authenticated cluster, so
//! one tenant's key never reaches another tenant's topics.
//!
//! The controller stores topic configs as given (brokers validate what clients send them
//! before forwarding), so topic names and configs are validated here first, by the same
//! rules as the broker's (`data-plane/src/broker.rs` `validate_topic_name`,
//! `data-plane/src/topic_config.rs`); the control plane cannot depend on the data plane, so
//! the table of supported configs is repeated below and must follow that file.

use super::auth::{parse_authorization, verified_key, Credentials};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::{Cluster, Phase};
use proto::cell::v1::{
    CreatableTopic, CreateTopicsRequest, DeleteTopicsRequest, ListTopicsRequest, TopicDescription,
    TopicResult,
};
use std::collections::{BTreeMap, HashMap};

/// Most configs one topic create may set.
pub const MAX_CONFIGS: usize = 64;
/// Most partitions one topic may be created with (the cluster's plan limit applies too).
pub const MAX_PARTITIONS: i32 = 10_000;
/// Most replicas of a partition.
pub const MAX_REPLICATION_FACTOR: i32 = 16;

/// Kafka error codes the controller answers per topic (`cells/src/error.rs`).
mod codes {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i32 = 3;
    pub const INVALID_TOPIC_EXCEPTION: i32 = 17;
    pub const TOPIC_ALREADY_EXISTS: i32 = 36;
    pub const INVALID_PARTITIONS: i32 = 37;
    pub const INVALID_REPLICATION_FACTOR: i32 = 38;
    pub const INVALID_CONFIG: i32 = 40;
    pub const INVALID_REQUEST: i32 = 42;
    pub const POLICY_VIOLATION: i32 = 44;
}

/// A topic as Kafka REST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions_count: i32,
    pub replication_factor: i32,
    /// The topic's own configs (overrides of the brokers' defaults).
    pub configs: BTreeMap<String, String>,
}

/// A topic as asked for.
pub struct NewTopic {
    pub name: String,
    /// `None`: the cell's default.
    pub partitions_count: Option<i32>,
    /// `None`: the cell's default.
    pub replication_factor: Option<i32>,
    pub configs: Vec<(String, String)>,
    /// Only check that it could be created.
    pub validate_only: bool,
}

fn topic_not_found(cluster: &str, name: &str) -> Error {
    Error::NotFound(format!(
        "topic {name:?} not found in cluster {cluster}; list its topics with \
         GET /kafka/v3/clusters/{cluster}/topics"
    ))
}

/// A cluster API key and its secret as the caller sent them (already checked against the
/// store). Consumer-group and ACL calls authenticate to the cluster's brokers with it over
/// SASL/PLAIN, so the brokers' own ACLs and tenant namespace apply to the caller.
#[derive(Clone)]
pub struct ClusterKey {
    pub key: String,
    pub secret: String,
    /// The key's owner: a user (`u-...`, full access) or a service account (`sa-...`, its
    /// ACLs only).
    pub owner_id: String,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKey")
            .field("key", &self.key)
            .field("owner_id", &self.owner_id)
            .finish_non_exhaustive()
    }
}

/// The cluster `cluster_id` if `authorization` is one of its API keys (HTTP Basic).
pub async fn authenticate(
    state: &AppState,
    cluster_id: &str,
    authorization: Option<&str>,
) -> Result<Cluster> {
    authenticate_key(state, cluster_id, authorization)
        .await
        .map(|(cluster, _)| cluster)
}

/// [`authenticate`], also answering the key and secret that authenticated.
pub async fn authenticate_key(
    state: &AppState,
    cluster_id: &str,
    authorization: Option<&str>,
) -> Result<(Cluster, ClusterKey)> {
    let how = "Kafka REST takes an API key of the cluster and its secret as HTTP Basic \
               (create one with POST /iam/v2/api-keys and spec.resource.id set to the cluster)";
    if authorization.is_none() {
        return Err(Error::Unauthenticated(format!(
            "missing Authorization header; {how}"
        )));
    }
    let (key, secret) = match parse_authorization(authorization)? {
        Credentials::Basic { key, secret } => (key, secret),
        Credentials::Bearer(_) => {
            return Err(Error::Unauthenticated(format!(
                "a bearer token does not authenticate Kafka REST; {how}"
            )))
        }
    };
    let found = verified_key(state, &key, &secret).await?;
    let cluster = state
        .store
        .get_cluster(&found.organization_id, cluster_id)
        .await?
        .ok_or_else(|| super::clusters::not_found(cluster_id))?;
    if found.resource_id.is_empty() {
        return Err(Error::Unauthenticated(format!(
            "API key {key} is a Cloud API key; {how}"
        )));
    }
    if found.resource_id != cluster.id {
        return Err(Error::Unauthenticated(format!(
            "API key {key} is for cluster {}, not {}; {how}",
            found.resource_id, cluster.id
        )));
    }
    if cluster.phase != Phase::Provisioned {
        return Err(Error::Conflict(format!(
            "cluster {} is {}; its topics, groups and ACLs can be managed once status.phase \
             is PROVISIONED",
            cluster.id,
            cluster.phase.as_str()
        )));
    }
    let key = ClusterKey {
        key,
        secret,
        owner_id: found.owner_id,
    };
    Ok((cluster, key))
}

/// Checks a topic name as Kafka does: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "topic_name {name:?} is not valid; use 1 to 249 letters, digits, '.', '_' or '-' \
             (not \".\" or \"..\")"
        )))
    }
}

/// How a supported topic config's value is checked.
enum Kind {
    /// An integer at least this.
    Long(i64),
    /// One of these (comma-separated lists allowed).
    Enum(&'static [&'static str]),
}

/// The topic configs brokers support (as in `data-plane/src/topic_config.rs`).
const SUPPORTED: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::Enum(&["delete"])),
    ("retention.ms", Kind::Long(-1)),
    ("retention.bytes", Kind::Long(-1)),
    ("segment.bytes", Kind::Long(1024)),
    ("segment.ms", Kind::Long(1)),
    ("max.message.bytes", Kind::Long(0)),
    ("min.insync.replicas", Kind::Long(1)),
    (
        "message.timestamp.type",
        Kind::Enum(&["CreateTime", "LogAppendTime"]),
    ),
];

/// Checks one topic config, saying what is allowed.
fn validate_config(name: &str, value: &str) -> Result<()> {
    let Some((_, kind)) = SUPPORTED.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = SUPPORTED.iter().map(|(n, _)| *n).collect();
        return Err(Error::InvalidArgument(format!(
            "unknown topic config {name:?}; supported: {}",
            names.join(", ")
        )));
    };
    match kind {
        Kind::Long(min) => match value.trim().parse::<i64>() {
            Ok(v) if v >= *min => Ok(()),
            Ok(v) => Err(Error::InvalidArgument(format!(
                "config {name}={v} is below the minimum {min}"
            ))),
            Err(_) => Err(Error::InvalidArgument(format!(
                "config {name} must be an integer, not {value:?}"
            ))),
        },
        Kind::Enum(allowed) => {
            if value
                .split(',')
                .map(str::trim)
                .all(|v| allowed.contains(&v))
            {
                Ok(())
            } else {
                Err(Error::InvalidArgument(format!(
                    "config {name}={value:?} is not supported; allowed: {}",
                    allowed.join(", ")
                )))
            }
        }
    }
}

/// A per-topic Kafka error from the controller, as the crate's error.
fn topic_error(cluster: &Cluster, r: &TopicResult) -> Error {
    match r.error_code {
        codes::TOPIC_ALREADY_EXISTS => Error::AlreadyExists(format!(
            "topic {:?} already exists in cluster {}; choose another topic_name",
            r.name, cluster.id
        )),
        codes::UNKNOWN_TOPIC_OR_PARTITION => topic_not_found(&cluster.id, &r.name),
        // The cell's message says what is wrong (POLICY_VIOLATION: the plan's partition
        // limit).
        codes::INVALID_TOPIC_EXCEPTION
        | codes::INVALID_PARTITIONS
        | codes::INVALID_REPLICATION_FACTOR
        | codes::INVALID_CONFIG
        | codes::INVALID_REQUEST
        | codes::POLICY_VIOLATION => Error::InvalidArgument(r.error_message.clone()),
        code => Error::Unavailable(format!(
            "cell {} answered Kafka error {code} for topic {:?}: {}",
            cluster.cell_id, r.name, r.error_message
        )),
    }
}

fn info(t: TopicDescription) -> TopicInfo {
    TopicInfo {
        partitions_count: t.partitions.len() as i32,
        replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len() as i32),
        configs: t.configs.into_iter().collect(),
        name: t.name,
    }
}

async fn describe(
    state: &AppState,
    cluster: &Cluster,
    names: Vec<String>,
) -> Result<Vec<TopicInfo>> {
    let cell = state.provisioner.cell(&cluster.cell_id)?;
    let req = ListTopicsRequest {
        cluster_id: cluster.id.clone(),
        names,
    };
    let r = cell
        .call("ListTopics", |mut c| {
            let req = req.clone();
            async move { c.list_topics(req).await }
        })
        .await?;
    Ok(r.topics.into_iter().map(info).collect())
}

/// Every topic of the cluster, by name.
pub async fn list_topics(state: &AppState, cluster: &Cluster) -> Result<Vec<TopicInfo>> {
    describe(state, cluster, Vec::new()).await
}

pub async fn get_topic(state: &AppState, cluster: &Cluster, name: &str) -> Result<TopicInfo> {
    describe(state, cluster, vec![name.to_string()])
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| topic_not_found(&cluster.id, name))
}

pub async fn create_topic(state: &AppState, cluster: &Cluster, new: NewTopic) -> Result<TopicInfo> {
    validate_topic_name(&new.name)?;
    if let Some(n) = new.partitions_count {
        if !(1..=MAX_PARTITIONS).contains(&n) {
            return Err(Error::InvalidArgument(format!(
                "partitions_count {n} is out of range; use 1 to {MAX_PARTITIONS}"
            )));
        }
    }
    if let Some(rf) = new.replication_factor {
        if !(1..=MAX_REPLICATION_FACTOR).contains(&rf) {
            return Err(Error::InvalidArgument(format!(
                "replication_factor {rf} is out of range; use 1 to {MAX_REPLICATION_FACTOR} \
                 (at most the cell's brokers)"
            )));
        }
    }
    if new.configs.len() > MAX_CONFIGS {
        return Err(Error::InvalidArgument(format!(
            "at most {MAX_CONFIGS} configs per topic"
        )));
    }
    let mut configs = HashMap::new();
    for (name, value) in &new.configs {
        validate_config(name, value)?;
        if configs.insert(name.clone(), value.clone()).is_some() {
            return Err(Error::InvalidArgument(format!(
                "config {name} is given twice; give each config once"
            )));
        }
    }
    let cell = state.provisioner.cell(&cluster.cell_id)?;
    let req = CreateTopicsRequest {
        cluster_id: cluster.id.clone(),
        topics: vec![CreatableTopic {
            name: new.name.clone(),
            num_partitions: new.partitions_count.unwrap_or(-1),
            replication_factor: new.replication_factor.unwrap_or(-1),
            configs: configs.clone(),
        }],
        validate_only: new.validate_only,
    };
    let r = cell
        .call("CreateTopics", |mut c| {
            let req = req.clone();
            async move { c.create_topics(req).await }
        })
        .await?;
    let result = r
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal("CreateTopics answered no topic".into()))?;
    if result.error_code != 0 {
        return Err(topic_error(cluster, &result));
    }
    tracing::info!(organization_id = %cluster.organization_id, cluster = %cluster.id, topic = %new.name, validate_only = new.validate_only, "topic created");
    Ok(TopicInfo {
        name: new.name,
        partitions_count: result.num_partitions,
        replication_factor: result.replication_factor,
        configs: configs.into_iter().collect(),
    })
}

pub async fn delete_topic(state: &AppState, cluster: &Cluster, name: &str) -> Result<()> {
    let cell = state.provisioner.cell(&cluster.cell_id)?;
    let req = DeleteTopicsRequest {
        cluster_id: cluster.id.clone(),
        names: vec![name.to_string()],
        topic_ids: Vec::new(),
    };
    let r = cell
        .call("DeleteTopics", |mut c| {
            let req = req.clone();
            async move { c.delete_topics(req).await }
        })
        .await?;
    match r.topics.into_iter().next() {
        Some(t) if t.error_code == 0 => {
            tracing::info!(organization_id = %cluster.organization_id, cluster = %cluster.id, topic = %name, "topic deleted");
            Ok(())
        }
        Some(t) => Err(topic_error(cluster, &t)),
        None => Err(Error::Internal("DeleteTopics answered no topic".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configs() {
        assert!(validate_config("retention.ms", "-1").is_ok());
        assert!(validate_config("retention.ms", "-2").is_err());
        assert!(validate_config("retention.ms", "soon").is_err());
        assert!(validate_config("cleanup.policy", "delete").is_ok());
        assert!(validate_config("cleanup.policy", "compact").is_err());
        assert!(validate_config("message.timestamp.type", "LogAppendTime").is_ok());
        let e = validate_config("no.such", "1").unwrap_err().to_string();
        assert!(e.contains("supported: cleanup.policy"), "{e}");
    }
}
