//! Latency histograms, counters and rate math.
//!
//! Owns: [`LatencyHist`] (an HdrHistogram in microseconds with a fixed range, values clamped into it),
//! [`Percentiles`] as reported, [`Counters`] for one interval or a whole run, and the rate helpers.
//! MB here is 10^6 bytes, as in librdkafka's rdkafka_performance ("MB/s" = bytes per microsecond).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram tracks: 10 minutes in microseconds. Larger values are clamped to it.
pub const MAX_LATENCY_US: u64 = 600_000_000;
/// Bytes in a reported megabyte.
pub const MB: f64 = 1_000_000.0;

/// Quantiles stored in results for CDF plots (the tail is sampled densely).
pub const CDF_QUANTILES: &[f64] = &[
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.96, 0.97, 0.98,
    0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0,
];

/// A latency distribution in microseconds, 3 significant digits, fixed memory (~ 30 KiB).
#[derive(Clone, Debug)]
pub struct LatencyHist {
    h: Histogram<u64>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHist {
    pub fn new() -> Self {
        // Bounds are constants and valid, so this cannot fail at run time.
        let h = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("static histogram bounds are valid");
        LatencyHist { h }
    }

    /// Records one latency; values outside 1 us ..= MAX_LATENCY_US are clamped, never dropped.
    pub fn record_us(&mut self, us: u64) {
        let v = us.clamp(1, MAX_LATENCY_US);
        // In range by construction; saturating_record never fails for in-range values.
        self.h.saturating_record(v);
    }

    pub fn merge(&mut self, other: &LatencyHist) {
        // Same bounds on both sides, so `add` cannot fail; fall back to per-value copy if it ever does.
        if self.h.add(&other.h).is_err() {
            for v in other.h.iter_recorded() {
                self.h
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Forgets all samples, keeping the allocation.
    pub fn reset(&mut self) {
        self.h.reset();
    }

    pub fn len(&self) -> u64 {
        self.h.len()
    }

    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    /// Latency at quantile `q` (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.h.is_empty() {
            return 0.0;
        }
        self.h.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.h.len(),
            mean_ms: self.h.mean() / 1000.0,
            p50_ms: self.quantile_ms(0.50),
            p95_ms: self.quantile_ms(0.95),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
            max_ms: self.h.max() as f64 / 1000.0,
        }
    }

    /// `[quantile, ms]` pairs at [`CDF_QUANTILES`]; empty when nothing was recorded.
    pub fn cdf(&self) -> Vec<[f64; 2]> {
        if self.h.is_empty() {
            return Vec::new();
        }
        CDF_QUANTILES
            .iter()
            .map(|&q| [q, self.quantile_ms(q)])
            .collect()
    }
}

/// Reported latency figures, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Event counts over some span (one second, or the measured run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Messages handed to the client (enqueued).
    pub sent: u64,
    /// Messages acknowledged by the broker (successful delivery reports), and their payload bytes.
    pub acked: u64,
    pub acked_bytes: u64,
    /// Messages read by consumers, and their payload bytes.
    pub consumed: u64,
    pub consumed_bytes: u64,
    /// Failed delivery reports, rejected sends (other than a full local queue) and consumer errors.
    pub errors: u64,
    /// Times a send found the local queue full and had to wait (back-pressure, not an error).
    pub queue_full: u64,
    /// Broker throttle time (KIP-219 `throttle_time_ms`) summed over produce and fetch responses, in ms,
    /// as reported by librdkafka's statistics (all clients added up).
    #[serde(default)]
    pub produce_throttle_ms: u64,
    #[serde(default)]
    pub fetch_throttle_ms: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.acked_bytes += o.acked_bytes;
        self.consumed += o.consumed;
        self.consumed_bytes += o.consumed_bytes;
        self.errors += o.errors;
        self.queue_full += o.queue_full;
        self.produce_throttle_ms += o.produce_throttle_ms;
        self.fetch_throttle_ms += o.fetch_throttle_ms;
    }
}

/// Events per second; 0 for an empty span.
pub fn per_sec(count: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        count as f64 / secs
    }
}

/// Megabytes (10^6 bytes) per second; 0 for an empty span.
pub fn mb_per_sec(bytes: u64, secs: f64) -> f64 {
    per_sec(bytes, secs) / MB
}

/// Messages produced but not yet consumed, never negative (consumers may read older data).
pub fn backlog(produced: u64, consumed: u64) -> u64 {
    produced.saturating_sub(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_uniform_values() {
        let mut h = LatencyHist::new();
        for us in 1..=10_000u64 {
            h.record_us(us * 100); // 0.1 ms .. 1000 ms
        }
        let p = h.percentiles();
        assert_eq!(p.count, 10_000);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.01;
        assert!(close(p.p50_ms, 500.0), "{p:?}");
        assert!(close(p.p95_ms, 950.0), "{p:?}");
        assert!(close(p.p99_ms, 990.0), "{p:?}");
        assert!(close(p.p999_ms, 999.0), "{p:?}");
        assert!(close(p.max_ms, 1000.0), "{p:?}");
        assert!(close(p.mean_ms, 500.05), "{p:?}");
    }

    #[test]
    fn empty_and_clamped() {
        let h = LatencyHist::new();
        assert_eq!(h.percentiles(), Percentiles::default());
        assert!(h.cdf().is_empty());
        let mut h = LatencyHist::new();
        h.record_us(0);
        h.record_us(u64::MAX);
        assert_eq!(h.len(), 2);
        assert!(h.percentiles().max_ms >= (MAX_LATENCY_US as f64 / 1000.0) * 0.999);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = LatencyHist::new();
        let mut b = LatencyHist::new();
        let mut all = LatencyHist::new();
        for i in 0..1000u64 {
            a.record_us(i * 7 + 1);
            all.record_us(i * 7 + 1);
        }
        for i in 0..500u64 {
            b.record_us(i * 1000 + 5);
            all.record_us(i * 1000 + 5);
        }
        a.merge(&b);
        assert_eq!(a.percentiles(), all.percentiles());
        assert_eq!(a.len(), 1500);
    }

    #[test]
    fn cdf_is_monotonic_and_complete() {
        let mut h = LatencyHist::new();
        for i in 1..=1000u64 {
            h.record_us(i * i);
        }
        let cdf = h.cdf();
        assert_eq!(cdf.len(), CDF_QUANTILES.len());
        assert!(cdf
            .windows(2)
            .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]));
        assert_eq!(cdf.last().unwrap()[0], 1.0);
    }

    #[test]
    fn rate_math() {
        assert_eq!(per_sec(500, 2.0), 250.0);
        assert_eq!(per_sec(500, 0.0), 0.0);
        assert_eq!(mb_per_sec(50_000_000, 10.0), 5.0);
        assert_eq!(backlog(10, 3), 7);
        assert_eq!(backlog(3, 10), 0);
        let mut c = Counters {
            sent: 1,
            acked: 2,
            acked_bytes: 3,
            consumed: 4,
            consumed_bytes: 5,
            errors: 6,
            queue_full: 7,
            produce_throttle_ms: 8,
            fetch_throttle_ms: 9,
        };
        c.add(&c.clone());
        assert_eq!(c.queue_full, 14);
        assert_eq!(c.acked_bytes, 6);
        assert_eq!(c.fetch_throttle_ms, 18);
    }
}
