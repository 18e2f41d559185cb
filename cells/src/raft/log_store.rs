//! The controller's durable Raft log, behind openraft's `RaftLogStorage`.
//!
//! Layout in `<data dir>/log/`: segment files `<first index, 20 digits>.seg` of frames
//! (`raft::frame`: length + CRC-32C + JSON of the openraft entry), a `vote` file and a
//! `purged` file (both replaced atomically). Appends are fsynced before openraft is told
//! they are flushed. Recovery cuts a torn or corrupt tail of the newest segment; damage in
//! an older segment is an error. An append takes the lock only to place its entries; the
//! write and fsync happen outside it, so replication reads never wait for the disk. A failed
//! write is fatal to openraft (it stops the node), so the in-memory view is not used after
//! one. Live entries (those after the last purge) are also kept in
//! memory for reads; openraft purges after each snapshot, which bounds them.
//!
//! Owns only log bytes. Must never depend on the state machine or the controller; a fault
//! wrapper can stand in for it because openraft sees only the trait.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageIOError, Vote};

use super::frame;
use super::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// A new segment starts once the active one is this large.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// The durable log. Cheap to clone: clones share the same files and memory (the clone is
/// the log reader openraft hands to replication tasks).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

struct Stored {
    entry: Entry,
    /// First index of the segment holding the entry, and the entry's byte position in it.
    segment: u64,
    pos: u64,
}

/// Bytes to append to one segment file.
type SegmentWrite = (PathBuf, Vec<u8>);

struct Segment {
    path: PathBuf,
    len: u64,
}

struct LogInner {
    dir: PathBuf,
    segment_bytes: u64,
    /// By first index.
    segments: BTreeMap<u64, Segment>,
    entries: BTreeMap<u64, Stored>,
    last_purged: Option<LogId>,
    vote: Option<Vote<NodeId>>,
}

fn io_err(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering from a crash.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<LogStore> {
        fs::create_dir_all(dir)?;
        let vote = match frame::read_framed(&dir.join("vote"))? {
            Some(b) => Some(serde_json::from_slice(&b).map_err(io_err)?),
            None => None,
        };
        let last_purged: Option<LogId> = match frame::read_framed(&dir.join("purged"))? {
            Some(b) => serde_json::from_slice(&b).map_err(io_err)?,
            None => None,
        };
        let mut firsts: Vec<u64> = Vec::new();
        for e in fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().to_string();
            if let Some(first) = name.strip_suffix(".seg").and_then(|s| s.parse().ok()) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let mut inner = LogInner {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments: BTreeMap::new(),
            entries: BTreeMap::new(),
            last_purged,
            vote,
        };
        for (i, first) in firsts.iter().enumerate() {
            let newest = i + 1 == firsts.len();
            inner.recover_segment(*first, newest)?;
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A panic while holding the lock leaves the log in an unknown state: stop.
        self.inner.lock().expect("log store lock poisoned")
    }

    /// Runs blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogInner) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().expect("log store lock poisoned");
            f(&mut guard)
        })
        .await
        .map_err(io_err)?
    }
}

impl LogInner {
    fn segment_path(&self, first: u64) -> PathBuf {
        self.dir.join(format!("{first:020}.seg"))
    }

    fn recover_segment(&mut self, first: u64, newest: bool) -> io::Result<()> {
        let path = self.segment_path(first);
        let bytes = fs::read(&path)?;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let Some((body, n)) = frame::decode(&bytes[pos..]) else {
                if !newest {
                    return Err(io_err(format!(
                        "{} is corrupt at byte {pos} and is not the newest segment",
                        path.display()
                    )));
                }
                tracing::warn!(path = %path.display(), pos, dropped = bytes.len() - pos,
                    "cutting a torn tail off the Raft log");
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(pos as u64)?;
                f.sync_all()?;
                break;
            };
            let entry: Entry = serde_json::from_slice(body).map_err(io_err)?;
            let index = entry.log_id.index;
            if self.last_purged.is_none_or(|p| index > p.index) {
                self.entries.insert(
                    index,
                    Stored {
                        entry,
                        segment: first,
                        pos: pos as u64,
                    },
                );
            }
            pos += n;
        }
        let len = fs::metadata(&path)?.len();
        self.segments.insert(first, Segment { path, len });
        Ok(())
    }

    /// Assigns `entries` their place (segment and position) and makes them readable;
    /// returns the bytes to write per segment file and whether a segment was created. The
    /// caller writes and fsyncs them without holding the lock, so readers (replication)
    /// never wait for the disk.
    fn plan_append(&mut self, entries: Vec<Entry>) -> io::Result<(Vec<SegmentWrite>, bool)> {
        let mut writes: Vec<SegmentWrite> = Vec::new();
        let mut created = false;
        for entry in entries {
            let framed = frame::encode(&serde_json::to_vec(&entry).map_err(io_err)?);
            let index = entry.log_id.index;
            let active = self.segments.keys().next_back().copied();
            let seg_first = match active {
                Some(f) if self.segments[&f].len < self.segment_bytes => f,
                _ => {
                    let path = self.segment_path(index);
                    self.segments.insert(index, Segment { path, len: 0 });
                    created = true;
                    index
                }
            };
            let seg = self.segments.get_mut(&seg_first).expect("active segment");
            let pos = seg.len;
            seg.len += framed.len() as u64;
            match writes.last_mut() {
                Some((path, bytes)) if *path == seg.path => bytes.extend_from_slice(&framed),
                _ => writes.push((seg.path.clone(), framed)),
            }
            self.entries.insert(
                index,
                Stored {
                    entry,
                    segment: seg_first,
                    pos,
                },
            );
        }
        Ok((writes, created))
    }

    #[cfg(test)]
    fn append(&mut self, entries: Vec<Entry>) -> io::Result<()> {
        let (writes, created) = self.plan_append(entries)?;
        write_planned(&self.dir, &writes, created)
    }

    /// Removes entries at `index` and after.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some(at) = self.entries.get(&index).map(|s| (s.segment, s.pos)) else {
            return Ok(());
        };
        let later: Vec<u64> = self.segments.range(at.0 + 1..).map(|(k, _)| *k).collect();
        for first in later.into_iter().rev() {
            if let Some(s) = self.segments.remove(&first) {
                fs::remove_file(&s.path)?;
            }
        }
        let seg = self
            .segments
            .get_mut(&at.0)
            .expect("segment of a live entry");
        let f = OpenOptions::new().write(true).open(&seg.path)?;
        f.set_len(at.1)?;
        f.sync_all()?;
        seg.len = at.1;
        if at.1 == 0 {
            let s = self.segments.remove(&at.0).expect("present");
            fs::remove_file(&s.path)?;
        }
        frame::sync_dir(&self.dir)?;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Forgets entries up to and including `log_id`, deleting segments that hold only those.
    fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let body = serde_json::to_vec(&Some(log_id)).map_err(io_err)?;
        frame::write_atomic(&self.dir.join("purged"), &frame::encode(&body))?;
        self.last_purged = Some(log_id);
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        let last_index = self.entries.keys().next_back().copied();
        for (i, first) in firsts.iter().enumerate() {
            let last_in_segment = match firsts.get(i + 1) {
                Some(next) => next - 1,
                None => last_index.unwrap_or(*first).max(*first),
            };
            if last_in_segment <= log_id.index {
                if let Some(s) = self.segments.remove(first) {
                    fs::remove_file(&s.path)?;
                }
            }
        }
        self.entries = self.entries.split_off(&(log_id.index + 1));
        frame::sync_dir(&self.dir)
    }

    fn save_vote(&mut self, vote: &Vote<NodeId>) -> io::Result<()> {
        let body = serde_json::to_vec(vote).map_err(io_err)?;
        frame::write_atomic(&self.dir.join("vote"), &frame::encode(&body))?;
        self.vote = Some(*vote);
        Ok(())
    }
}

/// Writes and fsyncs planned appends (and the directory when a segment was created).
fn write_planned(dir: &Path, writes: &[SegmentWrite], created: bool) -> io::Result<()> {
    for (path, bytes) in writes {
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    if created {
        frame::sync_dir(dir)?;
    }
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let inner = self.lock();
        Ok(inner
            .entries
            .range(range)
            .map(|(_, s)| s.entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        let last = inner.entries.values().next_back().map(|s| s.entry.log_id);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last.or(inner.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let vote = *vote;
        self.blocking(move |inner| inner.save_vote(&vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Cancel-safety: the write runs in its own blocking task; openraft learns of it
        // only through the callback, after the fsync.
        let inner = self.inner.clone();
        let res = tokio::task::spawn_blocking(move || {
            let (writes, created, dir) = {
                let mut guard = inner.lock().expect("log store lock poisoned");
                let (writes, created) = guard.plan_append(entries)?;
                (writes, created, guard.dir.clone())
            };
            write_planned(&dir, &writes, created)
        })
        .await
        .map_err(io_err)
        .and_then(|r| r);
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |inner| inner.truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |inner| inner.purge(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
#[path = "log_store_tests.rs"]
mod tests;
