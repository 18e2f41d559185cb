//! Offset queries and moves: ListOffsets (earliest, latest, by timestamp),
//! OffsetForLeaderEpoch, DeleteRecords.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::ResponseError;

use crate::authz::Caller;
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::partition::Partition;
use cells::acl::op as acl_op;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// KIP-734: the offset of the record with the largest timestamp.
const MAX_TIMESTAMP: i64 = -3;

/// The partition, if this broker has it and the client's view of its leader epoch is
/// current (-1 skips the check); otherwise the Kafka error code to answer with.
pub(crate) fn leader_partition(
    broker: &Broker,
    tenant: &str,
    topic: &str,
    index: i32,
    current_leader_epoch: i32,
) -> std::result::Result<Arc<Partition>, i16> {
    let p = broker
        .partition(tenant, topic, index)
        .map_err(|e| e.kafka_code())?;
    if current_leader_epoch >= 0 && current_leader_epoch < p.leader_epoch() {
        Err(ResponseError::FencedLeaderEpoch.code())
    } else if current_leader_epoch > p.leader_epoch() {
        Err(ResponseError::UnknownLeaderEpoch.code())
    } else if !p.is_leader() {
        Err(ResponseError::NotLeaderOrFollower.code())
    } else {
        Ok(p)
    }
}

/// [`leader_partition`] for a caller who needs `operation` on the topic:
/// TOPIC_AUTHORIZATION_FAILED before anything else when it lacks it.
pub(crate) fn authorized_partition(
    broker: &Broker,
    caller: &Caller,
    operation: i32,
    topic: &str,
    index: i32,
    current_leader_epoch: i32,
) -> std::result::Result<Arc<Partition>, i16> {
    if !caller.on_topic(operation, topic) {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    leader_partition(broker, &caller.tenant, topic, index, current_leader_epoch)
}

pub fn list_offsets(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str().to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|lp| {
                    let mut r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    match authorized_partition(
                        broker,
                        caller,
                        acl_op::DESCRIBE,
                        &name,
                        lp.partition_index,
                        lp.current_leader_epoch,
                    ) {
                        Err(code) => r.error_code = code,
                        Ok(p) => match lookup(&p, lp.timestamp) {
                            Ok(Some((offset, ts))) => {
                                r.offset = offset;
                                r.timestamp = ts;
                                if version >= 4 {
                                    r.leader_epoch = p.leader_epoch();
                                }
                            }
                            Ok(None) => {}
                            Err(e) => r.error_code = e.kafka_code(),
                        },
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn lookup(p: &Partition, timestamp: i64) -> Result<Option<(i64, i64)>> {
    match timestamp {
        LATEST => Ok(Some((p.high_watermark(), -1))),
        EARLIEST => Ok(Some((p.log_start_offset(), -1))),
        MAX_TIMESTAMP => p.max_timestamp_offset(),
        ts if ts >= 0 => p.offset_for_timestamp(ts),
        other => Err(crate::error::Error::InvalidRequest(format!(
            "unsupported ListOffsets timestamp {other}"
        ))),
    }
}

pub fn offset_for_leader_epoch(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.as_str().to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|op| {
                    let mut r = EpochEndOffset::default()
                        .with_partition(op.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    match authorized_partition(
                        broker,
                        caller,
                        acl_op::DESCRIBE,
                        &name,
                        op.partition,
                        op.current_leader_epoch,
                    ) {
                        Err(code) => r.error_code = code,
                        Ok(p) => {
                            if let Some((epoch, end)) = p.end_offset_for_epoch(op.leader_epoch) {
                                r.leader_epoch = epoch;
                                r.end_offset = end;
                            }
                        }
                    }
                    r
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

pub fn delete_records(
    broker: &Arc<Broker>,
    caller: &Caller,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let tenant = &caller.tenant;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str().to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|dp| {
                    let mut r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(dp.partition_index)
                        .with_low_watermark(-1);
                    let allowed = if caller.on_topic(acl_op::DELETE, &name) {
                        Ok(())
                    } else {
                        Err(Error::TopicAuthorization(format!(
                            "DELETE on topic `{name}`"
                        )))
                    };
                    match allowed
                        .and_then(|_| broker.partition(tenant, &name, dp.partition_index))
                        .and_then(|p| p.delete_records_before(dp.offset))
                    {
                        Ok(low) => r.low_watermark = low,
                        Err(e) => r.error_code = e.kafka_code(),
                    }
                    r
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
