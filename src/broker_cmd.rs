//! `tributary broker`: binds the listener, opens the broker state, serves until SIGINT or
//! SIGTERM, then shuts down cleanly (flushing acknowledged-but-waiting writes).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use data_plane::broker::Broker;
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
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    if !args.standalone {
        bail!("only `--standalone` brokers exist so far; cells come with the cell controller");
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
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
    let shutdown = CancellationToken::new();
    let broker = Broker::open(config, shutdown.clone())
        .await
        .with_context(|| format!("cannot open broker state in {}", args.data_dir.display()))?;
    if let Some(path) = &args.port_file {
        data_plane::fsutil::write_atomic(path, bound.to_string().as_bytes())?;
    }
    info!(%bound, data_dir = %args.data_dir.display(), "standalone broker ready");
    let server = tokio::spawn(data_plane::server::serve(
        listener,
        broker,
        shutdown.clone(),
    ));
    crate::wait_for_signal().await;
    info!("shutting down");
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}
