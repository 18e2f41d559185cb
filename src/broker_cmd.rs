//! `tributary broker`: binds the listener, opens the broker state, serves until SIGINT or
//! SIGTERM, then shuts down cleanly (flushing acknowledged-but-waiting writes).
//!
//! `--standalone` runs one broker alone; `--controllers` makes it a broker of a cell,
//! which takes its metadata from the cell's controller quorum and replicates
//! partitions with the other brokers (on shutdown it first moves its leaderships away).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use data_plane::broker::Broker;
use data_plane::cell::CellConfig;
use data_plane::config::{BrokerConfig, FsyncPolicy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Clone, Copy, ValueEnum)]
enum Fsync {
    /// acks=-1 answers after fsync (grouped); consumers only see durable data.
    Always,
    /// Never fsync on the produce path.
    Never,
}

#[derive(Args)]
pub struct BrokerArgs {
    /// Run one broker on its own: PLAINTEXT, no authentication, no cell controller.
    #[arg(long)]
    standalone: bool,
    /// Address to listen on for Kafka clients (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// Host (and port) advertised to clients; defaults to the listener's address.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Directory for logs and broker state.
    #[arg(long, default_value = "./data/broker")]
    data_dir: PathBuf,
    /// This broker's id.
    #[arg(long, default_value_t = 1)]
    node_id: i32,
    /// Largest request frame accepted (socket.request.max.bytes).
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Durability policy for acknowledged writes.
    #[arg(long, value_enum, default_value = "always")]
    fsync: Fsync,
    /// Default partition count for auto-created topics.
    #[arg(long, default_value_t = 1)]
    default_partitions: i32,
    /// How often retention runs, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    retention_check_ms: u64,
    /// Write the bound address to this file once listening (for scripts and tests).
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// The cell's controller voters (gRPC `HOST:PORT`, comma-separated): run as a broker
    /// of that cell.
    #[arg(long, value_delimiter = ',', conflicts_with = "standalone")]
    controllers: Vec<String>,
    /// Availability zone of this broker (cells spread replicas across zones).
    #[arg(long, default_value = "zone-a")]
    zone: String,
    /// The logical cluster this listener's clients belong to (until SASL binds one per
    /// connection).
    #[arg(long, default_value = "lkc-local")]
    tenant: String,
    /// Heartbeat interval to the controller, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    /// A follower not caught up for this long leaves the ISR (replica.lag.time.max.ms).
    #[arg(long, default_value_t = 10_000)]
    replica_lag_time_max_ms: u64,
    /// Default min.insync.replicas for topics in the cell.
    #[arg(long, default_value_t = 2)]
    min_insync_replicas: u32,
    /// Address for the admin HTTP endpoint: /metrics (Prometheus), /livez, /readyz.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    if !args.standalone && args.controllers.is_empty() {
        bail!("say `--standalone` for a broker on its own, or `--controllers HOST:PORT,...` for a broker of a cell");
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let admin = crate::admin_http::bind(args.metrics_listen, "broker").await?;
    let mut config = BrokerConfig::standalone(&args.data_dir);
    config.node_id = args.node_id;
    config.max_request_bytes = args.max_request_bytes;
    config.default_partitions = args.default_partitions;
    config.retention_check_interval = std::time::Duration::from_millis(args.retention_check_ms);
    config.fsync = match args.fsync {
        Fsync::Always => FsyncPolicy::Always,
        Fsync::Never => FsyncPolicy::Never,
    };
    match &args.advertised_listener {
        Some(adv) => {
            let (host, port) = adv
                .rsplit_once(':')
                .context("--advertised-listener must be HOST:PORT")?;
            config.advertised_host = host.to_string();
            config.advertised_port = port.parse().context("--advertised-listener port")?;
        }
        None => {
            config.advertised_host = bound.ip().to_string();
            config.advertised_port = bound.port();
        }
    }
    if !args.controllers.is_empty() {
        let mut cell = CellConfig::new(args.controllers.clone(), args.tenant.clone());
        cell.zone = args.zone.clone();
        cell.heartbeat_interval = std::time::Duration::from_millis(args.heartbeat_ms.max(10));
        cell.replica_lag_time_max =
            std::time::Duration::from_millis(args.replica_lag_time_max_ms.max(100));
        config.log_defaults.min_insync_replicas = args.min_insync_replicas.max(1);
        config.cell = Some(cell);
    }
    let shutdown = CancellationToken::new();
    let opened = crate::readiness::Opening::default();
    let admin = crate::admin_http::spawn(admin, crate::readiness::broker(&opened), &shutdown);
    let broker = Broker::open(config, shutdown.clone())
        .await
        .with_context(|| format!("cannot open broker state in {}", args.data_dir.display()))?;
    opened.set(broker.clone());
    if let Some(path) = &args.port_file {
        data_plane::fsutil::write_atomic(path, bound.to_string().as_bytes())?;
    }
    let role = if broker.cell.is_some() {
        "cell"
    } else {
        "standalone"
    };
    info!(%bound, data_dir = %args.data_dir.display(), role, "broker ready");
    let server = tokio::spawn(data_plane::server::serve(
        listener,
        broker.clone(),
        shutdown.clone(),
    ));
    crate::wait_for_signal().await;
    info!("shutting down");
    if let Some(cell) = &broker.cell {
        data_plane::cell::session::controlled_shutdown(
            &broker,
            cell,
            std::time::Duration::from_secs(10),
        )
        .await;
    }
    shutdown.cancel();
    let _ = server.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    Ok(())
}
