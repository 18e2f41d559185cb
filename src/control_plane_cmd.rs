//! `tributary control-plane`: the REST API (sign-up, login, environments, clusters,
//! service accounts, API keys), the same API over gRPC with `--grpc-listen`, and the
//! provisioning reconciler that places clusters into
//! the cells given with `--cell`, the usage collector behind the Metrics API, on SQLite in the data dir by default or PostgreSQL with
//! `--database-url`, and the operator API (cells, their load and tenants) on its own
//! listener, authenticated by `--operator-token` / `TRIBUTARY_OPERATOR_TOKEN`. Serves until
//! SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use control_plane::cells::CellConfig;
use control_plane::operator::OperatorConfig;
use control_plane::plans::Plans;
use control_plane::usage::UsageConfig;
use control_plane::{ApiConfig, AppState, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Args)]
pub struct ControlPlaneArgs {
    /// Address for the REST API (port 0 picks a free port; see --port-file).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the embedded SQLite database (ignored with --database-url).
    #[arg(long, default_value = "./data/control-plane")]
    data_dir: PathBuf,
    /// `postgres://...` to store everything in PostgreSQL instead of SQLite.
    #[arg(long, env = "TRIBUTARY_DATABASE_URL")]
    database_url: Option<String>,
    /// Base URL used in response links (`metadata.self`, `metadata.next`).
    #[arg(long)]
    public_url: Option<String>,
    /// Write the bound address to this file once listening (for scripts and tests).
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// A cell clusters can be placed into: `ID=CONTROLLER[,CONTROLLER...]` (gRPC
    /// addresses of its controller voters). Repeat for more cells.
    #[arg(long = "cell")]
    cells: Vec<CellConfig>,
    /// Override one plan limit: `KIND.FIELD=VALUE`, e.g. `Basic.max_partitions=100`.
    #[arg(long = "plan-limit")]
    plan_limits: Vec<String>,
    /// Address for the gRPC face of the same API (`tributary.controlplane.v1`; port 0 picks
    /// a free port, see --grpc-port-file). Absent: no gRPC face.
    #[arg(long)]
    grpc_listen: Option<SocketAddr>,
    /// Write the gRPC face's bound address to this file once listening.
    #[arg(long, requires = "grpc_listen")]
    grpc_port_file: Option<PathBuf>,
    /// Address for the operator API (port 0 picks a free port; see --operator-port-file).
    /// Keep it off public networks.
    #[arg(long, default_value = "127.0.0.1:8081")]
    operator_listen: SocketAddr,
    /// Write the operator API's bound address to this file once listening.
    #[arg(long)]
    operator_port_file: Option<PathBuf>,
    /// The token operators send as `Authorization: Bearer <token>` (prefer the environment
    /// variable: a flag shows in the process list). Unset: the operator API refuses every
    /// request.
    #[arg(long, env = "TRIBUTARY_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// Address for the admin HTTP endpoint: /metrics (Prometheus), /livez, /readyz (ready
    /// while the database answers). Its own listener, so the public REST API (and its
    /// OpenAPI document) stays as it is.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// How often the Metrics API's usage collector asks every cell for its tenants' usage
    /// (seconds; points are kept per minute, so more often than 60 only makes them fresher).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    usage_collect_interval_secs: u64,
}

pub async fn run(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let admin = crate::admin_http::bind(args.metrics_listen, "control-plane").await?;
    let opened = crate::readiness::Opening::default();
    let admin =
        crate::admin_http::spawn(admin, crate::readiness::control_plane(&opened), &shutdown);
    let store = match &args.database_url {
        Some(url) => Store::connect(url)
            .await
            .context("cannot open the PostgreSQL database")?,
        None => Store::open_sqlite_dir(&args.data_dir)
            .await
            .with_context(|| {
                format!(
                    "cannot open the SQLite database in {}",
                    args.data_dir.display()
                )
            })?,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let operator_listener = TcpListener::bind(args.operator_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the operator API",
                args.operator_listen
            )
        })?;
    let operator_bound = operator_listener.local_addr()?;
    let grpc_listener = match args.grpc_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the gRPC API"))?,
        ),
        None => None,
    };
    let grpc_bound = grpc_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let mut plans = Plans::default();
    for spec in &args.plan_limits {
        plans.apply_override(spec)?;
    }
    let config = ApiConfig {
        public_url: args.public_url.clone(),
        plans,
        cells: args.cells.clone(),
        usage: UsageConfig {
            interval: Duration::from_secs(args.usage_collect_interval_secs),
            ..UsageConfig::default()
        },
        ..ApiConfig::default()
    };
    if let Some(path) = &args.port_file {
        data_plane::fsutil::write_atomic(path, bound.to_string().as_bytes())?;
    }
    if let Some(path) = &args.operator_port_file {
        data_plane::fsutil::write_atomic(path, operator_bound.to_string().as_bytes())?;
    }
    if let (Some(path), Some(bound)) = (&args.grpc_port_file, grpc_bound) {
        data_plane::fsutil::write_atomic(path, bound.to_string().as_bytes())?;
    }
    let operator_token = args.operator_token.clone().filter(|t| !t.is_empty());
    if operator_token.is_none() {
        warn!(%operator_bound, "no operator token (--operator-token or TRIBUTARY_OPERATOR_TOKEN): the operator API refuses every request");
    }
    info!(%bound, %operator_bound, grpc = ?grpc_bound, backend = ?store.backend(), "control plane ready");
    opened.set(store.clone());
    let state = AppState::new(store, config);
    let reconciler = tokio::spawn(control_plane::reconciler::run(
        state.clone(),
        shutdown.clone(),
    ));
    let collector = tokio::spawn(control_plane::usage::run(state.clone(), shutdown.clone()));
    let operator = tokio::spawn(control_plane::operator::serve(
        operator_listener,
        state.clone(),
        OperatorConfig {
            token: operator_token,
            ..OperatorConfig::default()
        },
        shutdown.clone(),
    ));
    let grpc = grpc_listener.map(|l| {
        tokio::spawn(control_plane::grpc::serve(
            l,
            state.clone(),
            shutdown.clone(),
        ))
    });
    let server = tokio::spawn(control_plane::serve(listener, state, shutdown.clone()));
    crate::wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    server.await??;
    operator.await??;
    if let Some(grpc) = grpc {
        grpc.await??;
    }
    let _ = reconciler.await;
    let _ = collector.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    Ok(())
}
