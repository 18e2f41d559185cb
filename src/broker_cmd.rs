//! `tributary broker`: binds the listener, opens the broker state, serves until SIGINT or
//! SIGTERM, then shuts down cleanly (flushing acknowledged-but-waiting writes).
//!
//! `--standalone` runs one broker alone; `--controllers` makes it a broker of a cell,
//! which takes its metadata from the cell's controller quorum and replicates
//! partitions with the other brokers (on shutdown it first moves its leaderships away).
//!
//! A cell broker has up to three listeners: PLAINTEXT (`--listen`), where the cell's
//! brokers replicate (and, with `--tenant`, one logical cluster's clients connect without
//! authentication: local development only), SASL_PLAINTEXT (`--sasl-listen`), where
//! tenants' clients authenticate with an API key and are bound to its cluster, and
//! SASL_SSL (`--sasl-ssl-listen` with `--tls-cert` and `--tls-key`), the same over TLS.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use data_plane::broker::Broker;
use data_plane::cell::CellConfig;
use data_plane::config::{BrokerConfig, FsyncPolicy};
use data_plane::connection::Listener;
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
    /// Zeros written ahead of each active segment's data so that fsyncs rarely have to commit
    /// file metadata (0 turns it off); small partitions zero ahead only as much as they hold.
    #[arg(long, default_value_t = data_plane::config::DEFAULT_PREALLOCATE_BYTES)]
    preallocate_bytes: u64,
    /// This broker's safe total ingress in bytes/s (0: none): past 90% of it, every active
    /// tenant's quota here is scaled back by the same factor.
    #[arg(long, default_value_t = 0)]
    broker_ingress_bytes_per_sec: u64,
    /// This broker's safe total egress in bytes/s (0: none), as for ingress.
    #[arg(long, default_value_t = 0)]
    broker_egress_bytes_per_sec: u64,
    /// Default partition count for auto-created topics.
    #[arg(long, default_value_t = 1)]
    default_partitions: i32,
    /// How often retention runs, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    retention_check_ms: u64,
    /// Write the bound address to this file once listening (for scripts and tests); more
    /// lines `sasl=ADDR` and `sasl_ssl=ADDR` give the SASL listeners'.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// The cell's controller voters (gRPC `HOST:PORT`, comma-separated): run as a broker
    /// of that cell.
    #[arg(long, value_delimiter = ',', conflicts_with = "standalone")]
    controllers: Vec<String>,
    /// Availability zone of this broker (cells spread replicas across zones).
    #[arg(long, default_value = "zone-a")]
    zone: String,
    /// Bind unauthenticated PLAINTEXT clients to this logical cluster (local development;
    /// without it, a cell broker's PLAINTEXT listener serves only replication).
    #[arg(long)]
    tenant: Option<String>,
    /// Address of the SASL_PLAINTEXT listener for tenants' clients (cell brokers).
    #[arg(long, requires = "controllers")]
    sasl_listen: Option<SocketAddr>,
    /// Host and port advertised for the SASL listener; defaults to its bound address.
    #[arg(long, requires = "sasl_listen")]
    advertised_sasl_listener: Option<String>,
    /// Address of the SASL_SSL listener for tenants' clients (cell brokers; needs
    /// `--tls-cert` and `--tls-key`).
    #[arg(long, requires_all = ["controllers", "tls_cert", "tls_key"])]
    sasl_ssl_listen: Option<SocketAddr>,
    /// Host and port advertised for the SASL_SSL listener; defaults to its bound address.
    /// The host must be one the certificate names.
    #[arg(long, requires = "sasl_ssl_listen")]
    advertised_sasl_ssl_listener: Option<String>,
    /// PEM file with the SASL_SSL listener's certificate chain (the broker's certificate
    /// first). Read once at start-up.
    #[arg(long, requires = "sasl_ssl_listen")]
    tls_cert: Option<PathBuf>,
    /// PEM file with the private key of `--tls-cert`.
    #[arg(long, requires = "sasl_ssl_listen")]
    tls_key: Option<PathBuf>,
    /// A client that has not finished its TLS handshake after this long is disconnected.
    #[arg(long, default_value_t = data_plane::config::DEFAULT_TLS_HANDSHAKE_TIMEOUT.as_millis() as u64)]
    tls_handshake_timeout_ms: u64,
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
    let sasl_listener = match args.sasl_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--sasl-listen)"))?,
        ),
        None => None,
    };
    // Certificates are checked before anything binds or opens, so a bad one fails fast.
    let tls = match (args.sasl_ssl_listen, &args.tls_cert, &args.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let acceptor = data_plane::tls::acceptor(cert, key)?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--sasl-ssl-listen)"))?;
            Some((listener, acceptor))
        }
        _ => None,
    };
    let admin = crate::admin_http::bind(args.metrics_listen, "broker").await?;
    let mut config = BrokerConfig::standalone(&args.data_dir);
    config.node_id = args.node_id;
    config.max_request_bytes = args.max_request_bytes;
    config.default_partitions = args.default_partitions;
    config.log_defaults.preallocate_bytes = args.preallocate_bytes;
    config.quota.broker_ingress_bytes_per_sec = args.broker_ingress_bytes_per_sec;
    config.quota.broker_egress_bytes_per_sec = args.broker_egress_bytes_per_sec;
    config.retention_check_interval = std::time::Duration::from_millis(args.retention_check_ms);
    config.fsync = match args.fsync {
        Fsync::Always => FsyncPolicy::Always,
        Fsync::Never => FsyncPolicy::Never,
    };
    (config.advertised_host, config.advertised_port) = advertised(
        args.advertised_listener.as_deref(),
        bound,
        "--advertised-listener",
    )?;
    if let Some(l) = &sasl_listener {
        config.sasl_advertised = Some(advertised(
            args.advertised_sasl_listener.as_deref(),
            l.local_addr()?,
            "--advertised-sasl-listener",
        )?);
    }
    if let Some((l, _)) = &tls {
        config.sasl_ssl_advertised = Some(advertised(
            args.advertised_sasl_ssl_listener.as_deref(),
            l.local_addr()?,
            "--advertised-sasl-ssl-listener",
        )?);
    }
    config.tls_handshake_timeout =
        std::time::Duration::from_millis(args.tls_handshake_timeout_ms.max(1));
    if !args.controllers.is_empty() {
        if let Some(t) = &args.tenant {
            if !data_plane::namespace::valid_tenant_id(t) {
                bail!("--tenant {t}: not a logical cluster id (letters, digits, '-', '_'; not starting with \"__\")");
            }
        }
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
        // The PLAINTEXT address, then `sasl=ADDR` and `sasl_ssl=ADDR` for the SASL listeners.
        let mut text = bound.to_string();
        if let Some(l) = &sasl_listener {
            text.push_str(&format!("\nsasl={}", l.local_addr()?));
        }
        if let Some((l, _)) = &tls {
            text.push_str(&format!("\nsasl_ssl={}", l.local_addr()?));
        }
        data_plane::fsutil::write_atomic(path, text.as_bytes())?;
    }
    let role = if broker.cell.is_some() {
        "cell"
    } else {
        "standalone"
    };
    info!(%bound, data_dir = %args.data_dir.display(), role, "broker ready");
    let server = tokio::spawn(data_plane::server::serve(
        listener,
        Listener::Plaintext,
        broker.clone(),
        shutdown.clone(),
    ));
    let sasl_server = sasl_listener.map(|l| {
        tokio::spawn(data_plane::server::serve(
            l,
            Listener::Sasl,
            broker.clone(),
            shutdown.clone(),
        ))
    });
    let tls_server = tls.map(|(l, acceptor)| {
        tokio::spawn(data_plane::server::serve_tls(
            l,
            acceptor,
            broker.clone(),
            shutdown.clone(),
        ))
    });
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
    for s in [sasl_server, tls_server].into_iter().flatten() {
        let _ = s.await;
    }
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    Ok(())
}

/// The (host, port) to advertise: `flag`'s `HOST:PORT` if given, else the bound address.
fn advertised(flag: Option<&str>, bound: SocketAddr, name: &str) -> anyhow::Result<(String, u16)> {
    match flag {
        Some(adv) => {
            let (host, port) = adv
                .rsplit_once(':')
                .with_context(|| format!("{name} must be HOST:PORT"))?;
            Ok((
                host.to_string(),
                port.parse().with_context(|| format!("{name} port"))?,
            ))
        }
        None => Ok((bound.ip().to_string(), bound.port())),
    }
}
