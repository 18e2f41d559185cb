//! Topic administration and cluster description: CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeCluster, InitProducerId.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest,
    DescribeClusterResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId, TopicName,
};
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{error_fields, s};
use crate::authz::Caller;
use crate::broker::Broker;
use crate::connection::Listener;
use crate::error::Error;
use crate::topic_config;
use cells::acl::op;

/// Kafka's "source" code for a config set on the topic, and for a default.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DEFAULT: i8 = 5;

pub async fn create_topics(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let tenant = &caller.tenant;
    let mut results = Vec::with_capacity(req.topics.len());
    let mut throttle = 0;
    for t in req.topics {
        let name = t.name.0.as_str().to_string();
        let mut r = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let mut configs = BTreeMap::new();
        let mut bad = None;
        for c in &t.configs {
            let key = c.name.as_str();
            match topic_config::validate(key, c.value.as_deref()) {
                Ok(()) => {
                    configs.insert(
                        key.to_string(),
                        c.value.as_deref().unwrap_or_default().to_string(),
                    );
                }
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        let (partitions, rf) = if t.assignments.is_empty() {
            (t.num_partitions, t.replication_factor)
        } else if t.num_partitions != -1 || t.replication_factor != -1 {
            bad = bad.or(Some(Error::InvalidRequest(
                "give either replica assignments or partitions and replication factor, not both"
                    .into(),
            )));
            (-1, -1)
        } else {
            let rf = t
                .assignments
                .first()
                .map(|a| a.broker_ids.len() as i16)
                .unwrap_or(1);
            if t.assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.config.node_id))
            {
                bad = bad.or(Some(Error::InvalidReplicationFactor(
                    "replica assignments may only name this broker".into(),
                )));
            }
            (t.assignments.len() as i32, rf)
        };
        let result = match bad {
            Some(e) => Err(e),
            None if !caller.may_create_topic(&name) => Err(Error::TopicAuthorization(format!(
                "CREATE on topic `{name}`"
            ))),
            None => {
                broker
                    .create_topic(tenant, &name, partitions, rf, configs, req.validate_only)
                    .await
            }
        };
        match result {
            Ok(topic) => {
                r.topic_id = topic.id;
                r.num_partitions = if req.validate_only {
                    if partitions == -1 {
                        broker.config.default_partitions
                    } else {
                        partitions
                    }
                } else {
                    topic.partitions.len() as i32
                };
                r.replication_factor = topic
                    .partitions
                    .first()
                    .map_or(1, |p| p.replicas.len() as i16);
                if version >= 5 {
                    r.configs = Some(
                        topic_config::describe(&broker.config.log_defaults, &topic.configs)
                            .into_iter()
                            .map(|e| {
                                CreatableTopicConfigs::default()
                                    .with_name(s(e.name))
                                    .with_value(Some(s(&e.value)))
                                    .with_config_source(if e.is_default {
                                        SOURCE_DEFAULT
                                    } else {
                                        SOURCE_TOPIC
                                    })
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                (r.error_code, r.error_message) = error_fields(&e);
                throttle = throttle.max(e.throttle_ms());
            }
        }
        results.push(r);
    }
    CreateTopicsResponse::default()
        .with_topics(results)
        .with_throttle_time_ms(throttle)
}

pub async fn delete_topics(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let tenant = &caller.tenant;
    // v6+ names topics by name or id in `topics`; older versions list names.
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.as_str().to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.as_str().to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    let mut throttle = 0;
    for (name, id) in targets {
        let name = match name {
            Some(n) => Some(n),
            None => broker.topic_by_id(tenant, id).map(|t| t.name.clone()),
        };
        let mut r = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(s(&n))))
            .with_topic_id(id);
        let result = match &name {
            Some(n) if !caller.on_topic(op::DELETE, n) => {
                Err(Error::TopicAuthorization(format!("DELETE on topic `{n}`")))
            }
            Some(n) => broker.delete_topic(tenant, n).await,
            None => Err(Error::UnknownTopicOrPartition(format!(
                "no topic has id {id}"
            ))),
        };
        match result {
            Ok(deleted_id) => r.topic_id = deleted_id,
            Err(e) => {
                r.error_code = if name.is_none() {
                    ResponseError::UnknownTopicId.code()
                } else {
                    e.kafka_code()
                };
                r.error_message = Some(s(&e.to_string()));
                throttle = throttle.max(e.throttle_ms());
            }
        }
        responses.push(r);
    }
    DeleteTopicsResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(throttle)
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let tenant = &caller.tenant;
    let mut results = Vec::with_capacity(req.topics.len());
    let mut throttle = 0;
    for t in req.topics {
        let name = t.name.0.as_str().to_string();
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name);
        let manual_elsewhere = t.assignments.as_ref().is_some_and(|a| {
            a.iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.config.node_id))
        });
        let result = if !caller.on_topic(op::ALTER, &name) {
            Err(Error::TopicAuthorization(format!(
                "ALTER on topic `{name}`"
            )))
        } else if manual_elsewhere {
            Err(Error::InvalidReplicationFactor(
                "replica assignments may only name this broker".into(),
            ))
        } else {
            broker
                .create_partitions(tenant, &name, t.count, req.validate_only)
                .await
        };
        if let Err(e) = result {
            (r.error_code, r.error_message) = error_fields(&e);
            throttle = throttle.max(e.throttle_ms());
        }
        results.push(r);
    }
    CreatePartitionsResponse::default()
        .with_results(results)
        .with_throttle_time_ms(throttle)
}

pub fn describe_cluster(
    broker: &Arc<Broker>,
    caller: &Caller,
    listener: Listener,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let tenant = &caller.tenant;
    let brokers = broker
        .live_brokers(listener)
        .into_iter()
        .map(|(id, host, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(s(&host))
                .with_port(port as i32)
        })
        .collect();
    DescribeClusterResponse::default()
        .with_endpoint_type(1)
        .with_cluster_id(s(tenant))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_brokers(brokers)
}

/// Idempotent producers get a fresh id at epoch 0; a producer that names its current id and
/// epoch (KIP-360) gets the next epoch, which resets its sequences.
pub fn init_producer_id(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if !caller.may_write_idempotently() {
        r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return r;
    }
    if req.transactional_id.is_some() {
        r.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return r;
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        r.producer_id = req.producer_id;
        r.producer_epoch = req.producer_epoch + 1;
        return r;
    }
    match broker.producer_ids.allocate() {
        Ok(id) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = 0;
        }
        Err(e) => {
            warn!(error = %e, "cannot allocate a producer id");
            r.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    r
}
