//! `--verify`: is every acknowledged record still there? For failover runs.
//!
//! Owns: the record id carried in payload bytes 8..16 (producer index and sequence number), the
//! [`IdSet`] of acknowledged ids a tenant's delivery callbacks fill, and [`read_back`], which after
//! the run reads every partition of the tenant's topics from the beginning to its high watermark
//! with a fresh consumer and counts acknowledged records that are missing (must be 0 with acks=all),
//! duplicates and records present that were never acknowledged. Memory is one bit per sent record,
//! bounded by [`MAX_SEQ`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::workload::{Tenant, Workload};

/// Payload bytes needed to carry the timestamp and the id.
pub const MIN_VERIFY_RECORD_SIZE: usize = 16;
/// Sequence numbers per producer that are tracked (one bit each: 128 MiB at most per producer).
pub const MAX_SEQ: u64 = 1 << 30;
const SEQ_BITS: u32 = 40;
/// Longest read-back per tenant.
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(120);
const META_TIMEOUT: Duration = Duration::from_secs(20);

/// The id of a producer's `seq`-th record.
pub fn record_id(producer: u32, seq: u64) -> u64 {
    (u64::from(producer) << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

/// `(producer, seq)` of an id.
pub fn split_id(id: u64) -> (u32, u64) {
    ((id >> SEQ_BITS) as u32, id & ((1 << SEQ_BITS) - 1))
}

/// Writes the id into payload bytes 8..16.
pub fn stamp_id(payload: &mut [u8], id: u64) {
    payload[8..16].copy_from_slice(&id.to_be_bytes());
}

/// Reads the id back; `None` if the payload is too short.
pub fn read_id(payload: &[u8]) -> Option<u64> {
    let b: [u8; 8] = payload.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// A set of record ids: one growable bitset per producer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IdSet {
    bits: BTreeMap<u32, Vec<u64>>,
    len: u64,
    /// Ids with a sequence number beyond [`MAX_SEQ`] (not tracked).
    pub untracked: u64,
}

impl IdSet {
    /// Adds an id; answers whether it was new.
    pub fn insert(&mut self, id: u64) -> bool {
        let (p, seq) = split_id(id);
        if seq >= MAX_SEQ {
            self.untracked += 1;
            return false;
        }
        let words = self.bits.entry(p).or_default();
        let (w, bit) = ((seq / 64) as usize, seq % 64);
        if words.len() <= w {
            words.resize(w + 1, 0);
        }
        let new = words[w] & (1 << bit) == 0;
        words[w] |= 1 << bit;
        self.len += u64::from(new);
        new
    }

    pub fn contains(&self, id: u64) -> bool {
        let (p, seq) = split_id(id);
        let (w, bit) = ((seq / 64) as usize, seq % 64);
        self.bits
            .get(&p)
            .and_then(|v| v.get(w))
            .is_some_and(|x| x & (1 << bit) != 0)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many ids of `self` are not in `other`.
    pub fn missing_from(&self, other: &IdSet) -> u64 {
        let mut n = 0u64;
        for (p, words) in &self.bits {
            let theirs = other.bits.get(p);
            for (i, w) in words.iter().enumerate() {
                let o = theirs.and_then(|v| v.get(i)).copied().unwrap_or(0);
                n += u64::from((w & !o).count_ones());
            }
        }
        n
    }
}

/// What reading back found, for one tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Verification {
    /// Records acknowledged by the broker during the whole run (warm-up included).
    pub acked: u64,
    /// Records read back from the beginning of every partition to its high watermark.
    pub read_back: u64,
    /// Acknowledged records that were not read back: must be 0 with acks=all.
    pub missing: u64,
    /// Records read back more than once (producer retries without idempotence).
    pub duplicates: u64,
    /// Records read back that were never acknowledged (delivery failed or timed out, yet stored).
    pub unacked_present: u64,
    /// Every partition was read up to its high watermark before the timeout.
    pub complete: bool,
}

impl Verification {
    /// Compares what was acknowledged with what was read back.
    pub fn compare(acked: &IdSet, seen: &IdSet, read_back: u64, complete: bool) -> Verification {
        Verification {
            acked: acked.len(),
            read_back,
            missing: acked.missing_from(seen),
            duplicates: read_back.saturating_sub(seen.len() + seen.untracked),
            unacked_present: seen.missing_from(acked),
            complete,
        }
    }
}

/// Reads every partition of the tenant's topics from the beginning to its high watermark (taken
/// now, after the run) and compares the ids found with `acked`.
pub fn read_back(w: &Workload, t: &Tenant, acked: &IdSet, run_id: u128) -> Result<Verification> {
    let group = format!("{}-{}-verify-{run_id}", w.topic_prefix, t.name);
    let mut cfg = crate::clients::consumer_config(w, t, &group, 99)?;
    cfg.set("auto.offset.reset", "earliest");
    cfg.set("enable.auto.commit", "false");
    cfg.remove("statistics.interval.ms");
    let consumer: BaseConsumer = cfg
        .create()
        .with_context(|| format!("creating the read-back consumer of tenant {}", t.name))?;
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for topic in w.topic_names(&t.name) {
        let md = consumer
            .fetch_metadata(Some(&topic), META_TIMEOUT)
            .with_context(|| format!("metadata of {topic}"))?;
        for mt in md.topics() {
            for p in mt.partitions() {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p.id(), META_TIMEOUT)
                    .with_context(|| format!("high watermark of {topic}/{}", p.id()))?;
                if high > 0 {
                    ends.insert((topic.clone(), p.id()), high);
                    tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
                }
            }
        }
    }
    consumer.assign(&tpl).context("assigning the read-back")?;
    let mut seen = IdSet::default();
    let mut read = 0u64;
    let deadline = Instant::now() + READ_BACK_TIMEOUT;
    let mut pending = ends.clone();
    while !pending.is_empty() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                let key = (m.topic().to_string(), m.partition());
                if let Some(&end) = ends.get(&key) {
                    if m.offset() < end {
                        read += 1;
                        if let Some(id) = m.payload().and_then(read_id) {
                            seen.insert(id);
                        }
                    }
                    if m.offset() + 1 >= end {
                        pending.remove(&key);
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(tenant = %t.name, error = %e, "read-back error"),
        }
    }
    if !pending.is_empty() {
        tracing::warn!(tenant = %t.name, partitions = pending.len(), "read-back did not reach every high watermark in time");
    }
    Ok(Verification::compare(
        acked,
        &seen,
        read,
        pending.is_empty(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_payloads() {
        let id = record_id(3, 123_456_789);
        assert_eq!(split_id(id), (3, 123_456_789));
        let mut p = vec![0u8; 16];
        stamp_id(&mut p, id);
        assert_eq!(read_id(&p), Some(id));
        assert_eq!(read_id(&p[..15]), None);
    }

    #[test]
    fn id_sets_count_missing_duplicates_and_extras() {
        let mut acked = IdSet::default();
        for seq in 0..1000 {
            assert!(acked.insert(record_id(0, seq)));
            acked.insert(record_id(1, seq * 2));
        }
        assert!(!acked.insert(record_id(0, 5)), "already there");
        assert_eq!(acked.len(), 2000);
        assert!(acked.contains(record_id(1, 10)) && !acked.contains(record_id(1, 11)));

        // Read back: producer 0 all but 3 records, two of them twice; producer 1 everything plus
        // one record that was never acknowledged.
        let mut seen = IdSet::default();
        let mut read = 0;
        for seq in 3..1000 {
            seen.insert(record_id(0, seq));
            read += 1;
        }
        for seq in [10, 11] {
            seen.insert(record_id(0, seq));
            read += 1;
        }
        for seq in 0..1000 {
            seen.insert(record_id(1, seq * 2));
            read += 1;
        }
        seen.insert(record_id(1, 7));
        read += 1;
        let v = Verification::compare(&acked, &seen, read, true);
        assert_eq!(
            v,
            Verification {
                acked: 2000,
                read_back: 2000,
                missing: 3,
                duplicates: 2,
                unacked_present: 1,
                complete: true,
            }
        );
        assert_eq!(Verification::compare(&acked, &acked, 2000, true).missing, 0);
    }

    #[test]
    fn sequence_numbers_beyond_the_bound_are_untracked() {
        let mut s = IdSet::default();
        assert!(!s.insert(record_id(0, MAX_SEQ)));
        assert_eq!((s.len(), s.untracked), (0, 1));
        assert!(s.is_empty());
    }
}
