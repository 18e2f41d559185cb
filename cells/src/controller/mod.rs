//! The controller logic, run on the Raft leader: validates each request against the image
//! and commits the resulting records through Raft.
//!
//! Every mutating call first takes [`Controller::lead`], which checks leadership and holds
//! one async lock for the whole validate-commit-apply sequence, so each request sees
//! everything committed before it (`client_write` returns after the entry is applied on
//! the leader). Broker sessions live only in memory on the leader; a new leader gives every
//! broker a fresh session from the moment it took over. A background task
//! ([`Controller::run_ticker`]) fences expired sessions and runs preferred-leader election.
//!
//! Must never depend on the gRPC server (`crate::server`); the server calls in here.

mod brokers;
mod cluster;
pub mod elect;
pub mod placement;
mod topics;
mod usage;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use proto::cell::v1::{metadata_record::Record, MetadataRecord, PartitionRecord};
use tokio::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

use crate::config::ControllerConfig;
use crate::error::CellError;
use crate::raft::{MetadataBatch, NodeId, Raft};
use crate::watch::MetadataHub;

pub struct Controller {
    raft: Raft,
    hub: Arc<MetadataHub>,
    config: Arc<ControllerConfig>,
    state: Mutex<LeaderState>,
}

/// What only the leader knows; reset when a new term starts.
#[derive(Default)]
pub(crate) struct LeaderState {
    /// The term these sessions belong to (0: none yet).
    term: u64,
    sessions: HashMap<i32, Session>,
    /// The latest session stream each broker opened (a generation counter), so only the
    /// closing of a broker's current stream counts as losing it.
    session_streams: HashMap<i32, u64>,
    next_stream: u64,
    last_preferred: Option<Instant>,
    /// Tenants' usage per broker and the quota shares computed from it.
    quota: crate::quota::QuotaCoordinator,
    /// Tenants' KIP-599 partition mutation buckets.
    mutations: crate::quota::MutationQuotas,
    /// The brokers' latest usage counters (Metrics API).
    usage: crate::usage::UsageTable,
}

#[derive(Clone, Copy)]
struct Session {
    epoch: i64,
    last_seen: Instant,
}

fn wrap(r: Record) -> MetadataRecord {
    MetadataRecord { record: Some(r) }
}

fn partitions(records: Vec<PartitionRecord>) -> impl Iterator<Item = MetadataRecord> {
    records.into_iter().map(|p| wrap(Record::Partition(p)))
}

impl Controller {
    pub fn new(raft: Raft, hub: Arc<MetadataHub>, config: Arc<ControllerConfig>) -> Controller {
        Controller {
            raft,
            hub,
            config,
            state: Mutex::new(LeaderState::default()),
        }
    }

    pub fn hub(&self) -> &Arc<MetadataHub> {
        &self.hub
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The leader's node id and gRPC address, as far as this voter knows.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .or_else(|| self.config.voters.get(&id).cloned())?;
        Some((id, addr))
    }

    fn not_leader(&self) -> CellError {
        CellError::NotLeader {
            leader: self
                .leader()
                .filter(|(id, _)| *id != self.config.node_id)
                .map(|(_, a)| a),
        }
    }

    /// Checks leadership and takes the mutation lock. The first call of a term waits until
    /// everything committed before the term is applied, and starts every broker's session.
    pub(crate) async fn lead(&self) -> Result<MutexGuard<'_, LeaderState>, CellError> {
        let (state, term) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            return Err(self.not_leader());
        }
        let mut guard = self.state.lock().await;
        if guard.term != term {
            self.raft
                .ensure_linearizable()
                .await
                .map_err(|_| self.not_leader())?;
            let now = Instant::now();
            guard.sessions = self
                .hub
                .image()
                .brokers
                .values()
                .map(|b| {
                    (
                        b.broker_id,
                        Session {
                            epoch: b.broker_epoch,
                            last_seen: now,
                        },
                    )
                })
                .collect();
            guard.term = term;
            guard.last_preferred = Some(now);
            tracing::info!(
                term,
                brokers = guard.sessions.len(),
                "leading the cell: fresh broker sessions"
            );
        }
        Ok(guard)
    }

    /// Commits `records` (as several entries when large); returns the offset of the last.
    /// With nothing to commit, returns the current offset.
    pub(crate) async fn commit(&self, records: Vec<MetadataRecord>) -> Result<u64, CellError> {
        let mut offset = self.hub.offset();
        for chunk in records.chunks(self.config.max_records_per_entry) {
            let changes = crate::metrics::PartitionChanges::of(&self.hub.image(), chunk);
            let batch = MetadataBatch::from_records(chunk.to_vec());
            let started = Instant::now();
            match self.raft.client_write(batch).await {
                Ok(resp) => {
                    offset = resp.log_id.index;
                    crate::metrics::committed(chunk.len(), started.elapsed());
                    changes.publish();
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    return Err(self.not_leader())
                }
                Err(e) => return Err(CellError::Raft(e.to_string())),
            }
        }
        Ok(offset)
    }

    /// Fences expired sessions (every `session_timeout / 4`, at least every 250 ms) and runs
    /// the preferred-leader election, while this voter leads. Stops on `shutdown`.
    pub async fn run_ticker(self: Arc<Self>, shutdown: CancellationToken) {
        let period = (self.config.session_timeout / 4).min(std::time::Duration::from_millis(250));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.raft.metrics().borrow().state != ServerState::Leader {
                continue;
            }
            if let Err(e) = self.tick().await {
                tracing::debug!(error = %e, "controller tick");
            }
        }
    }

    async fn tick(&self) -> Result<(), CellError> {
        let mut guard = self.lead().await?;
        self.fence_expired(&mut guard).await?;
        let due = guard
            .last_preferred
            .is_none_or(|t| t.elapsed() >= self.config.preferred_election_interval);
        if due {
            guard.last_preferred = Some(Instant::now());
            let elections: [fn(&crate::image::CellImage) -> Vec<PartitionRecord>; 2] =
                [elect::elect_leaderless, elect::preferred];
            for elect in elections {
                let records = elect(&self.hub.image());
                if !records.is_empty() {
                    tracing::info!(partitions = records.len(), "partition leader election");
                    self.commit(partitions(records).collect()).await?;
                }
            }
        }
        Ok(())
    }
}
