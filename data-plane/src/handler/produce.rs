//! Produce: validate and append each partition's batches in request order (inline, so
//! pipelined requests keep their order), then answer at once (acks=1), not at all (acks=0),
//! or once the group-commit flusher has made the appends durable (acks=-1).

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tracing::{debug, debug_span};

use super::{error_fields, s, Reply};
use crate::broker::{now_ms, Broker};
use crate::connection::Session;
use crate::error::Error;

type FlushWait = oneshot::Receiver<Result<(), String>>;

pub async fn handle(
    broker: &Arc<Broker>,
    _session: &Session,
    req: ProduceRequest,
    _version: i16,
) -> Reply {
    let acks = req.acks;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut waits: Vec<(usize, usize, FlushWait)> = Vec::new();
    let now = now_ms();
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let span = debug_span!("produce", topic = %name, partition = pd.index);
            let _enter = span.enter();
            let mut resp = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let result = if !matches!(acks, -1..=1) {
                Err(Error::InvalidRequiredAcks(acks))
            } else if req.transactional_id.is_some() {
                Err(Error::InvalidRecord(
                    "transactional produce is not supported by this broker".into(),
                ))
            } else {
                broker.partition(&name, pd.index).and_then(|p| {
                    let records = pd.records.as_deref().unwrap_or(&[]);
                    p.append(records, now).map(|outcome| (p, outcome))
                })
            };
            match result {
                Ok((partition, outcome)) => {
                    resp.base_offset = outcome.base_offset;
                    resp.log_append_time_ms = outcome.log_append_time;
                    resp.log_start_offset = outcome.log_start_offset;
                    if broker.durable_hw() {
                        if acks == -1 {
                            waits.push((
                                topics.len(),
                                partitions.len(),
                                broker.flusher.flush(partition),
                            ));
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
    Reply::Later(tokio::spawn(async move {
        for (t, p, wait) in waits {
            let durable = matches!(wait.await, Ok(Ok(())));
            if !durable {
                let part = &mut response.responses[t].partition_responses[p];
                part.error_code = ResponseError::KafkaStorageError.code();
                part.error_message = Some(s("the write could not be made durable"));
            }
        }
        ResponseKind::Produce(response)
    }))
}
