//! `tributary control-plane`: the REST API (sign-up, login, environments, clusters,
//! service accounts, API keys) and the provisioning reconciler that places clusters into
//! the cells given with `--cell`, on SQLite in the data dir by default or PostgreSQL with
//! `--database-url`. Serves until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use control_plane::cells::CellConfig;
use control_plane::plans::Plans;
use control_plane::{ApiConfig, AppState, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

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
}

pub async fn run(args: ControlPlaneArgs) -> anyhow::Result<()> {
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
    let mut plans = Plans::default();
    for spec in &args.plan_limits {
        plans.apply_override(spec)?;
    }
    let config = ApiConfig {
        public_url: args.public_url.clone(),
        plans,
        cells: args.cells.clone(),
        ..ApiConfig::default()
    };
    if let Some(path) = &args.port_file {
        data_plane::fsutil::write_atomic(path, bound.to_string().as_bytes())?;
    }
    info!(%bound, backend = ?store.backend(), "control plane ready");
    let shutdown = CancellationToken::new();
    let state = AppState::new(store, config);
    let reconciler = tokio::spawn(control_plane::reconciler::run(
        state.clone(),
        shutdown.clone(),
    ));
    let server = tokio::spawn(control_plane::serve(listener, state, shutdown.clone()));
    crate::wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    server.await??;
    let _ = reconciler.await;
    Ok(())
}
