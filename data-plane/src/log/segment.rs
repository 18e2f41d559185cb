//! One segment: a `{base_offset:020}.log` file of whole record batches plus its two sparse
//! indexes. Owns positional reads and writes of the file and keeping the indexes in step with
//! appends; it knows nothing about other segments.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, HEADER_SIZE, LOG_OVERHEAD};
use super::index::{Index, OffsetEntry, TimeEntry};
use super::LogError;

pub(crate) fn log_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}
pub(crate) fn index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}
pub(crate) fn time_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

/// Where one stored batch is and what it holds (from its fixed header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchLoc {
    pub position: u64,
    pub size: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    pub file: Arc<File>,
    pub path: PathBuf,
    /// Bytes of whole batches in the file (the file is never longer once recovered).
    pub size: u64,
    /// One past the last offset stored here (== base_offset when empty).
    pub next_offset: i64,
    /// Largest batch max timestamp, -1 when empty (or when no batch carries a timestamp).
    pub max_timestamp: i64,
    /// Base offset of the last batch, for the final time index entry at roll.
    pub last_batch_base: i64,
    /// When the segment took its first batch (wall clock, or the first batch's max timestamp
    /// after a restart); drives `segment.ms`.
    pub rolling_ts: Option<i64>,
    pub index: Index<OffsetEntry>,
    pub time_index: Index<TimeEntry>,
    /// Bytes appended since the last offset index entry.
    bytes_since_index: u64,
    /// The file's length: `size` bytes of batches, then zeros written ahead of them (see
    /// [`Segment::zero_ahead`]). Never less than `size`.
    pub allocated: u64,
}

/// The least [`Segment::zero_ahead`] zeroes ahead when preallocation is on.
const MIN_ZERO_AHEAD: u64 = 16 * 1024;

/// Zeros for [`Segment::zero_ahead`]; static so writing them allocates nothing.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl Segment {
    /// A new, empty segment (any stale files with this base are truncated).
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Segment> {
        let path = log_path(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Segment {
            base_offset,
            file: Arc::new(file),
            path,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            last_batch_base: base_offset,
            rolling_ts: None,
            index: Index::create(&index_path(dir, base_offset))?,
            time_index: Index::create(&time_index_path(dir, base_offset))?,
            bytes_since_index: 0,
            allocated: 0,
        })
    }

    /// Open an existing log file with empty in-memory state; the caller (recovery) either
    /// loads validated indexes or rescans the file.
    pub fn open_file(dir: &Path, base_offset: i64) -> io::Result<(File, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(log_path(dir, base_offset))?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }

    pub fn from_parts(
        dir: &Path,
        base_offset: i64,
        file: File,
        size: u64,
        index: Index<OffsetEntry>,
        time_index: Index<TimeEntry>,
    ) -> Segment {
        Segment {
            base_offset,
            file: Arc::new(file),
            path: log_path(dir, base_offset),
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            last_batch_base: base_offset,
            rolling_ts: None,
            index,
            time_index,
            bytes_since_index: 0,
            allocated: size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn rel(&self, offset: i64) -> u32 {
        // Rolling keeps every offset within u32 of the base (see PartitionLog::maybe_roll).
        (offset - self.base_offset) as u32
    }

    /// Record a batch that now sits at `loc.position` in the file: advance the end, the max
    /// timestamp and add sparse index entries every `interval` bytes.
    pub fn track_batch(&mut self, loc: BatchLoc, interval: u64) -> io::Result<()> {
        if self.rolling_ts.is_none() {
            self.rolling_ts = Some(loc.max_timestamp);
        }
        self.max_timestamp = self.max_timestamp.max(loc.max_timestamp);
        if self.bytes_since_index >= interval {
            let rel = self.rel(loc.base_offset);
            self.index.append(OffsetEntry {
                rel_offset: rel,
                position: loc.position as u32,
            })?;
            self.append_time_entry(rel)?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += loc.size;
        self.size = loc.position + loc.size;
        self.next_offset = loc.last_offset + 1;
        self.last_batch_base = loc.base_offset;
        Ok(())
    }

    /// Add (running max timestamp, rel) if the max grew (or the index is empty).
    fn append_time_entry(&mut self, rel: u32) -> io::Result<()> {
        let grew = self
            .time_index
            .entries
            .last()
            .is_none_or(|e| self.max_timestamp > e.timestamp);
        if grew {
            self.time_index.append(TimeEntry {
                timestamp: self.max_timestamp,
                rel_offset: rel,
            })?;
        }
        Ok(())
    }

    /// Write `data` (whole batches described by `locs`, positions relative to `data`) at the end,
    /// then keep `prealloc` zeroed bytes written ahead of it, up to `cap` (see [`Self::zero_ahead`]).
    pub fn append(
        &mut self,
        data: &[u8],
        locs: &[BatchLoc],
        interval: u64,
        now_ms: i64,
        prealloc: Prealloc,
    ) -> io::Result<()> {
        let start = self.size;
        if let Err(e) = self.file.write_all_at(data, start) {
            // Leave no partial batch behind for readers; recovery would also cut it.
            let _ = self.file.set_len(start);
            self.allocated = start;
            return Err(e);
        }
        let end = start + data.len() as u64;
        self.allocated = self.allocated.max(end);
        self.zero_ahead(end, prealloc);
        let first = self.is_empty();
        for loc in locs {
            self.track_batch(
                BatchLoc {
                    position: start + loc.position,
                    ..*loc
                },
                interval,
            )?;
        }
        if first {
            self.rolling_ts = Some(now_ms);
        }
        Ok(())
    }

    /// Keep the file zeroed ahead of the data by at least `ahead` (`prealloc.bytes`, less for a
    /// small segment): when less is left, write zeros up to `end + 2 * ahead` (never past
    /// `cap`) and start their writeback.
    ///
    /// Why: an fdatasync after an append that grew the file must also commit the new size and
    /// block allocation through the filesystem journal, and on ext4 those commits are where
    /// the long fsync stalls come from (BENCHMARKS.md). Overwriting blocks that are already
    /// allocated, written and sized needs no journal commit, so with zeros ahead only one
    /// fdatasync per `bytes` appended pays for metadata (PostgreSQL pre-zeroes WAL segments for
    /// the same reason). The zeros are never read: readers stop at `size`, recovery stops at
    /// the first invalid batch header and cuts the file there, and sealing cuts it to `size`.
    ///
    /// Best effort: a failed write of zeros (a full disk) only means the next appends grow
    /// the file as they would without preallocation.
    fn zero_ahead(&mut self, end: u64, prealloc: Prealloc) {
        if prealloc.bytes == 0 {
            return;
        }
        // Ahead by as much as is already written (up to `bytes`), so the zeros of a small
        // partition stay small; a busy one reaches `bytes` after a few doublings.
        let ahead = prealloc.bytes.min(end).max(MIN_ZERO_AHEAD);
        if self.allocated >= end.saturating_add(ahead) {
            return;
        }
        let from = self.allocated.max(end);
        let to = end.saturating_add(2 * ahead).min(prealloc.cap);
        let mut at = from;
        while at < to {
            let n = ZEROS.len().min((to - at) as usize);
            if let Err(e) = self.file.write_all_at(&ZEROS[..n], at) {
                tracing::debug!(segment = %self.path.display(), error = %e, "zeroing ahead failed");
                break;
            }
            at += n as u64;
        }
        if at > from {
            start_writeback(&self.file, from, at - from);
        }
        self.allocated = self.allocated.max(at);
    }

    /// The batch header at `pos`, validated against the segment's size.
    pub fn read_header(&self, pos: u64) -> Result<BatchLoc, LogError> {
        if pos + HEADER_SIZE as u64 > self.size {
            return Err(LogError::Corrupt(format!(
                "{}: no batch header at {pos}",
                self.path.display()
            )));
        }
        let mut h = [0u8; HEADER_SIZE];
        self.file.read_exact_at(&mut h, pos)?;
        let loc = loc_from_header(&h, pos);
        if loc.size < HEADER_SIZE as u64 || pos + loc.size > self.size {
            return Err(LogError::Corrupt(format!(
                "{}: bad batch length at {pos}",
                self.path.display()
            )));
        }
        Ok(loc)
    }

    /// Position of the first batch whose last offset is >= `offset` (None if there is none),
    /// starting the scan from the sparse index.
    pub fn find_batch(&self, offset: i64) -> Result<Option<BatchLoc>, LogError> {
        let rel = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        let mut pos = self.index.lookup(rel).map_or(0, |e| e.position as u64);
        while pos < self.size {
            let loc = self.read_header(pos)?;
            if loc.last_offset >= offset {
                return Ok(Some(loc));
            }
            pos += loc.size;
        }
        Ok(None)
    }

    /// Position to start a timestamp search: after every batch known to be older than `ts`.
    pub fn time_search_start(&self, ts: i64) -> Result<u64, LogError> {
        match self.time_index.last_below(ts) {
            None => Ok(0),
            Some(e) => Ok(self
                .find_batch(self.base_offset + e.rel_offset as i64)?
                .map_or(self.size, |l| l.position)),
        }
    }

    pub fn read_bytes(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    /// Close for appends: record the segment's max timestamp as the last time index entry and
    /// make the log and both indexes durable.
    pub fn seal(&mut self) -> io::Result<()> {
        if !self.is_empty() {
            let rel = self.rel(self.last_batch_base);
            self.append_time_entry(rel)?;
        }
        if self.allocated > self.size {
            // A closed segment is exactly its batches (recovery trusts its length).
            self.file.set_len(self.size)?;
            self.allocated = self.size;
        }
        self.file.sync_data()?;
        self.index.sync()?;
        self.time_index.sync()
    }

    /// Cut the file at `pos` (a batch boundary) and reset the in-memory state so the caller can
    /// re-track what remains (see `recovery::rebuild`).
    pub fn truncate_file(&mut self, pos: u64) -> io::Result<()> {
        self.file.set_len(pos)?;
        self.size = pos;
        self.allocated = pos;
        Ok(())
    }

    /// Forget every batch and index entry (the file itself is left alone).
    pub fn reset_state(&mut self) -> io::Result<()> {
        self.index.truncate(0)?;
        self.time_index.truncate(0)?;
        self.size = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.last_batch_base = self.base_offset;
        self.rolling_ts = None;
        self.bytes_since_index = 0;
        Ok(())
    }

    /// Remove the segment's files: the log first, so a crash leaves at worst orphan indexes
    /// (which open() removes), never a log without its place in the offset order.
    pub fn delete_files(self) -> io::Result<()> {
        remove_if_exists(&self.path)?;
        remove_if_exists(self.index.path())?;
        remove_if_exists(self.time_index.path())
    }
}

/// How far [`Segment::append`] zeroes ahead of the data: `bytes` (0 = never), up to `cap`
/// (the segment's size limit; zeros past it would never be used).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prealloc {
    pub bytes: u64,
    pub cap: u64,
}

/// Ask the kernel to start writing `len` bytes at `offset` back now, without waiting, so a
/// later fdatasync finds them on disk already.
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor `file` keeps open; no memory is passed.
        let rc = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "sync_file_range failed");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

pub(crate) fn loc_from_header(h: &[u8], pos: u64) -> BatchLoc {
    let base_offset = batch::i64_at(h, batch::BASE_OFFSET);
    let length = batch::i32_at(h, batch::LENGTH);
    BatchLoc {
        position: pos,
        // A negative length becomes a size the callers reject as too small.
        size: if length < 0 {
            0
        } else {
            LOG_OVERHEAD as u64 + length as u64
        },
        base_offset,
        last_offset: base_offset.saturating_add(batch::i32_at(h, batch::LAST_OFFSET_DELTA) as i64),
        max_timestamp: batch::i64_at(h, batch::MAX_TIMESTAMP),
    }
}

pub(crate) fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
