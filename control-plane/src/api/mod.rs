//! The REST API (axum).
//!
//! Request flow: router -> (rate limit on sign-up and login) -> extractors ([`ApiJson`],
//! [`ApiQuery`], [`Caller`]) -> handler -> [`Store`]. Every handler answers a
//! [`crate::Error`] on failure, so every failure leaves as the JSON error envelope.
//! Unknown routes and methods answer the envelope too. The router is built only from
//! [`openapi::route_table`], which also makes the OpenAPI document (`GET /openapi.json`).

mod api_keys;
mod auth;
mod clusters;
mod envelope;
mod environments;
mod extract;
pub mod openapi;
mod service_accounts;

pub use auth::Caller;
pub use clusters::MAX_CKU;
pub use extract::{ApiJson, ApiQuery};

use crate::cells::CellConfig;
use crate::error::Error;
use crate::plans::Plans;
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use crate::reconciler::{Provisioner, ProvisioningConfig};
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Most bytes of a request body (every request here is a small JSON object).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Settings of the control plane: the REST API, plans, cells and provisioning.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Base URL for links in responses (`metadata.self`, `metadata.next`), e.g.
    /// `https://api.tributary.example`. `None`: `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// How long a login token stays valid.
    pub session_ttl: Duration,
    /// The per-client-IP limit on sign-up and login.
    pub auth_rate_limit: RateLimitConfig,
    /// Most argon2 hashes computed at once (each takes ~19 MiB and a core for tens of
    /// milliseconds); further sign-ups and logins wait for a permit.
    pub max_concurrent_password_hashes: usize,
    /// Limits of each cluster kind (defaults, with overrides applied).
    pub plans: Plans,
    /// The cells clusters are placed into.
    pub cells: Vec<CellConfig>,
    pub provisioning: ProvisioningConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: None,
            session_ttl: Duration::from_secs(12 * 3600),
            auth_rate_limit: RateLimitConfig::default(),
            max_concurrent_password_hashes: 4,
            plans: Plans::default(),
            cells: Vec::new(),
            provisioning: ProvisioningConfig::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    /// Permits for password hashing; see [`ApiConfig::max_concurrent_password_hashes`].
    pub(crate) hash_permits: Arc<Semaphore>,
    /// Cell clients, key-push locks and the reconciler's wake-up.
    pub provisioner: Arc<Provisioner>,
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        AppState {
            store,
            hash_permits: Arc::new(Semaphore::new(config.max_concurrent_password_hashes.max(1))),
            provisioner: Arc::new(Provisioner::new(&config.cells, config.provisioning)),
            config: Arc::new(config),
        }
    }

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
    let limiter = RateLimiter::new(state.config.auth_rate_limit);
    let (routes, doc) = openapi::build(openapi::route_table(&limiter));
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
