//! One topic-partition on this broker: its log, its idempotent-producer state, and its high
//! watermark (the offset below which consumers may read).
//!
//! Appends take the write lock briefly (page-cache write); fetches take the read lock. With
//! `FsyncPolicy::Always` the high watermark is the flushed offset: consumers never see data
//! that a crash could take back. With `Never` it is the log end.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use uuid::Uuid;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::log::{parse_batches, FlushJob, PartitionLog, ReadResult};
use crate::producer_state::{CachedBatch, ProducerStates, SequenceCheck};

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    /// Leader epoch of this partition (0 on a standalone broker).
    pub leader_epoch: i32,
    state: RwLock<PartitionState>,
    high_watermark: AtomicI64,
    durable_hw: bool,
}

struct PartitionState {
    log: PartitionLog,
    producers: ProducerStates,
}

/// Outcome of appending one partition's records from a produce request.
#[derive(Debug, Clone, Copy)]
pub struct ProduceOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// True when every batch was a retried duplicate: nothing new to make durable.
    pub duplicate: bool,
}

impl Partition {
    /// Open (recovering) the partition's log under `dir`.
    pub fn open(
        dir: &Path,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: LogConfig,
        durable_hw: bool,
    ) -> Result<Partition> {
        let log = PartitionLog::open(dir, config)?;
        let end = log.log_end_offset();
        let producers = log.rebuild_producer_state()?;
        let partition = Partition {
            topic: topic.to_string(),
            topic_id,
            index,
            leader_epoch: 0,
            state: RwLock::new(PartitionState { log, producers }),
            high_watermark: AtomicI64::new(end),
            durable_hw,
        };
        Ok(partition)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, PartitionState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, PartitionState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.read_state().log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.read_state().log.log_end_offset()
    }

    pub fn size_bytes(&self) -> u64 {
        self.read_state().log.size_bytes()
    }

    /// Validate and append a produce request's records for this partition.
    pub fn append(&self, records: &[u8], now_ms: i64) -> Result<ProduceOutcome> {
        let mut state = self.write_state();
        let max_batch = state.log.config().max_message_bytes as usize;
        let headers = parse_batches(records, max_batch)?;
        if headers.is_empty() {
            return Err(Error::CorruptMessage(
                "produce request carries no record batch".into(),
            ));
        }
        let mut first: Option<ProduceOutcome> = None;
        let mut last_offset = -1;
        let mut all_duplicates = true;
        for (i, h) in headers.iter().enumerate() {
            if h.is_transactional || h.is_control {
                return Err(Error::InvalidRecord(
                    "transactional record batches are not supported by this broker".into(),
                ));
            }
            let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta);
            let idempotent = h.producer_id >= 0;
            if idempotent {
                match state.producers.check(
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    last_seq,
                )? {
                    SequenceCheck::Duplicate { base_offset } => {
                        if i == 0 {
                            first = Some(ProduceOutcome {
                                base_offset,
                                last_offset: base_offset + h.last_offset_delta as i64,
                                log_append_time: -1,
                                log_start_offset: state.log.log_start_offset(),
                                duplicate: true,
                            });
                        }
                        continue;
                    }
                    SequenceCheck::Append => {}
                }
            }
            let info =
                state
                    .log
                    .append(records, std::slice::from_ref(h), self.leader_epoch, now_ms)?;
            all_duplicates = false;
            if idempotent {
                state.producers.record(
                    h.producer_id,
                    h.producer_epoch,
                    CachedBatch {
                        first_seq: h.base_sequence,
                        last_seq,
                        base_offset: info.base_offset,
                    },
                );
            }
            last_offset = info.last_offset;
            if first.is_none() {
                first = Some(ProduceOutcome {
                    base_offset: info.base_offset,
                    last_offset: info.last_offset,
                    log_append_time: info.log_append_time,
                    log_start_offset: state.log.log_start_offset(),
                    duplicate: false,
                });
            }
        }
        let mut outcome = first.expect("at least one batch was examined");
        outcome.duplicate = all_duplicates;
        if last_offset >= 0 {
            outcome.last_offset = last_offset;
        }
        if !self.durable_hw {
            self.high_watermark
                .store(state.log.log_end_offset(), Ordering::Release);
        }
        Ok(outcome)
    }

    /// Read whole batches from `offset`, never past the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let hw = self.high_watermark();
        Ok(self.read_state().log.read(offset, max_bytes, hw)?)
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        let hw = self.high_watermark();
        Ok(self
            .read_state()
            .log
            .offset_for_timestamp(ts)?
            .filter(|(offset, _)| *offset < hw))
    }

    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        let hw = self.high_watermark();
        Ok(self
            .read_state()
            .log
            .max_timestamp_offset()?
            .filter(|(offset, _)| *offset < hw))
    }

    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let state = self.read_state();
        if epoch >= self.leader_epoch {
            return Some((self.leader_epoch, state.log.log_end_offset()));
        }
        state.log.end_offset_for_epoch(epoch)
    }

    /// DeleteRecords: advance the log start offset (bounded by the high watermark).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target > hw || target < 0 {
            return Err(Error::OffsetOutOfRange(format!(
                "cannot delete records before {offset}: high watermark is {hw}"
            )));
        }
        Ok(self.write_state().log.delete_records_before(target)?)
    }

    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        Ok(self.write_state().log.enforce_retention(now_ms)?)
    }

    pub fn update_config(&self, config: LogConfig) {
        self.write_state().log.update_config(config);
    }

    /// What an fsync must cover to make every append so far durable.
    pub fn flush_job(&self) -> Option<FlushJob> {
        self.read_state().log.flush_job()
    }

    /// Record a completed flush; advances the high watermark when it tracks durability.
    pub fn mark_flushed(&self, end_offset: i64) {
        let mut state = self.write_state();
        state.log.mark_flushed(end_offset);
        if self.durable_hw {
            let flushed = state.log.flushed_offset();
            self.high_watermark.fetch_max(flushed, Ordering::AcqRel);
        }
    }

    /// When there is nothing left to flush, everything appended is durable.
    pub fn mark_all_flushed(&self) {
        let end = self.log_end_offset();
        if self.durable_hw {
            self.high_watermark.fetch_max(end, Ordering::AcqRel);
        }
    }

    /// Remove all of this partition's data (topic deletion).
    pub fn delete_data(&self, dir: &Path) -> Result<()> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn producer_count(&self) -> usize {
        self.read_state().producers.len()
    }
}
