//! Topic administration in a cell: the broker validates what it can (names, configs),
//! forwards the change to the controller on the tenant's behalf, and answers the client
//! once the committed change is applied here, so the client's next Metadata sees it.

use std::collections::BTreeMap;

use proto::cell::v1::{
    AlterTopicConfigsRequest, ChangeResult, CreatableTopic, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, TopicResult,
};
use uuid::Uuid;

use super::Cell;
use crate::error::{Error, Result};

fn check(code: i32, message: &str) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::Controller {
            code: code as i16,
            message: message.to_string(),
        })
    }
}

/// THROTTLING_QUOTA_EXCEEDED carries the controller's throttle time.
const THROTTLING_QUOTA_EXCEEDED: i32 = 89;

fn check_throttled(code: i32, message: &str, throttle_ms: i32) -> Result<()> {
    if code == THROTTLING_QUOTA_EXCEEDED {
        return Err(Error::Throttled {
            message: message.to_string(),
            throttle_ms,
        });
    }
    check(code, message)
}

fn change_result(r: ChangeResult) -> Result<u64> {
    check_throttled(r.error_code, &r.error_message, r.throttle_time_ms)?;
    Ok(r.offset)
}

async fn one_topic(cell: &Cell, results: Vec<TopicResult>) -> Result<TopicResult> {
    let r = results
        .into_iter()
        .next()
        .ok_or_else(|| Error::ControllerUnavailable("empty answer".into()))?;
    check_throttled(r.error_code, &r.error_message, r.throttle_time_ms)?;
    if r.offset > 0 {
        cell.wait_applied(r.offset).await?;
    }
    Ok(r)
}

/// Create a topic; returns (id, partitions, replication factor).
pub async fn create_topic(
    cell: &Cell,
    tenant: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(Uuid, i32, i16)> {
    let req = CreateTopicsRequest {
        cluster_id: tenant.to_string(),
        topics: vec![CreatableTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: replication_factor as i32,
            configs: configs.into_iter().collect(),
        }],
        validate_only,
    };
    let resp = cell
        .controller
        .create_topics(req)
        .await
        .map_err(|e| super::unavailable("CreateTopics", e))?;
    let r = one_topic(cell, resp.topics).await?;
    let id = Uuid::from_slice(&r.topic_id).unwrap_or_default();
    Ok((id, r.num_partitions, r.replication_factor as i16))
}

pub async fn delete_topic(cell: &Cell, tenant: &str, name: &str) -> Result<Uuid> {
    let req = DeleteTopicsRequest {
        cluster_id: tenant.to_string(),
        names: vec![name.to_string()],
        topic_ids: vec![],
    };
    let resp = cell
        .controller
        .delete_topics(req)
        .await
        .map_err(|e| super::unavailable("DeleteTopics", e))?;
    let r = one_topic(cell, resp.topics).await?;
    Ok(Uuid::from_slice(&r.topic_id).unwrap_or_default())
}

pub async fn create_partitions(
    cell: &Cell,
    tenant: &str,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<()> {
    let req = CreatePartitionsRequest {
        cluster_id: tenant.to_string(),
        topic: name.to_string(),
        new_total: count,
        validate_only,
    };
    let resp = cell
        .controller
        .create_partitions(req)
        .await
        .map_err(|e| super::unavailable("CreatePartitions", e))?;
    let offset = change_result(resp)?;
    cell.wait_applied(offset).await
}

/// Replace a topic's config overrides (validated by the caller).
pub async fn set_topic_configs(
    cell: &Cell,
    tenant: &str,
    name: &str,
    configs: BTreeMap<String, String>,
) -> Result<()> {
    let req = AlterTopicConfigsRequest {
        cluster_id: tenant.to_string(),
        topic: name.to_string(),
        set: configs.into_iter().collect(),
        remove: vec![],
        replace_all: true,
        validate_only: false,
    };
    let resp = cell
        .controller
        .alter_topic_configs(req)
        .await
        .map_err(|e| super::unavailable("AlterTopicConfigs", e))?;
    let offset = change_result(resp)?;
    cell.wait_applied(offset).await
}
