//! The result file and the final summary text.
//!
//! Owns: the JSON shape written by `--out` and read back by `loadtest plot` ([`RunResult`]), and the
//! rdkafka_performance-style summary printed at the end of a run.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::stats::{Counters, Percentiles};
use crate::timeline::AckTimeline;
use crate::verify::Verification;
use crate::workload::Workload;

/// Bumped when the JSON shape changes incompatibly.
pub const RESULT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub version: u32,
    /// The workload as run, passwords redacted.
    pub workload: Workload,
    /// Unix time (s) at which measurement started.
    pub started_unix_s: u64,
    /// Seconds the rates are computed over (the measured phase, warm-up excluded).
    pub measured_s: f64,
    pub tenants: Vec<TenantResult>,
    /// All tenants together.
    pub total: TenantResult,
    /// Commands run during the run (`--exec-at`), e.g. killing a broker.
    #[serde(default)]
    pub events: Vec<RunEvent>,
}

/// A command run at a set time into the measured phase (`loadtest run --exec-at SECS:CMD`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunEvent {
    /// The command as given (run with `sh -c`).
    pub command: String,
    /// When it started, seconds since measurement start, and as Unix time in ms.
    pub at_s: f64,
    pub at_unix_ms: u64,
    /// How long it ran, ms.
    pub took_ms: f64,
    /// Its exit status (None: killed by a signal, or still running at the end of the run).
    pub exit_code: Option<i32>,
    /// The first 4 KiB of its standard output and error.
    pub output: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TenantResult {
    pub name: String,
    /// Target msgs/s for this tenant (0 = max); for the total, the sum of the tenant targets.
    pub target_rate: u64,
    /// Counts over the measured phase.
    pub counters: Counters,
    pub publish_msgs_s: f64,
    pub publish_mb_s: f64,
    pub consume_msgs_s: f64,
    pub consume_mb_s: f64,
    /// Produced minus consumed at the end of the measured phase, and after the drain phase.
    pub backlog_end: u64,
    pub backlog_after_drain: u64,
    /// Messages consumed during the drain phase (after producers stopped).
    pub drained: u64,
    /// Pacer slots skipped because the producers could not keep up with the target rate.
    pub rate_slots_skipped: u64,
    /// Send -> delivery report.
    pub publish_latency: Percentiles,
    /// Producer send timestamp (in the payload) -> consumer receive.
    pub e2e_latency: Percentiles,
    /// `[quantile, ms]` for CDF plots.
    pub publish_cdf: Vec<[f64; 2]>,
    pub e2e_cdf: Vec<[f64; 2]>,
    /// One entry per second of the measured and drain phases.
    pub series: Vec<SecondSample>,
    /// Acknowledged produce per 100 ms from the start of the load, and the longest gap.
    #[serde(default)]
    pub acks: AckTimeline,
    /// `--verify`: acknowledged records read back after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verification>,
}

/// One second of one tenant (or the total).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SecondSample {
    /// Seconds since measurement started, at the end of this window.
    pub t_s: f64,
    /// True once producers have stopped and consumers are draining.
    pub draining: bool,
    pub publish_msgs_s: f64,
    pub publish_mb_s: f64,
    pub consume_msgs_s: f64,
    pub consume_mb_s: f64,
    pub backlog: u64,
    pub errors: u64,
    /// Broker throttle time reported during this second (ms, summed over clients).
    #[serde(default)]
    pub produce_throttle_ms: u64,
    #[serde(default)]
    pub fetch_throttle_ms: u64,
    pub publish_p50_ms: f64,
    pub publish_p99_ms: f64,
    /// Slowest acknowledgement in this second (0 in results written before it existed).
    #[serde(default)]
    pub publish_max_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
}

impl RunResult {
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("encoding result")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<RunResult> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing result {}", path.display()))
    }

    /// The end-of-run text: one rdkafka_performance-style block per tenant, then the total.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if self.tenants.len() > 1 {
            for t in &self.tenants {
                summary_block(&mut s, t, self.measured_s, &self.workload.compression);
            }
        }
        summary_block(
            &mut s,
            &self.total,
            self.measured_s,
            &self.workload.compression,
        );
        s
    }
}

fn summary_block(s: &mut String, t: &TenantResult, secs: f64, compression: &str) {
    let c = &t.counters;
    let _ = writeln!(
        s,
        "% [{}] {} messages produced ({} bytes) in {:.3} s: {:.0} msgs/s and {:.2} MB/s, {} errors, {} compression",
        t.name, c.acked, c.acked_bytes, secs, t.publish_msgs_s, t.publish_mb_s, c.errors, compression
    );
    let _ = writeln!(
        s,
        "% [{}] {} messages consumed ({} bytes) in {:.3} s: {:.0} msgs/s and {:.2} MB/s, backlog {} (after drain {})",
        t.name,
        c.consumed,
        c.consumed_bytes,
        secs,
        t.consume_msgs_s,
        t.consume_mb_s,
        t.backlog_end,
        t.backlog_after_drain
    );
    for (what, p) in [
        ("publish", &t.publish_latency),
        ("end-to-end", &t.e2e_latency),
    ] {
        let _ = writeln!(
            s,
            "% [{}] {what} latency ms: avg {:.3}, 50th {:.3}, 95th {:.3}, 99th {:.3}, 99.9th {:.3}, max {:.3} ({} samples)",
            t.name, p.mean_ms, p.p50_ms, p.p95_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
        );
    }
    if c.produce_throttle_ms > 0 || c.fetch_throttle_ms > 0 {
        let _ = writeln!(
            s,
            "% [{}] throttled by the broker: produce {} ms, fetch {} ms (summed over clients)",
            t.name, c.produce_throttle_ms, c.fetch_throttle_ms
        );
    }
    if t.acks.bucket_ms > 0 && t.acks.longest_gap_ms > 0.0 {
        let _ = writeln!(
            s,
            "% [{}] longest interval without an acknowledged produce: {:.0} ms from {:.2} s; on one partition ({}): {:.0} ms from {:.2} s",
            t.name,
            t.acks.longest_gap_ms,
            t.acks.longest_gap_from_s,
            t.acks.longest_partition_gap_at,
            t.acks.longest_partition_gap_ms,
            t.acks.longest_partition_gap_from_s
        );
    }
    if let Some(v) = &t.verify {
        let _ = writeln!(
            s,
            "% [{}] read back: {} acknowledged, {} read, {} acknowledged but missing, {} duplicates, {} unacknowledged but present{}",
            t.name,
            v.acked,
            v.read_back,
            v.missing,
            v.duplicates,
            v.unacked_present,
            if v.complete { "" } else { " (INCOMPLETE: not every partition was read to its high watermark)" }
        );
    }
    if t.rate_slots_skipped > 0 {
        let _ = writeln!(
            s,
            "% [{}] target rate {} msgs/s not reached: {} send slots skipped",
            t.name, t.target_rate, t.rate_slots_skipped
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencyHist;

    fn sample() -> RunResult {
        let mut h = LatencyHist::new();
        for i in 1..=100 {
            h.record_us(i * 10);
        }
        let t = TenantResult {
            name: "a".into(),
            target_rate: 100,
            counters: Counters {
                sent: 10,
                acked: 10,
                acked_bytes: 10_240,
                consumed: 9,
                consumed_bytes: 9216,
                ..Counters::default()
            },
            publish_msgs_s: 5.0,
            publish_mb_s: 0.00512,
            publish_latency: h.percentiles(),
            e2e_latency: h.percentiles(),
            publish_cdf: h.cdf(),
            e2e_cdf: h.cdf(),
            series: vec![SecondSample {
                t_s: 1.0,
                publish_p99_ms: 1.0,
                ..SecondSample::default()
            }],
            ..TenantResult::default()
        };
        let mut total = t.clone();
        total.name = "total".into();
        RunResult {
            version: RESULT_VERSION,
            workload: Workload::default(),
            started_unix_s: 1,
            measured_s: 2.0,
            tenants: vec![t],
            total,
            events: Vec::new(),
        }
    }

    #[test]
    fn json_round_trip_and_completeness() {
        let r = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        r.write(&path).unwrap();
        assert_eq!(RunResult::read(&path).unwrap(), r);

        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for key in [
            "version",
            "workload",
            "started_unix_s",
            "measured_s",
            "tenants",
            "total",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let total = &v["total"];
        for key in [
            "publish_msgs_s",
            "publish_mb_s",
            "consume_msgs_s",
            "consume_mb_s",
            "backlog_end",
            "publish_latency",
            "e2e_latency",
            "publish_cdf",
            "e2e_cdf",
            "series",
        ] {
            assert!(total.get(key).is_some(), "missing total.{key}");
        }
        for key in ["p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(total["e2e_latency"].get(key).is_some(), "missing {key}");
        }
        assert!(total["series"][0].get("e2e_p99_ms").is_some());
        assert!(total["series"][0].get("produce_throttle_ms").is_some());
        assert!(total["counters"].get("fetch_throttle_ms").is_some());
        assert!(v["workload"].get("bootstrap_servers").is_some());
    }

    #[test]
    fn summary_has_perf_tool_line() {
        let s = sample().summary();
        assert!(
            s.contains(
                "% [total] 10 messages produced (10240 bytes) in 2.000 s: 5 msgs/s and 0.01 MB/s"
            ),
            "{s}"
        );
        assert!(s.contains("99.9th"), "{s}");
    }
}
