//! Produce: validate and append each partition's batches in request order (inline, so
//! pipelined requests keep their order), then answer at once (acks=1), not at all (acks=0),
//! or, for acks=-1, once the group-commit flusher has made the appends durable
//! (standalone) or once the high watermark passed them: durable on the leader and
//! copied by every in-sync replica (in a cell, where `min.insync.replicas` also holds).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tracing::{debug, debug_span};

use super::{error_fields, s, Reply};
use crate::authz::Caller;
use crate::broker::{now_ms, Broker};
use crate::connection::Session;
use crate::error::Error;
use crate::partition::Partition;

/// What an acks=-1 answer waits for, per partition.
enum Wait {
    Flush(oneshot::Receiver<Result<(), String>>),
    /// The partition, the append's last offset and the leader epoch it was made under.
    Replicated(Arc<Partition>, i64, i32),
}

/// Bounds on the produce `timeout_ms` a replicated acks=-1 waits for.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn handle(
    broker: &Arc<Broker>,
    _session: &Session,
    caller: &Caller,
    req: ProduceRequest,
    _version: i16,
) -> Reply {
    let tenant = &caller.tenant;
    let acks = req.acks;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut waits: Vec<(usize, usize, Wait)> = Vec::new();
    let timeout =
        Duration::from_millis(req.timeout_ms.max(0) as u64).clamp(MIN_TIMEOUT, MAX_TIMEOUT);
    let now = now_ms();
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let may_write = caller.on_topic(cells::acl::op::WRITE, &name);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let span = debug_span!("produce", topic = %name, partition = pd.index);
            let _enter = span.enter();
            let mut resp = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let pd_bytes = pd.records.as_ref().map_or(0, |r| r.len());
            let result = if !matches!(acks, -1..=1) {
                Err(Error::InvalidRequiredAcks(acks))
            } else if req.transactional_id.is_some() {
                Err(Error::InvalidRecord(
                    "transactional produce is not supported by this broker".into(),
                ))
            } else if !may_write {
                Err(Error::TopicAuthorization(format!(
                    "WRITE on topic `{name}`"
                )))
            } else {
                broker.partition(tenant, &name, pd.index).and_then(|p| {
                    if acks == -1 {
                        p.check_min_isr()?;
                    }
                    let records = pd.records.as_deref().unwrap_or(&[]);
                    p.append(records, now).map(|outcome| (p, outcome))
                })
            };
            match result {
                Ok((partition, outcome)) => {
                    if !outcome.duplicate {
                        let bytes = pd_bytes;
                        crate::metrics::received(&broker.usage, tenant, &name, bytes);
                    }
                    resp.base_offset = outcome.base_offset;
                    resp.log_append_time_ms = outcome.log_append_time;
                    resp.log_start_offset = outcome.log_start_offset;
                    let at = (topics.len(), partitions.len());
                    if partition.is_replicated() {
                        if broker.durable_hw() && !outcome.duplicate {
                            broker.flusher.mark_dirty(partition.clone());
                        }
                        // Wake followers long-polling for this partition.
                        broker.data_changed.notify_waiters();
                        if acks == -1 {
                            let last = outcome.last_offset;
                            let epoch = outcome.leader_epoch;
                            waits.push((at.0, at.1, Wait::Replicated(partition, last, epoch)));
                        }
                    } else if broker.durable_hw() {
                        if acks == -1 {
                            waits.push((at.0, at.1, Wait::Flush(broker.flusher.flush(partition))));
                        } else if !outcome.duplicate {
                            broker.flusher.mark_dirty(partition);
                        }
                    } else {
                        broker.data_changed.notify_waiters();
                    }
                }
                Err(e) => {
                    debug!(error = %e, "produce rejected");
                    (resp.error_code, resp.error_message) = error_fields(&e);
                }
            }
            partitions.push(resp);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(kafka_protocol::messages::TopicName(s(&name)))
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return Reply::None;
    }
    let mut response = ProduceResponse::default().with_responses(topics);
    if waits.is_empty() {
        return Reply::ready(response);
    }
    super::later(async move {
        for (t, p, wait) in waits {
            let part = &mut response.responses[t].partition_responses[p];
            match wait {
                Wait::Flush(rx) => {
                    if !matches!(rx.await, Ok(Ok(()))) {
                        part.error_code = ResponseError::KafkaStorageError.code();
                        part.error_message = Some(s("the write could not be made durable"));
                    }
                }
                Wait::Replicated(partition, last, epoch) => {
                    if let Err(e) = partition.wait_for_hw_above(last, epoch, timeout).await {
                        (part.error_code, part.error_message) = error_fields(&e);
                    }
                }
            }
        }
        ResponseKind::Produce(response)
    })
}
