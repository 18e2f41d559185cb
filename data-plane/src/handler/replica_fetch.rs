//! Fetch from a follower replica (`replica_id >= 0`) in a cell: topics are named by id,
//! reads go up to the log end (not the high watermark), each fetch offset is the
//! follower's log end and advances the leader's high watermark, and a follower whose
//! last fetched epoch diverges from the leader's log gets `diverging_epoch` (Fetch v12,
//! KIP-320) instead of records.
//!
//! This path trusts `replica_id`; once brokers authenticate each other (the
//! multi-tenancy issue) it is served only to broker principals.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::Broker;
use crate::cell::Cell;
use crate::partition::Partition;

const MAX_WAIT: Duration = Duration::from_secs(5);

pub async fn handle(broker: &Arc<Broker>, cell: &Arc<Cell>, req: FetchRequest) -> FetchResponse {
    let replica = req.replica_id.0;
    // Record every partition's progress once per request, before any long poll.
    let mut moved = false;
    for t in &req.topics {
        for fp in &t.partitions {
            if let Some(p) = resolve(cell, t.topic.0.as_str(), fp.partition) {
                if p.is_leader() && fp.current_leader_epoch == p.leader_epoch() {
                    moved |= p.record_follower_fetch(replica, fp.fetch_offset);
                }
            }
        }
    }
    if moved {
        broker.data_changed.notify_waiters();
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    super::fetch::long_poll(broker, wait, || {
        let (resp, bytes, signal) = read_once(cell, &req);
        (resp, bytes > 0 || signal)
    })
    .await
}

fn resolve(cell: &Cell, topic: &str, index: i32) -> Option<Arc<Partition>> {
    cell.replica(Uuid::parse_str(topic).ok()?, index)
}

/// One pass: (response, record bytes, whether any partition answered with an error or
/// a diverging epoch).
fn read_once(cell: &Cell, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut remaining =
        (req.max_bytes.max(1) as usize).min(cell.config.replica_fetch_max_bytes.max(1 << 20));
    let mut total = 0usize;
    let mut signal = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for fp in &t.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_records(Some(Bytes::new()));
            match resolve(cell, t.topic.0.as_str(), fp.partition) {
                None => pd.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(p) if fp.current_leader_epoch < p.leader_epoch() => {
                    pd.error_code = ResponseError::FencedLeaderEpoch.code()
                }
                Some(p) if fp.current_leader_epoch > p.leader_epoch() => {
                    pd.error_code = ResponseError::UnknownLeaderEpoch.code()
                }
                Some(p) if !p.is_leader() => {
                    pd.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                Some(p) => {
                    pd.high_watermark = p.high_watermark();
                    pd.last_stable_offset = pd.high_watermark;
                    pd.log_start_offset = p.log_start_offset();
                    if let Some(div) = diverging(&p, fp.last_fetched_epoch, fp.fetch_offset) {
                        pd.diverging_epoch = div;
                    } else {
                        let max = (fp.partition_max_bytes.max(0) as usize).min(remaining);
                        let max = if total == 0 { max.max(1) } else { max };
                        if fp.fetch_offset < p.log_end_offset() && max > 0 {
                            match p.read_for_replica(fp.fetch_offset, max) {
                                Ok(read) => {
                                    total += read.records.len();
                                    remaining = remaining.saturating_sub(read.records.len());
                                    pd.records = Some(read.records);
                                }
                                Err(e) => pd.error_code = e.kafka_code(),
                            }
                        } else if fp.fetch_offset > p.log_end_offset()
                            || fp.fetch_offset < p.log_start_offset()
                        {
                            pd.error_code = ResponseError::OffsetOutOfRange.code();
                        }
                    }
                }
            }
            signal |= pd.error_code != 0 || pd.diverging_epoch.epoch >= 0;
            partitions.push(pd);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions),
        );
    }
    let resp = FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics);
    (resp, total, signal)
}

/// The leader's answer to a follower whose log may have diverged: where the follower's
/// last fetched epoch ends in the leader's log, if that is before the fetch offset or
/// the epoch is not the one the leader has there.
fn diverging(p: &Partition, last_fetched_epoch: i32, fetch_offset: i64) -> Option<EpochEndOffset> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = p.end_offset_for_epoch(last_fetched_epoch)?;
    if epoch != last_fetched_epoch || end < fetch_offset {
        Some(
            EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end),
        )
    } else {
        None
    }
}
