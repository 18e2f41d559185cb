//! Replica placement for new partitions: each partition's replicas spread across zones
//! first, then brokers; each tenant's leaders and replicas spread evenly over brokers
//! (counting what the tenant already has), ties broken by the cell-wide replica count and
//! then the broker id. Only ACTIVE brokers take new replicas (DRAINING ones are not ACTIVE).
//!
//! Pure. Must never depend on Raft or the server.

use std::collections::HashMap;

use proto::cell::v1::BrokerState;

use crate::image::CellImage;

#[derive(Default, Clone, Copy)]
struct Counts {
    tenant_leaders: u32,
    tenant_replicas: u32,
    cell_replicas: u32,
}

/// Places `count` partitions of `replication_factor` replicas for tenant `cluster_id`.
/// `None` when fewer than `replication_factor` brokers are eligible.
pub fn place(
    image: &CellImage,
    cluster_id: &str,
    count: usize,
    replication_factor: usize,
) -> Option<Vec<Vec<i32>>> {
    let eligible: Vec<(i32, String)> = image
        .brokers
        .values()
        .filter(|b| b.state == BrokerState::Active as i32)
        .map(|b| (b.broker_id, b.zone.clone()))
        .collect();
    if replication_factor == 0 || eligible.len() < replication_factor {
        return None;
    }
    let mut counts: HashMap<i32, Counts> = eligible
        .iter()
        .map(|(b, _)| (*b, Counts::default()))
        .collect();
    for t in image.topics.values() {
        for p in t.partitions.values() {
            for r in &p.replicas {
                if let Some(c) = counts.get_mut(r) {
                    c.cell_replicas += 1;
                    if t.cluster_id == cluster_id {
                        c.tenant_replicas += 1;
                        if *r == p.leader || (p.leader < 0 && p.replicas.first() == Some(r)) {
                            c.tenant_leaders += 1;
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut chosen: Vec<i32> = Vec::with_capacity(replication_factor);
        let mut zones_used: HashMap<&str, u32> = HashMap::new();
        for slot in 0..replication_factor {
            let (id, zone) = eligible
                .iter()
                .filter(|(b, _)| !chosen.contains(b))
                .min_by_key(|(b, z)| {
                    let c = counts[b];
                    let zone_load = zones_used.get(z.as_str()).copied().unwrap_or(0);
                    let lead = if slot == 0 { c.tenant_leaders } else { 0 };
                    (zone_load, lead, c.tenant_replicas, c.cell_replicas, *b)
                })
                .expect("enough eligible brokers");
            let c = counts.get_mut(id).expect("counted");
            c.tenant_replicas += 1;
            c.cell_replicas += 1;
            if slot == 0 {
                c.tenant_leaders += 1;
            }
            *zones_used.entry(zone.as_str()).or_default() += 1;
            chosen.push(*id);
        }
        out.push(chosen);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{metadata_record::Record, BrokerRecord, MetadataRecord};

    fn cell(brokers: &[(i32, &str)]) -> CellImage {
        let mut img = CellImage::default();
        let recs: Vec<MetadataRecord> = brokers
            .iter()
            .map(|(id, z)| MetadataRecord {
                record: Some(Record::Broker(BrokerRecord {
                    broker_id: *id,
                    broker_epoch: 1,
                    zone: z.to_string(),
                    state: BrokerState::Active as i32,
                    ..Default::default()
                })),
            })
            .collect();
        img.apply(1, false, &recs);
        img
    }

    #[test]
    fn replicas_span_zones_and_leaders_rotate() {
        let img = cell(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        let parts = place(&img, "lkc", 6, 3).unwrap();
        for p in &parts {
            let zones: std::collections::BTreeSet<&str> =
                p.iter().map(|b| img.brokers[b].zone.as_str()).collect();
            assert_eq!(zones.len(), 3, "{p:?}");
        }
        let leaders: std::collections::BTreeSet<i32> = parts.iter().map(|p| p[0]).collect();
        assert_eq!(leaders.len(), 6, "every broker leads one: {parts:?}");
    }

    #[test]
    fn too_few_brokers() {
        assert!(place(&cell(&[(1, "a")]), "lkc", 1, 3).is_none());
    }
}
