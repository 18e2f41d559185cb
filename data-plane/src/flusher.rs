//! Group commit per partition: each partition's appends are made durable by at most one fsync
//! at a time, which covers everyone who appended before it began.
//!
//! An append registers its partition here (with a waiter for acks=-1). If no fsync of that
//! partition is running, one starts at once; otherwise the partition is marked to go again, and
//! the waiter joins the next fsync, which starts as soon as the running one ends. A flush
//! captures the partition's flush job (cheap, under a read lock) when it begins, runs the fsync
//! on the blocking pool with no lock held, then marks the partition flushed (advancing its high
//! watermark), wakes long-polling fetches and answers its waiters.
//!
//! Why per partition and not in broker-wide rounds: a produce request appends its partitions one
//! after another, so a round woken by the first of them flushed that one alone and left the rest
//! to the rounds after it; one request waited for several fsync rounds in a row (the acks=-1 p99
//! was ~5x the disk's group-commit floor, BENCHMARKS.md). Here the partitions of a request are
//! fsynced side by side, and a slow file holds up only the requests that wrote to it.
//!
//! Bounded: one fsync in flight per partition, and at most [`MAX_CONCURRENT_FSYNCS`] at once
//! over the broker (the rest queue for a permit).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{error, trace};

use crate::partition::Partition;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Fsyncs running at once on the blocking pool, over all partitions.
pub const MAX_CONCURRENT_FSYNCS: usize = 64;

/// A partition with an fsync in flight: who waits for the next one, and whether it is needed.
#[derive(Default)]
struct Queued {
    waiters: Vec<Waiter>,
    again: bool,
}

pub struct Flusher {
    /// Partitions with an fsync in flight, by the address of their `Arc` (held by the flush task,
    /// so it stays unique while the entry exists).
    in_flight: Mutex<HashMap<usize, Queued>>,
    fsyncs: Semaphore,
    /// Notified after every flush: long-polling fetches and followers read new data.
    data_changed: Arc<Notify>,
    /// Notified when the last flush in flight ends (for shutdown).
    idle: Notify,
}

impl Flusher {
    pub fn new(data_changed: Arc<Notify>) -> Arc<Self> {
        Arc::new(Flusher {
            in_flight: Mutex::default(),
            fsyncs: Semaphore::new(MAX_CONCURRENT_FSYNCS),
            data_changed,
            idle: Notify::new(),
        })
    }

    /// Make `partition`'s appends durable; the receiver resolves once they are.
    pub fn flush(
        self: &Arc<Self>,
        partition: Arc<Partition>,
    ) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        self.push(partition, Some(tx));
        rx
    }

    /// Note that `partition` has unflushed appends (acks 0/1): flush soon, nobody waits.
    pub fn mark_dirty(self: &Arc<Self>, partition: Arc<Partition>) {
        self.push(partition, None);
    }

    fn push(self: &Arc<Self>, partition: Arc<Partition>, waiter: Option<Waiter>) {
        let key = Arc::as_ptr(&partition) as usize;
        match self.lock().entry(key) {
            Entry::Occupied(mut queued) => {
                // The fsync in flight may have captured its job before this append: go again.
                let queued = queued.get_mut();
                queued.again = true;
                queued.waiters.extend(waiter);
                return;
            }
            Entry::Vacant(slot) => {
                slot.insert(Queued::default());
            }
        }
        let flusher = self.clone();
        tokio::spawn(async move { flusher.flush_until_caught_up(partition, waiter).await });
    }

    /// Flush `partition` for `waiter`, then again for as long as appends came in meanwhile.
    async fn flush_until_caught_up(&self, partition: Arc<Partition>, waiter: Option<Waiter>) {
        let key = Arc::as_ptr(&partition) as usize;
        let mut waiters: Vec<Waiter> = waiter.into_iter().collect();
        loop {
            let outcome = self.flush_once(&partition).await;
            if let Err(e) = &outcome {
                error!(error = %e, "flush failed; acks=-1 producers get KAFKA_STORAGE_ERROR");
            }
            for w in waiters.drain(..) {
                let _ = w.send(outcome.clone());
            }
            self.data_changed.notify_waiters();
            let mut in_flight = self.lock();
            let Some(queued) = in_flight.get_mut(&key) else {
                return; // not reachable: only this task removes its entry
            };
            if queued.again {
                queued.again = false;
                waiters = std::mem::take(&mut queued.waiters);
                continue;
            }
            in_flight.remove(&key);
            if in_flight.is_empty() {
                self.idle.notify_waiters();
            }
            return;
        }
    }

    /// One fsync of `partition` covering everything appended to it before now.
    async fn flush_once(&self, partition: &Arc<Partition>) -> Result<(), String> {
        let name = || format!("{}-{}", partition.topic, partition.index);
        let _permit = self
            .fsyncs
            .acquire()
            .await
            .map_err(|_| format!("flusher closed before {} was flushed", name()))?;
        let started = Instant::now();
        // Captured after every waiter of this flush registered, so it covers their appends.
        let job = partition.flush_job();
        let end = match job {
            None => None,
            Some(job) => {
                let end = job.end_offset;
                tokio::task::spawn_blocking(move || job.run())
                    .await
                    .map_err(|e| format!("flush task failed for {}: {e}", name()))?
                    .map_err(|e| format!("fsync failed for {}: {e}", name()))?;
                Some(end)
            }
        };
        match end {
            Some(end) => partition.mark_flushed(end),
            None => partition.mark_all_flushed(),
        }
        trace!(
            topic = %partition.topic,
            partition = partition.index,
            micros = started.elapsed().as_micros() as u64,
            "flushed"
        );
        Ok(())
    }

    /// Until `shutdown`; then wait for the fsyncs in flight, so appends waiting on them are
    /// answered before the broker stops.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        loop {
            let idle = self.idle.notified();
            if self.lock().is_empty() {
                return;
            }
            idle.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Queued>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::group_store::encode_batch;
    use crate::config::LogConfig;
    use crate::group::Record;
    use uuid::Uuid;

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        // durable_hw: the high watermark moves only when a flush marks the data durable.
        let p = Partition::open(dir, "t", Uuid::new_v4(), 0, LogConfig::default(), true);
        Arc::new(p.unwrap())
    }

    /// Appends race the fsyncs in flight (most land while one runs and must go "again"): a
    /// waiter is answered only once a flush that began after its append has ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_is_answered_after_an_fsync_that_covers_its_append() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path());
        let flusher = Flusher::new(Arc::new(Notify::new()));
        let batch = encode_batch(&[Record::GroupDelete { group: "g".into() }], 0).unwrap();
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (p, flusher, batch) = (p.clone(), flusher.clone(), batch.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let appended = p.append(&batch, 0).unwrap();
                        flusher.flush(p.clone()).await.unwrap().unwrap();
                        let hw = p.high_watermark();
                        assert!(hw > appended.last_offset, "hw {hw} after {appended:?}");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(p.high_watermark(), 400);
        assert!(flusher.lock().is_empty(), "no flush left in flight");
    }

    #[tokio::test]
    async fn shutdown_waits_for_the_fsyncs_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path());
        let flusher = Flusher::new(Arc::new(Notify::new()));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(flusher.clone().run(shutdown.clone()));
        let batch = encode_batch(&[Record::GroupDelete { group: "g".into() }], 0).unwrap();
        p.append(&batch, 0).unwrap();
        let waiter = flusher.flush(p.clone());
        shutdown.cancel();
        run.await.unwrap();
        // run() returned, so the flush had ended and its waiter was answered.
        assert!(matches!(waiter.await, Ok(Ok(()))));
        assert_eq!(p.high_watermark(), 1);
    }
}
