//! The consumer driver: one polling loop per consumer on its own thread.
//!
//! Owns: the librdkafka `BaseConsumer` in the tenant's consumer group, the "assigned" signal the run waits
//! for before producers start (so no measured message is published before anyone listens), and end-to-end
//! latency: receive time minus the send timestamp in the payload's first 8 bytes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::collector::Recorder;
use crate::producer::{read_stamp, unix_micros};
use crate::workload::{Tenant, Workload};

/// Longest single poll, so the stop flag is seen promptly.
const POLL: Duration = Duration::from_millis(100);

struct Ctx {
    tenant: String,
    assigned: Arc<AtomicBool>,
    rec: Arc<Recorder>,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(tenant = %self.tenant, %error, reason, "consumer client error");
    }

    fn stats(&self, s: Statistics) {
        let ms = crate::clients::throttle_ms(&s);
        if ms > 0 {
            self.rec.throttled(false, ms);
        }
    }
}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Any completed assignment (even an empty one, when there are more consumers than partitions)
        // means this consumer has joined the group.
        if let Rebalance::Assign(_) = rebalance {
            self.assigned.store(true, Ordering::Release);
        }
    }
}

pub struct ConsumerJob {
    pub workload: Arc<Workload>,
    pub tenant: Tenant,
    pub group: String,
    pub index: u32,
    pub rec: Arc<Recorder>,
    /// Set once this consumer has an assignment.
    pub assigned: Arc<AtomicBool>,
    /// Set by the coordinator when the run (including drain) is over.
    pub stop: Arc<AtomicBool>,
    /// Hard bound regardless of the stop flag.
    pub deadline: Instant,
    /// "earliest" when the topics were created by this run (nothing old to skip), else "latest".
    pub offset_reset: &'static str,
}

pub fn run(job: ConsumerJob) -> Result<()> {
    let w = &job.workload;
    let ctx = Ctx {
        tenant: job.tenant.name.clone(),
        assigned: job.assigned.clone(),
        rec: job.rec.clone(),
    };
    let mut cfg = crate::clients::consumer_config(w, &job.tenant, &job.group, job.index)?;
    cfg.set("auto.offset.reset", job.offset_reset);
    let consumer: BaseConsumer<Ctx> = cfg.create_with_context(ctx).with_context(|| {
        format!(
            "creating consumer {} for tenant {}",
            job.index, job.tenant.name
        )
    })?;
    let topics = w.topic_names(&job.tenant.name);
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&refs)
        .with_context(|| format!("tenant {}: subscribing to {topics:?}", job.tenant.name))?;
    let mut logged = false;
    while !job.stop.load(Ordering::Acquire) && Instant::now() < job.deadline {
        match consumer.poll(POLL) {
            None => {}
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or(&[]);
                match read_stamp(payload) {
                    Some(ts) => job
                        .rec
                        .consumed(unix_micros().saturating_sub(ts), payload.len()),
                    None => job.rec.error(),
                }
            }
            Some(Err(e)) => {
                job.rec.error();
                if !logged {
                    logged = true;
                    tracing::warn!(tenant = %job.tenant.name, error = %e, "consume error (further errors only counted)");
                }
            }
        }
    }
    consumer.unsubscribe();
    Ok(())
}
