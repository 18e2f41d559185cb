//! [`PartitionGroupStore`]: a [`GroupStore`] over this broker's leader replica of one
//! partition of the cell's `__consumer_offsets` topic, so group state is replicated like
//! any other partition and moves with its leadership (Kafka's offsets topic).
//!
//! Format: every `append` call becomes one Kafka record batch (magic 2, uncompressed, no
//! producer id); each [`Record`] is one Kafka record with key = the group id and value =
//! the record's serde JSON, the same encoding the file store uses. JSON rather than a
//! compact binary: commits are small and rare next to data traffic, the format is already
//! tested and versionable by field name, and a human can read the topic with any Kafka
//! tool when debugging a group.
//!
//! Guarantees (those of the trait):
//! - order: `append` appends to the log synchronously, in the caller's call order;
//! - durability: refused below `min.insync.replicas`; its future resolves `Ok` only once
//!   the partition's high watermark passed the batch (durable on the leader and copied by every in-sync replica), bounded by
//!   [`APPEND_TIMEOUT`]; a change of leader epoch fails it (the batch may be truncated);
//! - `recover` folds the whole log up to the high watermark, read in bounded chunks, after
//!   waiting (bounded) for the high watermark to reach the log end this leader started with.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use tokio::sync::Notify;

use crate::broker::now_ms;
use crate::flusher::Flusher;
use crate::group::{GroupError, GroupStore, Record, StoreFuture};
use crate::partition::Partition;

/// How long an append waits for the in-sync replicas (a commit then fails with
/// COORDINATOR_NOT_AVAILABLE and the client retries).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long loading waits for the high watermark to reach the log end.
const LOAD_HW_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read per step while loading.
const READ_CHUNK: usize = 1 << 20;

/// The store of one offsets partition while this broker leads it at `epoch`.
pub struct PartitionGroupStore {
    partition: Arc<Partition>,
    epoch: i32,
    /// Marks the partition dirty (fsync) when the high watermark follows durability.
    flusher: Option<Arc<Flusher>>,
    /// Wakes followers long-polling for new data.
    data_changed: Arc<Notify>,
}

impl PartitionGroupStore {
    /// `flusher` is `None` when the high watermark does not wait for fsync.
    pub fn new(
        partition: Arc<Partition>,
        epoch: i32,
        flusher: Option<Arc<Flusher>>,
        data_changed: Arc<Notify>,
    ) -> PartitionGroupStore {
        PartitionGroupStore {
            partition,
            epoch,
            flusher,
            data_changed,
        }
    }

    fn still_leading(&self) -> Result<(), GroupError> {
        if self.partition.is_leader() && self.partition.leader_epoch() == self.epoch {
            Ok(())
        } else {
            Err(GroupError::Unavailable(format!(
                "no longer the leader of {}-{} at epoch {}",
                self.partition.topic, self.partition.index, self.epoch
            )))
        }
    }

    /// Appends one batch as leader; returns its last offset.
    fn append_now(&self, records: &[Record]) -> Result<i64, GroupError> {
        self.still_leading()?;
        // As Kafka's coordinator writes with acks=-1: refuse below min.insync.replicas.
        self.partition
            .check_min_isr()
            .map_err(|e| GroupError::Unavailable(e.to_string()))?;
        let batch = encode_batch(records, now_ms())?;
        let outcome = self
            .partition
            .append(&batch, now_ms())
            .map_err(|e| GroupError::Unavailable(e.to_string()))?;
        // Appended under a different epoch: the write belongs to another leadership.
        self.still_leading()?;
        if let Some(f) = &self.flusher {
            f.mark_dirty(self.partition.clone());
        }
        self.data_changed.notify_waiters();
        Ok(outcome.last_offset)
    }
}

impl GroupStore for PartitionGroupStore {
    fn recover(&self) -> StoreFuture<Vec<Record>> {
        let partition = self.partition.clone();
        let epoch = self.epoch;
        // What this broker wrote as a follower is not fsynced yet, and with a durable high
        // watermark nothing else would flush it before the next append: flush it now.
        if let Some(f) = &self.flusher {
            f.mark_dirty(partition.clone());
        }
        Box::pin(async move {
            let end = partition.log_end_offset();
            if end > 0 && partition.high_watermark() < end {
                partition
                    .wait_for_hw_above(end - 1, epoch, LOAD_HW_TIMEOUT)
                    .await
                    .map_err(|e| GroupError::Unavailable(format!("loading: {e}")))?;
            }
            if partition.leader_epoch() != epoch {
                return Err(GroupError::Unavailable(
                    "leadership moved while loading".into(),
                ));
            }
            read_all(&partition)
        })
    }

    fn append(&self, records: Vec<Record>) -> StoreFuture<()> {
        if records.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let appended = self.append_now(&records);
        let partition = self.partition.clone();
        // `append_now` checks the append was made under this store's epoch.
        let epoch = self.epoch;
        Box::pin(async move {
            let last = appended?;
            partition
                .wait_for_hw_above(last, epoch, APPEND_TIMEOUT)
                .await
                .map_err(|e| GroupError::Unavailable(e.to_string()))
        })
    }

    fn close(&self) -> StoreFuture<()> {
        // Nothing buffered here: every append is in the log when `append` returns.
        Box::pin(async { Ok(()) })
    }
}

/// One record batch holding `records`, key = group id, value = JSON.
pub fn encode_batch(records: &[Record], ts_ms: i64) -> Result<Bytes, GroupError> {
    let kafka: Vec<KafkaRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: ts_ms,
            key: Some(Bytes::copy_from_slice(r.group().as_bytes())),
            value: Some(Bytes::from(
                serde_json::to_vec(r).expect("records always serialize"),
            )),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &kafka, &options)
        .map_err(|e| GroupError::Io(format!("encoding a group record batch: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes whole batches from `bytes`; returns the records (with their offsets) in order.
pub fn decode_batches(mut bytes: Bytes) -> Result<Vec<(i64, Record)>, GroupError> {
    let sets = RecordBatchDecoder::decode_all(&mut bytes)
        .map_err(|e| GroupError::Io(format!("decoding the offsets partition: {e}")))?;
    let mut out = Vec::new();
    for set in sets {
        for r in set.records {
            if r.control {
                continue;
            }
            let value = r.value.unwrap_or_default();
            let record: Record = serde_json::from_slice(&value).map_err(|e| {
                GroupError::Io(format!(
                    "a group record at offset {} is not JSON: {e}",
                    r.offset
                ))
            })?;
            out.push((r.offset, record));
        }
    }
    Ok(out)
}

/// Folds the partition from its start to the high watermark into the live records.
fn read_all(partition: &Partition) -> Result<Vec<Record>, GroupError> {
    let mut state = crate::group::Materialized::default();
    let mut offset = partition.log_start_offset();
    let hw = partition.high_watermark();
    while offset < hw {
        let read = partition
            .read(offset, READ_CHUNK)
            .map_err(|e| GroupError::Io(e.to_string()))?;
        if read.records.is_empty() {
            break;
        }
        let decoded = decode_batches(read.records)?;
        let Some(&(last, _)) = decoded.last() else {
            break;
        };
        for (o, r) in decoded {
            if o >= offset {
                state.apply(r);
            }
        }
        offset = last + 1;
    }
    Ok(state.records())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use proto::cell::v1::PartitionRecord;
    use uuid::Uuid;

    fn offset(group: &str, partition: i32, offset: i64) -> Record {
        Record::Offset {
            group: group.into(),
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: 2,
            metadata: Some("m".into()),
            commit_ts_ms: 1,
            expire_ts_ms: None,
        }
    }

    /// A one-replica offsets partition led by broker 1 at `epoch`.
    fn leader(dir: &std::path::Path, epoch: i32) -> Arc<Partition> {
        let id = Uuid::new_v4();
        let p = Partition::open_replica(
            dir,
            "__consumer_offsets",
            id,
            0,
            LogConfig::default(),
            false,
            1,
        )
        .unwrap();
        p.apply_assignment(&PartitionRecord {
            topic_id: id.as_bytes().to_vec(),
            partition: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: epoch,
            partition_epoch: epoch,
        })
        .unwrap();
        Arc::new(p)
    }

    #[test]
    fn encode_decode_round_trip() {
        let recs = vec![
            offset("g", 0, 5),
            Record::Group {
                group: "g".into(),
                generation: 3,
                protocol_type: Some("consumer".into()),
                protocol: Some("range".into()),
                state_ts_ms: 9,
            },
            Record::GroupDelete { group: "h".into() },
        ];
        let batch = encode_batch(&recs, 1).unwrap();
        let decoded = decode_batches(batch).unwrap();
        let offsets: Vec<i64> = decoded.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, vec![0, 1, 2]);
        assert_eq!(
            decoded.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            recs
        );
    }

    #[tokio::test]
    async fn appends_are_recovered_by_the_next_leadership() {
        let dir = tempfile::tempdir().unwrap();
        let p = leader(dir.path(), 0);
        let store = PartitionGroupStore::new(p.clone(), 0, None, Arc::new(Notify::new()));
        store
            .append(vec![offset("g", 0, 5), offset("g", 1, 7)])
            .await
            .unwrap();
        store.append(vec![offset("g", 0, 6)]).await.unwrap();
        store.append(vec![offset("h", 0, 1)]).await.unwrap();
        store
            .append(vec![Record::GroupDelete { group: "h".into() }])
            .await
            .unwrap();
        assert_eq!(p.log_end_offset(), 5, "one Kafka record per group record");
        // A new leadership of the same partition (new epoch) loads the live state.
        p.apply_assignment(&PartitionRecord {
            topic_id: p.topic_id.as_bytes().to_vec(),
            partition: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 1,
            partition_epoch: 1,
        })
        .unwrap();
        // The old store's leadership is over: it refuses to write.
        assert!(store.append(vec![offset("g", 0, 99)]).await.is_err());
        let next = PartitionGroupStore::new(p.clone(), 1, None, Arc::new(Notify::new()));
        let mut recovered = next.recover().await.unwrap();
        recovered.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(recovered, vec![offset("g", 0, 6), offset("g", 1, 7)]);
    }

    #[tokio::test]
    async fn recover_reads_past_one_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = leader(dir.path(), 0);
        let store = PartitionGroupStore::new(p.clone(), 0, None, Arc::new(Notify::new()));
        // ~3 MiB of commits: three read chunks.
        let big = "x".repeat(4000);
        for i in 0..800 {
            let mut r = offset("g", i % 50, i as i64);
            if let Record::Offset { metadata, .. } = &mut r {
                *metadata = Some(big.clone());
            }
            store.append(vec![r]).await.unwrap();
        }
        let recovered = store.recover().await.unwrap();
        assert_eq!(recovered.len(), 50);
        assert!(recovered
            .iter()
            .all(|r| matches!(r, Record::Offset { offset, .. } if *offset >= 750)));
    }
}
