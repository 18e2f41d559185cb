//! The broker's session with the controller: registration, heartbeats (with the quota
//! usage every time and the Metrics API's usage counters every [`USAGE_REPORT_EVERY`]), and
//! controlled shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::cell::v1::{
    BrokerHeartbeatRequest, BrokerSessionRequest, BrokerState, Endpoint, RegisterBrokerRequest,
    TenantUsage,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use cells::error::CellError;

use super::Cell;
use crate::broker::Broker;
use crate::namespace::TenantId;
use crate::quota::Share;

/// How often a heartbeat carries the usage counters ([`crate::usage`]).
pub const USAGE_REPORT_EVERY: Duration = Duration::from_secs(5);

fn kafka_endpoint(broker: &Broker) -> Endpoint {
    Endpoint {
        host: broker.config.advertised_host.clone(),
        port: broker.config.advertised_port as u32,
    }
}

fn endpoint((host, port): &(String, u16)) -> Endpoint {
    Endpoint {
        host: host.clone(),
        port: *port as u32,
    }
}

async fn register(broker: &Broker, cell: &Cell) -> Result<i64, CellError> {
    let req = RegisterBrokerRequest {
        broker_id: broker.config.node_id,
        incarnation_id: cell.incarnation.to_string(),
        zone: cell.config.zone.clone(),
        kafka: Some(kafka_endpoint(broker)),
        sasl: broker.config.sasl_advertised.as_ref().map(endpoint),
        sasl_ssl: broker.config.sasl_ssl_advertised.as_ref().map(endpoint),
    };
    let resp = cell.controller.register_broker(req).await?;
    Ok(resp.broker_epoch)
}

/// Register, then heartbeat until `shutdown`. A heartbeat the controller refuses (it
/// lost or replaced our registration) leads to registering again.
pub async fn run(broker: Arc<Broker>, cell: Arc<Cell>, shutdown: CancellationToken) {
    let interval = cell.config.heartbeat_interval;
    'register: loop {
        let epoch = loop {
            match register(&broker, &cell).await {
                Ok(epoch) => break epoch,
                Err(e) => {
                    warn!(error = %e, "registering with the cell controller failed; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        };
        cell.broker_epoch.store(epoch, Ordering::Release);
        info!(broker_epoch = epoch, incarnation = %cell.incarnation, "registered with the cell controller");
        let registration = shutdown.child_token();
        tokio::spawn(hold_session_stream(
            broker.clone(),
            cell.clone(),
            epoch,
            registration.clone(),
        ));
        let _stop_stream = registration.drop_guard();
        let mut last_state = BrokerState::Unspecified;
        let mut last_usage: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let usage_due = last_usage.is_none_or(|t| t.elapsed() >= USAGE_REPORT_EVERY);
            if usage_due {
                last_usage = Some(Instant::now());
            }
            match heartbeat(&broker, &cell, epoch, false, usage_due).await {
                Ok((state, _)) => {
                    if state != last_state {
                        info!(state = ?state, "broker state");
                        last_state = state;
                    }
                    if state == BrokerState::Active {
                        cell.caught_up.store(true, Ordering::Release);
                    }
                }
                Err(e) if is_stale_registration(&e) => {
                    warn!(error = %e, "the controller does not know this registration; registering again");
                    continue 'register;
                }
                Err(e) => warn!(error = %e, "heartbeat failed"),
            }
        }
    }
}

/// Keep a `BrokerSession` stream open at the controller leader while registered as
/// `epoch`: if this process dies, the leader sees the stream close and fences it at once
/// rather than after the heartbeat session expires.
async fn hold_session_stream(
    broker: Arc<Broker>,
    cell: Arc<Cell>,
    epoch: i64,
    stop: CancellationToken,
) {
    let req = BrokerSessionRequest {
        broker_id: broker.config.node_id,
        broker_epoch: epoch,
    };
    while !stop.is_cancelled() {
        let opened = tokio::select! {
            _ = stop.cancelled() => return,
            s = cell.controller.open_session(req) => s,
        };
        if let Ok(mut stream) = opened {
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = stream.message() => n,
                };
                if !matches!(next, Ok(Some(_))) {
                    break;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// The controller answers a heartbeat of an unknown or replaced registration with
/// NOT_FOUND or FAILED_PRECONDITION ("register again").
fn is_stale_registration(e: &CellError) -> bool {
    matches!(e, CellError::Rpc(s) if matches!(s.code(), tonic::Code::FailedPrecondition | tonic::Code::NotFound))
}

async fn heartbeat(
    broker: &Broker,
    cell: &Cell,
    epoch: i64,
    want_shutdown: bool,
    with_usage: bool,
) -> Result<(BrokerState, bool), CellError> {
    let req = BrokerHeartbeatRequest {
        broker_id: broker.config.node_id,
        broker_epoch: epoch,
        applied_offset: cell.image().offset,
        want_shutdown,
        usage: broker
            .quotas
            .latest_reports()
            .into_iter()
            .map(|r| TenantUsage {
                cluster_id: r.tenant.to_string(),
                ingress_bytes_per_sec: r.rates[0],
                egress_bytes_per_sec: r.rates[1],
                requests_per_sec: r.rates[2],
                request_time_per_sec: r.rates[3],
                ingress_throttled: r.throttled[0],
                egress_throttled: r.throttled[1],
                requests_throttled: r.throttled[2],
                request_time_throttled: r.throttled[3],
            })
            .collect(),
        counters: with_usage.then(|| broker.usage.report()),
    };
    let resp = cell.controller.broker_heartbeat(req).await?;
    let shares: Vec<Share> = resp
        .shares
        .iter()
        .map(|s| Share {
            tenant: TenantId::from(s.cluster_id.as_str()),
            rates: [
                s.ingress_bytes_per_sec,
                s.egress_bytes_per_sec,
                s.requests_per_sec,
                s.request_time_per_sec,
            ],
        })
        .collect();
    broker.quotas.set_shares(&shares);
    let state = BrokerState::try_from(resp.state).unwrap_or(BrokerState::Unspecified);
    Ok((state, resp.shutdown_ok))
}

/// Controlled shutdown: ask the controller to move this broker's leaderships away and
/// wait (bounded by `limit`) until it says the broker leads nothing.
pub async fn controlled_shutdown(broker: &Broker, cell: &Cell, limit: Duration) {
    let epoch = cell.broker_epoch();
    if epoch < 0 {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < limit {
        match heartbeat(broker, cell, epoch, true, false).await {
            Ok((_, true)) => {
                info!(
                    millis = started.elapsed().as_millis() as u64,
                    "controlled shutdown: leadership moved away"
                );
                return;
            }
            Ok((_, false)) => {}
            Err(e) => warn!(error = %e, "controlled shutdown heartbeat failed"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    warn!("controlled shutdown timed out; stopping anyway");
}
