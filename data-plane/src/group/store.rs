//! Durable group state: the [`GroupStore`] trait and its implementations.
//!
//! The store holds *records* (committed offsets, group generations, deletions) and knows how
//! to fold them into the live state ([`Materialized`]): the last record per key wins, a
//! [`Record::GroupDelete`] drops everything of that group. The coordinator replays the live
//! state on open and appends records as things change.
//!
//! [`FileGroupStore`] is an append-only log `groups.log` of frames
//! `[u32 len][u32 crc32c(payload)][payload = serde_json(Record)]` (little endian). A single
//! writer thread drains every append queued at that moment, writes them and `fdatasync`s
//! once, then answers all of them (group commit). On open a torn or corrupt tail is cut off.
//! When the log outgrows its bound it is rewritten as a snapshot of the live state into
//! `groups.log.tmp`, fsynced and renamed over the log (then the directory is fsynced).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::GroupError;

/// A boxed future returned by the store. It owns everything it needs (`'static`), so callers
/// can drop their locks before awaiting it.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, GroupError>> + Send + 'static>>;

/// Durability boundary of the coordinator. A replicated implementation will replace the
/// file one; both must keep these guarantees:
/// - records are applied in the order of the `append` *calls* (not of polling the futures),
///   so the coordinator may call `append` under its lock and await outside it;
/// - an `append` future resolves `Ok` only once its records survive a crash (`kill -9`,
///   power loss for the file store), and records of one call are all-or-nothing on replay
///   only as far as each record is concerned (each record is independently checked);
/// - `recover` returns the live state (see [`Materialized`]) as of the last durable append.
pub trait GroupStore: Send + Sync + 'static {
    /// The live records, to rebuild the coordinator's state on open.
    fn recover(&self) -> StoreFuture<Vec<Record>>;
    /// Appends `records` durably (see the trait docs for ordering).
    fn append(&self, records: Vec<Record>) -> StoreFuture<()>;
    /// Flushes and stops accepting appends.
    fn close(&self) -> StoreFuture<()>;
}

/// One change to durable group state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Record {
    /// A committed offset (Kafka's offset commit record).
    Offset {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: Option<String>,
        /// Wall-clock commit time (ms since the epoch), for retention.
        commit_ts_ms: i64,
        /// Explicit expiry requested by OffsetCommit v2-4 `retention_time_ms`.
        expire_ts_ms: Option<i64>,
    },
    /// An expired offset.
    OffsetDelete {
        group: String,
        topic: String,
        partition: i32,
    },
    /// The group metadata record: written at every generation change. Members are not
    /// persisted: after a restart the group is Empty at this generation and members rejoin.
    Group {
        group: String,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        /// Wall-clock time (ms) the group entered its current state (retention base when empty).
        state_ts_ms: i64,
    },
    /// The group and all its offsets are gone (DeleteGroups, or expiry of an empty group).
    GroupDelete { group: String },
}

impl Record {
    pub fn group(&self) -> &str {
        match self {
            Record::Offset { group, .. }
            | Record::OffsetDelete { group, .. }
            | Record::Group { group, .. }
            | Record::GroupDelete { group } => group,
        }
    }
}

/// Live state folded from records: key `(group, None)` is the group record, `(group,
/// Some((topic, partition)))` an offset.
#[derive(Default, Debug)]
pub struct Materialized {
    live: BTreeMap<(String, Option<(String, i32)>), Record>,
}

impl Materialized {
    pub fn apply(&mut self, record: Record) {
        match &record {
            Record::Offset {
                group,
                topic,
                partition,
                ..
            } => {
                let key = (group.clone(), Some((topic.clone(), *partition)));
                self.live.insert(key, record);
            }
            Record::OffsetDelete {
                group,
                topic,
                partition,
            } => {
                self.live
                    .remove(&(group.clone(), Some((topic.clone(), *partition))));
            }
            Record::Group { group, .. } => {
                self.live.insert((group.clone(), None), record);
            }
            Record::GroupDelete { group } => {
                let doomed: Vec<_> = self
                    .live
                    .range((group.clone(), None)..)
                    .take_while(|((g, _), _)| g == group)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in doomed {
                    self.live.remove(&k);
                }
            }
        }
    }

    pub fn records(&self) -> Vec<Record> {
        self.live.values().cloned().collect()
    }
}

/// An in-memory store: durable only as long as the value lives. Used by tests (it keeps
/// paused-time tests deterministic: no I/O thread) and as the model a replicated store follows.
#[derive(Default)]
pub struct MemoryGroupStore {
    state: Mutex<Materialized>,
}

impl GroupStore for MemoryGroupStore {
    fn recover(&self) -> StoreFuture<Vec<Record>> {
        let records = self.state.lock().expect("store lock").records();
        Box::pin(async move { Ok(records) })
    }

    fn append(&self, records: Vec<Record>) -> StoreFuture<()> {
        let mut state = self.state.lock().expect("store lock");
        for r in records {
            state.apply(r);
        }
        Box::pin(async { Ok(()) })
    }

    fn close(&self) -> StoreFuture<()> {
        Box::pin(async { Ok(()) })
    }
}

const LOG_FILE: &str = "groups.log";
const TMP_FILE: &str = "groups.log.tmp";
/// Frame header: length and CRC-32C of the payload.
const HEADER: usize = 8;
/// No single record comes near this; a larger length means a corrupt header.
const MAX_RECORD: usize = 1 << 20;

enum Command {
    Append(Vec<Record>, oneshot::Sender<Result<(), GroupError>>),
    Close(oneshot::Sender<()>),
}

/// The file-backed store (see the module docs for the format).
pub struct FileGroupStore {
    /// Unbounded so `append` can enqueue synchronously under the coordinator's lock (order!).
    /// In-flight appends are bounded by their callers: every OffsetCommit awaits its fsync,
    /// and the connection layer bounds in-flight requests.
    tx: mpsc::UnboundedSender<Command>,
    recovered: Mutex<Option<Vec<Record>>>,
}

impl FileGroupStore {
    /// Opens (or creates) the store in `dir`, replays it, cuts a torn tail, and starts the
    /// writer thread. Blocking: call it from `spawn_blocking` in async code.
    /// `compact_bytes` bounds the log: past it (and past twice the last snapshot) the log is
    /// rewritten as a snapshot.
    pub fn open(dir: &Path, compact_bytes: u64) -> Result<FileGroupStore, GroupError> {
        fs::create_dir_all(dir)?;
        let log_path = dir.join(LOG_FILE);
        // A leftover tmp file is an unfinished compaction: the log is still authoritative.
        let _ = fs::remove_file(dir.join(TMP_FILE));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, good_len) = decode_frames(&bytes);
        if good_len < bytes.len() {
            tracing::warn!(
                path = %log_path.display(),
                dropped_bytes = bytes.len() - good_len,
                "group store: dropping torn or corrupt tail"
            );
            file.set_len(good_len as u64)?;
            file.sync_all()?;
        }
        let mut state = Materialized::default();
        for r in records {
            state.apply(r);
        }
        let recovered = state.records();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            file: Some(file),
            state,
            log_bytes: good_len as u64,
            snapshot_bytes: good_len as u64,
            compact_bytes,
            failed: None,
        };
        std::thread::Builder::new()
            .name("group-store".into())
            .spawn(move || writer.run(rx))?;
        Ok(FileGroupStore {
            tx,
            recovered: Mutex::new(Some(recovered)),
        })
    }
}

impl GroupStore for FileGroupStore {
    fn recover(&self) -> StoreFuture<Vec<Record>> {
        let records = self
            .recovered
            .lock()
            .expect("store lock")
            .take()
            .unwrap_or_default();
        Box::pin(async move { Ok(records) })
    }

    fn append(&self, records: Vec<Record>) -> StoreFuture<()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Append(records, tx));
        Box::pin(async move {
            if sent.is_err() {
                return Err(GroupError::Unavailable("store closed".into()));
            }
            rx.await
                .unwrap_or_else(|_| Err(GroupError::Unavailable("store writer stopped".into())))
        })
    }

    fn close(&self) -> StoreFuture<()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Close(tx));
        Box::pin(async move {
            if sent.is_ok() {
                let _ = rx.await;
            }
            Ok(())
        })
    }
}

/// Encodes one frame onto `buf`.
fn encode_frame(record: &Record, buf: &mut Vec<u8>) {
    let payload = serde_json::to_vec(record).expect("records always serialize");
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
}

/// Decodes frames until the first torn or corrupt one; returns the records and the length
/// of the valid prefix.
fn decode_frames(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= HEADER {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD || bytes.len() - pos - HEADER < len {
            break;
        }
        let payload = &bytes[pos + HEADER..pos + HEADER + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        match serde_json::from_slice::<Record>(payload) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
        pos += HEADER + len;
    }
    (records, pos)
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    file: Option<File>,
    state: Materialized,
    log_bytes: u64,
    snapshot_bytes: u64,
    compact_bytes: u64,
    /// Set after a failed write or fsync: the file's content is unknown, so every later
    /// append fails rather than acknowledging something that may not be durable.
    failed: Option<String>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut buf = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            buf.clear();
            let mut waiters = Vec::new();
            let mut close = None;
            for cmd in batch {
                match cmd {
                    Command::Append(records, reply) => {
                        for r in records {
                            encode_frame(&r, &mut buf);
                            self.state.apply(r);
                        }
                        waiters.push(reply);
                    }
                    Command::Close(reply) => close = Some(reply),
                }
            }
            let result = self.write(&buf);
            for w in waiters {
                let _ = w.send(result.clone());
            }
            if result.is_ok()
                && self.log_bytes > self.compact_bytes
                && self.log_bytes > 2 * self.snapshot_bytes
            {
                if let Err(e) = self.compact() {
                    tracing::warn!(error = %e, "group store: compaction failed");
                }
            }
            if let Some(reply) = close {
                let _ = reply.send(());
                return;
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), GroupError> {
        if let Some(e) = &self.failed {
            return Err(GroupError::Unavailable(e.clone()));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().expect("file open unless failed");
        let res = file.write_all(buf).and_then(|()| file.sync_data());
        match res {
            Ok(()) => {
                self.log_bytes += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "group store: write failed; refusing further writes");
                self.failed = Some(e.to_string());
                Err(e.into())
            }
        }
    }

    /// Rewrites the log as a snapshot of the live state: tmp + fsync + rename + dir fsync.
    fn compact(&mut self) -> Result<(), GroupError> {
        let tmp = self.dir.join(TMP_FILE);
        let log = self.dir.join(LOG_FILE);
        let mut buf = Vec::new();
        for r in self.state.records() {
            encode_frame(&r, &mut buf);
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &log)?;
        // From here on the old handle points at an unlinked file: reopen or fail for good.
        let reopened = File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .and_then(|()| OpenOptions::new().append(true).open(&log));
        match reopened {
            Ok(f) => {
                self.file = Some(f);
                self.log_bytes = buf.len() as u64;
                self.snapshot_bytes = buf.len() as u64;
                tracing::info!(bytes = buf.len(), "group store: compacted");
                Ok(())
            }
            Err(e) => {
                self.failed = Some(format!("reopen after compaction: {e}"));
                self.file = None;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(group: &str, partition: i32, offset: i64) -> Record {
        Record::Offset {
            group: group.into(),
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: 3,
            metadata: Some("m".into()),
            commit_ts_ms: 1,
            expire_ts_ms: None,
        }
    }

    #[tokio::test]
    async fn group_store_replays_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = FileGroupStore::open(dir.path(), 1 << 30).unwrap();
            s.append(vec![offset("g", 0, 5), offset("g", 1, 7)])
                .await
                .unwrap();
            s.append(vec![offset("g", 0, 6)]).await.unwrap();
            s.close().await.unwrap();
        }
        // Tear the last frame and add garbage.
        let path = dir.path().join(LOG_FILE);
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let s = FileGroupStore::open(dir.path(), 1 << 30).unwrap();
        let recs = s.recover().await.unwrap();
        assert_eq!(recs, vec![offset("g", 0, 5), offset("g", 1, 7)]);
        // Appends after the cut are readable again.
        s.append(vec![offset("g", 2, 9)]).await.unwrap();
        s.close().await.unwrap();
        let s = FileGroupStore::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(s.recover().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn group_store_compacts_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileGroupStore::open(dir.path(), 2_000).unwrap();
        for i in 0..200 {
            s.append(vec![offset("g", 0, i)]).await.unwrap();
        }
        s.append(vec![offset("h", 0, 1)]).await.unwrap();
        s.append(vec![Record::GroupDelete { group: "h".into() }])
            .await
            .unwrap();
        s.close().await.unwrap();
        let len = fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        assert!(len < 2_000 * 2, "log was compacted, len {len}");
        let s = FileGroupStore::open(dir.path(), 2_000).unwrap();
        assert_eq!(s.recover().await.unwrap(), vec![offset("g", 0, 199)]);
    }

    #[tokio::test]
    async fn group_store_groups_concurrent_appends() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(FileGroupStore::open(dir.path(), 1 << 30).unwrap());
        let futs: Vec<_> = (0..50).map(|i| s.append(vec![offset("g", i, 1)])).collect();
        for f in futs {
            f.await.unwrap();
        }
        s.close().await.unwrap();
        let s = FileGroupStore::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(s.recover().await.unwrap().len(), 50);
    }
}
