//! FindCoordinator: this broker coordinates every group (a cell will spread groups over
//! brokers later). The group APIs themselves are served by [`crate::group`].

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
    let node = BrokerId(broker.config.node_id);
    let host = s(&broker.config.advertised_host);
    let port = broker.config.advertised_port as i32;
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
                let mut c = Coordinator::default()
                    .with_key(key)
                    .with_error_code(code)
                    .with_error_message(message.clone());
                if supported {
                    c = c.with_node_id(node).with_host(host.clone()).with_port(port);
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
        r = r.with_node_id(node).with_host(host).with_port(port);
    } else {
        r = r.with_node_id(BrokerId(-1)).with_port(-1);
        if version >= 1 {
            r.error_message = message;
        }
    }
    r
}
