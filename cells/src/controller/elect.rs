//! Partition leadership decisions, as pure functions of the image: what changes when
//! brokers leave (fenced, shutting down, draining), which leaderless partitions can be led
//! again, and the preferred-leader election. Each returns the new `PartitionRecord`s with
//! `partition_epoch + 1`, and `leader_epoch + 1` where the leader changed.
//!
//! No I/O, no clock. Must never depend on Raft or the server.

use std::collections::BTreeSet;

use proto::cell::v1::{BrokerState, PartitionRecord};

use crate::image::CellImage;

/// Whether `broker` may lead or join an ISR: registered and ACTIVE.
pub fn is_active(image: &CellImage, broker: i32) -> bool {
    image
        .brokers
        .get(&broker)
        .is_some_and(|b| b.state == BrokerState::Active as i32)
}

/// The first replica (preferred order) that is in `isr`, ACTIVE and not `excluded`.
fn pick_leader(
    image: &CellImage,
    p: &PartitionRecord,
    isr: &[i32],
    excluded: &BTreeSet<i32>,
) -> i32 {
    p.replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && !excluded.contains(r) && is_active(image, *r))
        .unwrap_or(-1)
}

fn changed(p: &PartitionRecord, leader: i32, isr: Vec<i32>) -> Option<PartitionRecord> {
    if leader == p.leader && isr == p.isr {
        return None;
    }
    let mut next = p.clone();
    if leader != p.leader {
        next.leader_epoch += 1;
    }
    next.leader = leader;
    next.isr = isr;
    next.partition_epoch += 1;
    Some(next)
}

/// Brokers in `leaving` stop leading; with `shrink_isr` they also leave every ISR that
/// has other members (fenced or shutting down; a draining broker stays in sync).
pub fn move_away(
    image: &CellImage,
    leaving: &BTreeSet<i32>,
    shrink_isr: bool,
) -> Vec<PartitionRecord> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for p in t.partitions.values() {
            let touches = leaving.contains(&p.leader)
                || (shrink_isr && p.isr.iter().any(|r| leaving.contains(r)));
            if !touches {
                continue;
            }
            let mut isr = p.isr.clone();
            if shrink_isr {
                let kept: Vec<i32> = isr
                    .iter()
                    .copied()
                    .filter(|r| !leaving.contains(r))
                    .collect();
                if !kept.is_empty() {
                    isr = kept;
                }
            }
            let leader = if leaving.contains(&p.leader) || p.leader < 0 {
                pick_leader(image, p, &isr, leaving)
            } else {
                p.leader
            };
            out.extend(changed(p, leader, isr));
        }
    }
    out
}

/// Leaderless partitions whose ISR now has an ACTIVE member get that member as leader.
pub fn elect_leaderless(image: &CellImage) -> Vec<PartitionRecord> {
    let none = BTreeSet::new();
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader < 0)
        .filter_map(|p| changed(p, pick_leader(image, p, &p.isr, &none), p.isr.clone()))
        .collect()
}

/// Leadership back to `replicas[0]` wherever it is ACTIVE, in the ISR and not leading.
pub fn preferred(image: &CellImage) -> Vec<PartitionRecord> {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter_map(|p| {
            let first = *p.replicas.first()?;
            (first != p.leader && p.isr.contains(&first) && is_active(image, first))
                .then(|| changed(p, first, p.isr.clone()))
                .flatten()
        })
        .collect()
}

/// Partitions `broker` leads.
pub fn leads(image: &CellImage, broker: i32) -> usize {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader == broker)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{metadata_record::Record, BrokerRecord, MetadataRecord, TopicRecord};

    fn image(states: &[(i32, BrokerState)], p: PartitionRecord) -> CellImage {
        let mut img = CellImage::default();
        let mut recs: Vec<MetadataRecord> = states
            .iter()
            .map(|(id, s)| MetadataRecord {
                record: Some(Record::Broker(BrokerRecord {
                    broker_id: *id,
                    broker_epoch: 1,
                    state: *s as i32,
                    ..Default::default()
                })),
            })
            .collect();
        recs.push(MetadataRecord {
            record: Some(Record::Topic(TopicRecord {
                cluster_id: "c".into(),
                name: "t".into(),
                topic_id: p.topic_id.clone(),
                configs: Default::default(),
            })),
        });
        recs.push(MetadataRecord {
            record: Some(Record::Partition(p)),
        });
        img.apply(1, false, &recs);
        img
    }

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRecord {
        PartitionRecord {
            topic_id: vec![1; 16],
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 5,
            partition_epoch: 9,
        }
    }

    use BrokerState::{Active, Fenced};

    #[test]
    fn fencing_the_leader_moves_it_and_shrinks_the_isr() {
        let img = image(
            &[(1, Fenced), (2, Active), (3, Active)],
            part(&[1, 2, 3], &[1, 3, 2], 1),
        );
        let out = move_away(&img, &BTreeSet::from([1]), true);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].leader, out[0].isr.clone()), (2, vec![3, 2]));
        assert_eq!((out[0].leader_epoch, out[0].partition_epoch), (6, 10));
    }

    #[test]
    fn last_isr_member_stays_and_the_partition_goes_leaderless_then_comes_back() {
        let img = image(&[(1, Fenced), (2, Active)], part(&[1, 2], &[1], 1));
        let out = move_away(&img, &BTreeSet::from([1]), true);
        assert_eq!((out[0].leader, out[0].isr.clone()), (-1, vec![1]));
        let img2 = image(&[(1, Active), (2, Active)], out[0].clone());
        let back = elect_leaderless(&img2);
        assert_eq!((back[0].leader, back[0].leader_epoch), (1, 7));
    }

    #[test]
    fn preferred_leader_returns() {
        let img = image(&[(1, Active), (2, Active)], part(&[1, 2], &[1, 2], 2));
        assert_eq!(preferred(&img)[0].leader, 1);
        let img = image(&[(1, Fenced), (2, Active)], part(&[1, 2], &[1, 2], 2));
        assert!(preferred(&img).is_empty());
    }
}
