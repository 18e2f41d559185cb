//! The client brokers and the control plane use to reach a cell's controllers.
//!
//! [`ControllerClient`] is cheap to clone (one `Arc`): it knows every voter's address,
//! sends each call to the voter it believes leads, follows the `tributary-leader` hint of
//! an `unavailable` answer, rotates to the next voter on transport errors and timeouts, and
//! gives up after a bounded number of attempts. Note that a retried write may have been
//! committed the first time (a retried CreateTopics can answer TOPIC_ALREADY_EXISTS).
//!
//! [`watch_metadata`] keeps a `watch::Receiver<Arc<CellImage>>` current from the
//! `WatchMetadata` stream of any voter, resuming from its last offset after errors.
//!
//! Depends only on `proto`, the image and the error enum; never on the controller itself.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use proto::cell::v1::cell_controller_client::CellControllerClient;
use proto::cell::v1::*;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::error::{CellError, LEADER_KEY};
use crate::image::CellImage;
use crate::server::MAX_MESSAGE;

/// Limits of a [`ControllerClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Timeout of one attempt.
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per call, across voters.
    pub max_attempts: u32,
    /// Pause before retrying the same or the next voter (doubles, capped at 1 s).
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            call_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            max_attempts: 12,
            backoff: Duration::from_millis(50),
        }
    }
}

/// Most addresses a client tracks (voters plus leader hints not among them).
const MAX_ADDRESSES: usize = 16;

#[derive(Clone)]
pub struct ControllerClient {
    inner: Arc<Inner>,
}

struct Inner {
    targets: RwLock<Vec<(String, Channel)>>,
    current: AtomicUsize,
    options: ClientOptions,
}

fn channel(addr: &str, options: &ClientOptions) -> Result<Channel, CellError> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| CellError::Config(format!("controller address {addr}: {e}")))?
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

impl ControllerClient {
    /// A client over `voters` (`host:port` each). Connects lazily.
    pub fn new(voters: &[String], options: ClientOptions) -> Result<ControllerClient, CellError> {
        if voters.is_empty() {
            return Err(CellError::Config("no controller addresses".into()));
        }
        let targets = voters
            .iter()
            .map(|a| Ok((a.clone(), channel(a, &options)?)))
            .collect::<Result<Vec<_>, CellError>>()?;
        Ok(ControllerClient {
            inner: Arc::new(Inner {
                targets: RwLock::new(targets),
                current: AtomicUsize::new(0),
                options,
            }),
        })
    }

    fn pick(&self) -> (usize, Channel) {
        let targets = self.inner.targets.read().unwrap_or_else(|e| e.into_inner());
        let i = self.inner.current.load(Ordering::Relaxed) % targets.len();
        (i, targets[i].1.clone())
    }

    fn rotate(&self, from: usize) {
        let n = self
            .inner
            .targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let _ = self.inner.current.compare_exchange(
            from,
            (from + 1) % n,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Points at `addr` (a leader hint); false if it is where we already were.
    fn follow(&self, addr: &str, from: usize) -> bool {
        let mut targets = self
            .inner
            .targets
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let i = match targets.iter().position(|(a, _)| a == addr) {
            Some(i) => i,
            None if targets.len() < MAX_ADDRESSES => match channel(addr, &self.inner.options) {
                Ok(c) => {
                    targets.push((addr.to_string(), c));
                    targets.len() - 1
                }
                Err(_) => return false,
            },
            None => return false,
        };
        self.inner.current.store(i, Ordering::Relaxed);
        i != from
    }

    /// Runs `f` against the leader with retries; see the module doc.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, CellError>
    where
        F: Fn(CellControllerClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let o = &self.inner.options;
        let mut last = Status::unavailable("no attempt made");
        let mut backoff = o.backoff;
        for _ in 0..o.max_attempts.max(1) {
            let (i, ch) = self.pick();
            let client = CellControllerClient::new(ch)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE);
            let status = match tokio::time::timeout(o.call_timeout, f(client, o.call_timeout)).await
            {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(s)) => s,
                Err(_) => Status::deadline_exceeded("controller call timed out"),
            };
            let hint = status
                .metadata()
                .get(LEADER_KEY)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_string);
            let retriable = matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
            );
            if !retriable {
                return Err(CellError::Rpc(status));
            }
            last = status;
            let moved = match hint {
                Some(addr) => self.follow(&addr, i),
                None => {
                    self.rotate(i);
                    false
                }
            };
            if !moved {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
        Err(CellError::Rpc(last))
    }
}

fn request<T>(msg: T, timeout: Duration) -> Request<T> {
    let mut r = Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// One retried method per unary RPC.
macro_rules! rpc {
    ($(#[$doc:meta])* $name:ident($req:ty) -> $resp:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, req: $req) -> Result<$resp, CellError> {
            self.call(|mut c, t| {
                let req = req.clone();
                async move { c.$name(request(req, t)).await }
            })
            .await
        }
    };
}

impl ControllerClient {
    rpc!(register_broker(RegisterBrokerRequest) -> RegisterBrokerResponse);
    rpc!(broker_heartbeat(BrokerHeartbeatRequest) -> BrokerHeartbeatResponse);
    rpc!(alter_partition(AlterPartitionRequest) -> AlterPartitionResponse);
    rpc!(create_topics(CreateTopicsRequest) -> CreateTopicsResponse);
    rpc!(delete_topics(DeleteTopicsRequest) -> DeleteTopicsResponse);
    rpc!(create_partitions(CreatePartitionsRequest) -> ChangeResult);
    rpc!(alter_topic_configs(AlterTopicConfigsRequest) -> ChangeResult);
    rpc!(create_logical_cluster(CreateLogicalClusterRequest) -> ChangeResult);
    rpc!(delete_logical_cluster(DeleteLogicalClusterRequest) -> ChangeResult);
    rpc!(put_credential(PutCredentialRequest) -> ChangeResult);
    rpc!(delete_credential(DeleteCredentialRequest) -> ChangeResult);
    rpc!(create_acls(CreateAclsRequest) -> ChangeResult);
    rpc!(delete_acls(DeleteAclsRequest) -> DeleteAclsResponse);
    rpc!(get_cell_load(GetCellLoadRequest) -> CellLoad);
    rpc!(drain_broker(DrainBrokerRequest) -> ChangeResult);

    /// The quorum as the current voter sees it (not redirected to the leader).
    pub async fn describe_quorum(&self) -> Result<DescribeQuorumResponse, CellError> {
        self.call(|mut c, t| async move {
            c.describe_quorum(request(DescribeQuorumRequest {}, t))
                .await
        })
        .await
    }

    /// Opens the broker's session stream at the leader (following leader hints, bounded
    /// attempts). The stream lives as long as the broker does; see `BrokerSession`.
    pub async fn open_session(
        &self,
        req: BrokerSessionRequest,
    ) -> Result<tonic::Streaming<BrokerSessionEvent>, CellError> {
        // Only the opening is bounded (by `call`); the stream itself has no deadline.
        self.call(|mut c, _| async move { c.broker_session(req).await })
            .await
    }

    /// Opens a `WatchMetadata` stream on the current voter (rotating on failure).
    async fn open_watch(
        &self,
        after_offset: u64,
    ) -> Result<tonic::Streaming<MetadataUpdate>, Status> {
        let (i, ch) = self.pick();
        let mut c = CellControllerClient::new(ch).max_decoding_message_size(MAX_MESSAGE);
        let open = c.watch_metadata(WatchMetadataRequest { after_offset });
        match tokio::time::timeout(self.inner.options.call_timeout, open).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => {
                self.rotate(i);
                Err(s)
            }
            Err(_) => {
                self.rotate(i);
                Err(Status::deadline_exceeded(
                    "opening the metadata watch timed out",
                ))
            }
        }
    }
}

/// Keeps a [`CellImage`] current from the controllers until `cancel`: applies updates in
/// order (a snapshot replaces the image), reconnects from its last offset after an error
/// (rotating voters, with a bounded backoff), and publishes each new image.
pub fn watch_metadata(
    client: ControllerClient,
    cancel: CancellationToken,
) -> (watch::Receiver<Arc<CellImage>>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(Arc::new(CellImage::default()));
    let task = tokio::spawn(async move {
        let mut image = CellImage::default();
        let mut backoff = Duration::from_millis(50);
        while !cancel.is_cancelled() {
            let stream = tokio::select! {
                _ = cancel.cancelled() => return,
                s = client.open_watch(image.offset) => s,
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "metadata watch: cannot open, retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            loop {
                let msg = tokio::select! {
                    _ = cancel.cancelled() => return,
                    m = stream.message() => m,
                };
                match msg {
                    Ok(Some(u)) => {
                        backoff = Duration::from_millis(50);
                        if !u.is_snapshot && u.offset <= image.offset {
                            continue;
                        }
                        image.apply(u.offset, u.is_snapshot, &u.records);
                        tx.send_replace(Arc::new(image.clone()));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "metadata watch: stream broke, reconnecting");
                        client.rotate(client.pick().0);
                        break;
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    });
    (rx, task)
}
