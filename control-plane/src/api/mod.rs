//! The REST API (axum).
//!
//! Request flow: router -> (rate limit on sign-up and login) -> extractors ([`ApiJson`],
//! [`ApiQuery`], [`Caller`]) -> handler -> [`Store`]. Every handler answers a
//! [`crate::Error`] on failure, so every failure leaves as the JSON error envelope.
//! Unknown routes and methods answer the envelope too.

mod auth;
mod environments;
mod extract;

pub use auth::Caller;
pub use extract::{ApiJson, ApiQuery};

use crate::error::Error;
use crate::ratelimit::{self, RateLimitConfig, RateLimiter};
use crate::store::Store;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Settings of the REST API.
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
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: None,
            session_ttl: Duration::from_secs(12 * 3600),
            auth_rate_limit: RateLimitConfig::default(),
            max_concurrent_password_hashes: 4,
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
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        AppState {
            store,
            hash_permits: Arc::new(Semaphore::new(config.max_concurrent_password_hashes.max(1))),
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

/// The API's router.
pub fn router(state: AppState) -> Router {
    let limiter = RateLimiter::new(state.config.auth_rate_limit);
    let public = Router::new()
        .route("/v1/signup", post(auth::signup))
        .route("/v1/login", post(auth::login))
        .route_layer(axum::middleware::from_fn_with_state(
            limiter,
            ratelimit::limit,
        ));
    let environments = Router::new()
        .route(
            "/org/v2/environments",
            get(environments::list).post(environments::create),
        )
        .route(
            "/org/v2/environments/{id}",
            get(environments::get)
                .patch(environments::update)
                .delete(environments::delete),
        );
    Router::new()
        .merge(public)
        .merge(environments)
        .fallback(|| async { Error::NotFound("no such route; see the API reference".into()) })
        .method_not_allowed_fallback(|| async {
            Error::MethodNotAllowed("this route does not accept this method".into())
        })
        .with_state(state)
}

/// Serves the API on an already-bound listener until `shutdown` is cancelled, then
/// finishes in-flight requests and returns.
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
