//! Acknowledgements over time at a finer grain than the one-second windows, for failover runs.
//!
//! Owns: [`AckTrack`], fed with the time and partition of every acknowledged produce (µs on the
//! run's monotonic clock), which counts acks per fixed-width bucket and keeps two gaps: the longest
//! interval with no acknowledgement at all, and the longest one on any single partition (what a
//! killed leader costs its partitions while the others carry on); and [`AckTimeline`], its JSON
//! form. Memory is bounded: the bucket count is fixed when the run starts, and there is one entry
//! per partition written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Width of one timeline bucket.
pub const BUCKET_MS: u64 = 100;
/// Most buckets kept (a day at 100 ms is 864,000; runs are bounded by the workload's limits).
pub const MAX_BUCKETS: usize = 1_000_000;

/// The longest interval between two acknowledgements of one stream (all partitions, or one).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Gap {
    /// Time of the latest ack seen (µs since the run's epoch).
    last_us: Option<u64>,
    longest_us: u64,
    longest_from_us: u64,
}

impl Gap {
    /// Acks from several client threads can arrive slightly out of order; an earlier one than the
    /// latest seen neither opens nor closes a gap.
    fn ack(&mut self, at_us: u64, since_us: u64) {
        match self.last_us {
            Some(last) if at_us <= last => {}
            Some(last) => {
                self.longer(last, at_us, since_us);
                self.last_us = Some(at_us);
            }
            None => self.last_us = Some(at_us),
        }
    }

    /// Only the part of an interval after `since_us` counts.
    fn longer(&mut self, from_us: u64, to_us: u64, since_us: u64) {
        let from_us = from_us.max(since_us);
        if to_us > from_us && to_us - from_us > self.longest_us {
            self.longest_us = to_us - from_us;
            self.longest_from_us = from_us;
        }
    }

    /// With the silence from the last ack to `end_us` counted too.
    fn closed(mut self, end_us: u64, since_us: u64) -> Gap {
        if let Some(last) = self.last_us {
            if end_us > last {
                self.longer(last, end_us, since_us);
            }
        }
        self
    }
}

/// Live tracking of one tenant's acknowledgements.
#[derive(Debug, Default, Clone)]
pub struct AckTrack {
    /// Acks per bucket since the start of the load.
    buckets: Vec<u32>,
    all: Gap,
    /// Per topic, per partition.
    partitions: BTreeMap<String, Vec<Gap>>,
    /// Start of bucket 0 (µs since the run's epoch).
    origin_us: u64,
    /// Gaps count from here on (the start of the measured phase: not the warm-up's).
    gaps_from_us: u64,
}

/// Partitions tracked per topic (ids beyond are counted in the totals only).
const MAX_PARTITIONS: usize = 10_000;
/// Partitions listed in [`AckTimeline::partition_gaps`].
pub const MAX_LISTED_PARTITIONS: usize = 16;

impl AckTrack {
    /// A track of `buckets` buckets of [`BUCKET_MS`] starting `origin_us` after the epoch, with
    /// gaps counted from `gaps_from_us` on.
    pub fn new(origin_us: u64, buckets: usize, gaps_from_us: u64) -> AckTrack {
        AckTrack {
            buckets: vec![0; buckets.min(MAX_BUCKETS)],
            origin_us,
            gaps_from_us,
            ..AckTrack::default()
        }
    }

    /// One acknowledgement at `at_us`, of a record in `topic`/`partition` when known.
    pub fn ack(&mut self, at_us: u64, partition: Option<(&str, i32)>) {
        if let Some(b) = at_us
            .checked_sub(self.origin_us)
            .map(|d| (d / (BUCKET_MS * 1000)) as usize)
            .and_then(|i| self.buckets.get_mut(i))
        {
            *b = b.saturating_add(1);
        }
        let since = self.gaps_from_us;
        self.all.ack(at_us, since);
        if let Some((topic, p)) = partition {
            let p = usize::try_from(p).unwrap_or(usize::MAX);
            if p < MAX_PARTITIONS {
                let gaps = match self.partitions.get_mut(topic) {
                    Some(g) => g,
                    None => self.partitions.entry(topic.to_string()).or_default(),
                };
                if gaps.len() <= p {
                    gaps.resize(p + 1, Gap::default());
                }
                gaps[p].ack(at_us, since);
            }
        }
    }

    /// The result, with the interval from the last ack to `load_end_us` (when producers stopped
    /// sending) counted as a gap too: a broker that never came back shows as one.
    /// `measure_start_us` is where the result's seconds count from.
    pub fn finish(&self, load_end_us: u64, measure_start_us: u64) -> AckTimeline {
        let used = self
            .buckets
            .iter()
            .rposition(|&n| n > 0)
            .map_or(0, |i| i + 1);
        let secs = |us: u64| (us as f64 - measure_start_us as f64) / 1e6;
        let all = self.all.closed(load_end_us, self.gaps_from_us);
        let mut listed: Vec<PartitionGap> = Vec::new();
        for (topic, gaps) in &self.partitions {
            for (p, g) in gaps.iter().enumerate() {
                let g = g.closed(load_end_us, self.gaps_from_us);
                if g.longest_us > 0 {
                    listed.push(PartitionGap {
                        partition: format!("{topic}/{p}"),
                        ms: g.longest_us as f64 / 1000.0,
                        from_s: secs(g.longest_from_us),
                    });
                }
            }
        }
        let from_s = if all.longest_us > 0 {
            secs(all.longest_from_us)
        } else {
            0.0
        };
        AckTimeline::with_partition_gaps(
            BUCKET_MS,
            secs(self.origin_us),
            self.buckets[..used].to_vec(),
            (all.longest_us as f64 / 1000.0, from_s),
            listed,
        )
    }
}

/// Longest first (then by name, so results are stable), at most [`MAX_LISTED_PARTITIONS`].
fn sort_gaps(v: &mut Vec<PartitionGap>) {
    v.sort_by(|a, b| b.ms.total_cmp(&a.ms).then(a.partition.cmp(&b.partition)));
    v.truncate(MAX_LISTED_PARTITIONS);
}

/// One partition's longest interval without an acknowledged produce.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PartitionGap {
    /// `topic/partition`.
    pub partition: String,
    pub ms: f64,
    /// Where it began, seconds since measurement start.
    pub from_s: f64,
}

/// Acknowledged produce over time at [`BUCKET_MS`] resolution, and the longest gap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct AckTimeline {
    /// Width of one bucket, ms (0: no timeline recorded).
    pub bucket_ms: u64,
    /// Seconds since measurement start at the start of the first bucket (negative: in warm-up).
    pub start_s: f64,
    /// Acknowledged messages per bucket, from the start of the load to the last acknowledgement.
    pub acked: Vec<u32>,
    /// The longest interval with no acknowledged produce (between two acks, or from the last ack
    /// to the end of the load), ms. Exact for a tenant; for the total of several tenants, to the
    /// bucket (see [`AckTimeline::merge`]).
    pub longest_gap_ms: f64,
    /// Where that interval began, seconds since measurement start.
    pub longest_gap_from_s: f64,
    /// The longest interval between two acknowledgements of one partition (or from its last one
    /// to the end of the load), ms: a failover's cost to the partitions of the killed leader.
    #[serde(default)]
    pub longest_partition_gap_ms: f64,
    #[serde(default)]
    pub longest_partition_gap_from_s: f64,
    /// Which partition, `topic/partition`.
    #[serde(default)]
    pub longest_partition_gap_at: String,
    /// Each partition's longest gap, longest first, at most [`MAX_LISTED_PARTITIONS`].
    #[serde(default)]
    pub partition_gaps: Vec<PartitionGap>,
}

impl AckTimeline {
    /// `(seconds since measurement start at the bucket's start, acks per second)` per bucket.
    pub fn rate_points(&self) -> Vec<(f64, f64)> {
        let w = self.bucket_ms as f64 / 1000.0;
        if w <= 0.0 {
            return Vec::new();
        }
        self.acked
            .iter()
            .enumerate()
            .map(|(i, &n)| (self.start_s + i as f64 * w, n as f64 / w))
            .collect()
    }

    /// Several tenants' timelines summed bucket by bucket (they share the run's origin). The longest
    /// gap is then the longest run of empty buckets between the first and the last non-empty one,
    /// so it is known to a bucket's width only; with one timeline it is that timeline's exact gap.
    pub fn merge(all: &[&AckTimeline]) -> AckTimeline {
        match all {
            [] => return AckTimeline::default(),
            [one] => return (*one).clone(),
            _ => {}
        }
        let len = all.iter().map(|t| t.acked.len()).max().unwrap_or(0);
        let mut acked = vec![0u32; len];
        for t in all {
            for (a, n) in acked.iter_mut().zip(&t.acked) {
                *a = a.saturating_add(*n);
            }
        }
        let bucket_ms = all[0].bucket_ms;
        let start_s = all[0].start_s;
        // Partitions belong to one tenant each: their gaps are exact.
        let listed: Vec<PartitionGap> = all.iter().flat_map(|t| t.partition_gaps.clone()).collect();
        let (mut best, mut best_from, mut run, mut run_from) = (0usize, 0usize, 0usize, 0usize);
        let mut seen = false;
        for (i, &n) in acked.iter().enumerate() {
            if n > 0 {
                if seen && run > best {
                    best = run;
                    best_from = run_from;
                }
                seen = true;
                run = 0;
            } else if seen {
                if run == 0 {
                    run_from = i;
                }
                run += 1;
            }
        }
        let from_s = if best > 0 {
            start_s + (best_from as u64 * bucket_ms) as f64 / 1000.0
        } else {
            0.0
        };
        let longest = ((best as u64 * bucket_ms) as f64, from_s);
        AckTimeline::with_partition_gaps(bucket_ms, start_s, acked, longest, listed)
    }

    /// A timeline whose longest gap over all partitions is `longest` (ms, from s); the
    /// partitions' gaps are sorted and cut to [`MAX_LISTED_PARTITIONS`], and the first of them
    /// is the longest one on a single partition.
    fn with_partition_gaps(
        bucket_ms: u64,
        start_s: f64,
        acked: Vec<u32>,
        longest: (f64, f64),
        mut partition_gaps: Vec<PartitionGap>,
    ) -> AckTimeline {
        sort_gaps(&mut partition_gaps);
        let worst = partition_gaps.first().cloned().unwrap_or_default();
        AckTimeline {
            bucket_ms,
            start_s,
            acked,
            longest_gap_ms: longest.0,
            longest_gap_from_s: longest.1,
            longest_partition_gap_ms: worst.ms,
            longest_partition_gap_from_s: worst.from_s,
            longest_partition_gap_at: worst.partition,
            partition_gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    #[test]
    fn counts_per_bucket_and_finds_the_longest_gap() {
        // Origin 1 s after the epoch, measurement from 2 s.
        let mut t = AckTrack::new(1_000 * MS, 50, 0);
        for at in [1_000, 1_050, 1_150, 1_180, 1_199, 1_200] {
            t.ack(at * MS, None);
        }
        // A 1.8 s gap, then acks again; an out-of-order ack inside it changes nothing.
        t.ack(3_000 * MS, None);
        t.ack(2_500 * MS, None);
        t.ack(3_010 * MS, None);
        let r = t.finish(3_020 * MS, 2_000 * MS);
        assert_eq!(r.bucket_ms, 100);
        assert!((r.start_s + 1.0).abs() < 1e-9, "{}", r.start_s);
        assert_eq!(&r.acked[..3], &[2, 3, 1]);
        assert_eq!(r.acked[15], 1, "the late out-of-order ack is still counted");
        assert_eq!(r.acked[20], 2);
        assert_eq!(r.acked.len(), 21, "trailing empty buckets are dropped");
        assert!(
            (r.longest_gap_ms - 1800.0).abs() < 1e-9,
            "{}",
            r.longest_gap_ms
        );
        assert!((r.longest_gap_from_s + 0.8).abs() < 1e-9);
        let rate = r.rate_points();
        assert_eq!(rate[0], (-1.0, 20.0));
        assert_eq!(rate.len(), 21);
    }

    #[test]
    fn silence_until_the_end_of_the_load_is_a_gap() {
        let mut t = AckTrack::new(0, 10, 0);
        t.ack(100 * MS, Some(("a", 0)));
        t.ack(200 * MS, Some(("a", 0)));
        let r = t.finish(5_200 * MS, 0);
        assert!((r.longest_gap_ms - 5000.0).abs() < 1e-9);
        assert!((r.longest_gap_from_s - 0.2).abs() < 1e-9);
        assert!((r.longest_partition_gap_ms - 5000.0).abs() < 1e-9);
        assert_eq!(r.longest_partition_gap_at, "a/0");
        // Acks beyond the last bucket are not counted in the timeline but still close gaps.
        let mut t = AckTrack::new(0, 1, 0);
        t.ack(50 * MS, None);
        t.ack(5_000 * MS, None);
        let r = t.finish(5_000 * MS, 0);
        assert_eq!(r.acked, vec![1]);
        assert!((r.longest_gap_ms - 4950.0).abs() < 1e-9);
        // Nothing acked: no gap, no timeline.
        let r = AckTrack::new(0, 5, 0).finish(1_000 * MS, 0);
        assert!(r.acked.is_empty());
        assert_eq!(r.longest_gap_ms, 0.0);
    }

    #[test]
    fn a_stalled_partition_shows_while_the_others_carry_on() {
        let mut t = AckTrack::new(0, 100, 0);
        // Partitions 0..3 of "t" acked every 10 ms for 3 s, except partition 2 from 1.0 s to 2.5 s
        // (its leader was killed); a second topic's partition 0 is steady.
        for ms in (0..3_000u64).step_by(10) {
            for p in 0..3 {
                if p == 2 && (1_001..2_500).contains(&ms) {
                    continue;
                }
                t.ack(ms * MS, Some(("t", p)));
            }
            t.ack(ms * MS + 5, Some(("u", 0)));
        }
        let r = t.finish(3_000 * MS, 500 * MS);
        assert!(
            r.longest_gap_ms < 10.0,
            "acks never stopped: {}",
            r.longest_gap_ms
        );
        assert!((r.longest_partition_gap_ms - 1500.0).abs() < 1e-9, "{r:?}");
        assert!((r.longest_partition_gap_from_s - 0.5).abs() < 1e-9);
        assert_eq!(r.longest_partition_gap_at, "t/2");
        assert_eq!(r.partition_gaps.len(), 4);
        assert_eq!(r.partition_gaps[0].partition, "t/2");
        assert!(r.partition_gaps[1].ms <= 10.0);
        // Negative or huge partition ids are counted but not tracked.
        t.ack(3_000 * MS, Some(("t", -1)));
        t.ack(3_000 * MS, Some(("t", 1 << 30)));
        assert_eq!(t.partitions["t"].len(), 3);
        // The total of several tenants takes the worst partition.
        let other = AckTimeline {
            partition_gaps: vec![PartitionGap {
                partition: "v/0".into(),
                ms: 20.0,
                from_s: 1.0,
            }],
            ..r.clone()
        };
        let m = AckTimeline::merge(&[&other, &r]);
        assert_eq!(m.longest_partition_gap_at, "t/2");
        assert!((m.longest_partition_gap_ms - 1500.0).abs() < 1e-9);
        assert_eq!(m.partition_gaps.len(), 5);
        assert_eq!(m.partition_gaps[1].partition, "v/0");
    }

    #[test]
    fn warm_up_gaps_do_not_count() {
        // Measurement from 1 s: a 900 ms stall in warm-up is ignored, one across the start counts
        // from the start only.
        let mut t = AckTrack::new(0, 100, 1_000 * MS);
        for at in [0, 100, 1_000 - 50, 1_200, 1_250] {
            t.ack(at * MS, Some(("t", 0)));
        }
        let r = t.finish(1_260 * MS, 1_000 * MS);
        assert!((r.longest_gap_ms - 200.0).abs() < 1e-9, "{r:?}");
        assert!(r.longest_gap_from_s.abs() < 1e-9);
        assert!((r.longest_partition_gap_ms - 200.0).abs() < 1e-9);
        // Nothing after the start: no gap, however long the warm-up's.
        let mut t = AckTrack::new(0, 100, 5_000 * MS);
        t.ack(0, None);
        t.ack(4_000 * MS, None);
        assert_eq!(t.finish(4_500 * MS, 5_000 * MS).longest_gap_ms, 0.0);
    }

    #[test]
    fn merged_gap_is_the_longest_empty_run_of_buckets() {
        let a = AckTimeline {
            bucket_ms: 100,
            start_s: -1.0,
            acked: vec![5, 5, 0, 0, 0, 5],
            longest_gap_ms: 310.0,
            longest_gap_from_s: -0.8,
            ..AckTimeline::default()
        };
        let b = AckTimeline {
            acked: vec![1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0],
            ..a.clone()
        };
        let m = AckTimeline::merge(&[&a, &b]);
        assert_eq!(m.acked, vec![6, 5, 0, 1, 0, 5, 0, 0, 0, 1, 0, 0]);
        // Buckets 6..=8: 300 ms from -0.4 s; the trailing empty buckets are not a gap.
        assert!((m.longest_gap_ms - 300.0).abs() < 1e-9);
        assert!((m.longest_gap_from_s + 0.4).abs() < 1e-9);
        assert_eq!(AckTimeline::merge(&[&a]), a);
        assert_eq!(AckTimeline::merge(&[]), AckTimeline::default());
    }
}
