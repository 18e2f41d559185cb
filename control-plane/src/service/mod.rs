//! The service layer: every rule of the Cloud API, shared by its two faces, REST
//! (`crate::api`, axum) and gRPC (`crate::grpc`, tonic).
//!
//! A face only decodes its request, authenticates the caller with [`auth::authenticate`],
//! calls one function here and encodes the answer; validation, organisation scoping,
//! paging and side effects (key pushes, waking the reconciler) all live here, and every
//! failure is the crate's one [`Error`](crate::Error), which each face maps in one place
//! (`IntoResponse` for HTTP, `From<Error> for tonic::Status` for gRPC). So both faces
//! apply the same rules and answer the same errors.
//!
//! Functions take the shared [`AppState`] and the authenticated [`Principal`]; every
//! query is scoped to the principal's organisation, so another organisation's ids answer
//! [`Error::NotFound`](crate::Error::NotFound), never data.

pub mod api_keys;
pub mod auth;
pub mod clusters;
pub mod environments;
pub mod kafka;
pub mod kafka_acls;
pub mod kafka_groups;
pub mod metrics;
mod page;
pub mod service_accounts;

pub use page::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use crate::cells::CellConfig;
use crate::plans::Plans;
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use crate::reconciler::{Provisioner, ProvisioningConfig};
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// CRNs name every resource: `crn://tributary.cloud/organization=.../...`.
pub const CRN_ROOT: &str = "crn://tributary.cloud";

/// Settings of the control plane: its APIs, plans, cells and provisioning.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Base URL for links in REST responses (`metadata.self`, `metadata.next`), e.g.
    /// `https://api.tributary.example`. `None`: `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// How long a login token stays valid.
    pub session_ttl: Duration,
    /// The per-client-IP limit on sign-up and login (REST and gRPC share one table).
    pub auth_rate_limit: RateLimitConfig,
    /// Most argon2 hashes computed at once (each takes ~19 MiB and a core for tens of
    /// milliseconds); further sign-ups and logins wait for a permit.
    pub max_concurrent_password_hashes: usize,
    /// Limits of each cluster kind (defaults, with overrides applied).
    pub plans: Plans,
    /// The cells clusters are placed into.
    pub cells: Vec<CellConfig>,
    pub provisioning: ProvisioningConfig,
    /// Bounds of Kafka REST's calls to a cluster's brokers (consumer groups, ACLs).
    pub kafka_client: crate::kafka_client::Limits,
    /// The Metrics API's usage collector.
    pub usage: crate::usage::UsageConfig,
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
            kafka_client: crate::kafka_client::Limits::default(),
            usage: crate::usage::UsageConfig::default(),
        }
    }
}

/// What every request shares, whichever face it came through.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    /// Permits for password hashing; see [`ApiConfig::max_concurrent_password_hashes`].
    pub(crate) hash_permits: Arc<Semaphore>,
    /// The per-client-IP limit on sign-up and login, one table for both faces (a client
    /// cannot double its budget by switching from REST to gRPC).
    pub(crate) auth_limiter: Arc<RateLimiter>,
    /// Cell clients, key-push locks and the reconciler's wake-up.
    pub provisioner: Arc<Provisioner>,
    /// Permits for sessions with clusters' brokers (Kafka REST groups and ACLs); see
    /// [`crate::kafka_client::Limits::max_concurrent_sessions`].
    pub(crate) kafka_sessions: Arc<Semaphore>,
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        AppState {
            store,
            hash_permits: Arc::new(Semaphore::new(config.max_concurrent_password_hashes.max(1))),
            auth_limiter: RateLimiter::new(config.auth_rate_limit),
            provisioner: Arc::new(Provisioner::new(&config.cells, config.provisioning)),
            kafka_sessions: Arc::new(Semaphore::new(
                config.kafka_client.max_concurrent_sessions.max(1),
            )),
            config: Arc::new(config),
        }
    }
}

/// The CRN of an environment (also the prefix of its clusters' CRNs).
pub fn environment_crn(org_id: &str, env_id: &str) -> String {
    format!("{CRN_ROOT}/organization={org_id}/environment={env_id}")
}

/// The CRN of a user or service account of `org_id`.
pub fn principal_crn(org_id: &str, id: &str) -> String {
    let kind = if id.starts_with("sa-") {
        "service-account"
    } else {
        "user"
    };
    format!("{CRN_ROOT}/organization={org_id}/{kind}={id}")
}

/// The resource kind of a principal id: `ServiceAccount` (`sa-...`) or `User`.
pub fn principal_kind(id: &str) -> &'static str {
    if id.starts_with("sa-") {
        "ServiceAccount"
    } else {
        "User"
    }
}

/// The CRN of a cluster (with its environment when known).
pub fn cluster_crn(org_id: &str, env_id: Option<&str>, id: &str) -> String {
    match env_id {
        Some(env) => format!(
            "{}/cloud-cluster={id}/kafka={id}",
            environment_crn(org_id, env)
        ),
        None => format!("{CRN_ROOT}/organization={org_id}/cloud-cluster={id}/kafka={id}"),
    }
}

/// The CRN of an API key.
pub fn api_key_crn(org_id: &str, id: &str) -> String {
    format!("{CRN_ROOT}/organization={org_id}/api-key={id}")
}

/// Checks an id used as a filter or reference: letters, digits and '-', at most 64.
pub(crate) fn check_id(field: &str, id: &str) -> crate::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(crate::Error::InvalidArgument(format!(
            "{field} {id:?} is not a valid id (letters, digits and '-')"
        )))
    }
}
