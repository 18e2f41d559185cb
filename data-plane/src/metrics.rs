//! The broker's metrics, through the `metrics` facade (the binary installs the Prometheus
//! recorder; without one these are no-ops). Names and labels are the contract in
//! `docs/metrics.md`; every call site is one line here. Tenant labels share the
//! session's `Arc<str>` rather than copying it on every request.
//!
//! The per-tenant usage functions also add to the broker's [`Usage`] table (what the cell's
//! Metrics API reports), so each count is made once, here, for both.

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::ApiKey;

use crate::broker::Broker;
use crate::namespace::TenantId;
use crate::quota::QuotaKind;
use crate::usage::Usage;

/// A request handled for `tenant`.
pub fn request(usage: &Usage, tenant: &TenantId, api: ApiKey) {
    usage.request(tenant);
    metrics::counter!("tributary_broker_requests_total", "tenant" => tenant.clone(), "api" => api_name(api))
        .increment(1);
}

/// From a request's arrival to its response being ready to write.
pub fn latency(api: ApiKey, seconds: f64) {
    metrics::histogram!("tributary_broker_request_latency_seconds", "api" => api_name(api))
        .record(seconds);
}

/// Record bytes a producer of `tenant` appended to `topic`.
pub fn received(usage: &Usage, tenant: &TenantId, topic: &str, bytes: usize) {
    usage.received(tenant, topic, bytes as u64);
    metrics::counter!("tributary_broker_received_bytes_total", "tenant" => tenant.clone(), "topic" => topic.to_string())
        .increment(bytes as u64);
}

/// Record bytes a consumer of `tenant` was sent from `topic`.
pub fn sent(usage: &Usage, tenant: &TenantId, topic: &str, bytes: usize) {
    usage.sent(tenant, topic, bytes as u64);
    metrics::counter!("tributary_broker_sent_bytes_total", "tenant" => tenant.clone(), "topic" => topic.to_string())
        .increment(bytes as u64);
}

/// One more (or one fewer) open connection of `tenant`.
pub fn connection_opened(usage: &Usage, tenant: &TenantId) {
    usage.connection_opened(tenant);
    metrics::gauge!("tributary_broker_active_connections", "tenant" => tenant.clone())
        .increment(1.0);
}

pub fn connection_closed(usage: &Usage, tenant: &TenantId) {
    usage.connection_closed(tenant);
    metrics::gauge!("tributary_broker_active_connections", "tenant" => tenant.clone())
        .decrement(1.0);
}

/// Throttle time handed to a client of `tenant` by its `kind` quota.
pub fn throttled(tenant: &TenantId, kind: QuotaKind, throttle: std::time::Duration) {
    metrics::counter!("tributary_broker_throttle_time_ms_total", "tenant" => tenant.clone(), "quota" => kind.name())
        .increment(throttle.as_millis() as u64);
}

/// The rate this broker currently enforces for `tenant`'s `kind` quota (units per second).
pub fn quota_rate(tenant: &TenantId, kind: QuotaKind, rate: f64) {
    metrics::gauge!("tributary_broker_quota_rate", "tenant" => tenant.clone(), "quota" => kind.name())
        .set(rate);
}

/// An ISR change this broker proposed as leader was committed.
pub fn isr_changed() {
    metrics::counter!("tributary_broker_isr_changes_total").increment(1);
}

/// Recount the replicas hosted here per tenant, their bytes on disk per topic, and the
/// partitions led here whose ISR is smaller than their replica set. The usage table keeps
/// the retained bytes too, and forgets the topics no longer hosted here.
pub fn refresh_partitions(broker: &Broker) {
    let mut per_tenant: HashMap<TenantId, usize> = HashMap::new();
    let mut under_replicated = 0usize;
    let mut hosted: HashSet<(TenantId, String)> = HashSet::new();
    for (tenant, topic) in broker.all_topics_by_tenant() {
        let retained: u64 = topic
            .partitions
            .iter()
            .filter_map(|slot| slot.local.as_ref())
            .map(|p| p.size_bytes())
            .sum();
        metrics::gauge!("tributary_broker_retained_bytes", "tenant" => tenant.clone(), "topic" => topic.name.clone())
            .set(retained as f64);
        broker.usage.set_retained(&tenant, &topic.name, retained);
        hosted.insert((tenant.clone(), topic.name.to_string()));
        for slot in &topic.partitions {
            if slot.local.is_some() {
                *per_tenant.entry(tenant.clone()).or_default() += 1;
                if slot.leader == broker.config.node_id && slot.isr.len() < slot.replicas.len() {
                    under_replicated += 1;
                }
            }
        }
    }
    for (tenant, n) in per_tenant {
        metrics::gauge!("tributary_broker_partitions", "tenant" => tenant).set(n as f64);
    }
    metrics::gauge!("tributary_broker_under_replicated_partitions").set(under_replicated as f64);
    broker.usage.retain_topics(&hosted);
}

fn api_name(api: ApiKey) -> String {
    format!("{api:?}")
}
