//! The cell's quota coordinator (Kora's dynamic quotas): splits each tenant's cell-wide
//! quotas among the active brokers according to where the tenant's traffic is.
//!
//! Every broker reports, with each heartbeat, what every tenant used there over its last
//! period and whether it was throttled ([`TenantUsage`]). For each tenant and quota the
//! coordinator estimates each broker's demand (its use, doubled where the tenant was
//! throttled since it may want more, plus a small floor so new traffic can start anywhere)
//! and divides the limit by max-min fairness: brokers wanting less than an even split get
//! what they want, the rest share what is left evenly, and any slack is spread over all.
//! The shares always add up to the limit, so the tenant never gets more than its quota
//! across the cell, and a broker carrying most of a tenant's traffic gets most of its quota.
//!
//! Soft state only, on the controller leader: a new leader starts from the next reports,
//! and brokers fall back to an even split when they hear nothing (`data-plane/src/quota`).
//! Pure logic; must never depend on the gRPC server or Raft.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::cell::v1::{BrokerState, TenantShare, TenantUsage};

use crate::image::CellImage;

/// Reports older than this are ignored (the broker stopped reporting the tenant).
const REPORT_TTL: Duration = Duration::from_secs(5);
/// How much more than its use a throttled broker is assumed to want.
const THROTTLED_DEMAND: f64 = 2.0;
/// Headroom over its use an unthrottled broker is assumed to want.
const UNTHROTTLED_DEMAND: f64 = 1.25;
/// Part of the limit every active broker is assumed to want, split over the brokers.
const FLOOR_FRACTION: f64 = 0.05;

#[derive(Default)]
pub struct QuotaCoordinator {
    reports: HashMap<(i32, String), (TenantUsage, Instant)>,
}

impl QuotaCoordinator {
    /// Take one broker's report (replacing its previous one for each tenant).
    pub fn record(&mut self, broker: i32, usage: Vec<TenantUsage>, now: Instant) {
        for u in usage {
            self.reports
                .insert((broker, u.cluster_id.clone()), (u, now));
        }
        self.reports
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < REPORT_TTL);
    }

    /// `broker`'s shares of every tenant with a quota; empty when `broker` is not active.
    pub fn shares_for(&self, broker: i32, image: &CellImage, now: Instant) -> Vec<TenantShare> {
        let active: Vec<i32> = image
            .brokers
            .values()
            .filter(|b| b.state == BrokerState::Active as i32)
            .map(|b| b.broker_id)
            .collect();
        if !active.contains(&broker) {
            return Vec::new();
        }
        let mut shares = Vec::new();
        for (cluster_id, cluster) in &image.clusters {
            let Some(limits) = &cluster.limits else {
                continue;
            };
            let limit = [
                limits.ingress_bytes_per_sec as f64,
                limits.egress_bytes_per_sec as f64,
                limits.requests_per_sec as f64,
                f64::from(limits.request_time_percent) / 100.0,
            ];
            if limit.iter().all(|&l| l <= 0.0) {
                continue;
            }
            let mut rates = [0.0; 4];
            for (k, &l) in limit.iter().enumerate() {
                if l <= 0.0 {
                    continue;
                }
                let demands: Vec<(i32, f64)> = active
                    .iter()
                    .map(|&b| (b, self.demand(b, cluster_id, k, l, active.len(), now)))
                    .collect();
                rates[k] = split(l, &demands)
                    .into_iter()
                    .find(|(b, _)| *b == broker)
                    .map_or(0.0, |(_, r)| r);
            }
            shares.push(TenantShare {
                cluster_id: cluster_id.clone(),
                ingress_bytes_per_sec: rates[0],
                egress_bytes_per_sec: rates[1],
                requests_per_sec: rates[2],
                request_time_per_sec: rates[3],
            });
        }
        shares
    }

    /// What `broker` is assumed to want of quota `kind` (0 ingress, 1 egress, 2 requests,
    /// 3 request time).
    fn demand(
        &self,
        broker: i32,
        cluster_id: &str,
        kind: usize,
        limit: f64,
        brokers: usize,
        now: Instant,
    ) -> f64 {
        let floor = limit * FLOOR_FRACTION / brokers as f64;
        let Some((u, at)) = self.reports.get(&(broker, cluster_id.to_string())) else {
            return floor;
        };
        if now.saturating_duration_since(*at) >= REPORT_TTL {
            return floor;
        }
        let (used, throttled) = match kind {
            0 => (u.ingress_bytes_per_sec, u.ingress_throttled),
            1 => (u.egress_bytes_per_sec, u.egress_throttled),
            2 => (u.requests_per_sec, u.requests_throttled),
            _ => (u.request_time_per_sec, u.request_time_throttled),
        };
        let factor = if throttled {
            THROTTLED_DEMAND
        } else {
            UNTHROTTLED_DEMAND
        };
        used.max(0.0) * factor + floor
    }
}

/// Divide `limit` among brokers by max-min fairness on their demands; slack goes evenly to
/// all. The result always sums to `limit` (for a non-empty list).
pub fn split(limit: f64, demands: &[(i32, f64)]) -> Vec<(i32, f64)> {
    if demands.is_empty() {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by(|&a, &b| demands[a].1.total_cmp(&demands[b].1));
    let mut given = vec![0.0; demands.len()];
    let mut left = limit;
    for (i, &idx) in order.iter().enumerate() {
        let even = left / (order.len() - i) as f64;
        let want = demands[idx].1;
        if want <= even {
            given[idx] = want;
            left -= want;
        } else {
            for &rest in &order[i..] {
                given[rest] = even;
            }
            left = 0.0;
            break;
        }
    }
    let slack = left / demands.len() as f64;
    demands
        .iter()
        .zip(given)
        .map(|((b, _), g)| (*b, g + slack))
        .collect()
}

/// KIP-599 partition mutation quotas, per tenant: partitions created (by CreateTopics or
/// CreatePartitions) or deleted (with their topic) draw from a bucket holding the plan's
/// `partition_mutations_per_5min`, refilled evenly over five minutes. As in Kafka, a request
/// is refused only when the bucket is already empty; the one that empties it still passes,
/// which lets any single request through however large.
#[derive(Default)]
pub struct MutationQuotas {
    buckets: HashMap<String, (f64, Instant)>,
}

/// The window a plan's mutation limit is given over.
pub const MUTATION_WINDOW: Duration = Duration::from_secs(300);

impl MutationQuotas {
    /// Charge `partitions` mutations to `cluster` (limit `per_window`, 0 = none), or
    /// `Err(throttle)`: how long until the bucket is no longer empty.
    pub fn admit(
        &mut self,
        cluster: &str,
        per_window: u32,
        partitions: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        if per_window == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_window);
        let rate = capacity / MUTATION_WINDOW.as_secs_f64();
        let (tokens, last) = self
            .buckets
            .entry(cluster.to_string())
            .or_insert((capacity, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(capacity);
        *last = now;
        if *tokens <= 0.0 {
            // Until the bucket holds one mutation again.
            return Err(Duration::from_secs_f64((1.0 - *tokens) / rate));
        }
        *tokens -= partitions as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{BrokerRecord, ClusterLimits, LogicalClusterRecord};

    fn total(s: &[(i32, f64)]) -> f64 {
        s.iter().map(|(_, r)| r).sum()
    }

    #[test]
    fn mutations_pass_until_the_bucket_is_empty_then_wait_for_the_refill() {
        let t0 = Instant::now();
        let mut q = MutationQuotas::default();
        assert!(q.admit("lkc-a", 0, 1_000_000, t0).is_ok(), "no limit");
        // 300 per 5 minutes: 1 a second. 200 then 150 pass (the second empties it).
        assert!(q.admit("lkc-a", 300, 200, t0).is_ok());
        assert!(q.admit("lkc-a", 300, 150, t0).is_ok());
        // 50 in debt: 51 s until one mutation is available.
        let wait = q.admit("lkc-a", 300, 1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(51));
        assert!(q.admit("lkc-b", 300, 1, t0).is_ok(), "per tenant");
        assert!(q
            .admit("lkc-a", 300, 1, t0 + Duration::from_secs(51))
            .is_ok());
    }

    #[test]
    fn split_is_max_min_fair_and_sums_to_the_limit() {
        let s = split(90.0, &[(1, 100.0), (2, 100.0), (3, 100.0)]);
        assert_eq!(s, vec![(1, 30.0), (2, 30.0), (3, 30.0)]);
        let s = split(90.0, &[(1, 10.0), (2, 100.0), (3, 100.0)]);
        assert_eq!(s, vec![(1, 10.0), (2, 40.0), (3, 40.0)]);
        // Everyone satisfied: the slack is spread evenly.
        let s = split(90.0, &[(1, 10.0), (2, 20.0), (3, 30.0)]);
        assert_eq!(s, vec![(1, 20.0), (2, 30.0), (3, 40.0)]);
        for d in [[0.0, 0.0, 0.0], [1e9, 0.0, 5.0], [3.0, 3.0, 1e12]] {
            let demands: Vec<(i32, f64)> =
                d.iter().enumerate().map(|(i, &x)| (i as i32, x)).collect();
            assert!(
                (total(&split(1000.0, &demands)) - 1000.0).abs() < 1e-6,
                "{d:?}"
            );
        }
    }

    fn image(limit: u64) -> CellImage {
        let mut image = CellImage::default();
        for id in 1..=3 {
            image.brokers.insert(
                id,
                BrokerRecord {
                    broker_id: id,
                    state: BrokerState::Active as i32,
                    ..Default::default()
                },
            );
        }
        image.clusters.insert(
            "lkc-a".into(),
            LogicalClusterRecord {
                cluster_id: "lkc-a".into(),
                limits: Some(ClusterLimits {
                    ingress_bytes_per_sec: limit,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        image
    }

    fn usage(ingress: f64, throttled: bool) -> Vec<TenantUsage> {
        vec![TenantUsage {
            cluster_id: "lkc-a".into(),
            ingress_bytes_per_sec: ingress,
            ingress_throttled: throttled,
            ..Default::default()
        }]
    }

    fn ingress_shares(c: &QuotaCoordinator, image: &CellImage, now: Instant) -> Vec<f64> {
        (1..=3)
            .map(|b| c.shares_for(b, image, now)[0].ingress_bytes_per_sec)
            .collect()
    }

    #[test]
    fn unknown_traffic_splits_evenly_and_throttled_brokers_get_the_quota() {
        let image = image(3000);
        let now = Instant::now();
        let mut c = QuotaCoordinator::default();
        let even = ingress_shares(&c, &image, now);
        assert!(even.iter().all(|&s| (s - 1000.0).abs() < 1e-6), "{even:?}");
        // All traffic on broker 1, throttled there: it gets nearly all of the quota.
        c.record(1, usage(1000.0, true), now);
        let s = ingress_shares(&c, &image, now);
        assert!(s[0] > 2000.0 && s[1] < 500.0 && s[2] < 500.0, "{s:?}");
        assert!((s.iter().sum::<f64>() - 3000.0).abs() < 1e-6);
        // Throttled everywhere: even again, summing to the limit.
        for b in 1..=3 {
            c.record(b, usage(1000.0, true), now);
        }
        let s = ingress_shares(&c, &image, now);
        assert!(s.iter().all(|&x| (x - 1000.0).abs() < 1e-6), "{s:?}");
    }

    #[test]
    fn stale_reports_and_inactive_brokers_are_ignored() {
        let mut image = image(3000);
        let t0 = Instant::now();
        let mut c = QuotaCoordinator::default();
        c.record(1, usage(1000.0, true), t0);
        let later = t0 + REPORT_TTL + Duration::from_secs(1);
        let s = ingress_shares(&c, &image, later);
        assert!(s.iter().all(|&x| (x - 1000.0).abs() < 1e-6), "{s:?}");
        image.brokers.get_mut(&3).unwrap().state = BrokerState::Fenced as i32;
        assert!(c.shares_for(3, &image, t0).is_empty());
        let s1 = c.shares_for(1, &image, later)[0].ingress_bytes_per_sec;
        assert!((s1 - 1500.0).abs() < 1e-6, "{s1}");
    }
}
