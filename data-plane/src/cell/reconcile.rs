//! Bring the broker in line with a new metadata image: open the replicas assigned to it,
//! switch each to leader or follower by epoch, drop replicas the image no longer gives
//! it, rebuild every tenant's topic view, point the replica fetchers at the leaders, and
//! load or drop the group coordinators of the offsets partitions it leads, and hand every
//! tenant's plan limits to the quotas.
//!
//! Images arrive as committed prefixes of one log, so a replica this process opened and
//! the image no longer names has really been removed (topic deleted or reassigned).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cells::image::CellImage;
use proto::cell::v1::BrokerState;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{fetcher, Cell};
use crate::broker::{Broker, PartitionSlot, Topic};
use crate::namespace::{Namespaces, TenantId};
use crate::partition::Partition;
use crate::quota::TenantLimits;
use crate::replica_set::Transition;
use crate::topic_config;

pub fn apply(
    broker: &Arc<Broker>,
    cell: &Arc<Cell>,
    image: &CellImage,
    shutdown: &CancellationToken,
) {
    let me = broker.config.node_id;
    let mut removed = Vec::new();
    {
        let mut replicas = cell.replicas.write().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashSet::new();
        for (topic, rec) in image.partitions_of(me) {
            let key = (topic.id, rec.partition);
            seen.insert(key);
            let mut log_config =
                topic_config::log_config(&broker.config.log_defaults, &topic.configs);
            // The plan's largest message caps the topic's max.message.bytes.
            let plan_max = image
                .clusters
                .get(&topic.cluster_id)
                .and_then(|c| c.limits.as_ref())
                .map_or(0, |l| l.max_message_bytes);
            if plan_max > 0 {
                log_config.max_message_bytes = log_config.max_message_bytes.min(plan_max.into());
            }
            let p = match replicas.get(&key) {
                Some(p) => {
                    p.update_config(log_config);
                    p.clone()
                }
                None => {
                    let dir = broker.partition_dir(topic.id, rec.partition);
                    match Partition::open_replica(
                        &dir,
                        &topic.name,
                        topic.id,
                        rec.partition,
                        log_config,
                        broker.durable_hw(),
                        me,
                    ) {
                        Ok(p) => {
                            let p = Arc::new(p);
                            replicas.insert(key, p.clone());
                            p
                        }
                        Err(e) => {
                            warn!(topic = %topic.name, partition = rec.partition, error = %e, "could not open replica");
                            continue;
                        }
                    }
                }
            };
            match p.apply_assignment(rec) {
                Ok(Transition::None | Transition::Updated) => {}
                Ok(t) => info!(
                    tenant = %topic.cluster_id,
                    topic = %topic.name,
                    partition = rec.partition,
                    transition = ?t,
                    log_end = p.log_end_offset(),
                    high_watermark = p.high_watermark(),
                    "replica role changed"
                ),
                Err(e) => {
                    warn!(topic = %topic.name, partition = rec.partition, error = %e, "applying assignment failed")
                }
            }
        }
        let gone: Vec<_> = replicas
            .keys()
            .filter(|k| !seen.contains(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(p) = replicas.remove(&key) {
                removed.push(p);
            }
        }
    }
    for p in removed {
        let dir = broker.partition_dir(p.topic_id, p.index);
        info!(topic = %p.topic, partition = p.index, "replica removed; deleting its data");
        if let Err(e) = p.delete_data(&dir) {
            warn!(error = %e, dir = %dir.display(), "could not delete a removed replica's data");
        }
        if let Some(parent) = dir.parent() {
            // Only succeeds once the topic's last partition directory is gone.
            let _ = std::fs::remove_dir(parent);
        }
    }
    broker.replace_topics(tenant_view(cell, image));
    crate::metrics::refresh_partitions(broker);
    fetcher::update(broker, cell, image, shutdown);
    cell.groups.reconcile(broker, cell, image);
    apply_quota_limits(broker, image);
    if cell.caught_up.load(Ordering::Acquire) && !cell.swept.swap(true, Ordering::AcqRel) {
        sweep_leftovers(broker, image);
    }
}

/// Every tenant's plan limits, and the active broker count they are split over by default.
fn apply_quota_limits(broker: &Broker, image: &CellImage) {
    let limits: HashMap<TenantId, TenantLimits> = image
        .clusters
        .iter()
        .map(|(id, c)| {
            let l = c.limits.unwrap_or_default();
            let per_sec = [
                l.ingress_bytes_per_sec as f64,
                l.egress_bytes_per_sec as f64,
                l.requests_per_sec as f64,
                // Percent of a second per second, enforced in seconds.
                f64::from(l.request_time_percent) / 100.0,
            ];
            let limits = TenantLimits {
                per_sec,
                max_connections: l.max_connections,
                connection_attempts_per_sec: l.connection_attempts_per_sec,
                max_request_bytes: l.max_request_bytes,
            };
            (TenantId::from(id.as_str()), limits)
        })
        .collect();
    let active = image
        .brokers
        .values()
        .filter(|b| b.state == BrokerState::Active as i32)
        .count();
    broker.quotas.set_limits(&limits, active);
}

/// Delete replica directories from before a restart that the (caught-up) image no longer
/// assigns here: topics deleted or replicas moved while this broker was down.
fn sweep_leftovers(broker: &Broker, image: &CellImage) {
    let hosted: HashSet<(String, String)> = image
        .partitions_of(broker.config.node_id)
        .map(|(t, p)| (t.id.to_string(), p.partition.to_string()))
        .collect();
    let logs = broker.config.data_dir.join("logs");
    let Ok(topics) = std::fs::read_dir(&logs) else {
        return;
    };
    for topic in topics.flatten() {
        let topic_name = topic.file_name().to_string_lossy().to_string();
        let Ok(parts) = std::fs::read_dir(topic.path()) else {
            continue;
        };
        for part in parts.flatten() {
            let index = part.file_name().to_string_lossy().to_string();
            if !hosted.contains(&(topic_name.clone(), index)) {
                info!(dir = %part.path().display(), "deleting a replica this broker no longer hosts");
                if let Err(e) = std::fs::remove_dir_all(part.path()) {
                    warn!(error = %e, "could not delete a leftover replica");
                }
            }
        }
        let _ = std::fs::remove_dir(topic.path());
    }
}

/// The topics this broker's clients see, per tenant, with every partition's placement
/// and the local replica where there is one. The cell's own topics (the internal
/// cluster) are in no tenant's namespace.
fn tenant_view(cell: &Cell, image: &CellImage) -> Namespaces {
    let mut namespaces = Namespaces::default();
    let mut tenants: HashMap<&str, TenantId> = HashMap::new();
    for t in image.topics.values() {
        if t.cluster_id == super::groups::INTERNAL_CLUSTER {
            continue;
        }
        let partitions = t
            .partitions
            .values()
            .map(|p| PartitionSlot {
                index: p.partition,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                local: cell.replica(t.id, p.partition),
            })
            .collect();
        let topic = Topic {
            name: t.name.clone(),
            id: t.id,
            configs: t.configs.clone(),
            partitions,
        };
        let tenant = tenants
            .entry(t.cluster_id.as_str())
            .or_insert_with(|| TenantId::from(t.cluster_id.as_str()));
        namespaces.insert(tenant, Arc::new(topic));
    }
    namespaces
}
