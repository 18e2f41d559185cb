//! One topic-partition on this broker: its log, its idempotent-producer state, and its high
//! watermark (the offset below which consumers may read).
//!
//! Appends take the write lock briefly (page-cache write); fetches take the read lock. With
//! `FsyncPolicy::Always` the high watermark is the flushed offset: consumers never see data
//! that a crash could take back. With `Never` it is the log end.
//!
//! In a cell the partition is also a replica ([`ReplicaSet`]): only the leader takes
//! produce requests, followers append what they fetched from the leader, and the leader's
//! high watermark is the smallest durable log end across the in-sync replicas.

use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use proto::cell::v1::PartitionRecord;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::log::{parse_batches, FlushJob, PartitionLog, ReadResult};
use crate::producer_state::{CachedBatch, ProducerStates, SequenceCheck};
use crate::replica_set::{ReplicaSet, Transition};

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    /// Leader epoch of this partition (0 on a standalone broker).
    leader_epoch: AtomicI32,
    state: RwLock<PartitionState>,
    high_watermark: AtomicI64,
    /// The high watermark again, for waiters (acks=-1 in a cell).
    hw_watch: watch::Sender<i64>,
    durable_hw: bool,
    /// `None` on a standalone broker.
    replica: Option<Mutex<ReplicaSet>>,
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
    /// The leader epoch the records were appended under; an acks=-1 answer waits for the
    /// high watermark *in this epoch* ([`Partition::wait_for_hw_above`]).
    pub leader_epoch: i32,
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
            leader_epoch: AtomicI32::new(0),
            state: RwLock::new(PartitionState { log, producers }),
            high_watermark: AtomicI64::new(end),
            hw_watch: watch::Sender::new(end),
            durable_hw,
            replica: None,
        };
        Ok(partition)
    }

    /// Open a partition replicated inside a cell, as broker `me`. It leads or follows
    /// nothing until [`Partition::apply_assignment`]; its high watermark starts at 0 and
    /// is learnt from the leader (or computed, once it leads).
    pub fn open_replica(
        dir: &Path,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: LogConfig,
        durable_hw: bool,
        me: i32,
    ) -> Result<Partition> {
        let mut p = Partition::open(dir, topic, topic_id, index, config, durable_hw)?;
        p.leader_epoch = AtomicI32::new(-1);
        p.high_watermark = AtomicI64::new(0);
        p.hw_watch = watch::Sender::new(0);
        p.replica = Some(Mutex::new(ReplicaSet::new(me)));
        Ok(p)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn is_replicated(&self) -> bool {
        self.replica.is_some()
    }

    fn replica_set(&self) -> Option<MutexGuard<'_, ReplicaSet>> {
        self.replica
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// True when this broker may take produce requests and serve consumers for it.
    pub fn is_leader(&self) -> bool {
        self.replica_set().is_none_or(|r| r.is_leader())
    }

    /// The leader this broker follows, if it is a follower.
    pub fn followed_leader(&self) -> Option<i32> {
        match self.replica_set()?.role {
            crate::replica_set::Role::Follower { leader } => Some(leader),
            _ => None,
        }
    }

    /// Take a committed assignment from the cell's metadata (or an AlterPartition answer).
    pub fn apply_assignment(&self, rec: &PartitionRecord) -> Result<Transition> {
        let Some(mut rs) = self.replica_set() else {
            return Ok(Transition::None);
        };
        let mut state = self.write_state();
        let end = state.log.log_end_offset();
        let t = rs.apply(rec, end, Instant::now());
        match t {
            Transition::BecomeLeader { epoch } => {
                state.log.start_epoch(epoch)?;
                self.leader_epoch.store(epoch, Ordering::Release);
            }
            Transition::BecomeFollower { epoch, .. } | Transition::BecomeOffline { epoch } => {
                self.leader_epoch.store(epoch, Ordering::Release);
                // Wake acks=-1 waiters: they must fail now.
                self.hw_watch.send_modify(|_| {});
            }
            Transition::None | Transition::Updated => {}
        }
        drop(state);
        drop(rs);
        self.advance_leader_hw();
        Ok(t)
    }

    /// (replicas, isr) as this broker knows them.
    pub fn assignment(&self) -> Option<(Vec<i32>, Vec<i32>, i32)> {
        self.replica_set()
            .map(|r| (r.replicas.clone(), r.isr.clone(), r.partition_epoch))
    }

    /// acks=-1 needs `min_isr` in-sync replicas before it is taken (NOT_ENOUGH_REPLICAS).
    pub fn check_min_isr(&self) -> Result<()> {
        let min_isr = self.read_state().log.config().min_insync_replicas as usize;
        if let Some(rs) = self.replica_set() {
            if rs.isr_len() < min_isr {
                return Err(Error::NotEnoughReplicas(format!(
                    "{}-{} has {} in-sync replicas; min.insync.replicas is {min_isr}",
                    self.topic,
                    self.index,
                    rs.isr_len()
                )));
            }
        }
        Ok(())
    }

    /// Wait until the high watermark passes `offset`, written under leader `epoch` (acks=-1
    /// in a cell). Fails with NOT_LEADER_OR_FOLLOWER if the epoch is not (or no longer) the
    /// partition's: the write may then be truncated away, and the high watermark would
    /// speak for other records. The epoch must be the append's, not read when the wait
    /// starts: a wait that starts after a change of leader would otherwise see this broker,
    /// now a follower, take the new leader's high watermark over offsets that hold other
    /// records, and acknowledge a write that is gone.
    pub async fn wait_for_hw_above(
        &self,
        offset: i64,
        epoch: i32,
        timeout: Duration,
    ) -> Result<()> {
        let mut rx = self.hw_watch.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            rx.wait_for(|hw| *hw > offset || self.leader_epoch() != epoch)
                .await
                .map(|_| ())
        })
        .await;
        match reached {
            Ok(Ok(())) if self.leader_epoch() == epoch => Ok(()),
            Ok(Ok(())) => Err(Error::NotLeaderOrFollower(format!(
                "{}-{}: leadership moved before offset {offset} was replicated",
                self.topic, self.index
            ))),
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(Error::RequestTimedOut(format!(
                "{}-{}: offset {offset} not replicated to the in-sync replicas within {} ms",
                self.topic,
                self.index,
                timeout.as_millis()
            ))),
        }
    }

    fn set_high_watermark(&self, hw: i64) -> bool {
        let prev = self.high_watermark.fetch_max(hw, Ordering::AcqRel);
        if hw > prev {
            self.hw_watch.send_replace(hw.max(prev));
            true
        } else {
            false
        }
    }

    /// Recompute a leader's high watermark from its durable end and its followers; true
    /// when it moved.
    fn advance_leader_hw(&self) -> bool {
        let Some(rs) = self.replica_set() else {
            return false;
        };
        let durable_end = {
            let state = self.read_state();
            if self.durable_hw {
                state.log.flushed_offset()
            } else {
                state.log.log_end_offset()
            }
        };
        match rs.leader_high_watermark(durable_end) {
            Some(hw) => {
                drop(rs);
                self.set_high_watermark(hw)
            }
            None => false,
        }
    }

    /// Leader side of a follower's fetch at `fetch_offset`: records its progress and
    /// advances the high watermark. True when the high watermark moved.
    pub fn record_follower_fetch(&self, replica: i32, fetch_offset: i64) -> bool {
        let Some(mut rs) = self.replica_set() else {
            return false;
        };
        let end = self.log_end_offset();
        rs.record_fetch(replica, fetch_offset, end, Instant::now());
        drop(rs);
        self.advance_leader_hw()
    }

    /// The ISR change the leader should propose now, with the epochs it is based on.
    pub fn isr_proposal(&self, lag_max: Duration) -> Option<(Vec<i32>, i32, i32)> {
        let mut rs = self.replica_set()?;
        let next = rs.isr_proposal(self.high_watermark(), lag_max, Instant::now())?;
        rs.pending_isr = Some(next.clone());
        Some((next, rs.leader_epoch, rs.partition_epoch))
    }

    /// The ISR change was answered (or failed): allow another proposal.
    pub fn isr_proposal_done(&self) {
        if let Some(mut rs) = self.replica_set() {
            rs.pending_isr = None;
        }
    }

    /// Follower side: append batches fetched from the leader and take its high watermark.
    pub fn append_as_follower(&self, records: &[u8], leader_hw: i64, now_ms: i64) -> Result<()> {
        if !records.is_empty() {
            let mut state = self.write_state();
            // The leader already bounded each batch by its max.message.bytes; the fetch
            // size bounds the whole.
            let headers = parse_batches(records, records.len())?;
            let info = state.log.append_replica(records, &headers, now_ms)?;
            let mut offset = info.base_offset;
            for h in &headers {
                if h.producer_id >= 0 {
                    state.producers.record(
                        h.producer_id,
                        h.producer_epoch,
                        CachedBatch {
                            first_seq: h.base_sequence,
                            last_seq: h.base_sequence.wrapping_add(h.last_offset_delta),
                            base_offset: offset,
                        },
                    );
                }
                offset += h.last_offset_delta as i64 + 1;
            }
        }
        let end = self.log_end_offset();
        self.set_high_watermark(leader_hw.min(end));
        Ok(())
    }

    /// Follower side: cut the log at `offset` (diverging epochs), keeping producer state
    /// and the high watermark consistent with what is left.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let mut state = self.write_state();
        state.log.truncate_to(offset)?;
        state.producers = state.log.rebuild_producer_state()?;
        let end = state.log.log_end_offset();
        if self.high_watermark() > end {
            self.high_watermark.store(end, Ordering::Release);
            self.hw_watch.send_replace(end);
        }
        Ok(())
    }

    /// Follower side: the leader's log starts above ours ends; start empty there.
    pub fn reset_to(&self, offset: i64) -> Result<()> {
        let mut state = self.write_state();
        state.log.reset_to(offset)?;
        state.producers = ProducerStates::default();
        Ok(())
    }

    /// (largest epoch <= `epoch`, where it ends) from this replica's own log.
    pub fn end_offset_for_epoch_in_log(&self, epoch: i32) -> Option<(i32, i64)> {
        self.read_state().log.end_offset_for_epoch(epoch)
    }

    /// The latest leader epoch in this replica's log (Fetch's `last_fetched_epoch`).
    pub fn latest_log_epoch(&self) -> i32 {
        self.read_state().log.latest_epoch().unwrap_or(-1)
    }

    /// Leader side: whole batches from `offset` up to the log end, for a follower.
    pub fn read_for_replica(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let state = self.read_state();
        let end = state.log.log_end_offset();
        Ok(state.log.read(offset, max_bytes, end)?)
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
        let not_leader = || Error::NotLeaderOrFollower(format!("{}-{}", self.topic, self.index));
        if !self.is_leader() {
            return Err(not_leader());
        }
        let leader_epoch = self.leader_epoch();
        // (The replica set's lock is not taken under the state lock: apply_assignment
        // takes them the other way round.) A change of role stores its new epoch under
        // the state lock, so an epoch unchanged here means this broker still leads, and
        // the epoch stamped on the batches is the one the append is acknowledged under.
        let mut state = self.write_state();
        if self.leader_epoch() != leader_epoch {
            return Err(not_leader());
        }
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
                                leader_epoch,
                            });
                        }
                        continue;
                    }
                    SequenceCheck::Append => {}
                }
            }
            let info = state
                .log
                .append(records, std::slice::from_ref(h), leader_epoch, now_ms)?;
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
                    leader_epoch,
                });
            }
        }
        let mut outcome = first.expect("at least one batch was examined");
        outcome.duplicate = all_duplicates;
        if last_offset >= 0 {
            outcome.last_offset = last_offset;
        }
        let end = state.log.log_end_offset();
        drop(state);
        // With durable high watermarks an append moves nothing until the flusher runs.
        if !self.durable_hw {
            if self.replica.is_some() {
                self.advance_leader_hw();
            } else {
                self.set_high_watermark(end);
            }
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
        let current = self.leader_epoch();
        if epoch >= current && self.is_leader() {
            return Some((current, state.log.log_end_offset()));
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
        if *self.read_state().log.config() != config {
            self.write_state().log.update_config(config);
        }
    }

    /// What an fsync must cover to make every append so far durable.
    pub fn flush_job(&self) -> Option<FlushJob> {
        self.read_state().log.flush_job()
    }

    /// Record a completed flush; advances the high watermark when it tracks durability.
    pub fn mark_flushed(&self, end_offset: i64) {
        let mut state = self.write_state();
        state.log.mark_flushed(end_offset);
        let flushed = state.log.flushed_offset();
        drop(state);
        if self.replica.is_some() {
            self.advance_leader_hw();
        } else if self.durable_hw {
            self.set_high_watermark(flushed);
        }
    }

    /// When there is nothing left to flush, everything appended is durable.
    pub fn mark_all_flushed(&self) {
        if self.replica.is_some() {
            self.advance_leader_hw();
        } else if self.durable_hw {
            self.set_high_watermark(self.log_end_offset());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::group_store::encode_batch;
    use crate::group::Record;

    fn assign(p: &Partition, leader: i32, epoch: i32) {
        p.apply_assignment(&PartitionRecord {
            topic_id: p.topic_id.as_bytes().to_vec(),
            partition: 0,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
        })
        .unwrap();
    }

    /// The failover bug of 2026-11-22: the leader moves between an acks=-1 append and the
    /// start of its wait; this broker, now a follower, learns the new leader's high
    /// watermark past the offset, which by then holds other records. The wait must fail.
    #[tokio::test]
    async fn an_append_is_not_acknowledged_by_the_next_leaders_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partition::open_replica(
            dir.path(),
            "t",
            Uuid::new_v4(),
            0,
            LogConfig::default(),
            false,
            1,
        )
        .unwrap();
        assign(&p, 1, 0);
        let batch = encode_batch(&[Record::GroupDelete { group: "g".into() }], 0).unwrap();
        let appended = p.append(&batch, 0).unwrap();
        assert_eq!(appended.leader_epoch, 0);
        assign(&p, 2, 1);
        p.set_high_watermark(appended.last_offset + 10);
        let waited = p
            .wait_for_hw_above(
                appended.last_offset,
                appended.leader_epoch,
                Duration::from_secs(5),
            )
            .await;
        assert!(
            matches!(waited, Err(Error::NotLeaderOrFollower(_))),
            "{waited:?}"
        );
        // And a follower refuses appends outright.
        assert!(matches!(
            p.append(&batch, 0),
            Err(Error::NotLeaderOrFollower(_))
        ));
    }
}
