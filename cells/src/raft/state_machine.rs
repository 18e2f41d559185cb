//! The Raft state machine: the metadata image (held by the [`MetadataHub`]), the last
//! applied log id and membership, and snapshots on disk.
//!
//! Each applied entry's records go to the hub at the entry's index (blank and membership
//! entries publish an empty update, so watchers see one update per committed entry). A
//! `BrokerRecord` committed with epoch 0 gets the entry's index as its epoch here: the
//! broker epoch is the offset of the registration, which only the log knows.
//! A snapshot is the image's records (`MetadataUpdate`, prost) plus its `SnapshotMeta`
//! (JSON), in `<data dir>/snapshot`, replaced atomically.
//!
//! Must never depend on the controller logic or the network.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{BasicNode, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use prost::Message;
use proto::cell::v1::{metadata_record::Record, MetadataRecord, MetadataUpdate};

use super::{frame, Applied, Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::watch::MetadataHub;

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Cheap to clone; clones share state (a clone is the snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<SmInner>>,
    hub: Arc<MetadataHub>,
}

struct SmInner {
    path: PathBuf,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<(Meta, Vec<u8>)>,
    snapshots_built: u64,
}

fn io_err(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Stamps registrations committed with epoch 0 with the entry's index.
pub fn stamp_broker_epochs(index: u64, records: &mut [MetadataRecord]) {
    for r in records {
        if let Some(Record::Broker(b)) = &mut r.record {
            if b.broker_epoch == 0 {
                b.broker_epoch = index as i64;
            }
        }
    }
}

fn write_snapshot(path: &Path, meta: &Meta, data: &[u8]) -> io::Result<()> {
    let mut bytes = frame::encode(&serde_json::to_vec(meta).map_err(io_err)?);
    bytes.extend_from_slice(&frame::encode(data));
    frame::write_atomic(path, &bytes)
}

fn read_snapshot(path: &Path) -> io::Result<Option<(Meta, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let corrupt = || io_err(format!("{} is corrupt", path.display()));
    let (meta, n) = frame::decode(&bytes).ok_or_else(corrupt)?;
    let (data, _) = frame::decode(&bytes[n..]).ok_or_else(corrupt)?;
    Ok(Some((
        serde_json::from_slice(meta).map_err(io_err)?,
        data.to_vec(),
    )))
}

impl StateMachine {
    /// Opens the state machine in `dir`, loading the latest snapshot into `hub`.
    pub fn open(dir: &Path, hub: Arc<MetadataHub>) -> io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("snapshot");
        let mut inner = SmInner {
            path: path.clone(),
            last_applied: None,
            membership: StoredMembership::default(),
            current: None,
            snapshots_built: 0,
        };
        if let Some((meta, data)) = read_snapshot(&path)? {
            let update = MetadataUpdate::decode(data.as_slice()).map_err(io_err)?;
            hub.install(update.offset, update.records);
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.current = Some((meta, data));
        }
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(inner)),
            hub,
        })
    }

    fn lock(&self) -> MutexGuard<'_, SmInner> {
        self.inner.lock().expect("state machine lock poisoned")
    }

    pub fn hub(&self) -> &Arc<MetadataHub> {
        &self.hub
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, data, path) = {
            let mut inner = self.lock();
            let image = self.hub.image();
            let data = MetadataUpdate {
                offset: image.offset,
                is_snapshot: true,
                records: image.to_records(),
            }
            .encode_to_vec();
            inner.snapshots_built += 1;
            let id = match inner.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, inner.snapshots_built),
                None => format!("0-0-{}", inner.snapshots_built),
            };
            let meta = Meta {
                last_log_id: inner.last_applied,
                last_membership: inner.membership.clone(),
                snapshot_id: id,
            };
            (meta, data, inner.path.clone())
        };
        let (m, d) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || write_snapshot(&path, &m, &d))
            .await
            .map_err(io_err)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.lock().current = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let mut inner = self.lock();
        for entry in entries {
            let index = entry.log_id.index;
            let records = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(batch) => {
                    let mut records = batch
                        .records()
                        .map_err(|e| StorageIOError::apply(entry.log_id, &e))?;
                    stamp_broker_epochs(index, &mut records);
                    records
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
            };
            self.hub.apply(index, records);
            inner.last_applied = Some(entry.log_id);
            out.push(Applied {});
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let sig = meta.signature();
        let update = MetadataUpdate::decode(data.as_slice())
            .map_err(|e| StorageIOError::read_snapshot(Some(sig.clone()), &e))?;
        let path = self.lock().path.clone();
        let (m, d) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || write_snapshot(&path, &m, &d))
            .await
            .map_err(io_err)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_snapshot(Some(sig), &e))?;
        let mut inner = self.lock();
        self.hub.install(update.offset, update.records);
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.current = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.lock().current.clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
