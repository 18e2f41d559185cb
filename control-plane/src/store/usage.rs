//! Per-minute usage points of the Metrics API (`usage_points`, migration 0006): written by
//! the usage collector, read by queries, pruned by age.
//!
//! Every statement is portable (`INSERT ... ON CONFLICT ... DO UPDATE`, `CAST(SUM(...) AS
//! BIGINT)` so PostgreSQL's NUMERIC sum decodes as BIGINT through `sqlx::Any`). A pass's
//! writes are one transaction: a pass counts fully or not at all.

use super::Store;
use crate::error::{Error, Result};
use crate::usage::query::{Plan, Row};
use sqlx::Row as _;

/// One point the collector writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsagePoint {
    pub cluster_id: String,
    /// `Metric::key()`.
    pub metric: &'static str,
    /// Empty for per-cluster metrics.
    pub topic: String,
    pub value: i64,
}

/// Most rows one query reads before it is refused as too large.
pub const MAX_QUERY_ROWS: i64 = 200_000;

impl Store {
    /// Adds `counters` to, and sets `gauges` as, the points of `minute`, in one transaction.
    pub async fn write_usage(
        &self,
        minute: i64,
        counters: &[UsagePoint],
        gauges: &[UsagePoint],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let upsert = |set: &str| {
            format!(
                "INSERT INTO usage_points (cluster_id, metric, minute, topic, value) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cluster_id, metric, minute, topic) \
                 DO UPDATE SET value = {set}"
            )
        };
        let add = upsert("usage_points.value + excluded.value");
        let set = upsert("excluded.value");
        for (sql, points) in [(&add, counters), (&set, gauges)] {
            for p in points {
                sqlx::query(sql)
                    .bind(&p.cluster_id)
                    .bind(p.metric)
                    .bind(minute)
                    .bind(&p.topic)
                    .bind(p.value)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the points older than `before` (Unix milliseconds); returns how many.
    pub async fn prune_usage(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM usage_points WHERE minute < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The points `plan` reads, summed within each minute over what it does not group by,
    /// in minute order. Refused past [`MAX_QUERY_ROWS`].
    pub async fn read_usage(&self, plan: &Plan) -> Result<Vec<Row>> {
        let start = plan.intervals.iter().map(|i| i.0).min().unwrap_or(0);
        let end = plan.intervals.iter().map(|i| i.1).max().unwrap_or(0);
        let cluster = if plan.by_cluster { "cluster_id" } else { "''" };
        let topic = if plan.by_topic { "topic" } else { "''" };
        let mut group = vec!["minute"];
        if plan.by_cluster {
            group.push("cluster_id");
        }
        if plan.by_topic {
            group.push("topic");
        }
        let mut n = 3;
        let clusters: Vec<String> = plan
            .clusters
            .iter()
            .map(|_| {
                n += 1;
                format!("${n}")
            })
            .collect();
        let mut sql = format!(
            "SELECT {cluster} AS cluster_id, {topic} AS topic, minute, \
             CAST(SUM(value) AS BIGINT) AS value FROM usage_points \
             WHERE metric = $1 AND minute >= $2 AND minute < $3 AND cluster_id IN ({})",
            clusters.join(", ")
        );
        if plan.topic.is_some() {
            n += 1;
            sql.push_str(&format!(" AND topic = ${n}"));
        }
        n += 1;
        sql.push_str(&format!(
            " GROUP BY {} ORDER BY minute LIMIT ${n}",
            group.join(", ")
        ));
        let mut q = sqlx::query(&sql)
            .bind(plan.metric.key())
            .bind(start)
            .bind(end);
        for c in &plan.clusters {
            q = q.bind(c);
        }
        if let Some(t) = &plan.topic {
            q = q.bind(t);
        }
        let rows = q.bind(MAX_QUERY_ROWS + 1).fetch_all(&self.pool).await?;
        if rows.len() as i64 > MAX_QUERY_ROWS {
            return Err(Error::InvalidArgument(format!(
                "the query reads more than {MAX_QUERY_ROWS} points; use a shorter interval \
                 or a narrower filter"
            )));
        }
        rows.iter()
            .map(|r| {
                Ok(Row {
                    cluster_id: r.try_get("cluster_id")?,
                    topic: r.try_get("topic")?,
                    minute: r.try_get("minute")?,
                    value: r.try_get("value")?,
                })
            })
            .collect()
    }
}
