//! DescribeConfigs, AlterConfigs (replace all overrides) and IncrementalAlterConfigs
//! (SET / DELETE / APPEND / SUBTRACT) for topics; broker configs are described read-only.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{alter_configs_response, incremental_alter_configs_response};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::admin::{SOURCE_DEFAULT, SOURCE_TOPIC};
use super::{error_fields, s};
use crate::authz::Caller;
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::topic_config;
use cells::acl::op;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_STATIC_BROKER: i8 = 4;
/// Kafka's config type codes for DescribeConfigs v3+.
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;

pub fn describe(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: DescribeConfigsRequest,
    _version: i16,
) -> DescribeConfigsResponse {
    let tenant = &caller.tenant;
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            match res.resource_type {
                RESOURCE_TOPIC
                    if !caller.on_topic(op::DESCRIBE_CONFIGS, res.resource_name.as_str()) =>
                {
                    out.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
                    out.error_message = Some(s("not authorized to describe this topic's configs"));
                }
                RESOURCE_TOPIC => match broker.topic(tenant, res.resource_name.as_str()) {
                    Some(topic) => {
                        out.configs = topic_config::describe(&broker.config.log_defaults, &topic.configs)
                            .into_iter()
                            .filter(|e| wanted(e.name))
                            .map(|e| {
                                let mut r = DescribeConfigsResourceResult::default()
                                    .with_name(s(e.name))
                                    .with_value(Some(s(&e.value)))
                                    .with_config_source(if e.is_default { SOURCE_DEFAULT } else { SOURCE_TOPIC })
                                    .with_config_type(if e.value.parse::<i64>().is_ok() { TYPE_LONG } else { TYPE_STRING });
                                if req.include_documentation {
                                    r.documentation = Some(s(e.doc));
                                }
                                r
                            })
                            .collect();
                    }
                    None => {
                        let e = Error::UnknownTopicOrPartition(format!("topic `{}` does not exist", res.resource_name.as_str()));
                        (out.error_code, out.error_message) = error_fields(&e);
                    }
                },
                RESOURCE_BROKER if res.resource_name.is_empty()
                    || res.resource_name.as_str() == broker.config.node_id.to_string() =>
                {
                    let c = &broker.config;
                    out.configs = [
                        ("broker.id", c.node_id.to_string(), TYPE_LONG),
                        ("socket.request.max.bytes", c.max_request_bytes.to_string(), TYPE_LONG),
                        ("num.partitions", c.default_partitions.to_string(), TYPE_LONG),
                        ("auto.create.topics.enable", c.auto_create_topics.to_string(), TYPE_STRING),
                    ]
                    .into_iter()
                    .filter(|(n, _, _)| wanted(n))
                    .map(|(n, v, t)| {
                        DescribeConfigsResourceResult::default()
                            .with_name(s(n))
                            .with_value(Some(s(&v)))
                            .with_read_only(true)
                            .with_config_source(SOURCE_STATIC_BROKER)
                            .with_config_type(t)
                    })
                    .collect();
                }
                other => {
                    let e = Error::InvalidRequest(format!(
                        "config resource type {other} `{}` is not supported; use topics (2) or this broker (4)",
                        res.resource_name.as_str()
                    ));
                    (out.error_code, out.error_message) = error_fields(&e);
                }
            }
            out
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_resource(resource_type: i8, name: &str) -> Result<()> {
    if resource_type != RESOURCE_TOPIC {
        return Err(Error::InvalidRequest(format!(
            "only topic configs can be altered (resource type 2), not type {resource_type} `{name}`"
        )));
    }
    Ok(())
}

pub async fn alter(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let tenant = &caller.tenant;
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let name = res.resource_name.as_str().to_string();
        let result = async {
            topic_resource(res.resource_type, &name)?;
            if !caller.on_topic(op::ALTER_CONFIGS, &name) {
                return Err(Error::TopicAuthorization(format!(
                    "ALTER_CONFIGS on `{name}`"
                )));
            }
            if broker.topic(tenant, &name).is_none() {
                return Err(Error::UnknownTopicOrPartition(format!(
                    "topic `{name}` does not exist"
                )));
            }
            let mut configs = BTreeMap::new();
            for c in &res.configs {
                topic_config::validate(c.name.as_str(), c.value.as_deref())?;
                configs.insert(
                    c.name.to_string(),
                    c.value.as_deref().unwrap_or_default().to_string(),
                );
            }
            if req.validate_only {
                return Ok(());
            }
            broker.set_topic_configs(tenant, &name, configs).await
        }
        .await;
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err(e) = result {
            (r.error_code, r.error_message) = error_fields(&e);
        }
        responses.push(r);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub async fn incremental_alter(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let tenant = &caller.tenant;
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let name = res.resource_name.as_str().to_string();
        let result = async {
            topic_resource(res.resource_type, &name)?;
            if !caller.on_topic(op::ALTER_CONFIGS, &name) {
                return Err(Error::TopicAuthorization(format!(
                    "ALTER_CONFIGS on `{name}`"
                )));
            }
            let topic = broker.topic(tenant, &name).ok_or_else(|| {
                Error::UnknownTopicOrPartition(format!("topic `{name}` does not exist"))
            })?;
            let mut configs = topic.configs.clone();
            for c in &res.configs {
                let key = c.name.as_str();
                let value = c.value.as_deref();
                match c.config_operation {
                    OP_SET => {
                        topic_config::validate(key, value)?;
                        configs.insert(key.to_string(), value.unwrap_or_default().to_string());
                    }
                    OP_DELETE => {
                        if topic_config::find(key).is_none() {
                            topic_config::validate(key, value)?;
                        }
                        configs.remove(key);
                    }
                    OP_APPEND | OP_SUBTRACT if key == "cleanup.policy" => {
                        // The only list config; `delete` is its only supported value.
                        topic_config::validate(key, value)?;
                        if c.config_operation == OP_SUBTRACT {
                            return Err(Error::InvalidConfig(
                                "cleanup.policy cannot be empty: `delete` is required".into(),
                            ));
                        }
                        configs.insert(key.to_string(), "delete".to_string());
                    }
                    OP_APPEND | OP_SUBTRACT => {
                        return Err(Error::InvalidConfig(format!(
                            "`{key}` is not a list config; use SET or DELETE"
                        )));
                    }
                    other => {
                        return Err(Error::InvalidRequest(format!(
                            "unknown config operation {other}"
                        )))
                    }
                }
            }
            if req.validate_only {
                return Ok(());
            }
            broker.set_topic_configs(tenant, &name, configs).await
        }
        .await;
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err(e) = result {
            (r.error_code, r.error_message) = error_fields(&e);
        }
        responses.push(r);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
