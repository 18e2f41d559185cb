//! The broker's state: every tenant's topics and their partitions, the durable topic
//! catalog, the flusher, producer ids and the group coordinator; and the topic operations
//! the admin APIs use. Every topic operation names the tenant whose namespace it works in
//! ([`crate::namespace`]).
//!
//! Topics are copy-on-write: a change builds a new `Arc<Topic>` and swaps it into the map,
//! so readers never see a half-changed topic. Admin changes are serialised by one async
//! mutex and persisted to `topics.json` before they are answered.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::auth::FailureLimiter;
use crate::cell::Cell;
use crate::config::{BrokerConfig, FsyncPolicy};
use crate::connection::Listener;
use crate::error::{Error, Result};
use crate::flusher::Flusher;
use crate::fsutil::write_atomic;
use crate::group::{GroupConfig, GroupCoordinator, TopicView};
use crate::namespace::{group_tenant, Namespaces, TenantId};
use crate::partition::Partition;
use crate::producer_ids::ProducerIdAllocator;
use crate::topic_config;

/// A topic as the broker serves it.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    /// Config overrides (validated); defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionSlot>,
}

/// One partition of a topic: where it lives, and this broker's replica of it if any.
#[derive(Clone)]
pub struct PartitionSlot {
    pub index: i32,
    /// -1 when no replica can lead.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// This broker's replica (always present on a standalone broker).
    pub local: Option<Arc<Partition>>,
}

impl PartitionSlot {
    /// A standalone broker's partition: it is the only replica and always leads.
    pub fn standalone(node_id: i32, p: Arc<Partition>) -> PartitionSlot {
        PartitionSlot {
            index: p.index,
            leader: node_id,
            leader_epoch: 0,
            replicas: vec![node_id],
            isr: vec![node_id],
            local: Some(p),
        }
    }
}

impl Topic {
    /// The replicas of this topic hosted on this broker.
    pub fn locals(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.partitions.iter().filter_map(|s| s.local.as_ref())
    }
}

/// What `topics.json` holds for one topic.
#[derive(serde::Serialize, serde::Deserialize)]
struct TopicRecord {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

pub struct Broker {
    pub config: BrokerConfig,
    /// The logical cluster unauthenticated PLAINTEXT clients are bound to: a standalone
    /// broker's own cluster id, or `--tenant` of a cell broker (local development);
    /// `None` when the PLAINTEXT listener serves only replication.
    pub plaintext_tenant: Option<TenantId>,
    topics: Arc<RwLock<Namespaces>>,
    admin: tokio::sync::Mutex<()>,
    /// Broker-wide budget of request bytes read but not yet handled.
    pub request_memory: Arc<Semaphore>,
    pub flusher: Arc<Flusher>,
    /// Notified whenever a high watermark advances (wakes long-polling fetches).
    pub data_changed: Arc<Notify>,
    pub producer_ids: ProducerIdAllocator,
    /// The standalone broker's single coordinator (file store). `None` in a cell, where
    /// each offsets partition this broker leads has its own (`cell::groups`).
    pub groups: Option<Arc<GroupCoordinator>>,
    /// The broker's part in its cell; `None` on a standalone broker.
    pub cell: Option<Arc<Cell>>,
    /// Failed authentications per source address.
    pub auth_failures: FailureLimiter,
    /// Open connections, across all listeners (`max_connections`).
    pub connection_slots: Arc<Semaphore>,
    /// Each tenant's share of its quotas on this broker.
    pub quotas: crate::quota::Quotas,
    /// Cumulative usage per tenant and topic, for the cell's Metrics API.
    pub usage: crate::usage::Usage,
    pub next_connection_id: std::sync::atomic::AtomicU64,
}

/// The coordinator's view of topics: shares the broker's topic map, so the coordinator
/// can be opened before the broker that owns it. A group's topics are its tenant's: the
/// standalone tenant, or in a cell the tenant its (scoped) group id names.
struct TopicsView {
    topics: Arc<RwLock<Namespaces>>,
    standalone_tenant: Option<TenantId>,
}

impl TopicView for TopicsView {
    fn partition_exists(&self, group: &str, topic: &str, partition: i32) -> bool {
        let tenant = match &self.standalone_tenant {
            Some(t) => t.as_ref(),
            None => match group_tenant(group) {
                Some(t) => t,
                None => return false,
            },
        };
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .topic(tenant, topic)
            .is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len())
    }
}

fn group_config_of(config: &BrokerConfig) -> GroupConfig {
    GroupConfig {
        min_session_timeout: config.group_min_session_timeout,
        max_session_timeout: config.group_max_session_timeout,
        initial_rebalance_delay: config.group_initial_rebalance_delay,
        ..GroupConfig::default()
    }
}

/// Longest topic name Kafka allows.
const MAX_TOPIC_NAME: usize = 249;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn validate_topic_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::InvalidTopic(format!(
            "topic name `{name}` is not allowed"
        )));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(Error::InvalidTopic(format!(
            "topic name is {} characters; the maximum is {MAX_TOPIC_NAME}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::InvalidTopic(format!(
            "topic name `{name}` contains `{c}`; use only ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

impl Broker {
    /// Open the broker's state under `config.data_dir`, recovering every partition, and
    /// start the flusher and retention tasks (stopped by `shutdown`).
    pub async fn open(config: BrokerConfig, shutdown: CancellationToken) -> Result<Arc<Broker>> {
        std::fs::create_dir_all(config.data_dir.join("logs"))?;
        // Every broker of a cell reports the logical cluster its clients see, so a client
        // talking to several brokers sees one cluster.
        let plaintext_tenant: Option<TenantId> = match &config.cell {
            Some(cell) => cell.plaintext_tenant.as_deref().map(Into::into),
            None => Some(load_or_create_cluster_id(&config.data_dir)?.into()),
        };
        let producer_ids_path = config.data_dir.join("producer-ids");
        let producer_ids = if config.cell.is_some() {
            ProducerIdAllocator::open_in_cell(producer_ids_path, config.node_id)?
        } else {
            ProducerIdAllocator::open(producer_ids_path)?
        };
        let cfg = config.clone();
        // In a cell, topics come from the controller's metadata, not a local catalog.
        let topics = match (&config.cell, &plaintext_tenant) {
            (None, Some(tenant)) => {
                let tenant = tenant.clone();
                tokio::task::spawn_blocking(move || load_topics(&cfg, &tenant))
                    .await
                    .map_err(|e| Error::Storage(std::io::Error::other(e)))??
            }
            _ => Namespaces::default(),
        };
        let cluster = plaintext_tenant.as_deref().unwrap_or("-");
        info!(
            topics = topics.all_topics().len(),
            cluster, "broker state recovered"
        );
        let topics = Arc::new(RwLock::new(topics));
        let group_config = group_config_of(&config);
        let groups = if config.cell.is_some() {
            None
        } else {
            let view = Arc::new(TopicsView {
                topics: topics.clone(),
                standalone_tenant: plaintext_tenant.clone(),
            });
            let c = GroupCoordinator::open(&config.data_dir.join("groups"), group_config, view)
                .await
                .map_err(|e| Error::Storage(std::io::Error::other(e)))?;
            Some(c)
        };
        let cell = match config.cell.clone() {
            Some(c) => Some(Arc::new(Cell::new(c)?)),
            None => None,
        };
        let max_connections = config.max_connections;
        let config_quota = config.quota.clone();
        let data_changed = Arc::new(Notify::new());
        let broker = Arc::new(Broker {
            cell,
            request_memory: Arc::new(Semaphore::new(
                (config.max_request_bytes * 4)
                    .min(u32::MAX as usize >> 1)
                    .max(1 << 20),
            )),
            config,
            plaintext_tenant,
            topics,
            admin: tokio::sync::Mutex::new(()),
            flusher: Flusher::new(data_changed.clone()),
            data_changed,
            producer_ids,
            groups,
            auth_failures: FailureLimiter::default(),
            connection_slots: Arc::new(Semaphore::new(max_connections)),
            quotas: crate::quota::Quotas::new(config_quota),
            usage: crate::usage::Usage::default(),
            next_connection_id: std::sync::atomic::AtomicU64::new(1),
        });
        tokio::spawn(broker.flusher.clone().run(shutdown.clone()));
        tokio::spawn(retention_loop(broker.clone(), shutdown.clone()));
        tokio::spawn(quota_loop(broker.clone(), shutdown.clone()));
        if let Some(cell) = &broker.cell {
            crate::cell::start(&broker, cell, &shutdown);
        }
        Ok(broker)
    }

    /// Group coordinator settings from the broker config.
    pub fn group_config(&self) -> GroupConfig {
        group_config_of(&self.config)
    }

    /// The clients' topic view, as coordinators check commits against it.
    pub fn topic_view(&self) -> Arc<dyn TopicView> {
        Arc::new(TopicsView {
            topics: self.topics.clone(),
            standalone_tenant: match self.cell {
                Some(_) => None,
                None => self.plaintext_tenant.clone(),
            },
        })
    }

    pub fn durable_hw(&self) -> bool {
        self.config.fsync == FsyncPolicy::Always
    }

    fn namespaces(&self) -> std::sync::RwLockReadGuard<'_, Namespaces> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Topic `name` of `tenant`.
    pub fn topic(&self, tenant: &str, name: &str) -> Option<Arc<Topic>> {
        self.namespaces().topic(tenant, name)
    }

    /// Topic `id` of `tenant` (another tenant's id is not found).
    pub fn topic_by_id(&self, tenant: &str, id: Uuid) -> Option<Arc<Topic>> {
        self.namespaces().topic_by_id(tenant, id)
    }

    /// This broker's replica of `tenant`'s `topic`-`index`: UNKNOWN_TOPIC_OR_PARTITION
    /// when there is no such partition, NOT_LEADER_OR_FOLLOWER when it lives on other
    /// brokers.
    pub fn partition(&self, tenant: &str, topic: &str, index: i32) -> Result<Arc<Partition>> {
        let slot = self.topic(tenant, topic).and_then(|t| {
            usize::try_from(index)
                .ok()
                .and_then(|i| t.partitions.get(i).cloned())
        });
        match slot {
            None => Err(Error::UnknownTopicOrPartition(format!("{topic}-{index}"))),
            Some(PartitionSlot { local: None, .. }) => {
                Err(Error::NotLeaderOrFollower(format!("{topic}-{index}")))
            }
            Some(PartitionSlot { local: Some(p), .. }) => Ok(p),
        }
    }

    /// `tenant`'s topics, sorted by name.
    pub fn topics(&self, tenant: &str) -> Vec<Arc<Topic>> {
        self.namespaces().topics(tenant)
    }

    /// Every topic with its tenant: for metrics, never for a client's answer.
    pub fn all_topics_by_tenant(&self) -> Vec<(TenantId, Arc<Topic>)> {
        self.namespaces().all_by_tenant()
    }

    /// Every tenant's topics: for housekeeping and metrics, never for a client's answer.
    pub fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.namespaces().all_topics()
    }

    pub(crate) fn partition_dir(&self, topic_id: Uuid, index: i32) -> PathBuf {
        partition_dir(&self.config, topic_id, index)
    }

    /// Replace the whole topic view (a cell broker, after a metadata change).
    pub(crate) fn replace_topics(&self, topics: Namespaces) {
        *self.topics.write().unwrap_or_else(|e| e.into_inner()) = topics;
    }

    /// Brokers clients of `listener` may be sent to, as (id, host, port).
    pub fn live_brokers(&self, listener: Listener) -> Vec<(i32, String, u16)> {
        match &self.cell {
            Some(cell) => cell.live_brokers(listener),
            None => vec![(
                self.config.node_id,
                self.config.advertised_host.clone(),
                self.config.advertised_port,
            )],
        }
    }

    /// Create a topic. `partitions` / `replication_factor` of -1 mean the broker default.
    pub async fn create_topic(
        &self,
        tenant: &TenantId,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>> {
        validate_topic_name(name)?;
        if let Some(cell) = &self.cell {
            topic_config::validate_all(
                configs.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
            )?;
            let (id, count, _rf) = crate::cell::admin::create_topic(
                cell,
                tenant,
                name,
                partitions,
                replication_factor,
                configs.clone(),
                validate_only,
            )
            .await?;
            return Ok(match self.topic(tenant, name) {
                Some(t) if !validate_only => t,
                _ => Arc::new(Topic {
                    name: name.to_string(),
                    id,
                    configs,
                    partitions: Vec::with_capacity(count.max(0) as usize),
                }),
            });
        }
        let partitions = if partitions == -1 {
            self.config.default_partitions
        } else {
            partitions
        };
        if !(1..=100_000).contains(&partitions) {
            return Err(Error::InvalidPartitions(format!(
                "number of partitions must be between 1 and 100000, got {partitions}"
            )));
        }
        if replication_factor != -1 && replication_factor != 1 {
            return Err(Error::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the 1 available broker"
            )));
        }
        topic_config::validate_all(configs.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))))?;
        self.check_standalone_tenant(tenant)?;
        let _admin = self.admin.lock().await;
        if self.topic(tenant, name).is_some() {
            return Err(Error::TopicAlreadyExists(format!(
                "topic `{name}` already exists"
            )));
        }
        let id = Uuid::new_v4();
        let log_config = topic_config::log_config(&self.config.log_defaults, &configs);
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.to_string(),
                id,
                configs,
                partitions: vec![],
            }));
        }
        let mut parts = Vec::with_capacity(partitions as usize);
        for i in 0..partitions {
            let p = Partition::open(
                &self.partition_dir(id, i),
                name,
                id,
                i,
                log_config.clone(),
                self.durable_hw(),
            )?;
            parts.push(PartitionSlot::standalone(self.config.node_id, Arc::new(p)));
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            configs,
            partitions: parts,
        });
        self.install(tenant, topic.clone())?;
        info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    /// A standalone broker has one tenant; any other has no topics here.
    fn check_standalone_tenant(&self, tenant: &str) -> Result<()> {
        match &self.plaintext_tenant {
            Some(t) if t.as_ref() == tenant => Ok(()),
            _ => Err(Error::UnknownTopicOrPartition(format!(
                "logical cluster `{tenant}` is not served by this broker"
            ))),
        }
    }

    /// Swap `topic` into the standalone catalog and persist it.
    fn install(&self, tenant: &TenantId, topic: Arc<Topic>) -> Result<()> {
        let mut map = self.topics.write().unwrap_or_else(|e| e.into_inner());
        map.insert(tenant, topic);
        persist_topics(&self.config, map.tenant(tenant))
    }

    pub async fn delete_topic(&self, tenant: &TenantId, name: &str) -> Result<Uuid> {
        if let Some(cell) = &self.cell {
            return crate::cell::admin::delete_topic(cell, tenant, name).await;
        }
        self.check_standalone_tenant(tenant)?;
        let _admin = self.admin.lock().await;
        let topic = {
            let mut map = self.topics.write().unwrap_or_else(|e| e.into_inner());
            let topic = map.remove(tenant, name).ok_or_else(|| {
                Error::UnknownTopicOrPartition(format!("topic `{name}` does not exist"))
            })?;
            persist_topics(&self.config, map.tenant(tenant))?;
            topic
        };
        // The catalog no longer names it; leftover files after a crash are swept at start-up.
        let dir = self.config.data_dir.join("logs").join(topic.id.to_string());
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            warn!(error = %e, dir = %dir.display(), "could not remove deleted topic's data");
        }
        info!(topic = name, "topic deleted");
        Ok(topic.id)
    }

    pub async fn create_partitions(
        &self,
        tenant: &TenantId,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        if let Some(cell) = &self.cell {
            return crate::cell::admin::create_partitions(cell, tenant, name, count, validate_only)
                .await;
        }
        self.check_standalone_tenant(tenant)?;
        let _admin = self.admin.lock().await;
        let topic = self.topic(tenant, name).ok_or_else(|| {
            Error::UnknownTopicOrPartition(format!("topic `{name}` does not exist"))
        })?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(Error::InvalidPartitions(format!(
                "topic `{name}` has {current} partitions; the new count must be larger, got {count}"
            )));
        }
        if count > 100_000 {
            return Err(Error::InvalidPartitions(format!(
                "{count} partitions is more than the maximum 100000"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let log_config = topic_config::log_config(&self.config.log_defaults, &topic.configs);
        let mut parts = topic.partitions.clone();
        for i in current..count {
            let p = Partition::open(
                &self.partition_dir(topic.id, i),
                name,
                topic.id,
                i,
                log_config.clone(),
                self.durable_hw(),
            )?;
            parts.push(PartitionSlot::standalone(self.config.node_id, Arc::new(p)));
        }
        self.install(
            tenant,
            Arc::new(Topic {
                name: topic.name.clone(),
                id: topic.id,
                configs: topic.configs.clone(),
                partitions: parts,
            }),
        )
    }

    /// Replace a topic's config overrides (already validated by the caller).
    pub async fn set_topic_configs(
        &self,
        tenant: &TenantId,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<()> {
        if let Some(cell) = &self.cell {
            return crate::cell::admin::set_topic_configs(cell, tenant, name, configs).await;
        }
        self.check_standalone_tenant(tenant)?;
        let _admin = self.admin.lock().await;
        let topic = self.topic(tenant, name).ok_or_else(|| {
            Error::UnknownTopicOrPartition(format!("topic `{name}` does not exist"))
        })?;
        let log_config = topic_config::log_config(&self.config.log_defaults, &configs);
        for p in topic.locals() {
            p.update_config(log_config.clone());
        }
        self.install(
            tenant,
            Arc::new(Topic {
                name: topic.name.clone(),
                id: topic.id,
                configs,
                partitions: topic.partitions.clone(),
            }),
        )
    }
}

fn partition_dir(config: &BrokerConfig, topic_id: Uuid, index: i32) -> PathBuf {
    config
        .data_dir
        .join("logs")
        .join(topic_id.to_string())
        .join(index.to_string())
}

fn load_or_create_cluster_id(data_dir: &std::path::Path) -> Result<String> {
    let path = data_dir.join("cluster-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Ok(_) | Err(_) => {
            let id = Uuid::new_v4().simple().to_string();
            write_atomic(&path, id.as_bytes())?;
            Ok(id)
        }
    }
}

fn persist_topics<'a>(
    config: &BrokerConfig,
    topics: impl Iterator<Item = &'a Arc<Topic>>,
) -> Result<()> {
    let mut records: Vec<TopicRecord> = topics
        .map(|t| TopicRecord {
            name: t.name.clone(),
            id: t.id,
            partitions: t.partitions.len() as i32,
            configs: t.configs.clone(),
        })
        .collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let json = serde_json::to_vec_pretty(&records).map_err(std::io::Error::other)?;
    write_atomic(&config.data_dir.join("topics.json"), &json)?;
    Ok(())
}

fn load_topics(config: &BrokerConfig, tenant: &TenantId) -> Result<Namespaces> {
    let path = config.data_dir.join("topics.json");
    let records: Vec<TopicRecord> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e.into()),
    };
    let mut map = Namespaces::default();
    for r in records {
        let log_config = topic_config::log_config(&config.log_defaults, &r.configs);
        let mut parts = Vec::with_capacity(r.partitions.max(0) as usize);
        for i in 0..r.partitions {
            let p = Partition::open(
                &partition_dir(config, r.id, i),
                &r.name,
                r.id,
                i,
                log_config.clone(),
                config.fsync == FsyncPolicy::Always,
            )?;
            parts.push(PartitionSlot::standalone(config.node_id, Arc::new(p)));
        }
        map.insert(
            tenant,
            Arc::new(Topic {
                name: r.name,
                id: r.id,
                configs: r.configs,
                partitions: parts,
            }),
        );
    }
    // Sweep data of topics deleted just before a crash.
    if let Ok(entries) = std::fs::read_dir(config.data_dir.join("logs")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let known = map.tenant(tenant).any(|t| t.id.to_string() == name);
            if !known {
                warn!(dir = %entry.path().display(), "removing data of a deleted topic");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(map)
}

async fn retention_loop(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(
        broker
            .config
            .retention_check_interval
            .max(Duration::from_millis(100)),
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            crate::metrics::refresh_partitions(&b);
            for topic in b.all_topics() {
                for p in topic.locals() {
                    match p.enforce_retention(now) {
                        Ok(0) => {}
                        Ok(n) => info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments"),
                        Err(e) => warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed"),
                    }
                }
            }
        })
        .await;
    }
}

/// Close each quota period: usage for the coordinator, throttling log lines, backpressure.
async fn quota_loop(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(crate::quota::PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => broker.quotas.tick(),
        }
    }
}
