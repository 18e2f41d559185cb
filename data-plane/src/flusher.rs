//! Group commit: one task fsyncs on behalf of every producer waiting at that moment.
//!
//! Appends register their partition here (with a waiter for acks=-1). The flusher takes
//! everything pending, captures each partition's flush job (cheap, under a read lock), runs
//! all fsyncs on the blocking pool with no lock held, then marks the partitions flushed
//! (advancing their high watermarks), wakes long-polling fetches and answers the waiters.
//! Waiters registered after an append are always covered by the next round, because the
//! job is captured after they registered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{error, trace};

use crate::partition::Partition;

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
pub struct Flusher {
    pending: Mutex<Vec<(Arc<Partition>, Option<Waiter>)>>,
    wake: Notify,
}

impl Flusher {
    /// Make `partition`'s appends durable; the receiver resolves once they are.
    pub fn flush(&self, partition: Arc<Partition>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        self.push(partition, Some(tx));
        rx
    }

    /// Note that `partition` has unflushed appends (acks 0/1): flush soon, nobody waits.
    pub fn mark_dirty(&self, partition: Arc<Partition>) {
        self.push(partition, None);
    }

    fn push(&self, partition: Arc<Partition>, waiter: Option<Waiter>) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((partition, waiter));
        self.wake.notify_one();
    }

    /// Run flush rounds until `shutdown`; `data_changed` is notified after each round.
    pub async fn run(self: Arc<Self>, data_changed: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    // One last round so acknowledged-but-waiting appends are not dropped.
                    self.round(&data_changed).await;
                    return;
                }
                _ = self.wake.notified() => self.round(&data_changed).await,
            }
        }
    }

    async fn round(&self, data_changed: &Notify) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return;
        }
        // Group waiters by partition: each partition is fsynced once per round.
        let mut work: HashMap<usize, (Arc<Partition>, Vec<Waiter>)> = HashMap::new();
        for (p, w) in pending {
            let entry = work
                .entry(Arc::as_ptr(&p) as usize)
                .or_insert_with(|| (p, Vec::new()));
            entry.1.extend(w);
        }
        let started = std::time::Instant::now();
        let partitions = work.len();
        // One blocking task per partition, so the files' fsyncs run concurrently and one slow
        // file does not sit in front of the others.
        let tasks: Vec<_> = work
            .into_values()
            .map(|(p, waiters)| {
                let job = p.flush_job();
                let task = tokio::task::spawn_blocking(move || match job {
                    Some(job) => job.run().map(|()| Some(job.end_offset)),
                    None => Ok(None),
                });
                (p, waiters, task)
            })
            .collect();
        let mut waiter_count = 0;
        for (p, waiters, task) in tasks {
            let outcome = match task.await {
                Ok(Ok(end)) => {
                    match end {
                        Some(end) => p.mark_flushed(end),
                        None => p.mark_all_flushed(),
                    }
                    Ok(())
                }
                Ok(Err(e)) => Err(format!("fsync failed for {}-{}: {e}", p.topic, p.index)),
                Err(e) => Err(format!(
                    "flush task failed for {}-{}: {e}",
                    p.topic, p.index
                )),
            };
            if let Err(e) = &outcome {
                error!(error = %e, "flush failed; acks=-1 producers get KAFKA_STORAGE_ERROR");
            }
            waiter_count += waiters.len();
            for w in waiters {
                let _ = w.send(outcome.clone());
            }
        }
        trace!(
            partitions,
            waiters = waiter_count,
            micros = started.elapsed().as_micros() as u64,
            "flushed"
        );
        data_changed.notify_waiters();
    }
}
