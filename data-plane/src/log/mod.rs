//! The per-partition durable segmented log ([`PartitionLog`]).
//!
//! A partition directory holds segments `{base_offset:020}.log` with their sparse `.index` and
//! `.timeindex`, plus the `log-start-offset` and `leader-epoch-checkpoint` files. Files:
//!
//! * [`batch`]: validating produce bytes ([`parse_batches`]), v2 header fields, stamping offsets
//!   and LogAppendTime, and the bounded single-batch decode for timestamp lookups;
//! * `index`: the offset and time indexes;
//! * `segment`: one segment's file, positional reads/writes, index upkeep;
//! * `recovery`: rescanning and cutting torn tails, rebuilding indexes;
//! * `checkpoint`: atomically replaced state files and the leader epoch cache;
//! * this file: the segment list, offsets, rolling, retention, truncation and flushing.
//!
//! Batches are stored exactly as produced (only base offset and leader epoch are patched), so
//! a fetch returns the producer's bytes. Appends go to the page cache; durability comes from
//! [`PartitionLog::flush_job`] (group commit, fsync outside the caller's lock) and from the
//! fsync of each segment when it is rolled.

mod batch;
mod checkpoint;
mod index;
mod producers;
mod recovery;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{LogConfig, TimestampType};

pub use batch::{parse_batches, BatchHeader, MAX_DECOMPRESSED_BYTES};
use checkpoint::EpochCache;
use segment::{BatchLoc, Prealloc, Segment};

/// Everything the log can fail with; converts into the broker's [`crate::error::Error`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    #[error("unsupported record format: {0}")]
    UnsupportedForMessageFormat(String),
    #[error("record batch too large: {0}")]
    TooLarge(String),
    #[error("offset {offset} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("log storage: {0}")]
    Io(#[from] std::io::Error),
}

impl From<LogError> for crate::error::Error {
    fn from(e: LogError) -> Self {
        use crate::error::Error;
        match e {
            LogError::Corrupt(m) => Error::CorruptMessage(m),
            LogError::UnsupportedForMessageFormat(m) => Error::UnsupportedForMessageFormat(m),
            LogError::TooLarge(m) => Error::MessageTooLarge(m),
            e @ LogError::OffsetOutOfRange { .. } => Error::OffsetOutOfRange(e.to_string()),
            LogError::InvalidArgument(m) => Error::InvalidRequest(m),
            LogError::Io(io) => Error::Storage(io),
        }
    }
}

/// Offsets assigned by one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker timestamp stamped on the batches; -1 unless the topic uses LogAppendTime.
    pub log_append_time: i64,
}

/// Whole stored batches for a fetch.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: bytes::Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// What to fsync to make everything appended before [`PartitionLog::flush_job`] durable.
/// Built under the caller's lock, run without it.
#[derive(Debug)]
pub struct FlushJob {
    files: Vec<Arc<File>>,
    /// The log end offset this job covers; pass to [`PartitionLog::mark_flushed`] after `run`.
    pub end_offset: i64,
}

impl FlushJob {
    /// Blocking fsyncs (call from `spawn_blocking`).
    pub fn run(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// One partition's log. Not internally synchronised: callers wrap it in a `RwLock`
/// (reads take `&self`, and use positional reads so they can run concurrently).
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// By base offset; the last one is the active segment. Never empty.
    segments: BTreeMap<i64, Segment>,
    log_start: i64,
    flushed: i64,
    epochs: EpochCache,
}

impl PartitionLog {
    /// Open or create the log in `dir`, recovering from a crash at any point: the active
    /// segment is rescanned and cut at the first torn or corrupt batch, indexes that are
    /// missing or fail validation are rebuilt, leftovers of interrupted operations removed.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        fs::create_dir_all(dir)?;
        let interval = config.index_interval_bytes;
        let bases = list_segments(dir)?;
        let persisted_start = checkpoint::read_log_start(dir)?;
        let mut segments = BTreeMap::new();
        if bases.is_empty() {
            let base = persisted_start.unwrap_or(0).max(0);
            segments.insert(base, Segment::create(dir, base)?);
            checkpoint::sync_dir(dir)?;
        } else {
            for (i, &base) in bases.iter().enumerate() {
                let seg = match bases.get(i + 1) {
                    Some(&next) => recovery::open_closed(dir, base, next, interval)?,
                    None => recovery::recover_active(dir, base, interval)?,
                };
                segments.insert(base, seg);
            }
        }
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start: 0,
            flushed: 0,
            epochs: EpochCache::load(dir)?,
        };
        let first_base = *log.segments.keys().next().expect("never empty");
        log.log_start = persisted_start.unwrap_or(first_base).max(first_base);
        if log.log_start > log.log_end_offset() {
            // Data under a persisted log start was lost: start empty there, as Kafka's
            // truncateFullyAndStartAt does, rather than re-expose deleted offsets.
            log.replace_all_with_empty(log.log_start)?;
        }
        log.delete_segments_below_start()?;
        let end = log.log_end_offset();
        log.epochs.truncate_from_end(end)?;
        log.epochs.truncate_from_start(log.log_start)?;
        // Recovery may have cut the file; make the recovered state the durable baseline.
        log.active().file.sync_data()?;
        log.flushed = end;
        Ok(log)
    }

    fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("never empty")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("never empty")
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Append already-validated batches (`records` as received, `headers` from
    /// [`parse_batches`] over the same bytes), assigning consecutive offsets from the log end.
    pub fn append(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if headers.is_empty() {
            return Err(LogError::InvalidArgument("append without batches".into()));
        }
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        let base_offset = self.log_end_offset();
        let total: usize = headers.iter().map(|h| h.size).sum();
        let mut data = Vec::with_capacity(total);
        let mut locs = Vec::with_capacity(headers.len());
        let mut next = base_offset;
        for h in headers {
            let end = h
                .position
                .checked_add(h.size)
                .filter(|&e| e <= records.len());
            let Some(end) = end.filter(|_| h.size >= batch::HEADER_SIZE) else {
                return Err(LogError::InvalidArgument(format!(
                    "batch header at {} outside records",
                    h.position
                )));
            };
            let start = data.len();
            data.extend_from_slice(&records[h.position..end]);
            let b = &mut data[start..];
            if batch::i32_at(b, batch::LAST_OFFSET_DELTA) != h.last_offset_delta
                || h.last_offset_delta < 0
            {
                return Err(LogError::InvalidArgument(
                    "batch headers do not match records".into(),
                ));
            }
            batch::stamp_offset_and_epoch(b, next, leader_epoch);
            let max_timestamp = if log_append {
                batch::stamp_log_append_time(b, now_ms);
                now_ms
            } else {
                h.max_timestamp
            };
            let last = next + h.last_offset_delta as i64;
            locs.push(BatchLoc {
                position: start as u64,
                size: h.size as u64,
                base_offset: next,
                last_offset: last,
                max_timestamp,
            });
            next = last + 1;
        }
        self.maybe_roll(total as u64, next - base_offset, now_ms)?;
        self.epochs.assign(leader_epoch, base_offset)?;
        let interval = self.config.index_interval_bytes;
        let prealloc = self.prealloc();
        if let Err(e) = self
            .active_mut()
            .append(&data, &locs, interval, now_ms, prealloc)
        {
            self.epochs.truncate_from_end(base_offset)?;
            return Err(e.into());
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time: if log_append { now_ms } else { -1 },
        })
    }

    /// Append batches copied from the leader (a follower's append): offsets and leader
    /// epochs are the leader's and are kept; the first batch must start at the log end.
    pub fn append_replica(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let Some(first) = headers.first() else {
            return Err(LogError::InvalidArgument("append without batches".into()));
        };
        let base_offset = self.log_end_offset();
        let mut locs = Vec::with_capacity(headers.len());
        let mut epochs = Vec::with_capacity(headers.len());
        let mut next = base_offset;
        let start = first.position;
        for h in headers {
            let b = &records[h.position..h.position + h.size];
            let batch_base = batch::i64_at(b, batch::BASE_OFFSET);
            if batch_base != next {
                return Err(LogError::InvalidArgument(format!(
                    "replicated batch starts at offset {batch_base}, the log ends at {next}"
                )));
            }
            let last = next + h.last_offset_delta as i64;
            locs.push(BatchLoc {
                position: (h.position - start) as u64,
                size: h.size as u64,
                base_offset: next,
                last_offset: last,
                max_timestamp: h.max_timestamp,
            });
            epochs.push((batch::i32_at(b, batch::LEADER_EPOCH), next));
            next = last + 1;
        }
        let last_header = headers.last().expect("non-empty");
        let data = &records[start..last_header.position + last_header.size];
        self.maybe_roll(data.len() as u64, next - base_offset, now_ms)?;
        for (epoch, offset) in epochs {
            self.epochs.assign(epoch, offset)?;
        }
        let interval = self.config.index_interval_bytes;
        let prealloc = self.prealloc();
        if let Err(e) = self
            .active_mut()
            .append(data, &locs, interval, now_ms, prealloc)
        {
            self.epochs.truncate_from_end(base_offset)?;
            return Err(e.into());
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time: -1,
        })
    }

    /// Start a new, empty epoch at the log end (a leader taking over): batches it appends
    /// carry `epoch`, and OffsetForLeaderEpoch answers from here.
    pub fn start_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        if self.epochs.latest().is_some_and(|e| e >= epoch) {
            return Ok(());
        }
        let end = self.log_end_offset();
        self.epochs.assign(epoch, end)?;
        Ok(())
    }

    /// Throw the whole log away and start empty at `offset` (a follower whose log lies
    /// entirely below the leader's log start, as Kafka's truncateFullyAndStartAt).
    pub fn reset_to(&mut self, offset: i64) -> Result<(), LogError> {
        self.replace_all_with_empty(offset)?;
        // No batch is left, so no epoch either: the leader's batches bring theirs.
        self.epochs.truncate_from_end(i64::MIN)?;
        self.set_log_start(offset)
    }

    fn prealloc(&self) -> Prealloc {
        Prealloc {
            bytes: self.config.preallocate_bytes,
            cap: self.config.segment_bytes.min(i32::MAX as u64),
        }
    }

    /// Roll before an append of `bytes` / `count` offsets when the active segment would grow past
    /// `segment.bytes`, is older than `segment.ms`, or its relative offsets or positions would
    /// overflow the indexes' u32 (Kafka keeps both within i32).
    fn maybe_roll(&mut self, bytes: u64, count: i64, now_ms: i64) -> Result<(), LogError> {
        let limit = self.config.segment_bytes.min(i32::MAX as u64);
        let segment_ms = self.config.segment_ms.min(i64::MAX as u64) as i64;
        let a = self.active();
        if a.is_empty() {
            return Ok(());
        }
        let too_big = a.size + bytes > limit;
        let too_old = a
            .rolling_ts
            .is_some_and(|t| now_ms.saturating_sub(t) >= segment_ms);
        let too_many = a.next_offset + count - a.base_offset > i32::MAX as i64;
        if too_big || too_old || too_many {
            self.roll()?;
        }
        Ok(())
    }

    /// Seal (final time index entry, fsync) the active segment and start a new one at log end.
    fn roll(&mut self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        self.active_mut().seal()?;
        let seg = Segment::create(&self.dir, end)?;
        self.segments.insert(end, seg);
        checkpoint::sync_dir(&self.dir)?;
        Ok(())
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start: self.log_start,
            log_end: self.log_end_offset(),
        }
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes` but at least one batch
    /// if any lies below `max_offset` (KIP-74); none whose base offset is >= `max_offset`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<ReadResult, LogError> {
        let log_end = self.log_end_offset();
        if offset < self.log_start || offset > log_end {
            return Err(self.out_of_range(offset));
        }
        let mut out: Vec<u8> = Vec::new();
        let (&first_base, _) = self
            .segments
            .range(..=offset)
            .next_back()
            .expect("offset >= first base");
        'segments: for seg in self.segments.range(first_base..).map(|(_, s)| s) {
            let Some(start) = seg.find_batch(offset)? else {
                continue;
            };
            let mut pos = start.position;
            let mut end = pos;
            let mut full = false;
            while pos < seg.size {
                let loc = seg.read_header(pos)?;
                if loc.base_offset >= max_offset {
                    full = true;
                    break;
                }
                let taken = out.len() as u64 + (end - start.position);
                if taken > 0 && taken + loc.size > max_bytes as u64 {
                    full = true;
                    break;
                }
                end = pos + loc.size;
                pos = end;
            }
            if end > start.position {
                out.extend_from_slice(
                    &seg.read_bytes(start.position, (end - start.position) as usize)?,
                );
            }
            if full {
                break 'segments;
            }
        }
        Ok(ReadResult {
            records: out.into(),
            log_start_offset: self.log_start,
            log_end_offset: log_end,
        })
    }

    /// Exact (offset, timestamp) of the first record at or above the log start with
    /// `timestamp >= ts`, or `None`. Special ListOffsets timestamps (-1, -2, -3) are the
    /// caller's to resolve.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        for seg in self.segments.values() {
            if seg.is_empty() || seg.max_timestamp < ts || seg.next_offset <= self.log_start {
                continue;
            }
            let mut pos = seg.time_search_start(ts)?;
            while pos < seg.size {
                let loc = seg.read_header(pos)?;
                pos += loc.size;
                if loc.max_timestamp < ts || loc.last_offset < self.log_start {
                    continue;
                }
                let bytes = seg.read_bytes(loc.position, loc.size as usize)?;
                if let Some(found) = batch::find_record_at_or_after(&bytes, ts, self.log_start)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets' MAX_TIMESTAMP, KIP-734): its offset
    /// and timestamp, or None for an empty log. The first such record if several share it.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let max = self
            .segments
            .values()
            .filter(|seg| !seg.is_empty() && seg.next_offset > self.log_start)
            .map(|seg| seg.max_timestamp)
            .max();
        match max {
            Some(ts) if ts >= 0 => self.offset_for_timestamp(ts),
            _ => Ok(None),
        }
    }

    /// DeleteRecords: advance the log start to `offset` (persisted before any file is removed)
    /// and drop whole segments below it. Returns the new log start.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset > self.log_end_offset() || offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset > self.log_start {
            self.set_log_start(offset)?;
            self.delete_segments_below_start()?;
        }
        Ok(self.log_start)
    }

    fn set_log_start(&mut self, offset: i64) -> Result<(), LogError> {
        checkpoint::write_atomic(&self.dir, checkpoint::LOG_START_FILE, &offset.to_string())?;
        self.log_start = offset;
        self.epochs.truncate_from_start(offset)?;
        Ok(())
    }

    /// Remove closed segments that hold nothing at or above the log start.
    fn delete_segments_below_start(&mut self) -> Result<usize, LogError> {
        let active_base = self.active().base_offset;
        let doomed: Vec<i64> = self
            .segments
            .values()
            .filter(|s| s.base_offset != active_base && s.next_offset <= self.log_start)
            .map(|s| s.base_offset)
            .collect();
        for base in &doomed {
            if let Some(seg) = self.segments.remove(base) {
                seg.delete_files()?;
            }
        }
        Ok(doomed.len())
    }

    /// Retention: roll the active segment once `segment.ms` has passed (so it can age out), then
    /// delete the oldest closed segments whose newest timestamp is older than `retention.ms`,
    /// and while the partition is over `retention.bytes`. The active segment is never deleted.
    /// Returns the number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.maybe_roll(0, 0, now_ms)?;
        let active_base = self.active().base_offset;
        let mut new_start = self.log_start;
        let mut size = self.size_bytes() as i64;
        for seg in self.segments.values() {
            if seg.base_offset == active_base {
                break;
            }
            let expired = self.config.retention_ms >= 0
                && now_ms.saturating_sub(seg.max_timestamp) > self.config.retention_ms;
            let oversized = self.config.retention_bytes >= 0
                && size - seg.size as i64 >= self.config.retention_bytes;
            if !(expired || oversized) {
                break;
            }
            size -= seg.size as i64;
            new_start = new_start.max(seg.next_offset);
        }
        if new_start > self.log_start {
            self.set_log_start(new_start)?;
        }
        self.delete_segments_below_start()
    }

    /// OffsetForLeaderEpoch: (largest epoch <= `epoch`, the offset where it ends).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest()
    }

    /// Remove every batch at and above `offset`. A batch straddling `offset` goes entirely, so
    /// the log end may land below `offset`. Offsets below the log start are out of range.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.log_start {
            return Err(self.out_of_range(offset));
        }
        // Segments starting at or above `offset` go (except the first, which then empties),
        // newest first, so a crash part-way leaves a contiguous, merely longer log.
        let first_base = *self.segments.keys().next().expect("never empty");
        let doomed: Vec<i64> = self
            .segments
            .range(offset.max(first_base + 1)..)
            .map(|(b, _)| *b)
            .rev()
            .collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete_files()?;
            }
        }
        let interval = self.config.index_interval_bytes;
        let seg = self.active_mut();
        let cut = seg.find_batch(offset)?.map_or(seg.size, |l| l.position);
        seg.truncate_file(cut)?;
        recovery::rebuild(seg, cut, interval)?;
        let end = self.log_end_offset();
        self.epochs.truncate_from_end(end)?;
        self.flushed = self.flushed.min(end);
        Ok(())
    }

    /// Delete every segment and start empty at `offset` (also used by recovery).
    fn replace_all_with_empty(&mut self, offset: i64) -> Result<(), LogError> {
        while let Some((_, seg)) = self.segments.pop_last() {
            seg.delete_files()?;
        }
        self.segments
            .insert(offset, Segment::create(&self.dir, offset)?);
        checkpoint::sync_dir(&self.dir)?;
        self.flushed = self.flushed.min(offset);
        Ok(())
    }

    /// What to fsync so everything appended so far is durable; `None` if it already is.
    /// Closed segments were fsynced when rolled, so only the active segment's file is needed.
    pub fn flush_job(&self) -> Option<FlushJob> {
        let end = self.log_end_offset();
        (self.flushed < end).then(|| FlushJob {
            files: vec![self.active().file.clone()],
            end_offset: end,
        })
    }

    /// Record that a [`FlushJob`] covering `end_offset` completed.
    pub fn mark_flushed(&mut self, end_offset: i64) {
        self.flushed = self.flushed.max(end_offset.min(self.log_end_offset()));
    }

    pub fn flushed_offset(&self) -> i64 {
        self.flushed
    }

    /// Remove the partition's data entirely (topic deletion).
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}

/// Base offsets of the `*.log` files in `dir`, ascending. Removes leftovers of interrupted
/// operations: `*.tmp` checkpoints and index files whose log is gone.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        if ext == "tmp" {
            segment::remove_if_exists(&path)?;
            continue;
        }
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        if stem.len() != 20 || base < 0 {
            continue;
        }
        match ext {
            "log" => logs.push(base),
            "index" | "timeindex" => indexes.push((base, path)),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            segment::remove_if_exists(&path)?;
        }
    }
    Ok(logs)
}
