//! Crash recovery: making a segment's file and indexes trustworthy again after `kill -9`.
//!
//! The active segment is always rescanned from its first byte: every batch must be framed
//! within the file, be magic v2, have a matching CRC-32C, sane counts and the next contiguous
//! base offset; the file is cut at the first batch that is not, and both indexes are rebuilt
//! from the batches that remain. Closed segments were fsynced at roll, so their indexes are only
//! validated structurally and rebuilt the same way if they are missing or fail the checks.
//!
//! The CRC is streamed in chunks, so a torn length field can never make recovery allocate more
//! than one chunk.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::batch::{self, HEADER_SIZE};
use super::index::{self, Index};
use super::segment::{self, loc_from_header, BatchLoc, Segment};
use super::LogError;

const CRC_CHUNK: usize = 64 * 1024;

/// Verify the batch at `pos` fully; `None` means "torn or corrupt: the valid log ends here".
fn verify_at(
    file: &File,
    pos: u64,
    file_len: u64,
    expected_base: i64,
) -> Result<Option<BatchLoc>, LogError> {
    if pos + HEADER_SIZE as u64 > file_len {
        return Ok(None);
    }
    let mut h = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut h, pos)?;
    let loc = loc_from_header(&h, pos);
    let record_count = batch::i32_at(&h, batch::RECORD_COUNT);
    let last_delta = batch::i32_at(&h, batch::LAST_OFFSET_DELTA);
    let codec = batch::i16_at(&h, batch::ATTRIBUTES) & 0x7;
    if loc.size < HEADER_SIZE as u64
        || pos + loc.size > file_len
        || h[batch::MAGIC] != 2
        || loc.base_offset != expected_base
        || record_count < 1
        || last_delta != record_count - 1
        || codec > 4
    {
        return Ok(None);
    }
    let mut crc = crc32c::crc32c(&h[batch::ATTRIBUTES..]);
    let mut at = pos + HEADER_SIZE as u64;
    let end = pos + loc.size;
    let mut chunk = vec![0u8; CRC_CHUNK.min((end - at) as usize)];
    while at < end {
        let n = CRC_CHUNK.min((end - at) as usize);
        file.read_exact_at(&mut chunk[..n], at)?;
        crc = crc32c::crc32c_append(crc, &chunk[..n]);
        at += n as u64;
    }
    let stored = u32::from_be_bytes(h[batch::CRC..batch::CRC + 4].try_into().expect("4 bytes"));
    Ok((crc == stored).then_some(loc))
}

/// Rescan `seg`'s file (of `file_len` bytes) from the start, cut it after the last valid batch
/// and rebuild both indexes. Returns how many bytes were cut.
pub(crate) fn rebuild(seg: &mut Segment, file_len: u64, interval: u64) -> Result<u64, LogError> {
    seg.reset_state()?;
    let mut pos = 0u64;
    while let Some(loc) = verify_at(&seg.file, pos, file_len, seg.next_offset)? {
        seg.track_batch(loc, interval)?;
        pos += loc.size;
    }
    if pos < file_len {
        if zeros_at(&seg.file, pos, file_len)? {
            // What `Segment::zero_ahead` wrote past the data: expected, nothing was lost.
            tracing::debug!(segment = %seg.path.display(), valid_bytes = pos, "cutting zeroed tail");
        } else {
            tracing::warn!(
                segment = %seg.path.display(),
                valid_bytes = pos,
                cut_bytes = file_len - pos,
                "truncating torn or corrupt log tail"
            );
        }
        // Cut even zeros: bytes of an unacknowledged batch may lie beyond them, and must never
        // be reachable again once new batches are written over the gap.
        seg.truncate_file(pos)?;
    } else {
        seg.allocated = file_len;
    }
    Ok(file_len - pos)
}

/// Whether the bytes after the valid log look like zeroes written ahead rather than a torn
/// batch (only the first chunk is read: this decides the log level, not what is kept).
fn zeros_at(file: &File, pos: u64, file_len: u64) -> Result<bool, LogError> {
    let mut buf = vec![0u8; CRC_CHUNK.min((file_len - pos) as usize)];
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf.iter().all(|&b| b == 0))
}

/// Open the active (last) segment, always rescanning it.
pub(crate) fn recover_active(dir: &Path, base: i64, interval: u64) -> Result<Segment, LogError> {
    let (file, len) = Segment::open_file(dir, base)?;
    let idx = Index::create(&segment::index_path(dir, base))?;
    let tidx = Index::create(&segment::time_index_path(dir, base))?;
    let mut seg = Segment::from_parts(dir, base, file, 0, idx, tidx);
    rebuild(&mut seg, len, interval)?;
    Ok(seg)
}

/// Open a closed segment (followed by one starting at `next_base`), trusting its indexes only
/// if they pass validation.
pub(crate) fn open_closed(
    dir: &Path,
    base: i64,
    next_base: i64,
    interval: u64,
) -> Result<Segment, LogError> {
    let (file, len) = Segment::open_file(dir, base)?;
    let span = next_base - base;
    let idx = Index::load(&segment::index_path(dir, base), |e| {
        index::offset_index_valid(e, len) && e.last().is_none_or(|l| (l.rel_offset as i64) < span)
    })?;
    let tidx = Index::load(&segment::time_index_path(dir, base), |e| {
        index::time_index_valid(e)
            && e.last().is_none_or(|l| (l.rel_offset as i64) < span)
            && (len == 0 || !e.is_empty())
    })?;
    if let (Some(idx), Some(tidx)) = (idx, tidx) {
        let max_timestamp = tidx.entries.last().map_or(-1, |e| e.timestamp);
        let mut seg = Segment::from_parts(dir, base, file, len, idx, tidx);
        seg.next_offset = next_base;
        seg.max_timestamp = max_timestamp;
        // The last index entry must land on the batch it names.
        let last_ok = match seg.index.entries.last() {
            None => true,
            Some(e) => seg
                .read_header(e.position as u64)
                .is_ok_and(|l| l.base_offset == base + e.rel_offset as i64),
        };
        if last_ok {
            return Ok(seg);
        }
    }
    tracing::warn!(base_offset = base, dir = %dir.display(), "rebuilding missing or corrupt segment indexes");
    let (file, len) = Segment::open_file(dir, base)?;
    let idx = Index::create(&segment::index_path(dir, base))?;
    let tidx = Index::create(&segment::time_index_path(dir, base))?;
    let mut seg = Segment::from_parts(dir, base, file, 0, idx, tidx);
    rebuild(&mut seg, len, interval)?;
    seg.seal()?;
    seg.rolling_ts = None;
    Ok(seg)
}
