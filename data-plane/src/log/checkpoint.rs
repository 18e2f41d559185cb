//! Small persisted partition state, each file replaced atomically (write tmp, fsync, rename,
//! fsync the directory) so a crash leaves either the old or the new version:
//!
//! * `log-start-offset`: one decimal number (DeleteRecords / retention).
//! * `leader-epoch-checkpoint`: Kafka's format: version `0`, entry count, then `epoch start_offset`
//!   lines. The cache answers OffsetForLeaderEpoch.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) const LOG_START_FILE: &str = "log-start-offset";
pub(crate) const EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Atomically replace `dir/name` with `contents`.
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Read a checkpoint; `None` if it does not exist.
fn read(dir: &Path, name: &str) -> io::Result<Option<String>> {
    match fs::read_to_string(dir.join(name)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn read_log_start(dir: &Path) -> io::Result<Option<i64>> {
    Ok(read(dir, LOG_START_FILE)?.and_then(|s| s.trim().parse().ok()))
}

/// Leader epoch -> first offset written in it, ascending in both.
#[derive(Debug)]
pub(crate) struct EpochCache {
    dir: PathBuf,
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// Load the checkpoint; an unreadable one is dropped with a warning (it is only an
    /// optimisation for followers, and atomic replacement means this should not happen).
    pub fn load(dir: &Path) -> io::Result<EpochCache> {
        let entries = match read(dir, EPOCH_FILE)? {
            None => Vec::new(),
            Some(s) => parse_epochs(&s).unwrap_or_else(|| {
                tracing::warn!(dir = %dir.display(), "ignoring unparsable leader-epoch-checkpoint");
                Vec::new()
            }),
        };
        Ok(EpochCache {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    fn persist(&self) -> io::Result<()> {
        let mut s = format!("0\n{}\n", self.entries.len());
        for (e, o) in &self.entries {
            s.push_str(&format!("{e} {o}\n"));
        }
        write_atomic(&self.dir, EPOCH_FILE, &s)
    }

    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Record that `epoch` starts at `start_offset`, if it is newer than the latest epoch.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> io::Result<()> {
        if epoch < 0 || self.latest().is_some_and(|l| epoch <= l) {
            return Ok(());
        }
        self.entries.push((epoch, start_offset));
        self.persist()
    }

    /// Drop epochs that start at or after `end` (log truncated there).
    pub fn truncate_from_end(&mut self, end: i64) -> io::Result<()> {
        let keep = self.entries.partition_point(|e| e.1 < end);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persist()?;
        }
        Ok(())
    }

    /// Drop epochs wholly below `start`; the one containing it now starts at `start`.
    pub fn truncate_from_start(&mut self, start: i64) -> io::Result<()> {
        let below = self.entries.partition_point(|e| e.1 < start);
        if below == 0 {
            return Ok(());
        }
        let containing = self.entries[below - 1].0;
        let next_starts_at_start = self.entries.get(below).is_some_and(|e| e.1 == start);
        self.entries.drain(..below);
        if !next_starts_at_start {
            self.entries.insert(0, (containing, start));
        }
        self.persist()
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`: the largest epoch <= `epoch` and the offset
    /// where the next higher epoch starts (or `log_end` for the latest epoch); `None` for
    /// Kafka's (-1, -1).
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let latest = self.latest()?;
        if epoch < 0 {
            return None;
        }
        if epoch == latest {
            return Some((latest, log_end));
        }
        let higher = self.entries.partition_point(|e| e.0 <= epoch);
        let next_start = self.entries.get(higher)?.1;
        match higher.checked_sub(1) {
            // Smaller than every known epoch: Kafka answers with the requested epoch.
            None => Some((epoch, next_start)),
            Some(i) => Some((self.entries[i].0, next_start)),
        }
    }
}

fn parse_epochs(s: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = s.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let n: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Vec::new();
    for line in lines.take(n) {
        let mut parts = line.split_whitespace();
        let e: i32 = parts.next()?.parse().ok()?;
        let o: i64 = parts.next()?.parse().ok()?;
        if out
            .last()
            .is_some_and(|&(le, lo): &(i32, i64)| e <= le || o < lo)
        {
            return None;
        }
        out.push((e, o));
    }
    (out.len() == n).then_some(out)
}
