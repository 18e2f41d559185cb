//! Self-test target: librdkafka's in-process mock cluster.
//!
//! Owns: starting a one-broker mock cluster, creating the workload's topics on it (the mock has no
//! CreateTopics) and pointing the workload at it. Useful to check the tool itself and to measure its
//! ceiling on a machine without any broker; SASL is not available on the mock, so credentials are dropped.

use anyhow::{Context, Result};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::workload::Workload;

/// Starts the mock and rewrites `w` to use it. Keep the returned cluster alive for the whole run.
pub fn start(w: &mut Workload) -> Result<MockCluster<'static, DefaultProducerContext>> {
    let mock = MockCluster::new(1).context("starting librdkafka mock cluster")?;
    w.bootstrap_servers = mock.bootstrap_servers();
    w.create_topics = false;
    // The mock answers a Fetch only when fetch.wait.max.ms runs out (no wake-up on new data), which
    // would add up to 500 ms to end-to-end latency; keep the wait short unless the user chose one.
    w.client_config
        .entry("fetch.wait.max.ms".into())
        .or_insert_with(|| "5".into());
    for t in &mut w.tenants {
        t.username = None;
        t.password = None;
        t.username_env = None;
        t.password_env = None;
    }
    for t in w.effective_tenants() {
        for topic in w.topic_names(&t.name) {
            mock.create_topic(&topic, w.partitions_per_topic, 1)
                .with_context(|| format!("creating {topic} on the mock cluster"))?;
        }
    }
    Ok(mock)
}
