//! A broker inside a cell: its session with the cell's controller quorum, the metadata
//! image it follows, and the replicas it hosts.
//!
//! - **Session** ([`session`]): register (a new incarnation per process), heartbeat every
//!   `heartbeat_interval` with the metadata offset applied so far; the controller fences
//!   a broker that misses its session and unfences it once it has caught up. Controlled
//!   shutdown asks the controller to move leadership away before the broker stops.
//! - **Metadata** ([`watch`]): the committed records stream in from any voter and are
//!   applied to a [`CellImage`] in order; every new image is reconciled
//!   ([`reconcile`]): replicas opened, leaders and followers switched by epoch, the
//!   tenant's topic view rebuilt, replica fetchers pointed at the right leaders.
//! - **Replication**: followers fetch from leaders ([`fetcher`]) with the Kafka Fetch
//!   protocol; leaders track followers and propose ISR changes to the controller
//!   ([`isr`]).
//! - **Groups** ([`groups`]): group state lives in the cell's internal
//!   `__consumer_offsets` topic ([`group_store`]); a group's coordinator is the leader of
//!   its offsets partition and moves with that leadership.
//!
//! Owns no Raft: the quorum is the `cells` crate's controller; this side only reads the
//! image and calls the controller's API.

pub mod admin;
pub mod fetcher;
pub mod group_store;
pub mod groups;
pub mod isr;
pub mod reconcile;
pub mod session;
pub mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cells::image::CellImage;
use proto::cell::v1::{BrokerState, Endpoint};

use crate::connection::Listener;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::partition::Partition;
use cells::client::{ClientOptions, ControllerClient};

/// Start the cell side of `broker`: the controller session, the metadata watch and the
/// ISR loop (all stopped by `shutdown`).
pub fn start(
    broker: &Arc<crate::broker::Broker>,
    cell: &Arc<Cell>,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    tokio::spawn(session::run(broker.clone(), cell.clone(), shutdown.clone()));
    tokio::spawn(watch::run(broker.clone(), cell.clone(), shutdown.clone()));
    tokio::spawn(isr::run(broker.clone(), cell.clone(), shutdown.clone()));
}

/// How a broker takes part in its cell.
#[derive(Debug, Clone)]
pub struct CellConfig {
    /// gRPC addresses (`host:port`) of the cell's controller voters.
    pub controllers: Vec<String>,
    /// Availability zone, for replica placement.
    pub zone: String,
    /// The logical cluster unauthenticated clients of the PLAINTEXT listener are bound to
    /// (local development); `None`: that listener serves only replication, and tenants
    /// come in through SASL.
    pub plaintext_tenant: Option<String>,
    pub heartbeat_interval: Duration,
    /// A follower not caught up for this long leaves the ISR (`replica.lag.time.max.ms`).
    pub replica_lag_time_max: Duration,
    /// How long a follower's fetch waits at the leader for new data.
    pub replica_fetch_wait: Duration,
    /// Most bytes one follower fetch asks for.
    pub replica_fetch_max_bytes: usize,
    /// Partitions of the internal offsets topic when this broker creates it
    /// (`offsets.topic.num.partitions`); fixed once created.
    pub offsets_partitions: i32,
}

impl CellConfig {
    pub fn new(controllers: Vec<String>, plaintext_tenant: Option<String>) -> CellConfig {
        CellConfig {
            controllers,
            zone: "zone-a".to_string(),
            plaintext_tenant,
            heartbeat_interval: Duration::from_millis(1000),
            replica_lag_time_max: Duration::from_secs(10),
            replica_fetch_wait: Duration::from_millis(500),
            replica_fetch_max_bytes: 8 << 20,
            offsets_partitions: 12,
        }
    }
}

/// A failed controller call, as the broker reports it.
pub(crate) fn unavailable(what: &str, e: cells::error::CellError) -> Error {
    Error::ControllerUnavailable(format!("{what}: {e}"))
}

/// The cell side of a broker (absent on a standalone broker).
pub struct Cell {
    pub config: CellConfig,
    pub controller: ControllerClient,
    /// Changes on every process start, so the controller can tell a restart.
    pub incarnation: Uuid,
    broker_epoch: AtomicI64,
    /// The image applied so far, published once reconciled (waited on after admin
    /// changes, so a client's next request sees what it just created).
    image: tokio::sync::watch::Sender<Arc<CellImage>>,
    /// Every replica this broker hosts, by topic id and partition.
    replicas: RwLock<HashMap<(Uuid, i32), Arc<Partition>>>,
    fetchers: Mutex<fetcher::Fetchers>,
    /// The controller has seen this broker caught up (ACTIVE) at least once: from then
    /// on the image is complete enough to delete data of replicas it does not name.
    caught_up: AtomicBool,
    /// Leftover replica directories (from before a restart) were swept.
    swept: AtomicBool,
    /// The group coordinators of the offsets partitions this broker leads.
    pub groups: groups::CellGroups,
}

impl Cell {
    pub fn new(config: CellConfig) -> Result<Cell> {
        let options = ClientOptions {
            call_timeout: Duration::from_secs(3),
            max_attempts: 8,
            ..ClientOptions::default()
        };
        let controller = ControllerClient::new(&config.controllers, options)
            .map_err(|e| Error::InvalidRequest(format!("--controllers: {e}")))?;
        Ok(Cell {
            controller,
            config,
            incarnation: Uuid::new_v4(),
            broker_epoch: AtomicI64::new(-1),
            image: tokio::sync::watch::Sender::new(Arc::new(CellImage::default())),
            replicas: RwLock::new(HashMap::new()),
            fetchers: Mutex::new(fetcher::Fetchers::default()),
            caught_up: AtomicBool::new(false),
            swept: AtomicBool::new(false),
            groups: groups::CellGroups::default(),
        })
    }

    pub fn image(&self) -> Arc<CellImage> {
        self.image.borrow().clone()
    }

    /// A receiver woken on every newly applied image.
    pub fn subscribe_image(&self) -> tokio::sync::watch::Receiver<Arc<CellImage>> {
        self.image.subscribe()
    }

    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    /// The replica of `topic_id`-`index` hosted here.
    pub fn replica(&self, topic_id: Uuid, index: i32) -> Option<Arc<Partition>> {
        self.replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic_id, index))
            .cloned()
    }

    pub fn replicas(&self) -> Vec<Arc<Partition>> {
        self.replicas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Wait until metadata at `offset` is applied here (so a topic just created is
    /// visible to the client's next Metadata request).
    pub async fn wait_applied(&self, offset: u64) -> Result<()> {
        let mut rx = self.image.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            rx.wait_for(|i| i.offset >= offset).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(Error::RequestTimedOut(format!(
                "metadata offset {offset} not applied on this broker within 10 s"
            ))),
        }
    }

    /// Brokers clients of `listener` may be sent to: every broker not fenced that has
    /// such a listener, as (id, host, port).
    pub fn live_brokers(&self, listener: Listener) -> Vec<(i32, String, u16)> {
        let image = self.image();
        image
            .brokers
            .values()
            .filter(|b| b.state != BrokerState::Fenced as i32)
            .filter_map(|b| {
                let e = endpoint(b, listener)?;
                Some((b.broker_id, e.host.clone(), e.port as u16))
            })
            .collect()
    }
}

/// Broker `b`'s endpoint for clients of `listener`.
pub fn endpoint(b: &proto::cell::v1::BrokerRecord, listener: Listener) -> Option<&Endpoint> {
    match listener {
        Listener::Plaintext => b.kafka.as_ref(),
        Listener::Sasl => b.sasl.as_ref(),
        Listener::SaslSsl => b.sasl_ssl.as_ref(),
    }
}
