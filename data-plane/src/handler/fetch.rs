//! Fetch: read whole batches straight from segments (never decoded), up to the high
//! watermark, honouring `max_bytes`, `partition_max_bytes` (at least one batch, KIP-74),
//! and long-polling until `min_bytes` are available or `max_wait_ms` passes.
//!
//! Fetch sessions (KIP-227) are declined by answering session id 0, which every client
//! treats as "send full fetch requests".

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::time::Instant;

use super::s;
use crate::authz::Caller;
use crate::broker::Broker;
use crate::error::Error;

/// Upper bound on how long a fetch may wait, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A consumer's fetch from `tenant`'s partitions (followers' fetches are
/// [`super::replica_fetch`]).
pub async fn handle(broker: &Arc<Broker>, caller: &Caller, req: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let min_bytes = req.min_bytes.max(0) as usize;
    let response = long_poll(broker, wait, || {
        let (response, bytes) = read_once(broker, caller, &req);
        let done = bytes >= min_bytes || has_errors(&response);
        (response, done)
    })
    .await;
    for t in &response.responses {
        let bytes: usize = t
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
            .sum();
        if bytes > 0 {
            crate::metrics::sent(&broker.usage, &caller.tenant, t.topic.as_str(), bytes);
        }
    }
    response
}

/// Call `read` until it reports it is done or `wait` has passed (then once more), waking
/// whenever `Broker::data_changed` fires. Interest is registered before each read, so a
/// change between the read and the wait is not missed.
pub(crate) async fn long_poll<R>(
    broker: &Broker,
    wait: Duration,
    mut read: impl FnMut() -> (R, bool),
) -> R {
    let deadline = Instant::now() + wait;
    loop {
        let notified = broker.data_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (response, done) = read();
        if done || Instant::now() >= deadline {
            return response;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => return read().0,
        }
    }
}

fn has_errors(resp: &FetchResponse) -> bool {
    resp.responses
        .iter()
        .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
}

/// One pass over the requested partitions: the response and the record bytes it carries.
fn read_once(broker: &Broker, caller: &Caller, req: &FetchRequest) -> (FetchResponse, usize) {
    let cap = broker.config.fetch_max_bytes;
    let mut remaining = if req.max_bytes <= 0 {
        cap
    } else {
        (req.max_bytes as usize).min(cap)
    };
    let mut total = 0usize;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.topic.0.as_str();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for fp in &t.partitions {
            let _span =
                tracing::trace_span!("fetch", topic = name, partition = fp.partition).entered();
            let mut pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                // Never null: librdkafka rejects a null record set.
                .with_records(Some(Bytes::new()));
            if req.isolation_level == 1 {
                pd.aborted_transactions = Some(vec![]);
            }
            // current_leader_epoch decodes as -1 (no check) before v9.
            match super::offsets::authorized_partition(
                broker,
                caller,
                cells::acl::op::READ,
                name,
                fp.partition,
                fp.current_leader_epoch,
            ) {
                Err(code) => pd.error_code = code,
                Ok(p) => {
                    let hw = p.high_watermark();
                    pd.high_watermark = hw;
                    pd.last_stable_offset = hw;
                    pd.log_start_offset = p.log_start_offset();
                    if fp.fetch_offset > hw && fp.fetch_offset <= p.log_end_offset() {
                        // Appended but not yet durable: nothing to serve yet, not an error.
                    } else {
                        let max = (fp.partition_max_bytes.max(0) as usize).min(remaining);
                        // KIP-74: the first non-empty partition gets at least one whole batch.
                        let max = if total == 0 { max.max(1) } else { max };
                        if max > 0 || total == 0 {
                            match p.read(fp.fetch_offset, max) {
                                Ok(read) => {
                                    let n = read.records.len();
                                    total += n;
                                    remaining = remaining.saturating_sub(n);
                                    pd.records = Some(read.records);
                                }
                                Err(e) => {
                                    if !matches!(e, Error::OffsetOutOfRange(_)) {
                                        tracing::warn!(error = %e, "fetch read failed");
                                    }
                                    pd.error_code = e.kafka_code();
                                }
                            }
                        }
                    }
                }
            }
            partitions.push(pd);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(s(name)))
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        total,
    )
}
