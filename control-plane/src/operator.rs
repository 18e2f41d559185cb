//! The operator API, on its own listener (`--operator-listen`, default 127.0.0.1:8081):
//! the configured cells with their load and tenants.
//!
//! - `GET /operator/v1/cells`: every configured cell (by id): its controller addresses,
//!   whether it answered `GetCellLoad` just now and, if so, its load, brokers (state,
//!   leaders, replicas, Kafka endpoint), partitions and logical clusters; and the clusters
//!   the database places in it (tenants), listed whether or not the cell answers.
//! - `GET /operator/v1/cells/{id}`: one cell.
//!
//! Authentication is one static token (`--operator-token` or `TRIBUTARY_OPERATOR_TOKEN`)
//! sent as `Authorization: Bearer <token>`. Without a configured token the listener
//! refuses every request with 401 and says how to set one. Cells are asked concurrently,
//! each within [`OperatorConfig::cell_timeout`], so an unreachable cell costs one timeout
//! and not the whole answer. Errors use the crate's envelope.

use crate::api::AppState;
use crate::cells::CellConfig;
use crate::error::{Error, Result};
use crate::store::Cluster;
use crate::util::{constant_time_eq, rfc3339_millis, token_hash};
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use proto::cell::v1::{BrokerState, CellLoad, GetCellLoadRequest};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Most tenants listed per cell; `tenants_truncated` says when there are more.
pub const MAX_TENANTS_LISTED: i64 = 1000;

/// Settings of the operator API.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// The token operators send as `Authorization: Bearer <token>`; `None` refuses every
    /// request.
    pub token: Option<String>,
    /// How long one cell may take to answer `GetCellLoad` before it is reported
    /// unreachable.
    pub cell_timeout: Duration,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            token: None,
            cell_timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Clone)]
struct OperatorState {
    app: AppState,
    /// SHA-256 (hex) of the token, compared in constant time.
    token_sha256: Option<Arc<str>>,
    cell_timeout: Duration,
}

/// One cell as the operator sees it.
#[derive(Serialize)]
pub struct CellView {
    pub id: String,
    /// The gRPC addresses of its controller voters, as configured.
    pub controllers: Vec<String>,
    /// Whether its controllers answered `GetCellLoad` within the timeout just now.
    pub reachable: bool,
    /// Why it is not reachable (absent when it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the cell reported (absent when unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadView>,
    /// The clusters the database places in this cell, oldest first.
    pub tenants: Vec<TenantView>,
    /// More than [`MAX_TENANTS_LISTED`] tenants: the list is cut.
    pub tenants_truncated: bool,
}

/// A cell's `GetCellLoad` answer.
#[derive(Serialize)]
pub struct LoadView {
    /// Kora's cell load, 0.0 to 1.0.
    pub load: f64,
    pub logical_clusters: u32,
    pub partitions: u32,
    pub brokers: Vec<BrokerView>,
    /// The Kafka bootstrap (`host:port` of every active broker).
    pub bootstrap: Vec<String>,
    pub metadata_offset: u64,
}

#[derive(Serialize)]
pub struct BrokerView {
    pub broker_id: i32,
    pub zone: String,
    /// FENCED, ACTIVE, CONTROLLED_SHUTDOWN, DRAINING or UNSPECIFIED.
    pub state: String,
    pub leaders: u32,
    pub replicas: u32,
    /// `host:port` of its Kafka listener; empty when it reported none.
    pub kafka: String,
}

/// A cluster placed in a cell.
#[derive(Serialize)]
pub struct TenantView {
    pub cluster_id: String,
    pub organization_id: String,
    pub environment_id: String,
    pub display_name: String,
    pub kind: &'static str,
    /// 0 unless Dedicated.
    pub cku: u32,
    /// PROVISIONING, PROVISIONED, FAILED or DELETING.
    pub phase: &'static str,
    pub created_at: String,
}

#[derive(Serialize)]
pub struct CellList {
    pub cells: Vec<CellView>,
}

fn load_view(load: CellLoad) -> LoadView {
    let endpoint = |e: &proto::cell::v1::Endpoint| format!("{}:{}", e.host, e.port);
    LoadView {
        load: load.load,
        logical_clusters: load.logical_clusters,
        partitions: load.partitions,
        brokers: load
            .brokers
            .iter()
            .map(|b| BrokerView {
                broker_id: b.broker_id,
                zone: b.zone.clone(),
                state: BrokerState::try_from(b.state)
                    .map(|s| {
                        s.as_str_name()
                            .trim_start_matches("BROKER_STATE_")
                            .to_string()
                    })
                    .unwrap_or_else(|_| format!("UNKNOWN({})", b.state)),
                leaders: b.leaders,
                replicas: b.replicas,
                kafka: b.kafka.as_ref().map(endpoint).unwrap_or_default(),
            })
            .collect(),
        bootstrap: load.bootstrap.iter().map(endpoint).collect(),
        metadata_offset: load.metadata_offset,
    }
}

fn tenant_view(c: Cluster) -> TenantView {
    TenantView {
        kind: c.kind.as_str(),
        phase: c.phase.as_str(),
        created_at: rfc3339_millis(c.created_at),
        cluster_id: c.id,
        organization_id: c.organization_id,
        environment_id: c.environment_id,
        display_name: c.display_name,
        cku: c.cku,
    }
}

/// Asks one cell for its load (within the timeout) and the store for its tenants.
async fn describe(state: &OperatorState, cell: &CellConfig) -> Result<CellView> {
    let prov = &state.app.provisioner;
    let answer = match prov.cells.get(&cell.id) {
        None => Err(format!("cell {} has no client", cell.id)),
        Some(client) => {
            let call = client.call("GetCellLoad", |mut c| async move {
                c.get_cell_load(GetCellLoadRequest {}).await
            });
            match tokio::time::timeout(state.cell_timeout, call).await {
                Ok(Ok(load)) if !load.cell_id.is_empty() && load.cell_id != cell.id => {
                    Err(format!(
                        "cell {}'s controllers say they are cell {}; fix the --cell option",
                        cell.id, load.cell_id
                    ))
                }
                Ok(Ok(load)) => Ok(load),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "cell {} did not answer GetCellLoad within {:?}",
                    cell.id, state.cell_timeout
                )),
            }
        }
    };
    let mut tenants = state
        .app
        .store
        .clusters_in_cell(&cell.id, MAX_TENANTS_LISTED + 1)
        .await?;
    let tenants_truncated = tenants.len() as i64 > MAX_TENANTS_LISTED;
    tenants.truncate(MAX_TENANTS_LISTED as usize);
    let (reachable, error, load) = match answer {
        Ok(load) => (true, None, Some(load_view(load))),
        Err(e) => (false, Some(e), None),
    };
    Ok(CellView {
        id: cell.id.clone(),
        controllers: cell.addresses.clone(),
        reachable,
        error,
        load,
        tenants: tenants.into_iter().map(tenant_view).collect(),
        tenants_truncated,
    })
}

/// `GET /operator/v1/cells`: every configured cell, asked concurrently.
async fn list_cells(State(state): State<OperatorState>) -> Result<Json<CellList>> {
    let mut tasks = JoinSet::new();
    for (i, cell) in state.app.config.cells.iter().enumerate() {
        let state = state.clone();
        let cell = cell.clone();
        tasks.spawn(async move { (i, describe(&state, &cell).await) });
    }
    let mut cells: Vec<(usize, CellView)> = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        let (i, view) = done.map_err(|e| Error::Internal(format!("cell task: {e}")))?;
        cells.push((i, view?));
    }
    cells.sort_by_key(|(i, _)| *i);
    Ok(Json(CellList {
        cells: cells.into_iter().map(|(_, c)| c).collect(),
    }))
}

/// `GET /operator/v1/cells/{id}`: one configured cell.
async fn get_cell(
    State(state): State<OperatorState>,
    Path(id): Path<String>,
) -> Result<Json<CellView>> {
    let cell = state
        .app
        .config
        .cells
        .iter()
        .find(|c| c.id == id)
        .cloned()
        .ok_or_else(|| {
            Error::NotFound(format!(
                "cell {id} is not configured; list the cells with GET /operator/v1/cells"
            ))
        })?;
    Ok(Json(describe(&state, &cell).await?))
}

/// Refuses requests without the operator token (and every request when none is set).
async fn require_token(
    State(state): State<OperatorState>,
    req: Request,
    next: Next,
) -> Result<Response> {
    let Some(expected) = &state.token_sha256 else {
        return Err(Error::Unauthenticated(
            "the operator API has no token configured; start the control plane with \
             --operator-token or the TRIBUTARY_OPERATOR_TOKEN environment variable, then send \
             `Authorization: Bearer <token>`"
                .into(),
        ));
    };
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match sent {
        None => Err(Error::Unauthenticated(
            "missing operator token; send `Authorization: Bearer <operator token>`".into(),
        )),
        Some(token) if constant_time_eq(&token_hash(token), expected) => Ok(next.run(req).await),
        Some(_) => Err(Error::Unauthenticated(
            "wrong operator token; use the one given to --operator-token or \
             TRIBUTARY_OPERATOR_TOKEN"
                .into(),
        )),
    }
}

/// The operator API's router over the control plane's shared state.
pub fn router(app: AppState, config: &OperatorConfig) -> Router {
    let state = OperatorState {
        app,
        token_sha256: config
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| Arc::from(token_hash(t))),
        cell_timeout: config.cell_timeout,
    };
    Router::new()
        .route("/operator/v1/cells", get(list_cells))
        .route("/operator/v1/cells/{id}", get(get_cell))
        .fallback(|| async {
            Error::NotFound(
                "no such operator route; use GET /operator/v1/cells or /operator/v1/cells/{id}"
                    .into(),
            )
        })
        .method_not_allowed_fallback(|| async {
            Error::MethodNotAllowed("the operator API is read-only: use GET".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn(|req, next| {
            crate::metrics::track_http(crate::metrics::Api::Operator, req, next)
        }))
        .with_state(state)
}

/// Serves the operator API on an already-bound listener until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    config: OperatorConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(app, &config))
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await
}
