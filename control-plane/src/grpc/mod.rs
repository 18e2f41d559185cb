//! The gRPC face (tonic) of the Cloud API: `tributary.controlplane.v1` (see
//! `proto/proto/tributary/controlplane/v1/controlplane.proto`).
//!
//! Request flow: tonic -> [`caller`] (the `authorization` metadata, authenticated exactly
//! as REST's header by [`crate::service::auth::authenticate`]) -> one
//! [`crate::service`] function -> [`convert`] into the messages. The services hold no
//! rules of their own, and every failure is the crate's [`Error`], turned into a
//! `tonic::Status` in one place (`From<Error> for Status` in `error.rs`). Sign-up and
//! login take a token from the same per-client-IP budget as REST's.
//!
//! [`serve`] takes a pre-bound listener and a shutdown token, like the REST API.

mod convert;
mod services;

use crate::error::Error;
use crate::service::{auth, AppState, PageRequest};
use crate::store::Principal;
use proto::controlplane::v1::api_key_service_server::ApiKeyServiceServer;
use proto::controlplane::v1::auth_service_server::AuthServiceServer;
use proto::controlplane::v1::cluster_service_server::ClusterServiceServer;
use proto::controlplane::v1::environment_service_server::EnvironmentServiceServer;
use proto::controlplane::v1::service_account_service_server::ServiceAccountServiceServer;
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

/// Largest request message (every request is small), as REST's body limit. Answers may be
/// 16 times that (a page of 100 resources).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most RPCs one connection may have in flight (HTTP/2 streams).
const MAX_CONCURRENT_STREAMS: u32 = 64;

pub(crate) type Res<T> = Result<tonic::Response<T>, Status>;

/// The authenticated caller of a request, from its `authorization` metadata.
pub(crate) async fn caller<T>(state: &AppState, req: &Request<T>) -> Result<Principal, Status> {
    let value = req
        .metadata()
        .get("authorization")
        .map(|v| v.to_str().unwrap_or(""));
    Ok(auth::authenticate(state, value).await?)
}

/// Takes a token from the peer's sign-up and login budget.
pub(crate) fn check_rate<T>(state: &AppState, req: &Request<T>) -> Result<(), Error> {
    let ip = req
        .remote_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    auth::check_auth_rate(state, ip)
}

/// A page request from proto fields: page size 0 and an empty token mean "not given".
pub(crate) fn page_request(page_size: i32, page_token: String) -> PageRequest {
    PageRequest {
        page_size: (page_size != 0).then_some(i64::from(page_size)),
        page_token: (!page_token.is_empty()).then_some(page_token),
    }
}

/// Serves every service on an already-bound listener until `shutdown` is cancelled, then
/// finishes in-flight calls and returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let api = services::Api { state };
    macro_rules! bounded {
        ($server:ident) => {
            $server::new(api.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE * 16)
        };
    }
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .add_service(bounded!(AuthServiceServer))
        .add_service(bounded!(EnvironmentServiceServer))
        .add_service(bounded!(ClusterServiceServer))
        .add_service(bounded!(ServiceAccountServiceServer))
        .add_service(bounded!(ApiKeyServiceServer))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
        .await
}
