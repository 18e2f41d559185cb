//! One controller voter, wired: durable log + state machine + Raft + controller + gRPC
//! server + ticker + metrics gauges. [`ControllerNode::start`] takes the typed config, a pre-bound listener
//! and a shutdown token; [`ControllerNode::wait`] returns once everything has stopped.
//!
//! The lowest voter id initializes the membership when its log is empty; the others wait
//! to be contacted. A restart resumes from the log, vote and snapshot on disk.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use openraft::{BasicNode, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ControllerConfig;
use crate::controller::Controller;
use crate::error::CellError;
use crate::raft::log_store::{LogStore, DEFAULT_SEGMENT_BYTES};
use crate::raft::network::Network;
use crate::raft::state_machine::StateMachine;
use crate::raft::Raft;
use crate::watch::MetadataHub;

pub struct ControllerNode {
    controller: Arc<Controller>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

fn raft_config(c: &ControllerConfig) -> Result<openraft::Config, CellError> {
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let config = openraft::Config {
        cluster_name: c.cell_id.clone(),
        heartbeat_interval: ms(c.raft_heartbeat),
        election_timeout_min: ms(c.election_timeout_min),
        election_timeout_max: ms(c.election_timeout_max),
        install_snapshot_timeout: ms(c.raft_rpc_timeout) * 4,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(c.snapshot_every),
        snapshot_max_chunk_size: 512 * 1024,
        max_in_snapshot_log_to_keep: c.snapshot_every / 2,
        max_payload_entries: 64,
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| CellError::Config(e.to_string()))
}

impl ControllerNode {
    pub async fn start(
        config: ControllerConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<ControllerNode, CellError> {
        config.validate()?;
        let addr = listener.local_addr()?;
        let raft_dir = config.data_dir.join("raft");
        let log = {
            let dir = raft_dir.join("log");
            tokio::task::spawn_blocking(move || LogStore::open(&dir, DEFAULT_SEGMENT_BYTES))
                .await
                .map_err(|e| CellError::Raft(e.to_string()))??
        };
        let hub = MetadataHub::new(config.watch_ring, config.watch_channel);
        let sm = StateMachine::open(&raft_dir.join("state"), hub.clone())?;
        let network = Network {
            timeout: config.raft_rpc_timeout,
        };
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config(&config)?),
            network,
            log,
            sm,
        )
        .await
        .map_err(|e| CellError::Raft(e.to_string()))?;
        let config = Arc::new(config);
        let controller = Arc::new(Controller::new(raft.clone(), hub, config.clone()));

        let mut tasks = Vec::new();
        let server = crate::server::serve(listener, controller.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "controller gRPC server failed");
            }
        }));
        tasks.push(tokio::spawn(
            controller.clone().run_ticker(shutdown.clone()),
        ));
        tasks.push(tokio::spawn(crate::metrics::run(
            controller.clone(),
            shutdown.clone(),
        )));

        let lowest = *config.voters.keys().next().expect("validated: voters");
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| CellError::Raft(e.to_string()))?;
        if !initialized && lowest == config.node_id {
            let members: BTreeMap<u64, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect();
            tracing::info!(voters = ?config.voters, "initializing the controller quorum");
            if let Err(e) = raft.initialize(members).await {
                tracing::warn!(error = %e, "membership initialization");
            }
        }
        tracing::info!(node = config.node_id, %addr, initialized, "controller voter started");

        let raft_for_stop = raft.clone();
        tasks.push(tokio::spawn(async move {
            shutdown.cancelled().await;
            if let Err(e) = raft_for_stop.shutdown().await {
                tracing::warn!(error = %e, "Raft shutdown");
            }
        }));
        Ok(ControllerNode {
            controller,
            addr,
            tasks,
        })
    }

    pub fn controller(&self) -> &Arc<Controller> {
        &self.controller
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server, the ticker and Raft have stopped (after the shutdown token).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
