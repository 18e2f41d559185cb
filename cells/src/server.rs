//! The gRPC edge: `CellController` (brokers, control plane, operators) and
//! `ControllerRaft` (voters) on one listener. Maps [`CellError`] to `Status` and streams
//! `WatchMetadata` from the [`MetadataHub`](crate::watch::MetadataHub).
//!
//! Takes a pre-bound listener and a shutdown token. Must never hold controller logic.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use proto::cell::v1::cell_controller_server::{CellController, CellControllerServer};
use proto::cell::v1::controller_raft_server::ControllerRaftServer;
use proto::cell::v1::*;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::controller::Controller;
use crate::raft::network::{RaftService, MAX_RAFT_MESSAGE};
use crate::watch::MetadataHub;

/// Largest request or response on the cell API.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Updates buffered per watcher between the hub and its gRPC stream.
const WATCH_BUFFER: usize = 64;
/// Concurrent `WatchMetadata` streams one voter serves (brokers and the control plane
/// need a handful each); more are refused with `resource_exhausted`.
pub const MAX_WATCHERS: usize = 1024;

pub struct CellService {
    pub controller: Arc<Controller>,
    pub shutdown: CancellationToken,
    pub watchers: Arc<Semaphore>,
}

type Res<T> = Result<Response<T>, Status>;

fn reply<T>(r: Result<T, crate::CellError>) -> Res<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl CellController for CellService {
    async fn register_broker(
        &self,
        req: Request<RegisterBrokerRequest>,
    ) -> Res<RegisterBrokerResponse> {
        let r = self.controller.register_broker(req.into_inner()).await;
        reply(r.map(|broker_epoch| RegisterBrokerResponse { broker_epoch }))
    }

    async fn broker_heartbeat(
        &self,
        req: Request<BrokerHeartbeatRequest>,
    ) -> Res<BrokerHeartbeatResponse> {
        reply(self.controller.broker_heartbeat(req.into_inner()).await)
    }

    type BrokerSessionStream =
        Pin<Box<dyn Stream<Item = Result<BrokerSessionEvent, Status>> + Send>>;

    async fn broker_session(
        &self,
        req: Request<BrokerSessionRequest>,
    ) -> Res<Self::BrokerSessionStream> {
        let req = req.into_inner();
        let (broker_id, epoch) = (req.broker_id, req.broker_epoch);
        let (generation, state) = self
            .controller
            .open_session_stream(broker_id, epoch)
            .await
            .map_err(Status::from)?;
        let (tx, rx) = mpsc::channel(4);
        let controller = self.controller.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut state = state;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                if tx.try_send(Ok(BrokerSessionEvent { state })).is_err() && tx.is_closed() {
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    // The broker's end went away: its connection closed.
                    _ = tx.closed() => break,
                    _ = tick.tick() => {}
                }
                match controller.session_state(broker_id, epoch).await {
                    Some(s) => state = s,
                    // No longer leader, or re-registered: end the stream; the broker
                    // opens a new one at the current leader.
                    None => return,
                }
            }
            controller
                .session_stream_closed(broker_id, epoch, generation)
                .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchMetadataStream = Pin<Box<dyn Stream<Item = Result<MetadataUpdate, Status>> + Send>>;

    async fn watch_metadata(
        &self,
        req: Request<WatchMetadataRequest>,
    ) -> Res<Self::WatchMetadataStream> {
        let permit = self.watchers.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this controller serves at most {MAX_WATCHERS} watchers"
            ))
        })?;
        let hub = self.controller.hub().clone();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = forward(hub, req.into_inner().after_offset, tx) => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn alter_partition(
        &self,
        req: Request<AlterPartitionRequest>,
    ) -> Res<AlterPartitionResponse> {
        reply(self.controller.alter_partition(req.into_inner()).await)
    }

    async fn create_topics(&self, req: Request<CreateTopicsRequest>) -> Res<CreateTopicsResponse> {
        let r = self.controller.create_topics(req.into_inner()).await;
        reply(r.map(|topics| CreateTopicsResponse { topics }))
    }

    async fn delete_topics(&self, req: Request<DeleteTopicsRequest>) -> Res<DeleteTopicsResponse> {
        let r = self.controller.delete_topics(req.into_inner()).await;
        reply(r.map(|topics| DeleteTopicsResponse { topics }))
    }

    async fn create_partitions(&self, req: Request<CreatePartitionsRequest>) -> Res<ChangeResult> {
        reply(self.controller.create_partitions(req.into_inner()).await)
    }

    async fn alter_topic_configs(
        &self,
        req: Request<AlterTopicConfigsRequest>,
    ) -> Res<ChangeResult> {
        reply(self.controller.alter_topic_configs(req.into_inner()).await)
    }

    async fn create_logical_cluster(
        &self,
        req: Request<CreateLogicalClusterRequest>,
    ) -> Res<ChangeResult> {
        reply(
            self.controller
                .create_logical_cluster(req.into_inner())
                .await,
        )
    }

    async fn delete_logical_cluster(
        &self,
        req: Request<DeleteLogicalClusterRequest>,
    ) -> Res<ChangeResult> {
        reply(
            self.controller
                .delete_logical_cluster(req.into_inner().cluster_id)
                .await,
        )
    }

    async fn put_credential(&self, req: Request<PutCredentialRequest>) -> Res<ChangeResult> {
        reply(
            self.controller
                .put_credential(req.into_inner().credential)
                .await,
        )
    }

    async fn delete_credential(&self, req: Request<DeleteCredentialRequest>) -> Res<ChangeResult> {
        reply(
            self.controller
                .delete_credential(req.into_inner().api_key)
                .await,
        )
    }

    async fn create_acls(&self, req: Request<CreateAclsRequest>) -> Res<ChangeResult> {
        let req = req.into_inner();
        reply(self.controller.create_acls(req.cluster_id, req.acls).await)
    }

    async fn delete_acls(&self, req: Request<DeleteAclsRequest>) -> Res<DeleteAclsResponse> {
        let req = req.into_inner();
        reply(
            self.controller
                .delete_acls(req.cluster_id, req.filters)
                .await,
        )
    }

    async fn get_cell_load(&self, _req: Request<GetCellLoadRequest>) -> Res<CellLoad> {
        reply(self.controller.cell_load().await)
    }

    async fn get_tenant_usage(
        &self,
        req: Request<GetTenantUsageRequest>,
    ) -> Res<GetTenantUsageResponse> {
        reply(self.controller.tenant_usage(req.into_inner()).await)
    }

    /// A read of the committed image, answered by the leader only: `lead` checks
    /// leadership and, first in a term, waits until everything committed before it is
    /// applied, so the answer includes every change acknowledged to the caller.
    async fn list_topics(&self, req: Request<ListTopicsRequest>) -> Res<ListTopicsResponse> {
        let req = req.into_inner();
        drop(self.controller.lead().await.map_err(Status::from)?);
        let image = self.controller.hub().image();
        if !image.clusters.contains_key(&req.cluster_id) {
            return Err(crate::CellError::NotFound(format!(
                "logical cluster {} does not exist",
                req.cluster_id
            ))
            .into());
        }
        let wanted: std::collections::HashSet<&str> =
            req.names.iter().map(String::as_str).collect();
        let mut topics: Vec<TopicDescription> = image
            .topics
            .values()
            .filter(|t| t.cluster_id == req.cluster_id)
            .filter(|t| wanted.is_empty() || wanted.contains(t.name.as_str()))
            .map(|t| TopicDescription {
                name: t.name.clone(),
                topic_id: t.id.as_bytes().to_vec(),
                configs: t.configs.clone().into_iter().collect(),
                partitions: t.partitions.values().cloned().collect(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(ListTopicsResponse {
            topics,
            offset: image.offset,
        }))
    }

    async fn drain_broker(&self, req: Request<DrainBrokerRequest>) -> Res<ChangeResult> {
        let r = self
            .controller
            .drain_broker(req.into_inner().broker_id)
            .await;
        reply(r.map(|offset| ChangeResult {
            offset,
            ..Default::default()
        }))
    }

    async fn describe_quorum(
        &self,
        _req: Request<DescribeQuorumRequest>,
    ) -> Res<DescribeQuorumResponse> {
        Ok(Response::new(self.controller.describe_quorum()))
    }
}

/// Feeds one watcher: catch-up (ring or snapshot), then live updates in order. A watcher
/// that lags the live channel starts over from its last offset (getting a snapshot if the
/// ring no longer reaches back). Ends when the watcher goes away.
async fn forward(
    hub: Arc<MetadataHub>,
    after: u64,
    tx: mpsc::Sender<Result<MetadataUpdate, Status>>,
) {
    let mut last = after;
    loop {
        let sub = hub.subscribe(last);
        for u in sub.initial {
            last = u.offset;
            if tx.send(Ok((*u).clone())).await.is_err() {
                return;
            }
        }
        let mut live = sub.live;
        loop {
            match live.recv().await {
                Ok(u) if u.is_snapshot || u.offset > last => {
                    last = u.offset;
                    if tx.send(Ok((*u).clone())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Serves both services on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<Controller>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let raft = RaftService {
        raft: controller.raft().clone(),
    };
    let cell = CellService {
        controller,
        shutdown: shutdown.clone(),
        watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
    };
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .trace_fn(rpc_span)
        .add_service(
            CellControllerServer::new(cell)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            ControllerRaftServer::new(raft)
                .max_decoding_message_size(MAX_RAFT_MESSAGE)
                .max_encoding_message_size(MAX_RAFT_MESSAGE),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
        .await
}

/// One `rpc` span per cell API call (traced over OTLP when the binary exports traces).
/// Raft traffic and broker heartbeats get none: they run several times a second and say
/// nothing a trace would need.
fn rpc_span(req: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    if path.starts_with("/tributary.cell.v1.ControllerRaft/") || path.ends_with("/BrokerHeartbeat")
    {
        return tracing::Span::none();
    }
    tracing::info_span!("rpc", path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::CellImage;
    use proto::cell::v1::metadata_record::Record;

    fn cluster(i: u64) -> Vec<MetadataRecord> {
        vec![MetadataRecord {
            record: Some(Record::LogicalCluster(LogicalClusterRecord {
                cluster_id: format!("lkc-{i}"),
                ..Default::default()
            })),
        }]
    }

    /// A watcher that falls behind the live channel starts over with a snapshot and still
    /// ends with the hub's image, offsets never going backwards.
    #[tokio::test]
    async fn a_lagging_watcher_gets_a_snapshot_and_converges() {
        let hub = MetadataHub::new(2, 2);
        hub.apply(1, cluster(1));
        let (tx, mut rx) = mpsc::channel(1);
        let task = tokio::spawn(forward(hub.clone(), 0, tx));
        // The watcher reads nothing while 30 entries are committed.
        for i in 2..=30 {
            hub.apply(i, cluster(i));
            tokio::task::yield_now().await;
        }
        let mut image = CellImage::default();
        let mut snapshots = 0;
        let mut last = 0;
        while image.offset < 30 {
            let u = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .expect("an update")
                .expect("stream open")
                .expect("no error");
            assert!(u.offset > last || u.is_snapshot, "offsets go forward");
            last = u.offset;
            snapshots += u.is_snapshot as u32;
            if u.is_snapshot || u.offset > image.offset {
                image.apply(u.offset, u.is_snapshot, &u.records);
            }
        }
        assert!(snapshots >= 1, "the lagging watcher was sent a snapshot");
        assert_eq!(image, *hub.image());
        task.abort();
    }
}
