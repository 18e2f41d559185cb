//! Metadata: brokers, the controller, and topics with their partitions. Unknown topics are
//! auto-created when both the client and the broker allow it (librdkafka relies on this).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::s;
use crate::authz::Caller;
use crate::broker::{Broker, Topic};
use crate::connection::Listener;
use crate::error::Error;
use cells::acl::op;

fn broker_entries(broker: &Broker, listener: Listener) -> Vec<MetadataResponseBroker> {
    broker
        .live_brokers(listener)
        .into_iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(s(&host))
                .with_port(port as i32)
        })
        .collect()
}

pub fn topic_entry(topic: &Topic) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(&topic.name))))
        .with_topic_id(topic.id)
        .with_partitions(
            topic
                .partitions
                .iter()
                .map(|p| {
                    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
                    MetadataResponsePartition::default()
                        .with_partition_index(p.index)
                        .with_error_code(if p.leader < 0 {
                            ResponseError::LeaderNotAvailable.code()
                        } else {
                            0
                        })
                        .with_leader_id(BrokerId(p.leader))
                        .with_leader_epoch(p.leader_epoch)
                        .with_replica_nodes(ids(&p.replicas))
                        .with_isr_nodes(ids(&p.isr))
                })
                .collect(),
        )
}

fn error_topic(name: Option<&str>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(s(n))))
        .with_topic_id(id)
        .with_error_code(error.code())
}

/// Metadata of `tenant`'s cluster, with the brokers' endpoints for `listener`.
pub async fn handle(
    broker: &Arc<Broker>,
    caller: &Caller,
    listener: Listener,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let tenant = &caller.tenant;
    // v0: an empty list means all topics; v1+: null means all topics.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let auto_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let topics = match requested {
        // Listing shows only the topics the caller may describe.
        None => broker
            .topics(tenant)
            .iter()
            .filter(|t| caller.on_topic(op::DESCRIBE, &t.name))
            .map(|t| topic_entry(t))
            .collect(),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let entry = match t.name {
                    Some(name) => {
                        let name = name.0.as_str().to_string();
                        match broker.topic(tenant, &name) {
                            _ if !caller.on_topic(op::DESCRIBE, &name) => error_topic(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::TopicAuthorizationFailed,
                            ),
                            Some(topic) => topic_entry(&topic),
                            None if auto_create && caller.may_create_topic(&name) => match broker
                                .create_topic(tenant, &name, -1, -1, BTreeMap::new(), false)
                                .await
                            {
                                Ok(topic) => topic_entry(&topic),
                                // Lost a race with another creator: serve what exists.
                                Err(Error::TopicAlreadyExists(_)) => {
                                    match broker.topic(tenant, &name) {
                                        Some(topic) => topic_entry(&topic),
                                        None => error_topic(
                                            Some(&name),
                                            Uuid::nil(),
                                            ResponseError::UnknownTopicOrPartition,
                                        ),
                                    }
                                }
                                Err(e) => error_topic(Some(&name), Uuid::nil(), e.kafka_error()),
                            },
                            None => error_topic(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition,
                            ),
                        }
                    }
                    None => match broker.topic_by_id(tenant, t.topic_id) {
                        Some(topic) if !caller.on_topic(op::DESCRIBE, &topic.name) => {
                            error_topic(None, t.topic_id, ResponseError::TopicAuthorizationFailed)
                        }
                        Some(topic) => topic_entry(&topic),
                        None => error_topic(None, t.topic_id, ResponseError::UnknownTopicId),
                    },
                };
                out.push(entry);
            }
            out
        }
    };
    MetadataResponse::default()
        .with_brokers(broker_entries(broker, listener))
        .with_cluster_id(Some(s(tenant)))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_topics(topics)
}
