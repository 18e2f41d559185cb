//! Replicated group coordination in a cell, as Kafka does it with `__consumer_offsets`.
//!
//! - The cell has one internal offsets topic, [`OFFSETS_TOPIC`] in the logical cluster
//!   [`INTERNAL_CLUSTER`] (no tenant's topic view includes it). The first broker that needs
//!   it creates it through the controller ([`ensure_offsets_topic`]): `offsets_partitions`
//!   partitions, replication factor min(3, active brokers), `min.insync.replicas` 2 at
//!   RF 3. A concurrent creator's TOPIC_ALREADY_EXISTS is success.
//! - Group `g` of tenant `t` lives in partition `fnv1a(t + "/" + g) % N`
//!   ([`partition_for`]); its coordinator is that partition's leader.
//! - [`CellGroups::reconcile`] follows leadership: for every offsets partition this broker
//!   leads it loads a [`GroupCoordinator`] over a [`PartitionGroupStore`] (requests answer
//!   COORDINATOR_LOAD_IN_PROGRESS meanwhile); when it stops leading one (or the epoch
//!   changes) it drops and shuts down that coordinator, so its groups answer
//!   NOT_COORDINATOR here and clients find the new leader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cells::image::CellImage;
use kafka_protocol::ResponseError as E;
use proto::cell::v1::{
    BrokerState, CreatableTopic, CreateLogicalClusterRequest, CreateTopicsRequest,
};
use tracing::{info, warn};
use uuid::Uuid;

use super::group_store::PartitionGroupStore;
use super::Cell;
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::group::GroupCoordinator;
use crate::partition::Partition;

/// The logical cluster of the cell's own topics. Tenants' topic views are filtered by
/// their own cluster id, so this one is never listed, fetched or produced by clients.
pub const INTERNAL_CLUSTER: &str = "__cell";
/// The organization the internal cluster is registered under.
const INTERNAL_ORG: &str = "__tributary";
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Pause between attempts to load a coordinator (the high watermark may lag at first).
const LOAD_RETRY: Duration = Duration::from_millis(500);

/// The offsets partition of group `group` of tenant `tenant` among `partitions`.
pub fn partition_for(tenant: &str, group: &str, partitions: usize) -> i32 {
    let hash = tenant
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(group.bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
    (hash % partitions.max(1) as u64) as i32
}

/// A coordinator of one offsets partition this broker leads.
enum Slot {
    Loading {
        topic_id: Uuid,
        epoch: i32,
    },
    Ready {
        topic_id: Uuid,
        epoch: i32,
        coordinator: Arc<GroupCoordinator>,
    },
}

impl Slot {
    fn is(&self, id: Uuid, at: i32) -> bool {
        match self {
            Slot::Loading { topic_id, epoch }
            | Slot::Ready {
                topic_id, epoch, ..
            } => *topic_id == id && *epoch == at,
        }
    }
}

/// The group coordinators of this broker, one per offsets partition it leads.
#[derive(Default)]
pub struct CellGroups {
    slots: Mutex<HashMap<i32, Slot>>,
    /// An offsets-topic creation is under way (one at a time per broker).
    creating: AtomicBool,
}

impl CellGroups {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loaded coordinator of `group`, or why not: COORDINATOR_NOT_AVAILABLE (no offsets
    /// topic yet), COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR (another broker leads it).
    pub fn coordinator(
        &self,
        image: &CellImage,
        tenant: &str,
        group: &str,
    ) -> std::result::Result<Arc<GroupCoordinator>, E> {
        let topic = image
            .topic(INTERNAL_CLUSTER, OFFSETS_TOPIC)
            .ok_or(E::CoordinatorNotAvailable)?;
        let index = partition_for(tenant, group, topic.partitions.len());
        match self.lock().get(&index) {
            Some(Slot::Ready { coordinator, .. }) => Ok(coordinator.clone()),
            Some(Slot::Loading { .. }) => Err(E::CoordinatorLoadInProgress),
            None => Err(E::NotCoordinator),
        }
    }

    /// Every loaded coordinator here (ListGroups).
    pub fn loaded(&self) -> Vec<Arc<GroupCoordinator>> {
        self.lock()
            .values()
            .filter_map(|s| match s {
                Slot::Ready { coordinator, .. } => Some(coordinator.clone()),
                Slot::Loading { .. } => None,
            })
            .collect()
    }

    /// Follow the leadership of the offsets partitions after `image` was applied.
    pub fn reconcile(&self, broker: &Arc<Broker>, cell: &Arc<Cell>, image: &CellImage) {
        let mut leading: HashMap<i32, (Uuid, i32, Arc<Partition>)> = HashMap::new();
        if let Some(t) = image.topic(INTERNAL_CLUSTER, OFFSETS_TOPIC) {
            for index in t.partitions.keys() {
                if let Some(p) = cell.replica(t.id, *index).filter(|p| p.is_leader()) {
                    leading.insert(*index, (t.id, p.leader_epoch(), p));
                }
            }
        }
        let mut stopped = Vec::new();
        let mut slots = self.lock();
        slots.retain(|index, slot| {
            let keep = leading
                .get(index)
                .is_some_and(|(id, epoch, _)| slot.is(*id, *epoch));
            if !keep {
                info!(
                    partition = *index,
                    "no longer coordinating this offsets partition"
                );
                if let Slot::Ready { coordinator, .. } = slot {
                    stopped.push(coordinator.clone());
                }
            }
            keep
        });
        for (index, (topic_id, epoch, partition)) in leading {
            if slots.contains_key(&index) {
                continue;
            }
            info!(
                partition = index,
                epoch, "loading the groups of an offsets partition"
            );
            slots.insert(index, Slot::Loading { topic_id, epoch });
            tokio::spawn(load(
                broker.clone(),
                cell.clone(),
                index,
                topic_id,
                epoch,
                partition,
            ));
        }
        drop(slots);
        for c in stopped {
            tokio::spawn(async move { c.shutdown().await });
        }
    }
}

/// Load the coordinator of offsets partition `index` led at `epoch`, retrying while that
/// leadership lasts; install it unless the slot moved on meanwhile.
async fn load(
    broker: Arc<Broker>,
    cell: Arc<Cell>,
    index: i32,
    topic_id: Uuid,
    epoch: i32,
    partition: Arc<Partition>,
) {
    let wanted = |cell: &Cell| {
        cell.groups
            .lock()
            .get(&index)
            .is_some_and(|s| matches!(s, Slot::Loading { .. }) && s.is(topic_id, epoch))
    };
    while wanted(&cell) {
        let flusher = broker.durable_hw().then(|| broker.flusher.clone());
        let store = PartitionGroupStore::new(
            partition.clone(),
            epoch,
            flusher,
            broker.data_changed.clone(),
        );
        let opened = GroupCoordinator::open_with_store(
            Arc::new(store),
            broker.group_config(),
            broker.topic_view(),
        )
        .await;
        match opened {
            Ok(coordinator) => {
                let installed = {
                    let mut slots = cell.groups.lock();
                    match slots.get_mut(&index) {
                        Some(slot @ Slot::Loading { .. }) if slot.is(topic_id, epoch) => {
                            *slot = Slot::Ready {
                                topic_id,
                                epoch,
                                coordinator: coordinator.clone(),
                            };
                            true
                        }
                        _ => false,
                    }
                };
                if installed {
                    info!(
                        partition = index,
                        epoch, "offsets partition loaded; coordinating its groups"
                    );
                } else {
                    coordinator.shutdown().await;
                }
                return;
            }
            Err(e) => {
                warn!(partition = index, epoch, error = %e, "loading an offsets partition failed; retrying");
                tokio::time::sleep(LOAD_RETRY).await;
            }
        }
    }
}

/// Where clients should go for `group` of `tenant`: the leader of its offsets partition,
/// as (id, host, port). Starts creating the offsets topic when it does not exist yet.
pub fn locate(
    cell: &Arc<Cell>,
    tenant: &str,
    group: &str,
    listener: crate::connection::Listener,
) -> std::result::Result<(i32, String, u16), E> {
    let image = cell.image();
    let Some(topic) = image.topic(INTERNAL_CLUSTER, OFFSETS_TOPIC) else {
        if !cell.groups.creating.swap(true, Ordering::AcqRel) {
            let cell = cell.clone();
            tokio::spawn(async move {
                if let Err(e) = ensure_offsets_topic(&cell).await {
                    warn!(error = %e, "creating the offsets topic failed; the next FindCoordinator retries");
                }
                cell.groups.creating.store(false, Ordering::Release);
            });
        }
        return Err(E::CoordinatorNotAvailable);
    };
    let index = partition_for(tenant, group, topic.partitions.len());
    let leader = topic
        .partitions
        .get(&index)
        .map(|p| p.leader)
        .ok_or(E::CoordinatorNotAvailable)?;
    cell.live_brokers(listener)
        .into_iter()
        .find(|(id, _, _)| *id == leader)
        .ok_or(E::CoordinatorNotAvailable)
}

/// Create the internal cluster and the offsets topic (tolerating a concurrent creator) and
/// wait until the topic is applied here.
pub async fn ensure_offsets_topic(cell: &Cell) -> Result<()> {
    let r = cell
        .controller
        .create_logical_cluster(CreateLogicalClusterRequest {
            cluster_id: INTERNAL_CLUSTER.to_string(),
            organization_id: INTERNAL_ORG.to_string(),
            limits: None,
        })
        .await
        .map_err(|e| super::unavailable("CreateLogicalCluster", e))?;
    if r.error_code != 0 {
        return Err(Error::Controller {
            code: r.error_code as i16,
            message: r.error_message,
        });
    }
    cell.wait_applied(r.offset).await?;
    let image = cell.image();
    let active = image
        .brokers
        .values()
        .filter(|b| b.state == BrokerState::Active as i32)
        .count();
    let rf = active.clamp(1, 3) as i32;
    let mut configs = HashMap::new();
    if rf == 3 {
        configs.insert("min.insync.replicas".to_string(), "2".to_string());
    }
    let req = CreateTopicsRequest {
        cluster_id: INTERNAL_CLUSTER.to_string(),
        topics: vec![CreatableTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: cell.config.offsets_partitions,
            replication_factor: rf,
            configs,
        }],
        validate_only: false,
    };
    let resp = cell
        .controller
        .create_topics(req)
        .await
        .map_err(|e| super::unavailable("CreateTopics", e))?;
    let t = resp
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| Error::ControllerUnavailable("empty CreateTopics answer".into()))?;
    match t.error_code {
        0 => {
            info!(
                partitions = t.num_partitions,
                replication_factor = rf,
                "created the offsets topic"
            );
            cell.wait_applied(t.offset).await
        }
        cells::error::codes::TOPIC_ALREADY_EXISTS => Ok(()),
        code => Err(Error::Controller {
            code: code as i16,
            message: t.error_message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::partition_for;

    #[test]
    fn groups_spread_and_tenants_are_part_of_the_key() {
        let mut hit = [0usize; 12];
        for g in 0..1200 {
            hit[partition_for("t", &format!("group-{g}"), 12) as usize] += 1;
        }
        assert!(hit.iter().all(|n| *n > 50), "uneven spread: {hit:?}");
        let differ = (0..100)
            .filter(|g| {
                let g = format!("g{g}");
                partition_for("a", &g, 12) != partition_for("b", &g, 12)
            })
            .count();
        assert!(
            differ > 50,
            "the tenant must change the partition: {differ}"
        );
        // Stable: the same on every broker and across restarts.
        assert_eq!(partition_for("t", "g", 12), partition_for("t", "g", 12));
    }
}
