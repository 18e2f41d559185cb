//! The producer driver: one paced send loop per producer on its own thread.
//!
//! Owns: the librdkafka `ThreadedProducer` (its background thread polls delivery reports, so no per-message
//! future is allocated), the delivery callback that records publish latency (send -> delivery report,
//! monotonic clock, carried in the per-message opaque), and the payload layout: the first 8 bytes are the
//! send time in microseconds since the Unix epoch (big-endian), which consumers use for end-to-end latency.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::collector::{add_skipped, Recorder};
use crate::pacer::Pacer;
use crate::verify::{record_id, stamp_id};
use crate::workload::{Tenant, Workload};

/// How long a sender waits before retrying when librdkafka's local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_micros(500);

/// Microseconds since the Unix epoch (wall clock: shared between producer and consumer processes).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Writes the send timestamp into the first 8 bytes of a payload.
pub fn stamp(payload: &mut [u8], unix_us: u64) {
    payload[..8].copy_from_slice(&unix_us.to_be_bytes());
}

/// Reads the send timestamp back; `None` if the payload is too short to carry one.
pub fn read_stamp(payload: &[u8]) -> Option<u64> {
    let b: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Filler bytes from a fixed-seed xorshift: not all zeros, so compression codecs do real work.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Printable ASCII: compressible roughly like text payloads, not like random bytes.
            b' ' + (x % 95) as u8
        })
        .collect()
}

struct Ctx {
    rec: Arc<Recorder>,
    /// Origin of the monotonic send times carried in the delivery opaque.
    epoch: Instant,
    tenant: String,
    logged_error: AtomicBool,
    /// Hand the payload to the recorder (for its record id: `--verify`).
    verify: bool,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(tenant = %self.tenant, %error, reason, "producer client error");
    }

    fn stats(&self, s: Statistics) {
        let ms = crate::clients::throttle_ms(&s);
        if ms > 0 {
            self.rec.throttled(true, ms);
        }
    }
}

impl ProducerContext for Ctx {
    /// Send time in microseconds since `epoch`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        let now_us = self.epoch.elapsed().as_micros() as u64;
        match result {
            Ok(m) => self.rec.acked(
                now_us.saturating_sub(sent_us as u64),
                m.payload_len(),
                now_us,
                Some((m.topic(), m.partition())),
                if self.verify { m.payload() } else { None },
            ),
            Err((e, _)) => {
                self.rec.error();
                if !self.logged_error.swap(true, Ordering::Relaxed) {
                    tracing::warn!(tenant = %self.tenant, error = %e, "delivery failed (further failures only counted)");
                }
            }
        }
    }
}

/// What one producer thread needs.
pub struct ProducerJob {
    pub workload: Arc<Workload>,
    pub tenant: Tenant,
    pub index: u32,
    pub rec: Arc<Recorder>,
    /// Monotonic origin shared by all producers of the run.
    pub epoch: Instant,
    /// When sending starts (the pacer's schedule origin) and stops.
    pub start: Instant,
    pub stop: Instant,
    /// msgs/s for this producer, 0 = unlimited.
    pub rate: f64,
    /// Number every record in payload bytes 8..16 (`--verify`).
    pub verify: bool,
}

/// Runs one producer to its deadline, then flushes (bounded by the workload's drain time).
pub fn run(job: ProducerJob) -> Result<()> {
    let w = &job.workload;
    let ctx = Ctx {
        rec: job.rec.clone(),
        epoch: job.epoch,
        tenant: job.tenant.name.clone(),
        logged_error: AtomicBool::new(false),
        verify: job.verify,
    };
    let producer: ThreadedProducer<Ctx> =
        crate::clients::producer_config(w, &job.tenant, job.index)?
            .create_with_context(ctx)
            .with_context(|| {
                format!(
                    "creating producer {} for tenant {}",
                    job.index, job.tenant.name
                )
            })?;
    let topics = w.topic_names(&job.tenant.name);
    let mut payload = filler(w.record_size, 0x9E37_79B9_7F4A_7C15 ^ job.index as u64);
    let mut pacer = Pacer::new(job.rate, job.start);
    if job.start > Instant::now() {
        std::thread::sleep(job.start - Instant::now());
    }
    let mut logged = false;
    let mut n: usize = 0;
    let mut seq: u64 = 0;
    'send: while pacer.wait(job.stop) {
        let topic = &topics[n % topics.len()];
        n = n.wrapping_add(1);
        stamp(&mut payload, unix_micros());
        if job.verify {
            stamp_id(&mut payload, record_id(job.index, seq));
            seq += 1;
        }
        let sent_us = job.epoch.elapsed().as_micros() as usize;
        let mut record: BaseRecord<'_, (), [u8], usize> =
            BaseRecord::with_opaque_to(topic, sent_us).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => {
                    job.rec.sent();
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    job.rec.queue_full();
                    if Instant::now() >= job.stop {
                        break 'send;
                    }
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                    record = back;
                }
                Err((e, _)) => {
                    job.rec.error();
                    if !logged {
                        logged = true;
                        tracing::warn!(tenant = %job.tenant.name, error = %e, "send rejected (further rejections only counted)");
                    }
                    break;
                }
            }
        }
    }
    add_skipped(&job.rec, pacer.skipped);
    let flush_for = Duration::from_secs(w.drain_s.max(1));
    if let Err(e) = producer.flush(flush_for) {
        tracing::warn!(tenant = %job.tenant.name, error = %e, "flush did not complete; undelivered messages are not counted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip() {
        let mut p = filler(16, 1);
        stamp(&mut p, 1_700_000_000_123_456);
        assert_eq!(read_stamp(&p), Some(1_700_000_000_123_456));
        assert_eq!(read_stamp(&p[..7]), None);
        assert!(filler(100, 2).iter().all(|b| (b' '..=b'~').contains(b)));
    }
}
