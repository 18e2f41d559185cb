//! Broker-facing logic: registration, heartbeats and sessions, fencing, controlled
//! shutdown, drain, and ISR changes (`AlterPartition`).

use std::collections::BTreeSet;
use std::time::Instant;

use proto::cell::v1::{
    metadata_record::Record, AlterPartitionRequest, AlterPartitionResponse, BrokerHeartbeatRequest,
    BrokerHeartbeatResponse, BrokerRecord, BrokerState, BrokerStateRecord, PartitionRecord,
    RegisterBrokerRequest,
};

use super::{elect, partitions, wrap, Controller, LeaderState, Session};
use crate::error::{codes, CellError};
use crate::image::topic_uuid;

impl Controller {
    pub async fn register_broker(&self, req: RegisterBrokerRequest) -> Result<i64, CellError> {
        if req.broker_id < 0 || req.incarnation_id.is_empty() {
            return Err(CellError::InvalidArgument(
                "broker_id must be >= 0 and incarnation_id non-empty".into(),
            ));
        }
        let mut guard = self.lead().await?;
        let existing = self.hub.image().brokers.get(&req.broker_id).cloned();
        if let Some(b) = existing.filter(|b| b.incarnation_id == req.incarnation_id) {
            return Ok(b.broker_epoch);
        }
        // A new incarnation: the old one's leaderships and ISR places go first.
        let mut records = vec![wrap(Record::Broker(BrokerRecord {
            broker_id: req.broker_id,
            incarnation_id: req.incarnation_id.clone(),
            // Stamped with the entry's index when applied (the state machine).
            broker_epoch: 0,
            zone: req.zone.clone(),
            kafka: req.kafka.clone(),
            sasl: req.sasl.clone(),
            sasl_ssl: req.sasl_ssl.clone(),
            state: BrokerState::Fenced as i32,
        }))];
        records.extend(partitions(elect::move_away(
            &self.hub.image(),
            &BTreeSet::from([req.broker_id]),
            true,
        )));
        self.commit(records).await?;
        let epoch = self
            .hub
            .image()
            .brokers
            .get(&req.broker_id)
            .map(|b| b.broker_epoch)
            .ok_or_else(|| CellError::Raft("registration not applied".into()))?;
        guard.sessions.insert(
            req.broker_id,
            Session {
                epoch,
                last_seen: Instant::now(),
            },
        );
        tracing::info!(broker = req.broker_id, epoch, zone = %req.zone, "broker registered");
        crate::metrics::broker_registered();
        Ok(epoch)
    }

    fn current_broker(&self, id: i32, epoch: i64) -> Result<BrokerRecord, CellError> {
        let b = self
            .hub
            .image()
            .brokers
            .get(&id)
            .cloned()
            .ok_or(CellError::UnknownBroker(id))?;
        if b.broker_epoch != epoch {
            return Err(CellError::StaleBrokerEpoch {
                broker_id: id,
                epoch,
                current: b.broker_epoch,
            });
        }
        Ok(b)
    }

    /// Commits `state` for `broker` and moves its leaderships (and ISR places, unless it
    /// is draining) away.
    async fn set_state(&self, broker: &BrokerRecord, state: BrokerState) -> Result<u64, CellError> {
        let mut records = vec![wrap(Record::BrokerState(BrokerStateRecord {
            broker_id: broker.broker_id,
            broker_epoch: broker.broker_epoch,
            state: state as i32,
        }))];
        if state != BrokerState::Active {
            records.extend(partitions(elect::move_away(
                &self.hub.image(),
                &BTreeSet::from([broker.broker_id]),
                state != BrokerState::Draining,
            )));
        }
        tracing::info!(broker = broker.broker_id, state = ?state, "broker state");
        self.commit(records).await
    }

    pub async fn broker_heartbeat(
        &self,
        req: BrokerHeartbeatRequest,
    ) -> Result<BrokerHeartbeatResponse, CellError> {
        let mut guard = self.lead().await?;
        let broker = self.current_broker(req.broker_id, req.broker_epoch)?;
        guard.sessions.insert(
            req.broker_id,
            Session {
                epoch: broker.broker_epoch,
                last_seen: Instant::now(),
            },
        );
        let state = BrokerState::try_from(broker.state).unwrap_or(BrokerState::Fenced);
        if req.want_shutdown {
            if state != BrokerState::ControlledShutdown {
                self.set_state(&broker, BrokerState::ControlledShutdown)
                    .await?;
            } else if elect::leads(&self.hub.image(), broker.broker_id) > 0 {
                let moves =
                    elect::move_away(&self.hub.image(), &BTreeSet::from([broker.broker_id]), true);
                self.commit(partitions(moves).collect()).await?;
            }
        } else if state == BrokerState::Fenced && req.applied_offset >= broker.broker_epoch as u64 {
            // Caught up with its own registration: it may lead and join ISRs again.
            self.set_state(&broker, BrokerState::Active).await?;
            let leaderless = elect::elect_leaderless(&self.hub.image());
            self.commit(partitions(leaderless).collect()).await?;
        }
        let image = self.hub.image();
        let state = image
            .brokers
            .get(&req.broker_id)
            .map(|b| b.state)
            .unwrap_or(BrokerState::Fenced as i32);
        let shutdown_ok = req.want_shutdown && elect::leads(&image, req.broker_id) == 0;
        let now = Instant::now();
        guard.quota.record(req.broker_id, req.usage, now);
        if let Some(counters) = req.counters {
            guard
                .usage
                .record(req.broker_id, req.broker_epoch, counters, now);
        }
        let shares = guard.quota.shares_for(req.broker_id, &image, now);
        Ok(BrokerHeartbeatResponse {
            state,
            shutdown_ok,
            shares,
        })
    }

    /// A broker opened its session stream: returns the stream's generation and the
    /// broker's state. Only the leader holds sessions.
    pub async fn open_session_stream(
        &self,
        broker_id: i32,
        epoch: i64,
    ) -> Result<(u64, i32), CellError> {
        let mut guard = self.lead().await?;
        let broker = self.current_broker(broker_id, epoch)?;
        guard.next_stream += 1;
        let generation = guard.next_stream;
        guard.session_streams.insert(broker_id, generation);
        Ok((generation, broker.state))
    }

    /// The state a broker's session stream reports; `None` once this voter no longer
    /// leads or the broker's registration changed (the stream then ends).
    pub async fn session_state(&self, broker_id: i32, epoch: i64) -> Option<i32> {
        let _guard = self.lead().await.ok()?;
        self.current_broker(broker_id, epoch).ok().map(|b| b.state)
    }

    /// A broker's current session stream closed (its process died or its connection to
    /// this leader broke): let its session expire after `session_loss_grace` unless it
    /// heartbeats or opens a new stream meanwhile.
    pub async fn session_stream_closed(&self, broker_id: i32, epoch: i64, generation: u64) {
        let Ok(mut guard) = self.lead().await else {
            return;
        };
        if guard.session_streams.get(&broker_id) != Some(&generation) {
            return;
        }
        guard.session_streams.remove(&broker_id);
        let timeout = self.config.session_timeout;
        let grace = self.config.session_loss_grace.min(timeout);
        if let Some(s) = guard.sessions.get_mut(&broker_id) {
            if s.epoch == epoch {
                // Expires `grace` from now.
                s.last_seen = Instant::now()
                    .checked_sub(timeout - grace)
                    .unwrap_or(s.last_seen);
                tracing::info!(
                    broker = broker_id,
                    grace_ms = grace.as_millis() as u64,
                    "broker session stream closed"
                );
            }
        }
    }

    /// Fences every broker whose session expired (called by the ticker).
    pub(crate) async fn fence_expired(&self, guard: &mut LeaderState) -> Result<(), CellError> {
        let now = Instant::now();
        let brokers: Vec<BrokerRecord> = self.hub.image().brokers.values().cloned().collect();
        for b in brokers {
            let session = guard.sessions.entry(b.broker_id).or_insert(Session {
                epoch: b.broker_epoch,
                last_seen: now,
            });
            if session.epoch != b.broker_epoch {
                *session = Session {
                    epoch: b.broker_epoch,
                    last_seen: now,
                };
            }
            let expired = now.duration_since(session.last_seen) > self.config.session_timeout;
            if expired && b.state != BrokerState::Fenced as i32 {
                tracing::warn!(
                    broker = b.broker_id,
                    "broker missed its session: fencing it"
                );
                self.set_state(&b, BrokerState::Fenced).await?;
                crate::metrics::broker_fenced();
            }
        }
        Ok(())
    }

    /// Operator drain: no new replicas, leadership moves away. Moving the replicas
    /// themselves is a balancer's job (not built yet).
    pub async fn drain_broker(&self, broker_id: i32) -> Result<u64, CellError> {
        let _guard = self.lead().await?;
        let broker = self
            .hub
            .image()
            .brokers
            .get(&broker_id)
            .cloned()
            .ok_or(CellError::UnknownBroker(broker_id))?;
        self.set_state(&broker, BrokerState::Draining).await
    }

    pub async fn alter_partition(
        &self,
        req: AlterPartitionRequest,
    ) -> Result<AlterPartitionResponse, CellError> {
        let _guard = self.lead().await?;
        let reply = |code: i32, p: Option<PartitionRecord>| AlterPartitionResponse {
            error_code: code,
            partition: p,
        };
        if self
            .current_broker(req.broker_id, req.broker_epoch)
            .is_err()
        {
            return Ok(reply(codes::STALE_BROKER_EPOCH, None));
        }
        let current = {
            let image = self.hub.image();
            topic_uuid(&req.topic_id)
                .and_then(|id| image.topics.get(&id))
                .and_then(|t| t.partitions.get(&req.partition))
                .cloned()
        };
        let Some(p) = current else {
            return Ok(reply(codes::UNKNOWN_TOPIC_OR_PARTITION, None));
        };
        if p.leader != req.broker_id {
            return Ok(reply(codes::NOT_LEADER_OR_FOLLOWER, Some(p)));
        }
        if p.leader_epoch != req.leader_epoch {
            return Ok(reply(codes::FENCED_LEADER_EPOCH, Some(p)));
        }
        if p.partition_epoch != req.partition_epoch {
            return Ok(reply(codes::INVALID_UPDATE_VERSION, Some(p)));
        }
        let mut seen = BTreeSet::new();
        let valid = req.new_isr.contains(&p.leader)
            && req
                .new_isr
                .iter()
                .all(|r| p.replicas.contains(r) && seen.insert(*r));
        if !valid {
            return Ok(reply(codes::INVALID_REQUEST, Some(p)));
        }
        {
            let image = self.hub.image();
            let added_inactive = req
                .new_isr
                .iter()
                .any(|r| !p.isr.contains(r) && !elect::is_active(&image, *r));
            if added_inactive {
                return Ok(reply(codes::INELIGIBLE_REPLICA, Some(p)));
            }
        }
        let mut next = p;
        next.isr = req.new_isr;
        next.partition_epoch += 1;
        self.commit(vec![wrap(Record::Partition(next.clone()))])
            .await?;
        Ok(reply(codes::NONE, Some(next)))
    }
}
