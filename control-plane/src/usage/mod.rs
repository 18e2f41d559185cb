//! The Metrics API's data: the usage collector and the query rules.
//!
//! ```text
//!  brokers ──heartbeat (every 5 s, cumulative)──▶ controller leader (latest per broker, memory)
//!                                                      │ GetTenantUsage (+ partition counts)
//!  collector (every `interval`) ◀──────────────────────┘
//!    deltas per broker incarnation (restarts) ─▶ usage_points (one row per minute, cluster,
//!    metric, topic; pruned after `retention`) ◀── POST /v2/metrics/cloud/query
//! ```
//!
//! - [`metric`]: the six metrics, counters or gauges, per topic or per cluster.
//! - [`deltas`]: cumulative counters to deltas with restart handling (pure).
//! - [`query`]: request validation and bucket aggregation (pure).
//! - [`time`]: ISO-8601 instants, durations and intervals (pure).
//! - here: [`UsageConfig`] and [`run`], the collector task, started beside the reconciler
//!   with the same [`AppState`] and stopped by the same token. One collector per database is
//!   assumed, as for the reconciler (two would add every delta twice).

pub mod deltas;
pub mod metric;
pub mod query;
pub mod time;

use std::collections::BTreeMap;
use std::time::Duration;

use proto::cell::v1::{GetTenantUsageRequest, GetTenantUsageResponse};
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::store::UsagePoint;
use crate::util::now_millis;
use deltas::{Baselines, Series};
use metric::Metric;

/// Settings of the usage collector.
#[derive(Clone, Copy, Debug)]
pub struct UsageConfig {
    /// How often every cell is asked for its usage (`--usage-collect-interval-secs`).
    pub interval: Duration,
    /// How long per-minute points are kept.
    pub retention: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            interval: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Most bytes of one `GetTenantUsage` answer (every broker's counters of every tenant of a
/// cell; about 100 bytes per broker and topic).
const MAX_ANSWER_BYTES: usize = 64 << 20;
/// How often old points are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Collects every configured cell's usage every [`UsageConfig::interval`] until `shutdown`.
/// A cell that does not answer is skipped for that pass (its counters stay cumulative, so
/// the next pass catches up on them).
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let config = state.config.usage;
    let mut tick = tokio::time::interval(config.interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut baselines = Baselines::default();
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        baselines.begin_pass();
        let now = now_millis();
        let minute = now - now.rem_euclid(60_000);
        for cell in state.provisioner.cells.ids() {
            let Some(client) = state.provisioner.cells.get(cell) else {
                continue;
            };
            let answer = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = client.call("GetTenantUsage", |c| async move {
                    c.max_decoding_message_size(MAX_ANSWER_BYTES)
                        .get_tenant_usage(GetTenantUsageRequest { cluster_ids: vec![] })
                        .await
                }) => a,
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(%cell, error = %e, "usage collection failed; retrying next pass");
                    continue;
                }
            };
            let (counters, gauges) = points(cell, &answer, &mut baselines);
            baselines.seen_cell(cell);
            if let Err(e) = state.store.write_usage(minute, &counters, &gauges).await {
                tracing::warn!(%cell, error = %e, "could not store usage points");
            }
        }
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            let before = now - config.retention.as_millis() as i64;
            match state.store.prune_usage(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(points = n, "pruned old usage points"),
                Err(e) => tracing::warn!(error = %e, "could not prune usage points"),
            }
        }
    }
}

/// One cell's answer as points: counter deltas since the previous pass (summed over the
/// brokers) and gauge samples (summed over the brokers; partition counts from the image).
pub fn points(
    cell: &str,
    answer: &GetTenantUsageResponse,
    baselines: &mut Baselines,
) -> (Vec<UsagePoint>, Vec<UsagePoint>) {
    let mut counters: BTreeMap<Series, u64> = BTreeMap::new();
    let mut gauges: BTreeMap<Series, u64> = BTreeMap::new();
    let series = |cluster: &str, topic: &str, metric| Series {
        cluster_id: cluster.to_string(),
        topic: topic.to_string(),
        metric,
    };
    for b in &answer.brokers {
        for t in &b.topics {
            *gauges
                .entry(series(&t.cluster_id, &t.topic, Metric::RetainedBytes))
                .or_default() += t.retained_bytes;
        }
        for t in &b.tenants {
            *gauges
                .entry(series(&t.cluster_id, "", Metric::ActiveConnectionCount))
                .or_default() += t.active_connections;
        }
        if b.incarnation_id.is_empty() {
            // The image no longer has this registration: which process counted is unknown,
            // so these counters are left for the broker's next report.
            continue;
        }
        let cumulative = b
            .topics
            .iter()
            .flat_map(|t| {
                [
                    (
                        series(&t.cluster_id, &t.topic, Metric::ReceivedBytes),
                        t.received_bytes,
                    ),
                    (
                        series(&t.cluster_id, &t.topic, Metric::SentBytes),
                        t.sent_bytes,
                    ),
                ]
            })
            .chain(b.tenants.iter().map(|t| {
                (
                    series(&t.cluster_id, "", Metric::RequestCount),
                    t.request_count,
                )
            }));
        for (s, delta) in baselines.deltas(cell, b.broker_id, &b.incarnation_id, cumulative) {
            *counters.entry(s).or_default() += delta;
        }
    }
    for p in &answer.partitions {
        gauges.insert(
            series(&p.cluster_id, &p.topic, Metric::PartitionCount),
            u64::from(p.partitions),
        );
    }
    let out = |m: BTreeMap<Series, u64>| {
        m.into_iter()
            .map(|(s, v)| UsagePoint {
                cluster_id: s.cluster_id,
                metric: s.metric.key(),
                topic: s.topic,
                value: i64::try_from(v).unwrap_or(i64::MAX),
            })
            .collect::<Vec<_>>()
    };
    (out(counters), out(gauges))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::{BrokerUsage, TenantCounters, TopicCounters, TopicPartitionCount};

    fn broker(id: i32, received: u64, retained: u64, conns: u64) -> BrokerUsage {
        BrokerUsage {
            broker_id: id,
            broker_epoch: 5,
            incarnation_id: format!("inc-{id}"),
            topics: vec![TopicCounters {
                cluster_id: "lkc-a".into(),
                topic: "orders".into(),
                received_bytes: received,
                sent_bytes: 0,
                retained_bytes: retained,
            }],
            tenants: vec![TenantCounters {
                cluster_id: "lkc-a".into(),
                request_count: 3,
                active_connections: conns,
            }],
        }
    }

    fn value(points: &[UsagePoint], metric: Metric) -> Option<i64> {
        points
            .iter()
            .find(|p| p.metric == metric.key())
            .map(|p| p.value)
    }

    #[test]
    fn sums_brokers_and_counts_deltas() {
        let mut b = Baselines::default();
        let answer = |r1, r2| GetTenantUsageResponse {
            brokers: vec![broker(1, r1, 100, 1), broker(2, r2, 50, 2)],
            partitions: vec![TopicPartitionCount {
                cluster_id: "lkc-a".into(),
                topic: "orders".into(),
                partitions: 6,
            }],
        };
        b.begin_pass();
        let (c, g) = points("cell-1", &answer(10, 20), &mut b);
        assert!(c.is_empty(), "the first answer is a baseline: {c:?}");
        assert_eq!(value(&g, Metric::RetainedBytes), Some(150));
        assert_eq!(value(&g, Metric::ActiveConnectionCount), Some(3));
        assert_eq!(value(&g, Metric::PartitionCount), Some(6));
        b.seen_cell("cell-1");
        b.begin_pass();
        let (c, _) = points("cell-1", &answer(15, 40), &mut b);
        assert_eq!(value(&c, Metric::ReceivedBytes), Some(25));
        assert_eq!(value(&c, Metric::RequestCount), None, "unchanged");
    }
}
