//! The metadata hub: the applied image plus what watchers need to follow it.
//!
//! The state machine applies each committed entry here ([`MetadataHub::apply`]); the hub
//! keeps the image, a bounded ring of recent updates (one per entry) and a bounded
//! broadcast channel. A watcher ([`MetadataHub::subscribe`]) gets the ring's updates after
//! its offset, or a whole-image snapshot when the ring no longer reaches back that far, and
//! then the live broadcast. Lock order: image, then ring; publishing holds both so a
//! subscriber never misses or repeats an update.
//!
//! Owns no I/O. Must never depend on openraft or the controller logic.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use proto::cell::v1::{MetadataRecord, MetadataUpdate};
use tokio::sync::broadcast;

use crate::image::CellImage;

pub struct MetadataHub {
    image: RwLock<CellImage>,
    ring: Mutex<Ring>,
}

struct Ring {
    updates: VecDeque<Arc<MetadataUpdate>>,
    capacity: usize,
    tx: broadcast::Sender<Arc<MetadataUpdate>>,
}

/// Where a new watcher starts: updates to send first, then the live channel (skip anything
/// at or below the offset of the last update sent).
pub struct Subscription {
    pub initial: Vec<Arc<MetadataUpdate>>,
    pub live: broadcast::Receiver<Arc<MetadataUpdate>>,
}

impl MetadataHub {
    /// `ring` recent updates are kept; each watcher may lag the live channel by `channel`.
    pub fn new(ring: usize, channel: usize) -> Arc<MetadataHub> {
        let (tx, _) = broadcast::channel(channel.max(1));
        Arc::new(MetadataHub {
            image: RwLock::new(CellImage::default()),
            ring: Mutex::new(Ring {
                updates: VecDeque::with_capacity(ring),
                capacity: ring.max(1),
                tx,
            }),
        })
    }

    /// Reads the current image.
    pub fn image(&self) -> RwLockReadGuard<'_, CellImage> {
        self.image.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The offset of the last applied entry.
    pub fn offset(&self) -> u64 {
        self.image().offset
    }

    /// Applies the records committed at `offset` and publishes them.
    pub fn apply(&self, offset: u64, records: Vec<MetadataRecord>) {
        let mut image = self.image.write().unwrap_or_else(|e| e.into_inner());
        image.apply(offset, false, &records);
        let update = Arc::new(MetadataUpdate {
            offset,
            is_snapshot: false,
            records,
        });
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.updates.len() == ring.capacity {
            ring.updates.pop_front();
        }
        ring.updates.push_back(update.clone());
        let _ = ring.tx.send(update);
    }

    /// Replaces the image (an installed snapshot) and tells every watcher.
    pub fn install(&self, offset: u64, records: Vec<MetadataRecord>) {
        let mut image = self.image.write().unwrap_or_else(|e| e.into_inner());
        image.apply(offset, true, &records);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.updates.clear();
        let _ = ring.tx.send(Arc::new(MetadataUpdate {
            offset,
            is_snapshot: true,
            records,
        }));
    }

    /// Starts a watcher that has applied everything up to `after` (0: nothing).
    pub fn subscribe(&self, after: u64) -> Subscription {
        let image = self.image();
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let live = ring.tx.subscribe();
        let initial = if after >= image.offset {
            Vec::new()
        } else if ring
            .updates
            .front()
            .is_some_and(|first| first.offset <= after + 1)
        {
            ring.updates
                .iter()
                .filter(|u| u.offset > after)
                .cloned()
                .collect()
        } else {
            vec![Arc::new(MetadataUpdate {
                offset: image.offset,
                is_snapshot: true,
                records: image.to_records(),
            })]
        };
        Subscription { initial, live }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{metadata_record::Record, LogicalClusterRecord};

    fn cluster(id: &str) -> Vec<MetadataRecord> {
        vec![MetadataRecord {
            record: Some(Record::LogicalCluster(LogicalClusterRecord {
                cluster_id: id.into(),
                ..Default::default()
            })),
        }]
    }

    #[test]
    fn deltas_from_the_ring_snapshot_when_too_far_behind() {
        let hub = MetadataHub::new(2, 16);
        for i in 1..=4 {
            hub.apply(i, cluster(&format!("lkc-{i}")));
        }
        let near = hub.subscribe(2);
        let offsets: Vec<u64> = near.initial.iter().map(|u| u.offset).collect();
        assert_eq!(offsets, vec![3, 4]);
        let far = hub.subscribe(1);
        assert_eq!(far.initial.len(), 1);
        assert!(far.initial[0].is_snapshot);
        assert_eq!(far.initial[0].offset, 4);
        assert_eq!(far.initial[0].records.len(), 4);
        assert!(hub.subscribe(4).initial.is_empty());
        let mut live = hub.subscribe(4).live;
        hub.apply(5, cluster("lkc-5"));
        assert_eq!(live.try_recv().unwrap().offset, 5);
    }
}
