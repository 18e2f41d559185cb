//! The Metrics API in Confluent's Metrics API v2 shape: `POST /v2/metrics/cloud/query`
//! and `GET /v2/metrics/cloud/descriptors/metrics`, with a bearer token or a Cloud API key.
//! The rules are in [`crate::service::metrics`] and [`crate::usage::query`]; the data comes
//! from the usage collector ([`crate::usage`]).

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::service;
use crate::usage::metric::{Kind, Metric};
use crate::usage::query::{Point, QueryRequest};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Pagination of a Metrics API answer.
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    /// Most groups in this page.
    page_size: usize,
    /// Groups there are over all pages.
    total_size: usize,
    /// Send as `page_token` for the next page of groups; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MetricsMeta {
    pagination: Pagination,
}

/// The answer of `POST /v2/metrics/cloud/query`.
#[derive(Serialize, ToSchema)]
pub struct QueryResponse {
    /// One point per group and bucket that has data, by group, then time.
    data: Vec<Point>,
    meta: MetricsMeta,
}

/// A label of a metric.
#[derive(Serialize, ToSchema)]
pub struct LabelDescriptor {
    #[schema(example = "topic")]
    key: &'static str,
    description: &'static str,
}

/// A metric this API serves.
#[derive(Serialize, ToSchema)]
pub struct MetricDescriptor {
    #[schema(example = "io.confluent.kafka.server/received_bytes")]
    name: String,
    description: &'static str,
    /// `COUNTER_INT64` (a delta per bucket) or `GAUGE_INT64` (the bucket's last sample).
    #[serde(rename = "type")]
    #[schema(example = "COUNTER_INT64")]
    kind: &'static str,
    /// `By` (bytes) or `1` (a count).
    #[schema(example = "By")]
    unit: &'static str,
    #[schema(example = "GENERAL_AVAILABILITY")]
    lifecycle_stage: &'static str,
    labels: Vec<LabelDescriptor>,
    /// The resource every metric is of: `kafka` (filter with `resource.kafka.id`).
    resources: Vec<&'static str>,
}

/// The answer of `GET /v2/metrics/cloud/descriptors/metrics`.
#[derive(Serialize, ToSchema)]
pub struct MetricDescriptorList {
    data: Vec<MetricDescriptor>,
    meta: MetricsMeta,
}

/// `POST /v2/metrics/cloud/query`: one metric of the caller's clusters over time.
#[utoipa::path(
    post,
    path = "/v2/metrics/cloud/query",
    operation_id = "queryCloudMetrics",
    tag = "metrics",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The metric's points, per group and bucket", body = QueryResponse),
        (status = 400, description = "An unknown metric, a bad filter, interval or granularity, or too many points; the detail says what to fix", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "A cluster of the filter is not one of the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn query(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Json<QueryResponse>> {
    let limit = req
        .limit
        .unwrap_or(crate::usage::query::DEFAULT_LIMIT as i64);
    let answer = service::metrics::query(&state, &caller, &req).await?;
    Ok(Json(QueryResponse {
        data: answer.points,
        meta: MetricsMeta {
            pagination: Pagination {
                page_size: limit as usize,
                total_size: answer.total_groups,
                next_page_token: answer.next_offset.map(|o| o.to_string()),
            },
        },
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DescriptorParams {
    /// Metrics per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i64>,
    /// Where the page starts: `meta.pagination.next_page_token` of the previous page.
    #[param(pattern = "^[0-9]{1,3}$")]
    page_token: Option<String>,
    /// `kafka` (the only resource type; optional).
    #[param(pattern = "^kafka$")]
    resource_type: Option<String>,
}

/// `GET /v2/metrics/cloud/descriptors/metrics`: the metrics this API serves.
#[utoipa::path(
    get,
    path = "/v2/metrics/cloud/descriptors/metrics",
    operation_id = "listCloudMetricDescriptors",
    tag = "metrics",
    params(DescriptorParams),
    responses(
        (status = 200, description = "The metrics POST /v2/metrics/cloud/query serves", body = MetricDescriptorList),
        (status = 400, description = "A bad page_size, page_token or resource_type", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn descriptors(
    Caller(_caller): Caller,
    ApiQuery(params): ApiQuery<DescriptorParams>,
) -> Result<Json<MetricDescriptorList>> {
    let size = match params.page_size {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(Error::InvalidArgument("page_size must be 1 to 100".into())),
    };
    let start = match params.page_token.as_deref() {
        None => 0,
        Some(t) => t.parse::<usize>().ok().filter(|&o| o < Metric::ALL.len()).ok_or_else(
            || {
                Error::InvalidArgument(
                    "page_token is not one this API gave; take it from                      meta.pagination.next_page_token"
                        .into(),
                )
            },
        )?,
    };
    if params
        .resource_type
        .as_deref()
        .is_some_and(|r| r != "kafka")
    {
        return Err(Error::InvalidArgument(
            "resource_type must be kafka (the only one)".into(),
        ));
    }
    let data: Vec<MetricDescriptor> = Metric::ALL
        .into_iter()
        .skip(start)
        .take(size)
        .map(|m| MetricDescriptor {
            name: m.name(),
            description: m.description(),
            kind: match m.kind() {
                Kind::Counter => "COUNTER_INT64",
                Kind::Gauge => "GAUGE_INT64",
            },
            unit: m.unit(),
            lifecycle_stage: "GENERAL_AVAILABILITY",
            labels: if m.by_topic() {
                vec![LabelDescriptor {
                    key: "topic",
                    description: "Name of the Kafka topic (filter and group by `metric.topic`).",
                }]
            } else {
                vec![]
            },
            resources: vec!["kafka"],
        })
        .collect();
    let next = start + data.len();
    Ok(Json(MetricDescriptorList {
        data,
        meta: MetricsMeta {
            pagination: Pagination {
                page_size: size,
                total_size: Metric::ALL.len(),
                next_page_token: (next < Metric::ALL.len()).then(|| next.to_string()),
            },
        },
    }))
}
