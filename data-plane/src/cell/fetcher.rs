//! Replica fetchers: one task per leader broker this broker follows partitions of. Each
//! speaks the Kafka Fetch protocol (v12, through `kafka-protocol`) to the leader as
//! replica `node_id`, naming topics by id, and for every partition in the answer:
//! appends the records and takes the leader's high watermark; on a diverging epoch
//! truncates to where the logs agree (never to the high watermark); when its log lies
//! below the leader's log start, starts empty there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cells::image::CellImage;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::Cell;
use crate::broker::{now_ms, Broker};
use crate::partition::Partition;

const FETCH_VERSION: i16 = 12;
/// Largest fetch response a follower reads (the request asks for far less).
const MAX_RESPONSE_BYTES: usize = 128 << 20;
const PARTITION_MAX_BYTES: i32 = 4 << 20;

/// The running fetcher tasks, by leader broker id.
#[derive(Default)]
pub struct Fetchers {
    tasks: HashMap<i32, FetcherTask>,
}

struct FetcherTask {
    endpoint: (String, u16),
    partitions: watch::Sender<Vec<Arc<Partition>>>,
    cancel: CancellationToken,
}

/// Point fetchers at the leaders of every partition this broker follows.
pub fn update(
    broker: &Arc<Broker>,
    cell: &Arc<Cell>,
    image: &CellImage,
    shutdown: &CancellationToken,
) {
    let mut wanted: HashMap<i32, Vec<Arc<Partition>>> = HashMap::new();
    for p in cell.replicas() {
        if let Some(leader) = p.followed_leader() {
            wanted.entry(leader).or_default().push(p);
        }
    }
    let mut fetchers = cell.fetchers.lock().unwrap_or_else(|e| e.into_inner());
    fetchers.tasks.retain(|leader, task| {
        let endpoint = image
            .brokers
            .get(leader)
            .and_then(|b| b.kafka.as_ref())
            .map(|e| (e.host.clone(), e.port as u16));
        let keep = wanted.contains_key(leader) && endpoint.as_ref() == Some(&task.endpoint);
        if !keep {
            task.cancel.cancel();
        }
        keep
    });
    for (leader, parts) in wanted {
        if let Some(task) = fetchers.tasks.get(&leader) {
            task.partitions.send_replace(parts);
            continue;
        }
        let Some(e) = image.brokers.get(&leader).and_then(|b| b.kafka.as_ref()) else {
            continue;
        };
        let endpoint = (e.host.clone(), e.port as u16);
        let (tx, rx) = watch::channel(parts);
        let cancel = shutdown.child_token();
        info!(leader, host = %endpoint.0, port = endpoint.1, "starting replica fetcher");
        tokio::spawn(run(
            broker.clone(),
            cell.clone(),
            leader,
            endpoint.clone(),
            rx,
            cancel.clone(),
        ));
        fetchers.tasks.insert(
            leader,
            FetcherTask {
                endpoint,
                partitions: tx,
                cancel,
            },
        );
    }
}

async fn run(
    broker: Arc<Broker>,
    cell: Arc<Cell>,
    leader: i32,
    endpoint: (String, u16),
    mut partitions: watch::Receiver<Vec<Arc<Partition>>>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    while !cancel.is_cancelled() {
        let conn = tokio::select! {
            _ = cancel.cancelled() => return,
            c = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect((endpoint.0.as_str(), endpoint.1))) => c,
        };
        let mut conn = match conn {
            Ok(Ok(c)) => {
                let _ = c.set_nodelay(true);
                backoff = Duration::from_millis(50);
                ReplicaConnection {
                    stream: c,
                    correlation: 0,
                }
            }
            _ => {
                debug!(leader, "cannot reach the leader; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        loop {
            let parts: Vec<Arc<Partition>> = partitions
                .borrow_and_update()
                .iter()
                .filter(|p| p.followed_leader() == Some(leader))
                .cloned()
                .collect();
            if parts.is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = partitions.changed() => continue,
                }
            }
            let request = fetch_request(&broker, &cell, &parts);
            let wait = cell.config.replica_fetch_wait + Duration::from_secs(5);
            let resp = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(wait, conn.fetch(request)) => r,
            };
            match resp {
                Ok(Ok(resp)) => {
                    let appended = handle_response(leader, &parts, resp);
                    if !appended.is_empty() {
                        // Followers fsync what they copied too (grouped by the flusher):
                        // a follower may lead next, and its high watermark then counts
                        // only flushed data.
                        if broker.durable_hw() {
                            for p in appended {
                                broker.flusher.mark_dirty(p);
                            }
                        }
                        broker.data_changed.notify_waiters();
                    }
                }
                Ok(Err(e)) => {
                    debug!(leader, error = %e, "replica fetch failed; reconnecting");
                    break;
                }
                Err(_) => {
                    debug!(leader, "replica fetch timed out; reconnecting");
                    break;
                }
            }
        }
    }
}

fn fetch_request(broker: &Broker, cell: &Cell, parts: &[Arc<Partition>]) -> FetchRequest {
    let mut by_topic: HashMap<Uuid, Vec<FetchPartition>> = HashMap::new();
    for p in parts {
        by_topic.entry(p.topic_id).or_default().push(
            FetchPartition::default()
                .with_partition(p.index)
                .with_current_leader_epoch(p.leader_epoch())
                .with_fetch_offset(p.log_end_offset())
                .with_last_fetched_epoch(p.latest_log_epoch())
                .with_log_start_offset(p.log_start_offset())
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(id, partitions)| {
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(id.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(broker.config.node_id))
        .with_max_wait_ms(cell.config.replica_fetch_wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(cell.config.replica_fetch_max_bytes as i32)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Apply one fetch response; the partitions whose data or high watermark changed.
fn handle_response(
    leader: i32,
    parts: &[Arc<Partition>],
    resp: FetchResponse,
) -> Vec<Arc<Partition>> {
    let mut changed = Vec::new();
    for t in resp.responses {
        let Ok(topic_id) = Uuid::parse_str(t.topic.0.as_str()) else {
            continue;
        };
        for pd in t.partitions {
            let Some(p) = parts
                .iter()
                .find(|p| p.topic_id == topic_id && p.index == pd.partition_index)
            else {
                continue;
            };
            // Leadership may have moved while the fetch was out.
            if p.followed_leader() != Some(leader) {
                continue;
            }
            let _span = tracing::debug_span!("replica_fetch", topic = %p.topic, partition = p.index, leader).entered();
            if apply_partition(p, pd) {
                changed.push(p.clone());
            }
        }
    }
    changed
}

fn apply_partition(
    p: &Partition,
    pd: kafka_protocol::messages::fetch_response::PartitionData,
) -> bool {
    if pd.error_code == ResponseError::OffsetOutOfRange.code() {
        if p.log_end_offset() < pd.log_start_offset {
            info!(
                leader_log_start = pd.log_start_offset,
                "follower log is below the leader's log start; starting empty there"
            );
            if let Err(e) = p.reset_to(pd.log_start_offset) {
                warn!(error = %e, "reset failed");
            }
            return true;
        }
        return false;
    }
    if pd.error_code != 0 {
        // NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH: metadata
        // will catch up and the next round asks again.
        debug!(code = pd.error_code, "leader refused the replica fetch");
        return false;
    }
    if pd.diverging_epoch.epoch >= 0 || pd.diverging_epoch.end_offset >= 0 {
        let div = &pd.diverging_epoch;
        // Cut where both logs agree: the leader's end of that epoch, or ours if shorter.
        let ours = p
            .end_offset_for_epoch_in_log(div.epoch)
            .map(|(e, end)| {
                if e == div.epoch {
                    end
                } else {
                    end.min(div.end_offset)
                }
            })
            .unwrap_or(div.end_offset);
        let cut = div.end_offset.min(ours).min(p.log_end_offset());
        info!(
            epoch = div.epoch,
            leader_end = div.end_offset,
            cut,
            log_end = p.log_end_offset(),
            "logs diverge; truncating"
        );
        if let Err(e) = p.truncate_to(cut) {
            warn!(error = %e, "truncation failed");
        }
        return true;
    }
    let records = pd.records.unwrap_or_default();
    let before = (p.log_end_offset(), p.high_watermark());
    if let Err(e) = p.append_as_follower(&records, pd.high_watermark, now_ms()) {
        warn!(error = %e, "appending replicated records failed");
        return false;
    }
    (p.log_end_offset(), p.high_watermark()) != before
}

/// One connection to a leader, speaking Fetch only.
struct ReplicaConnection {
    stream: TcpStream,
    correlation: i32,
}

impl ReplicaConnection {
    async fn fetch(&mut self, req: FetchRequest) -> std::io::Result<FetchResponse> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Fetch as i16)
            .with_request_api_version(FETCH_VERSION)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("tributary-replica-fetcher")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, FetchRequest::header_version(FETCH_VERSION))
            .map_err(std::io::Error::other)?;
        req.encode(&mut body, FETCH_VERSION)
            .map_err(std::io::Error::other)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_u32(body.len() as u32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await?;
        let len = self.stream.read_u32().await? as usize;
        if len > MAX_RESPONSE_BYTES {
            return Err(std::io::Error::other(format!(
                "fetch response of {len} bytes exceeds {MAX_RESPONSE_BYTES}"
            )));
        }
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        let mut buf = Bytes::from(buf);
        let rh = ResponseHeader::decode(&mut buf, FetchResponse::header_version(FETCH_VERSION))
            .map_err(std::io::Error::other)?;
        if rh.correlation_id != self.correlation {
            return Err(std::io::Error::other("correlation id mismatch"));
        }
        FetchResponse::decode(&mut buf, FETCH_VERSION).map_err(std::io::Error::other)
    }
}
