//! Where measurements go while a run is live, and how they become a result.
//!
//! Owns: [`Recorder`], shared by one tenant's producer callbacks and consumer threads (a mutex around a
//! one-second [`Window`], held for a few counter updates and one histogram record, and around what
//! lives for the whole run: the ack timeline and, with `--verify`, the acknowledged ids), and [`Aggregator`],
//! which the once-a-second reporter feeds with windows to build cumulative figures, the time series and
//! finally a [`TenantResult`]. Warm-up windows only move the backlog; they never reach the results.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::result::{SecondSample, TenantResult};
use crate::stats::{backlog, mb_per_sec, per_sec, Counters, LatencyHist};
use crate::timeline::{AckTimeline, AckTrack};
use crate::verify::{read_id, IdSet};

/// Everything observed during one reporting interval.
#[derive(Debug, Default, Clone)]
pub struct Window {
    pub counters: Counters,
    pub publish: LatencyHist,
    pub e2e: LatencyHist,
}

impl Window {
    pub fn merge(&mut self, o: &Window) {
        self.counters.add(&o.counters);
        self.publish.merge(&o.publish);
        self.e2e.merge(&o.e2e);
    }

    /// Clears for reuse without reallocating the histograms.
    pub fn reset(&mut self) {
        self.counters = Counters::default();
        self.publish.reset();
        self.e2e.reset();
    }
}

/// What the recorder's one lock guards: the current window, and what lives for the whole run.
#[derive(Debug, Default)]
struct Live {
    window: Window,
    /// Acks over time at a finer grain, and the longest gap.
    track: AckTrack,
    /// Ids of acknowledged records (`--verify`).
    acked_ids: Option<IdSet>,
}

/// One tenant's live sink. Cheap to call from librdkafka's poll thread.
#[derive(Debug, Default)]
pub struct Recorder {
    live: Mutex<Live>,
    /// Pacer slots skipped (updated by producer threads when they finish).
    pub skipped: AtomicU64,
}

impl Recorder {
    /// A recorder whose ack timeline starts `origin_us` after the run's epoch and has room for
    /// `buckets` buckets, with gaps counted from `measure_us` (the measured phase); `verify` also
    /// keeps the ids of acknowledged records.
    pub fn new(origin_us: u64, buckets: usize, measure_us: u64, verify: bool) -> Recorder {
        Recorder {
            live: Mutex::new(Live {
                track: AckTrack::new(origin_us, buckets, measure_us),
                acked_ids: verify.then(IdSet::default),
                ..Live::default()
            }),
            ..Recorder::default()
        }
    }

    fn live<F: FnOnce(&mut Live)>(&self, f: F) {
        // A poisoned lock only means another thread panicked mid-update of plain counters; keep going.
        let mut l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut l);
    }

    fn with<F: FnOnce(&mut Window)>(&self, f: F) {
        self.live(|l| f(&mut l.window));
    }

    pub fn sent(&self) {
        self.with(|w| w.counters.sent += 1);
    }

    pub fn queue_full(&self) {
        self.with(|w| w.counters.queue_full += 1);
    }

    pub fn error(&self) {
        self.with(|w| w.counters.errors += 1);
    }

    /// Broker throttle time reported by one client's statistics since its previous report.
    pub fn throttled(&self, produce: bool, ms: u64) {
        self.with(|w| {
            if produce {
                w.counters.produce_throttle_ms += ms;
            } else {
                w.counters.fetch_throttle_ms += ms;
            }
        });
    }

    /// One acknowledged record: its publish latency, size, when the ack came (µs since the run's
    /// epoch), its topic and partition, and, with `--verify`, its payload (for the record id).
    pub fn acked(
        &self,
        latency_us: u64,
        bytes: usize,
        at_us: u64,
        partition: Option<(&str, i32)>,
        payload: Option<&[u8]>,
    ) {
        self.live(|l| {
            let w = &mut l.window;
            w.counters.acked += 1;
            w.counters.acked_bytes += bytes as u64;
            w.publish.record_us(latency_us);
            l.track.ack(at_us, partition);
            if let (Some(ids), Some(id)) = (l.acked_ids.as_mut(), payload.and_then(read_id)) {
                ids.insert(id);
            }
        });
    }

    /// The ack timeline so far (see [`AckTrack::finish`]).
    pub fn timeline(&self, load_end_us: u64, measure_start_us: u64) -> AckTimeline {
        let l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        l.track.finish(load_end_us, measure_start_us)
    }

    /// The ids of acknowledged records (empty without `--verify`).
    pub fn acked_ids(&self) -> IdSet {
        let l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        l.acked_ids.clone().unwrap_or_default()
    }

    pub fn consumed(&self, e2e_us: u64, bytes: usize) {
        self.with(|w| {
            w.counters.consumed += 1;
            w.counters.consumed_bytes += bytes as u64;
            w.e2e.record_us(e2e_us);
        });
    }

    /// Swaps the live window with `spare` (which must be reset), leaving the collected data in `spare`.
    pub fn take_into(&self, spare: &mut Window) {
        self.with(|w| std::mem::swap(w, spare));
    }
}

/// Which phase a window belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Warmup,
    Measure,
    Drain,
}

/// Builds one tenant's (or the total's) result from a stream of windows.
#[derive(Debug, Default)]
pub struct Aggregator {
    pub name: String,
    pub target_rate: u64,
    /// Everything since the start, warm-up included: only used for the backlog.
    all: Counters,
    measured: Counters,
    measured_s: f64,
    drained: u64,
    backlog_end: Option<u64>,
    publish: LatencyHist,
    e2e: LatencyHist,
    series: Vec<SecondSample>,
}

impl Aggregator {
    pub fn new(name: &str, target_rate: u64) -> Aggregator {
        Aggregator {
            name: name.to_string(),
            target_rate,
            ..Aggregator::default()
        }
    }

    pub fn backlog(&self) -> u64 {
        backlog(self.all.acked, self.all.consumed)
    }

    /// Adds one window of `secs` seconds ending `t_s` seconds after measurement started.
    /// Returns the per-second sample (also for warm-up, for the progress line).
    pub fn ingest(&mut self, w: &Window, phase: Phase, t_s: f64, secs: f64) -> SecondSample {
        self.all.add(&w.counters);
        let c = &w.counters;
        let sample = SecondSample {
            t_s,
            draining: phase == Phase::Drain,
            publish_msgs_s: per_sec(c.acked, secs),
            publish_mb_s: mb_per_sec(c.acked_bytes, secs),
            consume_msgs_s: per_sec(c.consumed, secs),
            consume_mb_s: mb_per_sec(c.consumed_bytes, secs),
            backlog: self.backlog(),
            errors: c.errors,
            produce_throttle_ms: c.produce_throttle_ms,
            fetch_throttle_ms: c.fetch_throttle_ms,
            publish_p50_ms: w.publish.quantile_ms(0.5),
            publish_p99_ms: w.publish.quantile_ms(0.99),
            publish_max_ms: w.publish.quantile_ms(1.0),
            e2e_p50_ms: w.e2e.quantile_ms(0.5),
            e2e_p99_ms: w.e2e.quantile_ms(0.99),
        };
        match phase {
            Phase::Warmup => {}
            Phase::Measure => {
                self.measured.add(c);
                self.measured_s += secs;
                self.publish.merge(&w.publish);
                self.e2e.merge(&w.e2e);
                self.series.push(sample.clone());
            }
            Phase::Drain => {
                if self.backlog_end.is_none() {
                    self.backlog_end = Some(backlog(
                        self.all.acked - c.acked,
                        self.all.consumed - c.consumed,
                    ));
                }
                // Late deliveries and consumption of measured messages still tell latency; errors count.
                self.measured.errors += c.errors;
                self.drained += c.consumed;
                self.publish.merge(&w.publish);
                self.e2e.merge(&w.e2e);
                self.series.push(sample.clone());
            }
        }
        sample
    }

    /// p99 publish and end-to-end latency over the measured phase so far (ms).
    pub fn p99_so_far(&self) -> (f64, f64) {
        (self.publish.quantile_ms(0.99), self.e2e.quantile_ms(0.99))
    }

    pub fn measured_s(&self) -> f64 {
        self.measured_s
    }

    pub fn finish(&self, skipped: u64) -> TenantResult {
        let c = &self.measured;
        let secs = self.measured_s;
        TenantResult {
            name: self.name.clone(),
            target_rate: self.target_rate,
            counters: c.clone(),
            publish_msgs_s: per_sec(c.acked, secs),
            publish_mb_s: mb_per_sec(c.acked_bytes, secs),
            consume_msgs_s: per_sec(c.consumed, secs),
            consume_mb_s: mb_per_sec(c.consumed_bytes, secs),
            backlog_end: self.backlog_end.unwrap_or_else(|| self.backlog()),
            backlog_after_drain: self.backlog(),
            drained: self.drained,
            rate_slots_skipped: skipped,
            publish_latency: self.publish.percentiles(),
            e2e_latency: self.e2e.percentiles(),
            publish_cdf: self.publish.cdf(),
            e2e_cdf: self.e2e.cdf(),
            series: self.series.clone(),
            acks: AckTimeline::default(),
            verify: None,
        }
    }
}

/// Tracks skipped pacer slots across a tenant's producers.
pub fn add_skipped(r: &Recorder, n: u64) {
    r.skipped.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(acked: u64, consumed: u64, lat_us: u64) -> Window {
        let r = Recorder::default();
        for _ in 0..acked {
            r.sent();
            r.acked(lat_us, 1000, 0, None, None);
        }
        for _ in 0..consumed {
            r.consumed(lat_us * 2, 1000);
        }
        let mut w = Window::default();
        r.take_into(&mut w);
        w
    }

    #[test]
    fn recorder_swaps_windows() {
        let r = Recorder::default();
        r.acked(100, 10, 0, None, None);
        r.error();
        let mut w = Window::default();
        r.take_into(&mut w);
        assert_eq!(w.counters.acked, 1);
        assert_eq!(w.counters.errors, 1);
        let mut again = Window::default();
        r.take_into(&mut again);
        assert_eq!(again.counters, Counters::default());
        w.reset();
        assert!(w.publish.is_empty());
        assert_eq!(w.counters, Counters::default());
    }

    #[test]
    fn warmup_excluded_backlog_kept() {
        let mut a = Aggregator::new("t", 0);
        // Warm-up: 100 acked, 40 consumed, slow (10 ms) latencies that must not show up.
        a.ingest(&window(100, 40, 10_000), Phase::Warmup, 0.0, 1.0);
        let s = a.ingest(&window(50, 60, 1_000), Phase::Measure, 1.0, 1.0);
        assert_eq!(s.backlog, 50);
        a.ingest(&window(50, 50, 1_000), Phase::Measure, 2.0, 1.0);
        a.ingest(&window(0, 50, 1_000), Phase::Drain, 3.0, 1.0);
        let r = a.finish(7);
        assert_eq!(r.counters.acked, 100);
        assert_eq!(r.counters.consumed, 110);
        assert_eq!(r.publish_msgs_s, 50.0);
        assert_eq!(r.consume_msgs_s, 55.0);
        assert_eq!(r.publish_mb_s, 0.05);
        assert_eq!(r.backlog_end, 50);
        assert_eq!(r.backlog_after_drain, 0);
        assert_eq!(r.drained, 50);
        assert_eq!(r.rate_slots_skipped, 7);
        assert_eq!(r.series.len(), 3);
        assert!(r.series[2].draining);
        // Only 1 ms samples were measured.
        assert!(
            (r.publish_latency.max_ms - 1.0).abs() < 0.01,
            "{:?}",
            r.publish_latency
        );
        assert!((r.e2e_latency.p99_ms - 2.0).abs() < 0.01);
    }

    #[test]
    fn merged_windows_make_the_total() {
        let mut w = window(10, 5, 500);
        w.merge(&window(20, 5, 1500));
        assert_eq!(w.counters.acked, 30);
        assert_eq!(w.publish.len(), 30);
        assert_eq!(w.e2e.len(), 10);
    }
}
