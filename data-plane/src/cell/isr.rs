//! The leader's ISR loop: every few hundred milliseconds, each partition this broker
//! leads is asked whether its ISR should shrink (a follower lagging more than
//! `replica.lag.time.max.ms`) or grow (a follower caught up again); a change goes to the
//! controller as AlterPartition and takes effect only once committed.

use std::sync::Arc;
use std::time::Duration;

use proto::cell::v1::AlterPartitionRequest;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Cell;
use crate::broker::Broker;
use crate::partition::Partition;

const TICK: Duration = Duration::from_millis(250);

pub async fn run(broker: Arc<Broker>, cell: Arc<Cell>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for p in cell.replicas() {
            if let Some((isr, leader_epoch, partition_epoch)) =
                p.isr_proposal(cell.config.replica_lag_time_max)
            {
                tokio::spawn(propose(
                    broker.clone(),
                    cell.clone(),
                    p,
                    isr,
                    leader_epoch,
                    partition_epoch,
                ));
            }
        }
    }
}

async fn propose(
    broker: Arc<Broker>,
    cell: Arc<Cell>,
    p: Arc<Partition>,
    isr: Vec<i32>,
    leader_epoch: i32,
    partition_epoch: i32,
) {
    let req = AlterPartitionRequest {
        broker_id: broker.config.node_id,
        broker_epoch: cell.broker_epoch(),
        topic_id: p.topic_id.as_bytes().to_vec(),
        partition: p.index,
        leader_epoch,
        partition_epoch,
        new_isr: isr.clone(),
    };
    let resp = cell.controller.alter_partition(req).await;
    match resp {
        Ok(r) => {
            if let Some(rec) = &r.partition {
                if let Err(e) = p.apply_assignment(rec) {
                    warn!(error = %e, "applying the committed ISR failed");
                }
            }
            if r.error_code == 0 {
                info!(topic = %p.topic, partition = p.index, isr = ?isr, "ISR changed");
                crate::metrics::isr_changed();
                broker.data_changed.notify_waiters();
            } else {
                info!(topic = %p.topic, partition = p.index, code = r.error_code, "ISR change refused");
            }
        }
        Err(e) => warn!(topic = %p.topic, partition = p.index, error = %e, "ISR change failed"),
    }
    p.isr_proposal_done();
}
