//! The control plane's metrics, through the `metrics` facade (the binary installs the
//! Prometheus recorder and serves `/metrics`; without it these calls are no-ops). Names
//! and labels are the contract in `docs/metrics.md`.
//!
//! - HTTP, both listeners ([`track_http`] as a layer): requests by route template, method
//!   and status, and their latency; each request also runs in a `http` tracing span.
//! - Clusters by phase ([`refresh_cluster_phases`], from the store, by the reconciler).
//! - Reconciler actions by outcome ([`reconciler_action`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use tracing::Instrument;

use crate::store::{Phase, Store};

pub const HTTP_REQUESTS: &str = "tributary_control_plane_http_requests_total";
pub const HTTP_DURATION: &str = "tributary_control_plane_http_request_duration_seconds";
pub const CLUSTERS: &str = "tributary_control_plane_clusters";
pub const RECONCILER_ACTIONS: &str = "tributary_control_plane_reconciler_actions_total";

const PHASES: [Phase; 4] = [
    Phase::Provisioning,
    Phase::Provisioned,
    Phase::Failed,
    Phase::Deleting,
];

/// Registers help texts (call once the recorder is installed).
pub fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by API (rest, operator), route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from receiving an HTTP request to its response, by API, route template and method."
    );
    describe_gauge!(
        CLUSTERS,
        "Logical clusters in the control plane's database, by phase."
    );
    describe_counter!(
        RECONCILER_ACTIONS,
        "Reconciler actions (provision, apply_limits, delete, sync_key) by outcome (ok, error)."
    );
}

/// Which listener a request came in on.
#[derive(Clone, Copy)]
pub enum Api {
    Rest,
    Operator,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Api::Rest => "rest",
            Api::Operator => "operator",
        }
    }
}

/// Standard methods by name, anything else as `other` (bounded label values).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (`axum::middleware::from_fn(move |req, next| track_http(api, req, next))`)
/// counting and timing every request. The route is the matched template
/// (`/org/v2/environments/{id}`), or `unmatched` so unknown paths cannot grow the label set.
pub async fn track_http(api: Api, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let span = tracing::info_span!("http", api = api.as_str(), method, route = %route);
    let response = next.run(req).instrument(span).await;
    let status = response.status().as_u16().to_string();
    counter!(
        HTTP_REQUESTS,
        "api" => api.as_str(),
        "route" => route.clone(),
        "method" => method,
        "status" => status,
    )
    .increment(1);
    histogram!(
        HTTP_DURATION,
        "api" => api.as_str(),
        "route" => route,
        "method" => method,
    )
    .record(start.elapsed().as_secs_f64());
    response
}

/// Sets the clusters-by-phase gauge from the store (every phase, 0 when empty).
pub async fn refresh_cluster_phases(store: &Store) {
    match store.count_clusters_by_phase().await {
        Ok(counts) => {
            for phase in PHASES {
                let n = counts
                    .iter()
                    .find(|(p, _)| *p == phase)
                    .map_or(0, |(_, n)| *n);
                gauge!(CLUSTERS, "phase" => phase.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count clusters by phase for metrics"),
    }
}

/// Counts one reconciler action.
pub fn reconciler_action(action: &'static str, ok: bool) {
    counter!(
        RECONCILER_ACTIONS,
        "action" => action,
        "outcome" => if ok { "ok" } else { "error" },
    )
    .increment(1);
}
