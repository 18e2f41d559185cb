//! Topic administration a broker forwards on a tenant's behalf: create, delete, add
//! partitions, alter configs. Per-topic failures are Kafka error codes in the results;
//! configs arrive validated by the broker and are stored as given.

use proto::cell::v1::{
    metadata_record::Record, AlterTopicConfigsRequest, ChangeResult, CreatableTopic,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, PartitionRecord,
    RemoveTopicRecord, TopicConfigRecord, TopicRecord, TopicResult,
};
use std::time::Instant;

use uuid::Uuid;

use super::{placement, wrap, Controller};
use crate::error::{codes, CellError};
use crate::image::{topic_uuid, CellImage};

fn failed(name: &str, code: i32, message: impl Into<String>) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        error_code: code,
        error_message: message.into(),
        ..Default::default()
    }
}

fn change(code: i32, message: impl Into<String>, offset: u64) -> ChangeResult {
    ChangeResult {
        error_code: code,
        error_message: message.into(),
        offset,
        throttle_time_ms: 0,
    }
}

/// The tenant's KIP-599 limit on partition creations and deletions per five minutes.
fn mutation_limit(image: &CellImage, cluster_id: &str) -> u32 {
    image
        .clusters
        .get(cluster_id)
        .and_then(|c| c.limits.as_ref())
        .map_or(0, |l| l.partition_mutations_per_5min)
}

/// THROTTLING_QUOTA_EXCEEDED with the time to wait.
fn throttled(limit: u32, wait: std::time::Duration) -> (i32, String, i32) {
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    (
        codes::THROTTLING_QUOTA_EXCEEDED,
        format!(
            "the cluster's limit of {limit} partition creations and deletions per 5 minutes is \
             used up; retry in {} s",
            wait.as_secs().max(1)
        ),
        ms,
    )
}

fn active_brokers(image: &CellImage) -> usize {
    image
        .brokers
        .keys()
        .filter(|b| super::elect::is_active(image, **b))
        .count()
}

/// `Err((code, message))` when adding `adding` partitions breaks the tenant's limit.
fn check_partition_limit(
    image: &CellImage,
    cluster_id: &str,
    adding: usize,
) -> Result<(), (i32, String)> {
    let limit = image
        .clusters
        .get(cluster_id)
        .and_then(|c| c.limits.as_ref())
        .map(|l| l.max_partitions)
        .unwrap_or(0);
    if limit == 0 {
        return Ok(());
    }
    let have: usize = image
        .topics
        .values()
        .filter(|t| t.cluster_id == cluster_id)
        .map(|t| t.partitions.len())
        .sum();
    if have + adding > limit as usize {
        return Err((
            codes::POLICY_VIOLATION,
            format!(
                "the cluster's partition limit is {limit}; it has {have} and this would add {adding}"
            ),
        ));
    }
    Ok(())
}

fn partition_records(
    topic_id: Uuid,
    first: i32,
    assignments: Vec<Vec<i32>>,
) -> Vec<PartitionRecord> {
    assignments
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| PartitionRecord {
            topic_id: topic_id.as_bytes().to_vec(),
            partition: first + i as i32,
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .collect()
}

impl Controller {
    #[tracing::instrument(level = "info", skip_all, fields(cluster = %req.cluster_id))]
    pub async fn create_topics(
        &self,
        req: CreateTopicsRequest,
    ) -> Result<Vec<TopicResult>, CellError> {
        let mut guard = self.lead().await?;
        let limit = mutation_limit(&self.hub.image(), &req.cluster_id);
        let mut out = Vec::with_capacity(req.topics.len());
        for topic in &req.topics {
            let result = match self.plan_topic(&req.cluster_id, topic) {
                Err((code, msg)) => failed(&topic.name, code, msg),
                Ok((result, _)) if req.validate_only => result,
                Ok((mut result, records)) => {
                    let n = result.num_partitions.max(0) as usize;
                    match guard
                        .mutations
                        .admit(&req.cluster_id, limit, n, Instant::now())
                    {
                        Ok(()) => {
                            result.offset = self.commit(records).await?;
                            result
                        }
                        Err(wait) => {
                            let (code, msg, ms) = throttled(limit, wait);
                            let mut r = failed(&topic.name, code, msg);
                            r.throttle_time_ms = ms;
                            r
                        }
                    }
                }
            };
            out.push(result);
        }
        Ok(out)
    }

    /// Validates one topic and returns its result and records (not yet committed).
    fn plan_topic(
        &self,
        cluster_id: &str,
        t: &CreatableTopic,
    ) -> Result<(TopicResult, Vec<proto::cell::v1::MetadataRecord>), (i32, String)> {
        let image = self.hub.image();
        if !image.clusters.contains_key(cluster_id) {
            return Err((
                codes::INVALID_REQUEST,
                format!("logical cluster {cluster_id} does not exist"),
            ));
        }
        if t.name.is_empty() || t.name.len() > 249 {
            return Err((
                codes::INVALID_TOPIC_EXCEPTION,
                "topic names are 1 to 249 characters".into(),
            ));
        }
        if image.topic(cluster_id, &t.name).is_some() {
            return Err((
                codes::TOPIC_ALREADY_EXISTS,
                format!("topic '{}' already exists", t.name),
            ));
        }
        let count = if t.num_partitions == -1 {
            self.config.default_partitions
        } else {
            t.num_partitions
        };
        if count < 1 {
            return Err((
                codes::INVALID_PARTITIONS,
                format!("partitions must be at least 1, not {count}"),
            ));
        }
        let rf = if t.replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            t.replication_factor
        };
        let active = active_brokers(&image);
        if rf < 1 || rf as usize > active {
            return Err((
                codes::INVALID_REPLICATION_FACTOR,
                format!("replication factor {rf} is not possible with {active} active brokers"),
            ));
        }
        check_partition_limit(&image, cluster_id, count as usize)?;
        let assignments =
            placement::place(&image, cluster_id, count as usize, rf as usize).ok_or((
                codes::INVALID_REPLICATION_FACTOR,
                format!("replication factor {rf} is not possible with {active} active brokers"),
            ))?;
        let id = Uuid::new_v4();
        let mut records = vec![wrap(Record::Topic(TopicRecord {
            cluster_id: cluster_id.to_string(),
            name: t.name.clone(),
            topic_id: id.as_bytes().to_vec(),
            configs: t.configs.clone(),
        }))];
        records.extend(
            partition_records(id, 0, assignments)
                .into_iter()
                .map(|p| wrap(Record::Partition(p))),
        );
        let result = TopicResult {
            name: t.name.clone(),
            topic_id: id.as_bytes().to_vec(),
            num_partitions: count,
            replication_factor: rf,
            ..Default::default()
        };
        Ok((result, records))
    }

    #[tracing::instrument(level = "info", skip_all, fields(cluster = %req.cluster_id))]
    pub async fn delete_topics(
        &self,
        req: DeleteTopicsRequest,
    ) -> Result<Vec<TopicResult>, CellError> {
        let mut guard = self.lead().await?;
        let limit = mutation_limit(&self.hub.image(), &req.cluster_id);
        let mut out = Vec::new();
        let by_name = req.names.iter().map(|n| (Some(n.as_str()), None));
        let by_id = req.topic_ids.iter().map(|i| (None, Some(i.as_slice())));
        for (name, id) in by_name.chain(by_id).collect::<Vec<_>>() {
            let found = {
                let image = self.hub.image();
                match (name, id) {
                    (Some(n), _) => image
                        .topic(&req.cluster_id, n)
                        .map(|t| (t.id, t.name.clone(), t.partitions.len())),
                    (None, Some(i)) => topic_uuid(i)
                        .and_then(|u| image.topics.get(&u))
                        .filter(|t| t.cluster_id == req.cluster_id)
                        .map(|t| (t.id, t.name.clone(), t.partitions.len())),
                    _ => None,
                }
            };
            let Some((tid, tname, partitions)) = found else {
                let mut r = match name {
                    Some(n) => failed(
                        n,
                        codes::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("topic '{n}' does not exist"),
                    ),
                    None => failed("", codes::UNKNOWN_TOPIC_ID, "no topic has this id"),
                };
                r.topic_id = id.map(|i| i.to_vec()).unwrap_or_default();
                out.push(r);
                continue;
            };
            let admitted =
                guard
                    .mutations
                    .admit(&req.cluster_id, limit, partitions, Instant::now());
            if let Err(wait) = admitted {
                let (code, msg, ms) = throttled(limit, wait);
                let mut r = failed(&tname, code, msg);
                r.topic_id = tid.as_bytes().to_vec();
                r.throttle_time_ms = ms;
                out.push(r);
                continue;
            }
            let offset = self
                .commit(vec![wrap(Record::RemoveTopic(RemoveTopicRecord {
                    topic_id: tid.as_bytes().to_vec(),
                }))])
                .await?;
            out.push(TopicResult {
                name: tname,
                topic_id: tid.as_bytes().to_vec(),
                offset,
                ..Default::default()
            });
        }
        Ok(out)
    }

    #[tracing::instrument(level = "info", skip_all, fields(cluster = %req.cluster_id))]
    pub async fn create_partitions(
        &self,
        req: CreatePartitionsRequest,
    ) -> Result<ChangeResult, CellError> {
        let mut guard = self.lead().await?;
        let records = {
            let image = self.hub.image();
            let Some(t) = image.topic(&req.cluster_id, &req.topic) else {
                return Ok(change(
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{}' does not exist", req.topic),
                    0,
                ));
            };
            let have = t.partitions.len() as i32;
            if req.new_total <= have {
                return Ok(change(
                    codes::INVALID_PARTITIONS,
                    format!(
                        "topic '{}' has {have} partitions; the new total must be more",
                        req.topic
                    ),
                    0,
                ));
            }
            let adding = (req.new_total - have) as usize;
            if let Err((code, msg)) = check_partition_limit(&image, &req.cluster_id, adding) {
                return Ok(change(code, msg, 0));
            }
            let rf = t
                .partitions
                .values()
                .next()
                .map(|p| p.replicas.len())
                .unwrap_or(1);
            let Some(assignments) = placement::place(&image, &req.cluster_id, adding, rf) else {
                return Ok(change(
                    codes::INVALID_REPLICATION_FACTOR,
                    format!(
                        "replication factor {rf} is not possible with {} active brokers",
                        active_brokers(&image)
                    ),
                    0,
                ));
            };
            partition_records(t.id, have, assignments)
        };
        if req.validate_only {
            return Ok(change(codes::NONE, "", self.hub.offset()));
        }
        let limit = mutation_limit(&self.hub.image(), &req.cluster_id);
        let admitted = guard
            .mutations
            .admit(&req.cluster_id, limit, records.len(), Instant::now());
        if let Err(wait) = admitted {
            let (code, msg, ms) = throttled(limit, wait);
            let mut r = change(code, msg, 0);
            r.throttle_time_ms = ms;
            return Ok(r);
        }
        let offset = self
            .commit(
                records
                    .into_iter()
                    .map(|p| wrap(Record::Partition(p)))
                    .collect(),
            )
            .await?;
        Ok(change(codes::NONE, "", offset))
    }

    #[tracing::instrument(level = "info", skip_all, fields(cluster = %req.cluster_id))]
    pub async fn alter_topic_configs(
        &self,
        req: AlterTopicConfigsRequest,
    ) -> Result<ChangeResult, CellError> {
        let _guard = self.lead().await?;
        let record = {
            let image = self.hub.image();
            let Some(t) = image.topic(&req.cluster_id, &req.topic) else {
                return Ok(change(
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{}' does not exist", req.topic),
                    0,
                ));
            };
            let remove = if req.replace_all {
                t.configs
                    .keys()
                    .filter(|k| !req.set.contains_key(*k))
                    .cloned()
                    .collect()
            } else {
                req.remove.clone()
            };
            TopicConfigRecord {
                topic_id: t.id.as_bytes().to_vec(),
                set: req.set.clone(),
                remove,
            }
        };
        if req.validate_only {
            return Ok(change(codes::NONE, "", self.hub.offset()));
        }
        let offset = self.commit(vec![wrap(Record::TopicConfig(record))]).await?;
        Ok(change(codes::NONE, "", offset))
    }
}
