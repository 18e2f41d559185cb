//! `tributary controller`: one voter of a cell's controller quorum. Binds the gRPC
//! listener, opens (or recovers) the Raft log, vote and snapshot in the data dir, serves
//! until SIGINT or SIGTERM, then stops the server and Raft cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cells::{ControllerConfig, ControllerNode};
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Args)]
pub struct ControllerArgs {
    /// This voter's id (one of the ids in --voters).
    #[arg(long)]
    node_id: u64,
    /// Address to listen on for the cell API and Raft traffic.
    #[arg(long)]
    listen: SocketAddr,
    /// Directory for the Raft log, vote and snapshots.
    #[arg(long)]
    data_dir: PathBuf,
    /// Every voter as ID=HOST:PORT, comma-separated (1 or 3 voters).
    #[arg(long)]
    voters: String,
    /// The cell this quorum runs.
    #[arg(long)]
    cell_id: String,
    /// A broker that does not heartbeat for this long is fenced.
    #[arg(long, default_value_t = 6000)]
    session_timeout_ms: u64,
    /// Raft heartbeat interval.
    #[arg(long, default_value_t = 100)]
    raft_heartbeat_ms: u64,
    /// Raft election timeout range (a random value in [min, max)).
    #[arg(long, default_value_t = 500)]
    election_timeout_min_ms: u64,
    #[arg(long, default_value_t = 1000)]
    election_timeout_max_ms: u64,
    /// Build a snapshot every this many Raft entries.
    #[arg(long, default_value_t = 1000)]
    snapshot_every: u64,
    /// How often leadership moves back to preferred replicas.
    #[arg(long, default_value_t = 10_000)]
    preferred_election_ms: u64,
    /// Partitions of a topic created with -1.
    #[arg(long, default_value_t = 1)]
    default_partitions: i32,
    /// Replication factor of a topic created with -1 (RF larger than the active brokers
    /// is an error).
    #[arg(long, default_value_t = 3)]
    default_replication_factor: i32,
    /// Replicas one broker is sized for (for the cell load).
    #[arg(long, default_value_t = 4000)]
    broker_replica_capacity: u32,
    /// Write the bound address to this file once listening (for scripts and tests).
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Address for the admin HTTP endpoint: /metrics (Prometheus), /livez, /readyz
    /// (ready while the quorum has a leader).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let voters = ControllerConfig::parse_voters(&args.voters)?;
    let mut config = ControllerConfig::new(args.node_id, &args.cell_id, &args.data_dir, voters);
    config.session_timeout = Duration::from_millis(args.session_timeout_ms);
    config.raft_heartbeat = Duration::from_millis(args.raft_heartbeat_ms);
    config.election_timeout_min = Duration::from_millis(args.election_timeout_min_ms);
    config.election_timeout_max = Duration::from_millis(args.election_timeout_max_ms);
    config.snapshot_every = args.snapshot_every;
    config.preferred_election_interval = Duration::from_millis(args.preferred_election_ms);
    config.default_partitions = args.default_partitions;
    config.default_replication_factor = args.default_replication_factor;
    config.broker_replica_capacity = args.broker_replica_capacity;
    config.validate()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let admin = crate::admin_http::bind(args.metrics_listen, "controller").await?;
    let shutdown = CancellationToken::new();
    let opened = crate::readiness::Opening::default();
    let admin = crate::admin_http::spawn(admin, crate::readiness::controller(&opened), &shutdown);
    let node = ControllerNode::start(config, listener, shutdown.clone())
        .await
        .with_context(|| format!("cannot start the controller in {}", args.data_dir.display()))?;
    opened.set(node.controller().clone());
    if let Some(path) = &args.port_file {
        data_plane::fsutil::write_atomic(path, bound.to_string().as_bytes())?;
    }
    info!(%bound, node_id = args.node_id, cell = %args.cell_id, "controller ready");
    crate::wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    node.wait().await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    Ok(())
}
