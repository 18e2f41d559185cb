//! FindCoordinator: a standalone broker coordinates every group; in a cell each group
//! goes to one live broker chosen by a stable hash of its id, the same on every broker.
//! (Group state is not yet replicated: when that broker dies its groups restart on
//! another one without their committed offsets. The cells issue tracks this.)
//! The group APIs themselves are served by [`crate::group`].

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::s;
use crate::broker::Broker;

const KEY_GROUP: i8 = 0;

pub fn find_coordinator(
    broker: &Arc<Broker>,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let supported = req.key_type == KEY_GROUP;
    let message = (!supported)
        .then(|| s("only consumer group coordinators exist on this broker (no transactions)"));
    let code = if supported {
        0
    } else {
        ResponseError::CoordinatorNotAvailable.code()
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key: StrBytes| {
                let (node, host, port) = coordinator_for(broker, key.as_str());
                let mut c = Coordinator::default()
                    .with_key(key)
                    .with_error_code(code)
                    .with_error_message(message.clone());
                if supported {
                    c = c.with_node_id(node).with_host(host).with_port(port);
                } else {
                    c = c.with_node_id(BrokerId(-1)).with_port(-1);
                }
                c
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let mut r = FindCoordinatorResponse::default().with_error_code(code);
    if supported {
        let (node, host, port) = coordinator_for(broker, req.key.as_str());
        r = r.with_node_id(node).with_host(host).with_port(port);
    } else {
        r = r.with_node_id(BrokerId(-1)).with_port(-1);
        if version >= 1 {
            r.error_message = message;
        }
    }
    r
}

/// The broker coordinating group `key`: FNV-1a of the id over the live brokers by id.
fn coordinator_for(broker: &Broker, key: &str) -> (BrokerId, StrBytes, i32) {
    let mut live = broker.live_brokers();
    live.sort_by_key(|b| b.0);
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    match live.get((hash % live.len().max(1) as u64) as usize) {
        Some((id, host, port)) => (BrokerId(*id), s(host), *port as i32),
        None => (
            BrokerId(broker.config.node_id),
            s(&broker.config.advertised_host),
            broker.config.advertised_port as i32,
        ),
    }
}
