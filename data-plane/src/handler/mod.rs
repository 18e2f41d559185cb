//! Request handlers: one module per API family, and [`dispatch`], the single entry point
//! the connection calls. Cross-cutting layers (authentication, tenant scoping, ACLs, quotas)
//! wrap `dispatch`; handlers themselves only see a [`Session`] and typed requests.

pub mod acls;
pub mod admin;
pub mod api_versions;
pub mod configs;
pub mod fetch;
pub mod groups;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod replica_fetch;

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::authz::Caller;
use crate::broker::Broker;
use crate::codec::Request;
use crate::connection::{Listener, Session};

/// What a handler hands back to the connection.
pub enum Reply {
    /// The response is ready (boxed: `ResponseKind` is large and replies are queued).
    Ready(Box<ResponseKind>),
    /// The response comes later (durability wait, long poll); it still goes out in order.
    /// The task answers with the time it spent working (polled), for the request-time quota.
    Later(JoinHandle<(ResponseKind, Duration)>),
    /// No response on the wire (acks=0 produce).
    None,
    /// Close the connection without answering (a request this connection may not make).
    Close(String),
}

impl Reply {
    pub fn ready(body: impl Into<ResponseKind>) -> Reply {
        Reply::Ready(Box::new(body.into()))
    }
}

/// Run `fut` as its own task so a slow wait does not hold up reading further requests.
pub(crate) fn later<F>(fut: F) -> Reply
where
    F: std::future::Future<Output = ResponseKind> + Send + 'static,
{
    Reply::Later(tokio::spawn(crate::throttle::timed(fut)))
}

pub(crate) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// The error code and message a failed topic, partition or resource answers with.
pub(crate) fn error_fields(e: &crate::error::Error) -> (i16, Option<StrBytes>) {
    (e.kafka_code(), Some(s(&e.to_string())))
}

/// Route a decoded request to its handler, in the namespace of the session's tenant.
///
/// A follower's Fetch (`replica_id >= 0`) is served only on a cell broker's PLAINTEXT
/// listener (brokers replicate there); elsewhere its `replica_id` is ignored and it is an
/// ordinary consumer fetch. Any other request needs a tenant: a connection without one
/// (a replication-only listener) is closed.
pub async fn dispatch(broker: &Arc<Broker>, session: &Session, request: Request) -> Reply {
    let v = request.version();
    let b = broker.clone();
    if let RequestKind::ApiVersions(_) = request.body {
        return Reply::ready(api_versions::response());
    }
    let body = match (request.body, &broker.cell, session.listener) {
        (RequestKind::Fetch(r), Some(cell), Listener::Plaintext) if r.replica_id.0 >= 0 => {
            let cell = cell.clone();
            return later(async move { replica_fetch::handle(&b, &cell, r).await.into() });
        }
        (body, _, _) => body,
    };
    let Some(tenant) = session.tenant.clone() else {
        return Reply::Close(format!(
            "{:?} on a listener that serves only replication",
            request.api_key
        ));
    };
    let c = Arc::new(Caller::new(broker, session, tenant));
    let listener = session.listener;
    match body {
        RequestKind::Metadata(r) => {
            later(async move { metadata::handle(&b, &c, listener, r, v).await.into() })
        }
        RequestKind::Produce(r) => produce::handle(broker, session, &c, r, v).await,
        RequestKind::Fetch(r) => later(async move { fetch::handle(&b, &c, r).await.into() }),
        RequestKind::ListOffsets(r) => Reply::ready(offsets::list_offsets(broker, &c, r, v)),
        RequestKind::OffsetForLeaderEpoch(r) => {
            Reply::ready(offsets::offset_for_leader_epoch(broker, &c, r))
        }
        RequestKind::DeleteRecords(r) => Reply::ready(offsets::delete_records(broker, &c, r)),
        RequestKind::CreateTopics(r) => {
            later(async move { admin::create_topics(&b, &c, r, v).await.into() })
        }
        RequestKind::DeleteTopics(r) => {
            later(async move { admin::delete_topics(&b, &c, r, v).await.into() })
        }
        RequestKind::CreatePartitions(r) => {
            later(async move { admin::create_partitions(&b, &c, r).await.into() })
        }
        RequestKind::DescribeCluster(r) => {
            Reply::ready(admin::describe_cluster(broker, &c, listener, r))
        }
        RequestKind::InitProducerId(r) => Reply::ready(admin::init_producer_id(broker, &c, r)),
        RequestKind::DescribeConfigs(r) => Reply::ready(configs::describe(broker, &c, r, v)),
        RequestKind::AlterConfigs(r) => {
            later(async move { configs::alter(&b, &c, r).await.into() })
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            later(async move { configs::incremental_alter(&b, &c, r).await.into() })
        }
        RequestKind::FindCoordinator(r) => {
            Reply::ready(groups::find_coordinator(broker, &c, listener, r, v))
        }
        RequestKind::JoinGroup(r) => {
            let client_id = request
                .header
                .client_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            let host = session.peer.ip().to_string();
            later(async move { groups::join_group(&b, &c, r, v, &client_id, &host).await })
        }
        RequestKind::SyncGroup(r) => later(async move { groups::sync_group(&b, &c, r, v).await }),
        RequestKind::Heartbeat(r) => later(async move { groups::heartbeat(&b, &c, r, v).await }),
        RequestKind::LeaveGroup(r) => later(async move { groups::leave_group(&b, &c, r, v).await }),
        RequestKind::OffsetCommit(r) => {
            later(async move { groups::offset_commit(&b, &c, r, v).await })
        }
        RequestKind::OffsetFetch(r) => {
            later(async move { groups::offset_fetch(&b, &c, r, v).await })
        }
        RequestKind::DescribeGroups(r) => {
            later(async move { groups::describe_groups(&b, &c, r, v).await })
        }
        RequestKind::ListGroups(r) => later(async move { groups::list_groups(&b, &c, r, v).await }),
        RequestKind::DeleteGroups(r) => {
            later(async move { groups::delete_groups(&b, &c, r, v).await })
        }
        RequestKind::DescribeAcls(r) => Reply::ready(acls::describe(broker, &c, r)),
        RequestKind::CreateAcls(r) => later(async move { acls::create(&b, &c, r).await.into() }),
        RequestKind::DeleteAcls(r) => later(async move { acls::delete(&b, &c, r).await.into() }),
        other => {
            // Decoding only admits APIs listed in `api_versions`, and the connection
            // answers SASL itself, so this is a wiring bug.
            warn!(request = ?std::mem::discriminant(&other), "no handler for an advertised API");
            Reply::Close("no handler for this request".to_string())
        }
    }
}
