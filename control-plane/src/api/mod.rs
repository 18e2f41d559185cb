//! The REST API (axum).
//!
//! Request flow: router -> (rate limit on sign-up and login) -> extractors ([`ApiJson`],
//! [`ApiQuery`], [`Caller`]) -> handler -> [`crate::service`] -> [`crate::store::Store`].
//! Handlers hold no rules: they decode, call the service layer (which the gRPC face calls
//! too) and encode Confluent's resource views. Every handler answers a
//! [`crate::Error`] on failure, so every failure leaves as the JSON error envelope.
//! Unknown routes and methods answer the envelope too. The router is built only from
//! [`openapi::route_table`], which also makes the OpenAPI document (`GET /openapi.json`).

mod api_keys;
mod auth;
mod clusters;
mod envelope;
mod environments;
mod extract;
mod kafka;
mod kafka_acls;
mod kafka_groups;
mod metrics;
pub mod openapi;
mod service_accounts;

pub use crate::service::clusters::MAX_CKU;
pub use crate::service::{ApiConfig, AppState};
pub use auth::Caller;
pub use extract::{ApiJson, ApiQuery};

use crate::error::Error;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::Router;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Most bytes of a request body (every request here is a small JSON object).
const MAX_BODY_BYTES: usize = 64 * 1024;

impl AppState {
    /// The base URL for links: the configured one, or `http://` and the `Host` header.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

/// The API's router: every route of [`openapi::route_table`] (and nothing else), the
/// 64 KiB body limit, and envelope answers for unknown routes and methods.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = openapi::build(openapi::route_table(&state.auth_limiter));
    routes
        .layer(openapi::document_extension(&doc))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .fallback(|| async { Error::NotFound("no such route; see GET /openapi.json".into()) })
        .method_not_allowed_fallback(|| async {
            Error::MethodNotAllowed(
                "this route does not accept this method; see GET /openapi.json".into(),
            )
        })
        .layer(axum::middleware::from_fn(|req, next| {
            crate::metrics::track_http(crate::metrics::Api::Rest, req, next)
        }))
        .with_state(state)
}

/// Serves the API on an already-bound listener until `shutdown` is cancelled, then
/// finishes in-flight requests and returns. Provisioning needs the reconciler too
/// ([`crate::reconciler::run`], with the same [`AppState`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await
}
