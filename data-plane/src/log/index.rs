//! The sparse per-segment indexes, kept in memory and mirrored to append-only files.
//!
//! * `.index`: (relative offset u32, position u32), big-endian, one entry per
//!   `index.interval.bytes` of log; both columns strictly increase.
//! * `.timeindex`: (max timestamp i64, relative offset u32), big-endian: the segment's running
//!   max timestamp after the batch starting at that offset; both columns never decrease. The
//!   last entry of a closed segment is its max timestamp (written at roll).
//!
//! Index files are never trusted: the active segment's are rebuilt by recovery, and a closed
//! segment's are validated on open and rebuilt from the log when they fail ([`Index::load`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One index kind's on-disk format.
pub(crate) trait Entry: Copy {
    const SIZE: usize;
    fn encode(&self) -> Vec<u8>;
    fn decode(b: &[u8]) -> Self;
}

/// `.index` entry: relative offset -> byte position of the batch starting there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub rel_offset: u32,
    pub position: u32,
}

/// `.timeindex` entry: running max timestamp -> relative offset of the batch that ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub rel_offset: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self) -> Vec<u8> {
        let mut v = self.rel_offset.to_be_bytes().to_vec();
        v.extend_from_slice(&self.position.to_be_bytes());
        v
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel_offset: u32::from_be_bytes(b[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
        }
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self) -> Vec<u8> {
        let mut v = self.timestamp.to_be_bytes().to_vec();
        v.extend_from_slice(&self.rel_offset.to_be_bytes());
        v
    }
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
            rel_offset: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
        }
    }
}

/// An index file plus its entries in memory (sparse, so small).
#[derive(Debug)]
pub(crate) struct Index<E: Entry> {
    path: PathBuf,
    file: File,
    pub entries: Vec<E>,
}

impl<E: Entry> Index<E> {
    /// Create or truncate the file: an empty index.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Index {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
        })
    }

    /// Load an existing index; `None` if it is missing, torn or fails `valid` (then rebuild).
    pub fn load(path: &Path, valid: impl Fn(&[E]) -> bool) -> io::Result<Option<Self>> {
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        if raw.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries: Vec<E> = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        if !valid(&entries) {
            return Ok(None);
        }
        Ok(Some(Index {
            path: path.to_path_buf(),
            file,
            entries,
        }))
    }

    pub fn append(&mut self, e: E) -> io::Result<()> {
        let at = (self.entries.len() * E::SIZE) as u64;
        self.file.write_all_at(&e.encode(), at)?;
        self.entries.push(e);
        Ok(())
    }

    /// Keep only the first `n` entries.
    pub fn truncate(&mut self, n: usize) -> io::Result<()> {
        if n < self.entries.len() {
            self.entries.truncate(n);
            self.file.set_len((n * E::SIZE) as u64)?;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Index<OffsetEntry> {
    /// The last entry at or below `rel_offset`: where a scan for that offset can start.
    pub fn lookup(&self, rel_offset: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.rel_offset <= rel_offset);
        i.checked_sub(1).map(|i| self.entries[i])
    }
}

impl Index<TimeEntry> {
    /// The last entry whose timestamp is strictly below `ts`: every record at or before its
    /// batch is older than `ts`, so a search can start there.
    pub fn last_below(&self, ts: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp < ts);
        i.checked_sub(1).map(|i| self.entries[i])
    }
}

/// Structural checks for a loaded `.index` against its segment's size.
pub(crate) fn offset_index_valid(entries: &[OffsetEntry], segment_size: u64) -> bool {
    entries
        .windows(2)
        .all(|w| w[0].rel_offset < w[1].rel_offset && w[0].position < w[1].position)
        && entries.iter().all(|e| (e.position as u64) < segment_size)
}

/// Structural checks for a loaded `.timeindex`.
pub(crate) fn time_index_valid(entries: &[TimeEntry]) -> bool {
    entries
        .windows(2)
        .all(|w| w[0].timestamp <= w[1].timestamp && w[0].rel_offset <= w[1].rel_offset)
}
