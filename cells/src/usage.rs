//! The brokers' latest usage counters, kept by the controller leader for the control
//! plane's Metrics API (`GetTenantUsage`).
//!
//! Each broker sends its cumulative counters (since its process started) every few seconds
//! with a heartbeat ([`UsageCounters`]). The table keeps the latest per broker incarnation
//! (broker id, epoch): a report of a newer epoch replaces the old one, a complete report
//! replaces the broker's entries, a partial one (a broker with more topics than fit in one
//! report) is merged. Brokers silent for [`REPORT_TTL`] are dropped. The control plane turns
//! these cumulative values into deltas; this table never adds anything up over time.
//!
//! Soft state only, on the leader, never in Raft: a new leader answers with fewer brokers
//! until their next reports, which the control plane tolerates (it keeps its own baselines).
//! Pure logic; bounded by the brokers' own bounds (entries per report, reports per broker).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use proto::cell::v1::{
    BrokerUsage, GetTenantUsageResponse, TenantCounters, TopicCounters, TopicPartitionCount,
    UsageCounters,
};

use crate::image::CellImage;

/// A broker not heard from for this long is left out (it died or left the cell).
pub const REPORT_TTL: Duration = Duration::from_secs(60);

struct BrokerEntry {
    epoch: i64,
    topics: HashMap<(String, String), TopicCounters>,
    tenants: HashMap<String, TenantCounters>,
    at: Instant,
}

#[derive(Default)]
pub struct UsageTable {
    brokers: BTreeMap<i32, BrokerEntry>,
}

impl UsageTable {
    /// Takes one broker's report.
    pub fn record(&mut self, broker: i32, epoch: i64, counters: UsageCounters, now: Instant) {
        let entry = self.brokers.entry(broker).or_insert_with(|| BrokerEntry {
            epoch,
            topics: HashMap::new(),
            tenants: HashMap::new(),
            at: now,
        });
        if entry.epoch > epoch {
            return; // a late report of an older incarnation
        }
        if entry.epoch != epoch || counters.complete {
            entry.topics.clear();
            entry.tenants.clear();
        }
        entry.epoch = epoch;
        entry.at = now;
        for t in counters.topics {
            entry
                .topics
                .insert((t.cluster_id.clone(), t.topic.clone()), t);
        }
        for t in counters.tenants {
            entry.tenants.insert(t.cluster_id.clone(), t);
        }
        self.brokers
            .retain(|_, e| now.saturating_duration_since(e.at) < REPORT_TTL);
    }

    /// What the control plane asked for: every fresh broker's counters of `clusters`
    /// (all when empty), and the partitions of their topics from `image`.
    pub fn answer(
        &self,
        clusters: &[String],
        image: &CellImage,
        now: Instant,
    ) -> GetTenantUsageResponse {
        let wanted: HashSet<&str> = clusters.iter().map(String::as_str).collect();
        let asked = |id: &str| wanted.is_empty() || wanted.contains(id);
        let brokers = self
            .brokers
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.at) < REPORT_TTL)
            .map(|(&broker_id, e)| BrokerUsage {
                broker_id,
                broker_epoch: e.epoch,
                incarnation_id: image
                    .brokers
                    .get(&broker_id)
                    .filter(|b| b.broker_epoch == e.epoch)
                    .map(|b| b.incarnation_id.clone())
                    .unwrap_or_default(),
                topics: e
                    .topics
                    .values()
                    .filter(|t| asked(&t.cluster_id))
                    .cloned()
                    .collect(),
                tenants: e
                    .tenants
                    .values()
                    .filter(|t| asked(&t.cluster_id))
                    .cloned()
                    .collect(),
            })
            .collect();
        let partitions = image
            .topics
            .values()
            .filter(|t| asked(&t.cluster_id) && image.clusters.contains_key(&t.cluster_id))
            .map(|t| TopicPartitionCount {
                cluster_id: t.cluster_id.clone(),
                topic: t.name.clone(),
                partitions: t.partitions.len() as u32,
            })
            .collect();
        GetTenantUsageResponse {
            brokers,
            partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(cluster: &str, name: &str, received: u64) -> TopicCounters {
        TopicCounters {
            cluster_id: cluster.into(),
            topic: name.into(),
            received_bytes: received,
            ..Default::default()
        }
    }

    fn report(complete: bool, topics: Vec<TopicCounters>) -> UsageCounters {
        UsageCounters {
            complete,
            topics,
            tenants: vec![],
        }
    }

    #[test]
    fn keeps_the_latest_report_per_incarnation() {
        let mut table = UsageTable::default();
        let now = Instant::now();
        let image = CellImage::default();
        table.record(
            1,
            10,
            report(true, vec![topic("a", "x", 5), topic("b", "y", 1)]),
            now,
        );
        // Partial reports merge; complete ones replace.
        table.record(1, 10, report(false, vec![topic("a", "x", 9)]), now);
        let r = table.answer(&["a".into()], &image, now);
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.brokers[0].topics, vec![topic("a", "x", 9)]);
        table.record(1, 10, report(true, vec![topic("a", "z", 1)]), now);
        let r = table.answer(&[], &image, now);
        assert_eq!(r.brokers[0].topics, vec![topic("a", "z", 1)]);
        // A new epoch replaces; an older one's late report is ignored.
        table.record(1, 12, report(false, vec![topic("a", "x", 2)]), now);
        table.record(1, 10, report(true, vec![topic("a", "x", 100)]), now);
        let r = table.answer(&[], &image, now);
        assert_eq!(r.brokers[0].broker_epoch, 12);
        assert_eq!(r.brokers[0].topics, vec![topic("a", "x", 2)]);
        // Silent brokers drop out.
        let later = now + REPORT_TTL;
        assert!(table.answer(&[], &image, later).brokers.is_empty());
    }
}
