//! The disk's acks=-1 latency floor: the publish latency the best broker that fsyncs before it
//! answers could give at a fixed write rate on this disk.
//!
//! A writer thread appends one chunk to every file each tick (like producers feeding partitions)
//! while one flusher thread per file runs group-commit rounds back to back: note how many ticks
//! are written, fdatasync the file, note when that finished. A tick is durable at the end of the
//! first round of *every* file that began after it was written (a produce request covers all
//! partitions); its latency is that minus the time it was written: the wait for the rounds in
//! progress plus its own, with no network, protocol, lock or scheduling cost on top. So a
//! broker's acks=-1 publish percentiles can be read against this floor taken on the same disk at
//! the same time; a broker cannot go below it without answering before the data is durable.
//!
//! The files are written with zeros before the clock starts and then overwritten in place
//! (wrapping around), so no fdatasync has to commit a size change or a block allocation: the
//! best case a broker can arrange (Tributary zeroes ahead of its segments for this reason).
//! Bounded: `files` files of [`REGION_BYTES`] each, removed afterwards.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::stats::{LatencyHist, Percentiles, MB};

/// Bytes written in place per file before wrapping around.
pub const REGION_BYTES: u64 = 32 << 20;
/// Time between the writer's chunks (librdkafka's `linger.ms` in the latency scenario is 1).
const TICK: Duration = Duration::from_millis(1);

/// The probe's figures, as written to its JSON result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitFloor {
    pub files: usize,
    pub rate_mb_s: f64,
    pub secs: f64,
    /// Group-commit rounds run, over all files (each round fdatasyncs one file).
    pub rounds: u64,
    /// Per written chunk: from its write to the end of the first round that covered it.
    pub latency: Percentiles,
    /// Share of each file's time spent in rounds longer than 10 ms (the disk stalling), averaged.
    pub stalled_share: f64,
}

impl CommitFloor {
    pub fn summary(&self) -> String {
        let l = &self.latency;
        format!(
            "% group-commit floor ({} files, {:.0} MB/s, {} rounds in {:.0} s): p50 {:.2} ms, \
             p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms; {:.1}% of the time in rounds over 10 ms\n",
            self.files,
            self.rate_mb_s,
            self.rounds,
            self.secs,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            self.stalled_share * 100.0
        )
    }
}

/// Run the probe for `dur` with `files` files under `dir`, written at `rate_bytes_s` in total.
pub fn measure(dir: &Path, files: usize, rate_bytes_s: f64, dur: Duration) -> Result<CommitFloor> {
    anyhow::ensure!(files > 0, "at least one file");
    anyhow::ensure!(rate_bytes_s >= 1.0, "a rate of at least 1 byte/s");
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("commit-floor-{i}.tmp")))
        .collect();
    let outcome = run(&paths, rate_bytes_s, dur);
    for p in &paths {
        let _ = fs::remove_file(p);
    }
    let (ticks, rounds) = outcome?;
    let hist = tick_latencies(&ticks, &rounds);
    Ok(CommitFloor {
        files,
        rate_mb_s: rate_bytes_s / MB,
        secs: dur.as_secs_f64(),
        rounds: rounds.iter().map(|r| r.len() as u64).sum(),
        latency: hist.percentiles(),
        stalled_share: stalled_share(&rounds, Duration::from_millis(10), dur),
    })
}

/// One group-commit round: how many ticks were written when it began, when it began and ended.
#[derive(Debug, Clone, Copy)]
struct Round {
    covers: usize,
    began: Instant,
    ended: Instant,
}

/// Per file, its rounds in order.
type Rounds = Vec<Vec<Round>>;

fn run(paths: &[PathBuf], rate_bytes_s: f64, dur: Duration) -> Result<(Vec<Instant>, Rounds)> {
    let chunk = ((rate_bytes_s * TICK.as_secs_f64()) / paths.len() as f64).max(1.0) as usize;
    let chunk = chunk.min(REGION_BYTES as usize);
    let files = paths
        .iter()
        .map(|p| zeroed(p))
        .collect::<Result<Vec<File>>>()?;
    let files = Arc::new(files);
    let written = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let flushers: Vec<_> = (0..files.len())
        .map(|i| {
            let (files, written, done) = (files.clone(), written.clone(), done.clone());
            std::thread::spawn(move || flush_rounds(&files[i], &written, &done))
        })
        .collect();
    let ticks = write_ticks(&files, chunk, dur, &written);
    done.store(true, Ordering::Release);
    let mut rounds = Vec::with_capacity(flushers.len());
    for f in flushers {
        rounds.push(
            f.join()
                .map_err(|_| anyhow::anyhow!("flusher thread panicked"))??,
        );
    }
    Ok((ticks?, rounds))
}

/// A file of [`REGION_BYTES`] zeros, durable, so overwriting it commits no metadata.
fn zeroed(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < REGION_BYTES {
        f.write_all_at(&zeros, at)?;
        at += zeros.len() as u64;
    }
    f.sync_all()?;
    Ok(f)
}

/// Every tick, one chunk into each file; returns when each tick's chunks were written.
fn write_ticks(
    files: &[File],
    chunk: usize,
    dur: Duration,
    written: &AtomicUsize,
) -> Result<Vec<Instant>> {
    let buf = vec![0x77u8; chunk];
    let start = Instant::now();
    let mut times = Vec::with_capacity((dur.as_secs_f64() / TICK.as_secs_f64()) as usize + 1);
    let mut pos = 0u64;
    while start.elapsed() < dur {
        if pos + chunk as u64 > REGION_BYTES {
            pos = 0;
        }
        for f in files {
            f.write_all_at(&buf, pos)?;
        }
        pos += chunk as u64;
        times.push(Instant::now());
        written.store(times.len(), Ordering::Release);
        let next = start + TICK * times.len() as u32;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(times)
}

/// Rounds of one file back to back while there is something new to cover, until `done` and
/// all is covered.
fn flush_rounds(file: &File, written: &AtomicUsize, done: &AtomicBool) -> Result<Vec<Round>> {
    let mut rounds = Vec::new();
    let mut covered = 0;
    loop {
        let finished = done.load(Ordering::Acquire);
        let covers = written.load(Ordering::Acquire);
        if covers == covered {
            if finished {
                return Ok(rounds);
            }
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        let began = Instant::now();
        file.sync_data()?;
        rounds.push(Round {
            covers,
            began,
            ended: Instant::now(),
        });
        covered = covers;
    }
}

/// Each tick's wait: to the latest, over the files, of the end of the first round of that file
/// whose `covers` includes it.
fn tick_latencies(ticks: &[Instant], rounds: &[Vec<Round>]) -> LatencyHist {
    let mut hist = LatencyHist::new();
    let mut next = vec![0usize; rounds.len()];
    'ticks: for (i, written) in ticks.iter().enumerate() {
        let mut durable = *written;
        for (file, r) in rounds.iter().zip(next.iter_mut()) {
            while *r < file.len() && file[*r].covers <= i {
                *r += 1;
            }
            let Some(round) = file.get(*r) else {
                break 'ticks;
            };
            durable = durable.max(round.ended);
        }
        hist.record_us(durable.duration_since(*written).as_micros() as u64);
    }
    hist
}

/// Share of each file's `dur` spent in rounds longer than `over`, averaged over the files.
fn stalled_share(rounds: &[Vec<Round>], over: Duration, dur: Duration) -> f64 {
    let stalled: Duration = rounds
        .iter()
        .flatten()
        .map(|r| r.ended.duration_since(r.began))
        .filter(|d| *d > over)
        .sum();
    stalled.as_secs_f64() / (dur.as_secs_f64() * rounds.len().max(1) as f64).max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_waits_for_the_first_round_that_began_after_it() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let ticks = [at(0), at(1), at(2)];
        let round = |covers, began, ended| Round {
            covers,
            began: at(began),
            ended: at(ended),
        };
        // File 0: a round covering the first tick ran from 0 to 10 ms, the next covered the
        // other two and ended at 12. File 1 covered all three by 3 ms.
        let rounds = [
            vec![round(1, 0, 10), round(3, 10, 12)],
            vec![round(3, 2, 3)],
        ];
        let p = tick_latencies(&ticks, &rounds).percentiles();
        assert_eq!(p.count, 3);
        // The histogram keeps 3 significant digits.
        let near = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(
            near(p.max_ms, 11.0),
            "tick 1 waits file 0's first round out, then its own: {p:?}"
        );
        assert!(
            near(p.p50_ms, 10.0),
            "tick 0 is durable when its slowest file is: {p:?}"
        );
        let share = stalled_share(&rounds, Duration::from_millis(5), Duration::from_millis(20));
        assert!(
            (share - 0.25).abs() < 1e-9,
            "one 10 ms round in 2 x 20 ms: {share}"
        );
    }

    #[test]
    fn the_probe_measures_every_tick_and_removes_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let floor = measure(dir.path(), 2, 2.0 * MB, Duration::from_millis(300)).unwrap();
        assert!(floor.rounds > 0);
        // Every tick but the ones after the last round is measured: at least most of them.
        assert!(floor.latency.count >= 100, "{floor:?}");
        assert!(floor.latency.max_ms >= floor.latency.p50_ms);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
