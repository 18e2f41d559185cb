//! Typed configuration: the broker process config ([`BrokerConfig`]) and the per-topic
//! log config ([`LogConfig`]) that the segmented log obeys.

use std::path::PathBuf;
use std::time::Duration;

/// How acknowledged writes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// acks=-1 answers only after an fsync that covers the write (grouped across
    /// partitions and connections). acks=1 answers after the write reaches the page cache.
    Always,
    /// Never fsync on the produce path; rely on replication (like Kafka's default).
    Never,
}

/// One broker process's configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's id, as advertised in Metadata.
    pub node_id: i32,
    /// Host advertised to clients (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port advertised to clients; when 0 the bound listener's port is used.
    pub advertised_port: u16,
    /// The SASL listener's advertised (host, port), when the broker has one (a cell
    /// broker's tenants connect there).
    pub sasl_advertised: Option<(String, u16)>,
    /// The SASL_SSL listener's advertised (host, port), when the broker has one.
    pub sasl_ssl_advertised: Option<(String, u16)>,
    /// Longest a client's TLS handshake may take (SASL_SSL); past it the connection closes.
    pub tls_handshake_timeout: Duration,
    /// Root directory for partition logs and broker state.
    pub data_dir: PathBuf,
    /// Largest request frame accepted (`socket.request.max.bytes`); bigger closes the connection.
    pub max_request_bytes: usize,
    /// Largest fetch response, whatever the client asks (Kafka's `fetch.max.bytes`); at least one
    /// batch is still returned when a single batch is larger (KIP-74).
    pub fetch_max_bytes: usize,
    /// Most requests read ahead of their responses on one connection.
    pub max_in_flight_per_connection: usize,
    /// Most open client connections on this broker.
    pub max_connections: usize,
    /// Durability policy for acks=-1.
    pub fsync: FsyncPolicy,
    /// Default partitions for auto-created or unspecified topics.
    pub default_partitions: i32,
    /// Whether Metadata for an unknown topic creates it (librdkafka relies on this for tests).
    pub auto_create_topics: bool,
    /// Defaults for per-topic log configs.
    pub log_defaults: LogConfig,
    /// How often retention is enforced.
    pub retention_check_interval: Duration,
    /// Consumer group session timeout bounds (`group.min/max.session.timeout.ms`).
    pub group_min_session_timeout: Duration,
    pub group_max_session_timeout: Duration,
    /// How long the first JoinGroup of an empty group waits for more members.
    pub group_initial_rebalance_delay: Duration,
    /// Per-tenant quota enforcement (burst, broker-wide safe limits).
    pub quota: crate::quota::QuotaConfig,
    /// Set when the broker is part of a cell (its metadata then comes from the cell's
    /// controller, and partitions are replicated); `None` for a standalone broker.
    pub cell: Option<crate::cell::CellConfig>,
}

impl BrokerConfig {
    /// A standalone broker rooted at `data_dir` with the defaults.
    pub fn standalone(data_dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            node_id: 1,
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 0,
            sasl_advertised: None,
            sasl_ssl_advertised: None,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            data_dir: data_dir.into(),
            max_request_bytes: 100 * 1024 * 1024,
            fetch_max_bytes: 57_671_680,
            max_in_flight_per_connection: 16,
            max_connections: 10_000,
            fsync: FsyncPolicy::Always,
            default_partitions: 1,
            auto_create_topics: true,
            log_defaults: LogConfig::default(),
            retention_check_interval: Duration::from_secs(30),
            group_min_session_timeout: Duration::from_millis(6_000),
            group_max_session_timeout: Duration::from_secs(1_800),
            group_initial_rebalance_delay: Duration::from_millis(0),
            quota: crate::quota::QuotaConfig::default(),
            cell: None,
        }
    }
}

/// Whether record timestamps come from the producer or the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The per-partition log settings, derived from topic configs (`segment.bytes` etc.).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment when the active one would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: u64,
    /// `retention.ms`: delete closed segments whose newest record is older; -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest closed segments while the partition exceeds it; -1 = no limit.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest record batch accepted.
    pub max_message_bytes: u64,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u64,
    /// `min.insync.replicas`: in-sync replicas an acks=-1 produce needs (cells only).
    pub min_insync_replicas: u32,
    /// Broker setting (not a topic config): zeros written ahead of the active segment's data so
    /// fsyncs rarely commit file metadata (`log/segment.rs` `zero_ahead`); 0 = off.
    #[serde(default = "default_preallocate_bytes")]
    pub preallocate_bytes: u64,
}

/// How long a client gets to finish its TLS handshake by default.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`LogConfig::preallocate_bytes`].
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 4 * 1024 * 1024;

fn default_preallocate_bytes() -> u64 {
    DEFAULT_PREALLOCATE_BYTES
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1024 * 1024 + 12,
            min_insync_replicas: 1,
            timestamp_type: TimestampType::CreateTime,
            index_interval_bytes: 4096,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        }
    }
}
