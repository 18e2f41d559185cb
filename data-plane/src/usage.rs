//! Cumulative usage per tenant and topic since this broker process started, for the cell's
//! Metrics API: record bytes received and sent and bytes retained per (tenant, topic),
//! requests and open connections per tenant.
//!
//! The counting itself happens once, at the call sites of [`crate::metrics`]: each of its
//! functions adds to this table and to the Prometheus series, so the two can never disagree.
//! The table is read every few seconds by the cell session ([`Usage::report`]) and sent to
//! the controller leader with a heartbeat.
//!
//! Bounded: at most [`MAX_TOPICS`] (tenant, topic) and [`MAX_TENANTS`] tenant entries are
//! counted (a broker hosts far fewer; past it new ones are left out and logged once), topics
//! no longer hosted here are forgotten at every partition recount, and one report holds at
//! most [`MAX_REPORT_ENTRIES`] of each kind (more are sent in turns, `complete = false`).
//! The hot path takes a read lock and adds to atomics; only a first sight takes the write
//! lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use proto::cell::v1::{TenantCounters, TopicCounters, UsageCounters};

use crate::namespace::TenantId;

/// Most (tenant, topic) entries counted.
pub const MAX_TOPICS: usize = 200_000;
/// Most tenants counted.
pub const MAX_TENANTS: usize = 100_000;
/// Most topic entries, and most tenant entries, in one report.
pub const MAX_REPORT_ENTRIES: usize = 5_000;

#[derive(Default)]
struct TopicCells {
    received: AtomicU64,
    sent: AtomicU64,
    retained: AtomicU64,
}

#[derive(Default)]
struct TenantCells {
    requests: AtomicU64,
    connections: AtomicI64,
}

type Topics = HashMap<TenantId, HashMap<String, Arc<TopicCells>>>;

/// The broker's usage table (one per [`crate::broker::Broker`]).
#[derive(Default)]
pub struct Usage {
    topics: RwLock<Topics>,
    tenants: RwLock<HashMap<TenantId, Arc<TenantCells>>>,
    /// Where the next report starts, when one report cannot hold everything.
    cursors: Mutex<(usize, usize)>,
    full_logged: AtomicBool,
}

impl Usage {
    fn topic(&self, tenant: &TenantId, topic: &str) -> Option<Arc<TopicCells>> {
        {
            let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
            if let Some(cells) = topics.get(tenant).and_then(|t| t.get(topic)) {
                return Some(cells.clone());
            }
        }
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let count: usize = topics.values().map(HashMap::len).sum();
        let exists = topics.get(tenant).is_some_and(|t| t.contains_key(topic));
        if !exists && count >= MAX_TOPICS {
            self.log_full();
            return None;
        }
        Some(
            topics
                .entry(tenant.clone())
                .or_default()
                .entry(topic.to_string())
                .or_default()
                .clone(),
        )
    }

    fn tenant(&self, tenant: &TenantId) -> Option<Arc<TenantCells>> {
        if let Some(cells) = self
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
        {
            return Some(cells.clone());
        }
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        if !tenants.contains_key(tenant) && tenants.len() >= MAX_TENANTS {
            self.log_full();
            return None;
        }
        Some(tenants.entry(tenant.clone()).or_default().clone())
    }

    fn log_full(&self) {
        if !self.full_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_topics = MAX_TOPICS,
                max_tenants = MAX_TENANTS,
                "usage table full: new tenants or topics are not counted for the Metrics API"
            );
        }
    }

    pub fn received(&self, tenant: &TenantId, topic: &str, bytes: u64) {
        if let Some(c) = self.topic(tenant, topic) {
            c.received.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub fn sent(&self, tenant: &TenantId, topic: &str, bytes: u64) {
        if let Some(c) = self.topic(tenant, topic) {
            c.sent.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub fn set_retained(&self, tenant: &TenantId, topic: &str, bytes: u64) {
        if let Some(c) = self.topic(tenant, topic) {
            c.retained.store(bytes, Ordering::Relaxed);
        }
    }

    pub fn request(&self, tenant: &TenantId) {
        if let Some(c) = self.tenant(tenant) {
            c.requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn connection_opened(&self, tenant: &TenantId) {
        if let Some(c) = self.tenant(tenant) {
            c.connections.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn connection_closed(&self, tenant: &TenantId) {
        if let Some(c) = self.tenant(tenant) {
            c.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Forgets the topics not in `hosted` (deleted, or moved off this broker). A topic that
    /// comes back starts again from 0, which the control plane reads as a reset.
    pub fn retain_topics(&self, hosted: &HashSet<(TenantId, String)>) {
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        for (tenant, by_name) in topics.iter_mut() {
            by_name.retain(|name, _| hosted.contains(&(tenant.clone(), name.clone())));
        }
        topics.retain(|_, by_name| !by_name.is_empty());
    }

    /// The counters as of now, in a bounded report: everything when it fits, else the
    /// next [`MAX_REPORT_ENTRIES`] topics and tenants after the previous report's.
    pub fn report(&self) -> UsageCounters {
        let mut topics: Vec<TopicCounters> = {
            let map = self.topics.read().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .flat_map(|(tenant, by_name)| {
                    by_name.iter().map(move |(name, c)| TopicCounters {
                        cluster_id: tenant.to_string(),
                        topic: name.clone(),
                        received_bytes: c.received.load(Ordering::Relaxed),
                        sent_bytes: c.sent.load(Ordering::Relaxed),
                        retained_bytes: c.retained.load(Ordering::Relaxed),
                    })
                })
                .collect()
        };
        let mut tenants: Vec<TenantCounters> = {
            let map = self.tenants.read().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .map(|(tenant, c)| TenantCounters {
                    cluster_id: tenant.to_string(),
                    request_count: c.requests.load(Ordering::Relaxed),
                    active_connections: c.connections.load(Ordering::Relaxed).max(0) as u64,
                })
                .collect()
        };
        let complete = topics.len() <= MAX_REPORT_ENTRIES && tenants.len() <= MAX_REPORT_ENTRIES;
        if !complete {
            topics.sort_by(|a, b| (&a.cluster_id, &a.topic).cmp(&(&b.cluster_id, &b.topic)));
            tenants.sort_by(|a, b| a.cluster_id.cmp(&b.cluster_id));
            let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
            topics = window(topics, &mut cursors.0);
            tenants = window(tenants, &mut cursors.1);
        }
        UsageCounters {
            complete,
            topics,
            tenants,
        }
    }
}

/// The next [`MAX_REPORT_ENTRIES`] of `all` from `*cursor` (wrapping), advancing it.
fn window<T>(all: Vec<T>, cursor: &mut usize) -> Vec<T> {
    if all.len() <= MAX_REPORT_ENTRIES {
        *cursor = 0;
        return all;
    }
    let start = if *cursor >= all.len() { 0 } else { *cursor };
    let taken: Vec<T> = all
        .into_iter()
        .skip(start)
        .take(MAX_REPORT_ENTRIES)
        .collect();
    *cursor = start + taken.len();
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_reports() {
        let usage = Usage::default();
        let a: TenantId = Arc::from("lkc-a");
        usage.received(&a, "orders", 100);
        usage.received(&a, "orders", 20);
        usage.sent(&a, "orders", 7);
        usage.set_retained(&a, "orders", 4096);
        usage.request(&a);
        usage.request(&a);
        usage.connection_opened(&a);
        usage.connection_opened(&a);
        usage.connection_closed(&a);
        let r = usage.report();
        assert!(r.complete);
        assert_eq!(r.topics.len(), 1);
        let t = &r.topics[0];
        assert_eq!(
            (t.received_bytes, t.sent_bytes, t.retained_bytes),
            (120, 7, 4096)
        );
        assert_eq!(r.tenants[0].request_count, 2);
        assert_eq!(r.tenants[0].active_connections, 1);

        usage.retain_topics(&HashSet::new());
        assert!(usage.report().topics.is_empty());
    }

    #[test]
    fn large_tables_are_reported_in_turns() {
        let usage = Usage::default();
        let a: TenantId = Arc::from("lkc-a");
        for i in 0..(MAX_REPORT_ENTRIES + 10) {
            usage.received(&a, &format!("t{i:05}"), 1);
        }
        let first = usage.report();
        assert!(!first.complete);
        assert_eq!(first.topics.len(), MAX_REPORT_ENTRIES);
        let second = usage.report();
        assert_eq!(second.topics.len(), 10);
        let third = usage.report();
        assert_eq!(third.topics[0].topic, first.topics[0].topic);
    }
}
