//! librdkafka client configuration per tenant, and topic creation.
//!
//! Owns: the mapping from [`Workload`] + [`Tenant`] to `ClientConfig` (security protocol, SASL/PLAIN,
//! acks, compression, batching, bounded local queues, statistics for throttle times) and
//! [`ensure_topics`], which creates missing topics with the AdminClient and treats "already exists" as
//! success.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::workload::{Tenant, Workload};

/// How long the AdminClient waits for the broker to answer CreateTopics.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings common to every client of a tenant: servers, security, user overrides.
pub fn base_config(w: &Workload, t: &Tenant, role: &str) -> Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &w.bootstrap_servers);
    c.set("client.id", format!("loadtest-{}-{}", t.name, role));
    match t.credentials()? {
        Some(cred) => {
            c.set("security.protocol", "SASL_PLAINTEXT");
            c.set("sasl.mechanism", "PLAIN");
            c.set("sasl.username", cred.username);
            c.set("sasl.password", cred.password);
        }
        None => {
            c.set("security.protocol", "PLAINTEXT");
        }
    }
    for (k, v) in &w.client_config {
        c.set(k, v);
    }
    Ok(c)
}

/// Statistics once a second carry the broker's throttle times (see [`throttle_ms`]); a user's own
/// `statistics.interval.ms` wins.
fn set_stats_interval(c: &mut ClientConfig, w: &Workload) {
    if !w.client_config.contains_key("statistics.interval.ms") {
        c.set("statistics.interval.ms", "1000");
    }
}

/// Broker throttle time in one statistics report, summed over brokers (ms). librdkafka's windows cover
/// the time since the previous report, so reports can be added up.
pub fn throttle_ms(s: &rdkafka::statistics::Statistics) -> u64 {
    s.brokers
        .values()
        .filter_map(|b| b.throttle.as_ref())
        .map(|w| w.sum.max(0) as u64)
        .sum()
}

pub fn producer_config(w: &Workload, t: &Tenant, idx: u32) -> Result<ClientConfig> {
    let mut c = base_config(w, t, &format!("p{idx}"))?;
    set_stats_interval(&mut c, w);
    c.set("acks", w.acks.to_string());
    c.set("compression.type", &w.compression);
    c.set("linger.ms", w.linger_ms.to_string());
    c.set("batch.size", w.batch_size.to_string());
    // Bound the local queue in bytes and messages; a full queue is back-pressure for the sender.
    c.set(
        "queue.buffering.max.kbytes",
        w.max_buffer_kbytes.to_string(),
    );
    c.set("queue.buffering.max.messages", "1000000");
    // A load generator measures the broker, not retries hiding failures for minutes.
    c.set("message.timeout.ms", "30000");
    // Not idempotent by default: librdkafka's default, and what most benchmark tools compare against.
    if !w.client_config.contains_key("enable.idempotence") {
        c.set("enable.idempotence", "false");
    }
    Ok(c)
}

pub fn consumer_config(w: &Workload, t: &Tenant, group: &str, idx: u32) -> Result<ClientConfig> {
    let mut c = base_config(w, t, &format!("c{idx}"))?;
    set_stats_interval(&mut c, w);
    c.set("group.id", group);
    // Consumers join before producers start, so "latest" sees every measured message and skips old
    // data; the run switches to "earliest" for topics it created itself (see `ensure_topics`).
    c.set("auto.offset.reset", "latest");
    c.set("enable.auto.commit", "true");
    c.set("enable.partition.eof", "false");
    // Bound what librdkafka prefetches per partition.
    c.set("queued.max.messages.kbytes", "65536");
    Ok(c)
}

/// Creates the workload's topics for every tenant, using that tenant's credentials (topics belong to
/// tenants). Topics that already exist are left alone; any other failure is an error.
/// Returns, per tenant (in `effective_tenants` order), whether all its topics were created just now.
pub async fn ensure_topics(w: &Workload) -> Result<Vec<bool>> {
    let mut fresh = Vec::new();
    for t in w.effective_tenants() {
        let mut all_new = true;
        let admin: AdminClient<DefaultClientContext> = base_config(w, &t, "admin")?
            .create()
            .with_context(|| format!("creating admin client for tenant {}", t.name))?;
        let names = w.topic_names(&t.name);
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    w.partitions_per_topic,
                    TopicReplication::Fixed(w.replication_factor),
                )
            })
            .collect();
        let opts = AdminOptions::new()
            .request_timeout(Some(ADMIN_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT));
        let results = tokio::time::timeout(
            ADMIN_TIMEOUT + Duration::from_secs(5),
            admin.create_topics(&new, &opts),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "tenant {}: no CreateTopics answer from {} in time: is the broker up and reachable?",
                t.name,
                w.bootstrap_servers
            )
        })?
        .with_context(|| format!("tenant {}: CreateTopics failed (broker {})", t.name, w.bootstrap_servers))?;
        for r in results {
            match r {
                Ok(name) => tracing::info!(tenant = %t.name, topic = %name, "created topic"),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    all_new = false;
                    tracing::info!(tenant = %t.name, topic = %name, "topic exists")
                }
                Err((name, code)) => bail!("tenant {}: creating topic {name}: {code}", t.name),
            }
        }
        fresh.push(all_new);
    }
    Ok(fresh)
}
