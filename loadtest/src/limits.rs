//! What the machine itself can do, so broker figures can be read as ratios of a limit:
//! loopback TCP throughput (one connection, as a producer has), sequential write throughput of a
//! data directory with and without fsync, and the latency of fsync rounds at a fixed write rate
//! over several files (what a group-committing broker at that rate cannot beat).
//!
//! Everything is bounded in time and bytes and cleans up its files.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::stats::LatencyHist;

/// The measured limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    pub loopback_tcp_mb_s: f64,
    pub disk_write_mb_s: f64,
    pub disk_write_fsync_mb_s: f64,
    /// fsync every this many bytes in the `disk_write_fsync_mb_s` figure.
    pub fsync_every_bytes: u64,
    /// Rounds of "append a chunk to each file, fdatasync each" at `fsync_round_rate_mb_s`.
    pub fsync_round_files: usize,
    pub fsync_round_rate_mb_s: f64,
    pub fsync_round_p50_ms: f64,
    pub fsync_round_p99_ms: f64,
    pub fsync_round_p999_ms: f64,
    pub fsync_round_max_ms: f64,
}

const MB: f64 = 1_000_000.0;
const CHUNK: usize = 1 << 20;

/// Bytes per second through one loopback TCP connection for `dur`.
pub fn loopback_tcp(dur: Duration) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut s = TcpStream::connect(addr)?;
    let buf = vec![7u8; CHUNK];
    let start = Instant::now();
    while start.elapsed() < dur {
        s.write_all(&buf)?;
    }
    drop(s);
    let total = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Sequential write throughput into `dir` for `dur` (bytes/s), with an fdatasync every
/// `fsync_every` bytes (0 = never, one at the end).
pub fn disk_write(dir: &Path, dur: Duration, fsync_every: u64) -> Result<f64> {
    let path = dir.join("limits-seq.tmp");
    let mut f = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let buf = vec![0x5au8; CHUNK];
    let start = Instant::now();
    let (mut written, mut since_sync) = (0u64, 0u64);
    // Bounded by time and by 8 GiB, whichever comes first.
    while start.elapsed() < dur && written < 8 << 30 {
        f.write_all(&buf)?;
        written += CHUNK as u64;
        since_sync += CHUNK as u64;
        if fsync_every > 0 && since_sync >= fsync_every {
            f.sync_data()?;
            since_sync = 0;
        }
    }
    f.sync_data()?;
    let rate = written as f64 / start.elapsed().as_secs_f64();
    drop(f);
    fs::remove_file(&path)?;
    Ok(rate)
}

/// Latency of fsync rounds: every tick, append `rate / files / ticks` bytes to each of `files`
/// files and fdatasync each. Returns the round latency histogram.
pub fn fsync_rounds(
    dir: &Path,
    files: usize,
    rate_bytes_s: f64,
    dur: Duration,
) -> Result<LatencyHist> {
    let tick = Duration::from_micros(2_500);
    let chunk = ((rate_bytes_s * tick.as_secs_f64()) / files as f64).max(1.0) as usize;
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("limits-round-{i}.tmp")))
        .collect();
    let mut handles = paths
        .iter()
        .map(|p| {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(p)
        })
        .collect::<std::io::Result<Vec<File>>>()?;
    let buf = vec![0x33u8; chunk];
    let mut hist = LatencyHist::new();
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < dur {
        for f in handles.iter_mut() {
            f.write_all(&buf)?;
        }
        let t = Instant::now();
        for f in &handles {
            f.sync_data()?;
        }
        hist.record_us(t.elapsed().as_micros() as u64);
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    drop(handles);
    for p in &paths {
        fs::remove_file(p)?;
    }
    Ok(hist)
}

/// Run every probe, `secs` seconds each, with files under `dir`.
pub fn measure(dir: &Path, secs: u64) -> Result<Limits> {
    fs::create_dir_all(dir)?;
    let dur = Duration::from_secs(secs.max(1));
    let fsync_every = 1 << 20;
    let (files, round_rate) = (8, 50.0 * MB);
    eprintln!("limits: loopback TCP for {secs} s");
    let tcp = loopback_tcp(dur)?;
    eprintln!("limits: sequential write for {secs} s");
    let write = disk_write(dir, dur, 0)?;
    eprintln!("limits: sequential write + fdatasync every 1 MiB for {secs} s");
    let write_sync = disk_write(dir, dur, fsync_every)?;
    eprintln!("limits: fsync rounds over {files} files at 50 MB/s for {secs} s");
    let rounds = fsync_rounds(dir, files, round_rate, dur)?.percentiles();
    Ok(Limits {
        loopback_tcp_mb_s: tcp / MB,
        disk_write_mb_s: write / MB,
        disk_write_fsync_mb_s: write_sync / MB,
        fsync_every_bytes: fsync_every,
        fsync_round_files: files,
        fsync_round_rate_mb_s: round_rate / MB,
        fsync_round_p50_ms: rounds.p50_ms,
        fsync_round_p99_ms: rounds.p99_ms,
        fsync_round_p999_ms: rounds.p999_ms,
        fsync_round_max_ms: rounds.max_ms,
    })
}

impl Limits {
    pub fn summary(&self) -> String {
        format!(
            "% loopback TCP (1 connection): {:.0} MB/s\n\
             % disk sequential write: {:.0} MB/s; with fdatasync every {} KiB: {:.0} MB/s\n\
             % fsync rounds ({} files, {:.0} MB/s): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms\n",
            self.loopback_tcp_mb_s,
            self.disk_write_mb_s,
            self.fsync_every_bytes / 1024,
            self.disk_write_fsync_mb_s,
            self.fsync_round_files,
            self.fsync_round_rate_mb_s,
            self.fsync_round_p50_ms,
            self.fsync_round_p99_ms,
            self.fsync_round_p999_ms,
            self.fsync_round_max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_measure_something_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let short = Duration::from_millis(200);
        assert!(loopback_tcp(short).unwrap() > 1.0 * MB);
        assert!(disk_write(dir.path(), short, 0).unwrap() > 1.0 * MB);
        assert!(disk_write(dir.path(), short, 1 << 20).unwrap() > 0.1 * MB);
        let hist = fsync_rounds(dir.path(), 2, 2.0 * MB, short)
            .unwrap()
            .percentiles();
        // How many rounds fit in 200 ms depends on the disk and the machine's load (a
        // run with 9 failed once); that it measured any is what this test can assert.
        assert!(hist.count > 0 && hist.p50_ms > 0.0 && hist.max_ms >= hist.p99_ms);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe files removed"
        );
        let l = Limits {
            loopback_tcp_mb_s: 1000.0,
            disk_write_mb_s: 500.0,
            disk_write_fsync_mb_s: 200.0,
            fsync_every_bytes: 1 << 20,
            fsync_round_files: 8,
            fsync_round_rate_mb_s: 50.0,
            fsync_round_p50_ms: 1.0,
            fsync_round_p99_ms: 5.0,
            fsync_round_p999_ms: 20.0,
            fsync_round_max_ms: 100.0,
        };
        assert!(l
            .summary()
            .contains("loopback TCP (1 connection): 1000 MB/s"));
    }
}
