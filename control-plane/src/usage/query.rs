//! A Metrics API query (`POST /v2/metrics/cloud/query`, Confluent's Metrics API v2 shape):
//! the request, its validation into a [`Plan`] (every bound checked, every message saying
//! what to fix), and the aggregation of per-minute points into the answer's buckets.
//!
//! Points are per minute per (cluster, topic); the store sums them over what is not grouped
//! by, within each minute. A bucket of a counter is the sum of its minutes; a bucket of a
//! gauge is its last minute's value (the latest sample). Buckets are aligned to the Unix
//! epoch in UTC (`ALL`: one bucket per interval, stamped with the interval's start); empty
//! buckets are left out, as Confluent does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::metric::{Kind, Metric};
use super::time::{format_instant, parse_interval};
use crate::error::{Error, Result};

/// The filter field naming a cluster.
pub const CLUSTER_FIELD: &str = "resource.kafka.id";
/// The filter and group-by field naming a topic.
pub const TOPIC_FIELD: &str = "metric.topic";
/// Most clusters one query may name.
pub const MAX_CLUSTERS: usize = 50;
/// Most intervals in one query.
pub const MAX_INTERVALS: usize = 5;
/// Most data points one answer holds.
pub const MAX_POINTS: usize = 10_000;
/// Groups returned when `limit` is not given, and the most it may ask for.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Most nested levels of `filter`.
const MAX_FILTER_DEPTH: usize = 3;
/// Most filters in one compound filter.
const MAX_FILTERS: usize = 64;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// One metric to query.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// A metric name, e.g. `io.confluent.kafka.server/received_bytes`; see
    /// `GET /v2/metrics/cloud/descriptors/metrics`.
    #[schema(
        example = "io.confluent.kafka.server/received_bytes",
        pattern = "^io\\.confluent\\.kafka\\.server/(received_bytes|sent_bytes|retained_bytes|request_count|active_connection_count|partition_count)$"
    )]
    pub metric: String,
    /// `SUM` (the only one; optional).
    #[schema(example = "SUM", pattern = "^SUM$")]
    pub agg: Option<String>,
}

/// A filter: a field compared with `EQ`, or `OR`/`AND` of `filters`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `EQ` (with `field` and `value`), `OR` or `AND` (with `filters`).
    #[schema(example = "EQ", pattern = "^(EQ|OR|AND)$")]
    pub op: String,
    /// `resource.kafka.id` or `metric.topic` (with `EQ`).
    #[schema(
        example = "resource.kafka.id",
        pattern = "^(resource\\.kafka\\.id|metric\\.topic)$"
    )]
    pub field: Option<String>,
    /// The value compared with (with `EQ`).
    #[schema(example = "lkc-abc123", max_length = 255)]
    pub value: Option<String>,
    /// The filters combined (with `OR` or `AND`): `OR` of cluster `EQ`s, or `AND` of
    /// cluster filters and at most one topic `EQ`.
    #[schema(no_recursion)]
    pub filters: Option<Vec<Filter>>,
}

/// The body of `POST /v2/metrics/cloud/query`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Exactly one metric.
    #[schema(min_items = 1, max_items = 1)]
    pub aggregations: Vec<Aggregation>,
    /// Must name the clusters queried with `resource.kafka.id` (`EQ`, or `OR` of `EQ`s,
    /// at most 50); may add `metric.topic` `EQ` with `AND`.
    pub filter: Option<Filter>,
    /// `PT1M`, `PT5M`, `PT15M`, `PT30M`, `PT1H`, `P1D` or `ALL`. The longest interval each
    /// allows: 6 hours (PT1M), 1 day (PT5M), 4 days (PT15M), 7 days (the others).
    #[schema(example = "PT1M", pattern = "^(PT1M|PT5M|PT15M|PT30M|PT1H|P1D|ALL)$")]
    pub granularity: String,
    /// ISO-8601 intervals `start/end`, `start/duration` or `duration/end`, e.g.
    /// `2026-11-22T10:00:00Z/PT1H` (1 to 5).
    #[schema(min_items = 1, max_items = 5, example = json!(["2026-11-22T10:00:00Z/PT1H"]))]
    pub intervals: Vec<String>,
    /// Group by `resource.kafka.id` and/or `metric.topic`; absent: one series.
    #[schema(max_items = 2)]
    pub group_by: Option<Vec<String>>,
    /// Most groups returned (1 to 1000, default 100); only with `group_by`.
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Where the page of groups starts: `meta.pagination.next_page_token` of the previous
    /// answer.
    #[schema(max_length = 20)]
    pub page_token: Option<String>,
}

/// What to read and how to answer: a validated [`QueryRequest`].
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub metric: Metric,
    pub clusters: Vec<String>,
    pub topic: Option<String>,
    /// Bucket width in milliseconds; `None`: `ALL`.
    pub granularity: Option<i64>,
    /// `[start, end)` per interval, in milliseconds.
    pub intervals: Vec<(i64, i64)>,
    pub by_cluster: bool,
    pub by_topic: bool,
    pub limit: usize,
    pub offset: usize,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// The bucket width and the longest interval of a granularity.
fn granularity(g: &str) -> Result<(Option<i64>, i64)> {
    Ok(match g {
        "PT1M" => (Some(MINUTE), 6 * HOUR),
        "PT5M" => (Some(5 * MINUTE), DAY),
        "PT15M" => (Some(15 * MINUTE), 4 * DAY),
        "PT30M" => (Some(30 * MINUTE), 7 * DAY),
        "PT1H" => (Some(HOUR), 7 * DAY),
        "P1D" => (Some(DAY), 7 * DAY),
        "ALL" => (None, 7 * DAY),
        _ => {
            return Err(bad(format!(
                "granularity {g:?} is not supported; use PT1M, PT5M, PT15M, PT30M, PT1H, P1D or ALL"
            )))
        }
    })
}

/// The clusters and topic a filter selects.
#[derive(Default)]
struct Selection {
    clusters: Option<Vec<String>>,
    topic: Option<String>,
}

fn eq_value(f: &Filter) -> Result<&str> {
    if f.filters.is_some() {
        return Err(bad("an EQ filter has `field` and `value`, not `filters`"));
    }
    let v = f
        .value
        .as_deref()
        .ok_or_else(|| bad("an EQ filter needs a `value`"))?;
    if v.is_empty() || v.len() > 255 {
        return Err(bad("a filter's `value` must be 1 to 255 characters"));
    }
    Ok(v)
}

fn children(f: &Filter, depth: usize) -> Result<&[Filter]> {
    if f.field.is_some() || f.value.is_some() {
        return Err(bad(format!(
            "an {} filter has `filters`, not `field` or `value`",
            f.op
        )));
    }
    let fs = f.filters.as_deref().unwrap_or(&[]);
    if fs.is_empty() || fs.len() > MAX_FILTERS {
        return Err(bad(format!(
            "an {} filter needs 1 to {MAX_FILTERS} `filters`",
            f.op
        )));
    }
    if depth >= MAX_FILTER_DEPTH {
        return Err(bad(format!(
            "filters nest at most {MAX_FILTER_DEPTH} levels deep"
        )));
    }
    Ok(fs)
}

/// The clusters of a cluster filter: `EQ resource.kafka.id` or `OR` of such.
fn clusters_of(f: &Filter, depth: usize) -> Result<Vec<String>> {
    match (f.op.as_str(), f.field.as_deref()) {
        ("EQ", Some(CLUSTER_FIELD)) => Ok(vec![eq_value(f)?.to_string()]),
        ("OR", None) => {
            let mut out = Vec::new();
            for c in children(f, depth)? {
                out.extend(clusters_of(c, depth + 1)?);
            }
            Ok(out)
        }
        _ => Err(bad(format!(
            "OR may only combine `{CLUSTER_FIELD}` EQ filters; filter a topic with AND"
        ))),
    }
}

fn select(f: &Filter, depth: usize, sel: &mut Selection) -> Result<()> {
    let add_clusters = |sel: &mut Selection, found: Vec<String>| {
        sel.clusters = Some(match sel.clusters.take() {
            None => found,
            // AND of two cluster filters: their intersection.
            Some(prev) => prev.into_iter().filter(|c| found.contains(c)).collect(),
        });
    };
    match (f.op.as_str(), f.field.as_deref()) {
        ("EQ", Some(TOPIC_FIELD)) => {
            let topic = eq_value(f)?.to_string();
            if sel.topic.as_ref().is_some_and(|t| *t != topic) {
                return Err(bad("at most one `metric.topic` EQ filter"));
            }
            sel.topic = Some(topic);
        }
        ("EQ", Some(CLUSTER_FIELD)) | ("OR", None) => add_clusters(sel, clusters_of(f, depth)?),
        ("AND", None) => {
            for c in children(f, depth)? {
                select(c, depth + 1, sel)?;
            }
        }
        ("EQ", Some(other)) => {
            return Err(bad(format!(
                "cannot filter on {other:?}; use `{CLUSTER_FIELD}` or `{TOPIC_FIELD}`"
            )))
        }
        ("EQ", None) => return Err(bad("an EQ filter needs a `field`")),
        (op, _) => {
            return Err(bad(format!(
                "filter op {op:?} is not supported; use EQ, OR or AND"
            )))
        }
    }
    Ok(())
}

/// Validates `req` (everything but whether the caller may see its clusters).
pub fn plan(req: &QueryRequest, now: i64) -> Result<Plan> {
    let [aggregation] = req.aggregations.as_slice() else {
        return Err(bad("`aggregations` must hold exactly one metric"));
    };
    let metric = Metric::parse(&aggregation.metric).ok_or_else(|| {
        bad(format!(
            "unknown metric {:?}; see GET /v2/metrics/cloud/descriptors/metrics",
            aggregation.metric
        ))
    })?;
    if aggregation.agg.as_deref().is_some_and(|a| a != "SUM") {
        return Err(bad("`agg` must be SUM (or left out)"));
    }
    let filter = req.filter.as_ref().ok_or_else(|| {
        bad(format!(
            "a `filter` naming the clusters is required, e.g. \
             {{\"field\":\"{CLUSTER_FIELD}\",\"op\":\"EQ\",\"value\":\"lkc-...\"}}"
        ))
    })?;
    let mut sel = Selection::default();
    select(filter, 0, &mut sel)?;
    let mut clusters = sel.clusters.ok_or_else(|| {
        bad(format!(
            "the filter must name the clusters with `{CLUSTER_FIELD}`"
        ))
    })?;
    clusters.sort();
    clusters.dedup();
    if clusters.is_empty() {
        return Err(bad(
            "the filter's clusters do not overlap; name at least one",
        ));
    }
    if clusters.len() > MAX_CLUSTERS {
        return Err(bad(format!(
            "at most {MAX_CLUSTERS} clusters per query; split it"
        )));
    }
    if sel.topic.is_some() && !metric.by_topic() {
        return Err(bad(format!(
            "{} has no `{TOPIC_FIELD}`; leave the topic out of the filter",
            metric.name()
        )));
    }
    let (width, longest) = granularity(&req.granularity)?;
    if req.intervals.is_empty() || req.intervals.len() > MAX_INTERVALS {
        return Err(bad(format!("give 1 to {MAX_INTERVALS} `intervals`")));
    }
    let mut intervals = Vec::new();
    for i in &req.intervals {
        let (start, end) = parse_interval(i).ok_or_else(|| {
            bad(format!(
                "interval {i:?} is not ISO-8601; write START/END, START/DURATION or \
                 DURATION/END, e.g. 2026-11-22T10:00:00Z/PT1H"
            ))
        })?;
        if end <= start {
            return Err(bad(format!("interval {i:?} ends before it starts")));
        }
        if end - start > longest {
            return Err(bad(format!(
                "interval {i:?} is longer than granularity {} allows ({} hours); use a \
                 shorter interval or a coarser granularity",
                req.granularity,
                longest / HOUR
            )));
        }
        if start > now + DAY {
            return Err(bad(format!("interval {i:?} starts in the future")));
        }
        intervals.push((start, end));
    }
    let mut by_cluster = false;
    let mut by_topic = false;
    for g in req.group_by.as_deref().unwrap_or(&[]) {
        match g.as_str() {
            CLUSTER_FIELD => by_cluster = true,
            TOPIC_FIELD if metric.by_topic() => by_topic = true,
            TOPIC_FIELD => {
                return Err(bad(format!(
                    "{} cannot be grouped by `{TOPIC_FIELD}` (it is per cluster)",
                    metric.name()
                )))
            }
            other => {
                return Err(bad(format!(
                    "cannot group by {other:?}; use `{CLUSTER_FIELD}` or `{TOPIC_FIELD}`"
                )))
            }
        }
    }
    let limit = match req.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(_) => return Err(bad(format!("`limit` must be 1 to {MAX_LIMIT}"))),
    };
    let offset = match req.page_token.as_deref() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&o| o <= 1_000_000)
            .ok_or_else(|| {
                bad("`page_token` is not one this API gave; take it from meta.pagination.next_page_token")
            })?,
    };
    Ok(Plan {
        metric,
        clusters,
        topic: sel.topic,
        granularity: width,
        intervals,
        by_cluster,
        by_topic,
        limit,
        offset,
    })
}

/// One stored point as read for a query: its group's cluster and topic (empty when not
/// grouped by), its minute, and its value summed over what is not grouped by.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub cluster_id: String,
    pub topic: String,
    pub minute: i64,
    pub value: i64,
}

/// One point of the answer.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct Point {
    /// The bucket's start (RFC 3339, UTC).
    #[schema(example = "2026-11-22T10:00:00Z")]
    pub timestamp: String,
    pub value: f64,
    /// With `group_by` `resource.kafka.id`.
    #[serde(rename = "resource.kafka.id", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// With `group_by` `metric.topic`.
    #[serde(rename = "metric.topic", skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The answer's page: its points, the groups there are, and where the next page starts.
pub struct Answer {
    pub points: Vec<Point>,
    pub total_groups: usize,
    pub next_offset: Option<usize>,
}

/// Buckets `rows` (sorted by minute) of `plan`; [`Error::InvalidArgument`] when the answer
/// would hold more than [`MAX_POINTS`].
pub fn aggregate(plan: &Plan, rows: &[Row]) -> Result<Answer> {
    // group → bucket start → value
    let mut groups: BTreeMap<(String, String), BTreeMap<i64, i64>> = BTreeMap::new();
    for row in rows {
        for &(start, end) in &plan.intervals {
            if row.minute < start || row.minute >= end {
                continue;
            }
            let bucket = match plan.granularity {
                Some(w) => row.minute.div_euclid(w) * w,
                None => start,
            };
            let group = groups
                .entry((row.cluster_id.clone(), row.topic.clone()))
                .or_default();
            let v = group.entry(bucket).or_insert(0);
            match plan.metric.kind() {
                Kind::Counter => *v = v.saturating_add(row.value),
                // Rows come in minute order: the last one is the latest sample.
                Kind::Gauge => *v = row.value,
            }
        }
    }
    let total_groups = groups.len();
    let page: Vec<_> = groups
        .into_iter()
        .skip(plan.offset)
        .take(plan.limit)
        .collect();
    let shown = plan.offset + page.len();
    let count: usize = page.iter().map(|(_, b)| b.len()).sum();
    if count > MAX_POINTS {
        return Err(bad(format!(
            "the answer would hold {count} points, more than {MAX_POINTS}; use a coarser \
             granularity, a shorter interval, a narrower filter or a smaller limit"
        )));
    }
    let mut points = Vec::with_capacity(count);
    for ((cluster, topic), buckets) in page {
        for (bucket, value) in buckets {
            points.push(Point {
                timestamp: format_instant(bucket),
                value: value as f64,
                cluster_id: plan.by_cluster.then(|| cluster.clone()),
                topic: plan.by_topic.then(|| topic.clone()),
            });
        }
    }
    Ok(Answer {
        points,
        total_groups,
        next_offset: (shown < total_groups).then_some(shown),
    })
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
