//! `ControllerConfig`: the one typed configuration of a controller process.
//!
//! Built by `tributary controller` from its flags (or by tests directly). Must never
//! depend on anything else in the crate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::CellError;

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// This voter's Raft node id.
    pub node_id: u64,
    pub cell_id: String,
    /// Raft log, vote and snapshots live here.
    pub data_dir: PathBuf,
    /// Every voter's node id and gRPC address (1 or 3 voters). The lowest id initializes
    /// the membership when the log is empty.
    pub voters: BTreeMap<u64, String>,
    pub raft_heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Timeout of one Raft RPC.
    pub raft_rpc_timeout: Duration,
    /// A snapshot is built every this many entries (the log is purged behind it).
    pub snapshot_every: u64,
    /// A broker that does not heartbeat for this long is fenced.
    pub session_timeout: Duration,
    /// A broker whose session stream closes (its process died) is fenced this soon
    /// unless it comes back.
    pub session_loss_grace: Duration,
    /// How often leadership moves back to preferred replicas.
    pub preferred_election_interval: Duration,
    pub default_partitions: i32,
    pub default_replication_factor: i32,
    /// Replicas one broker is sized for (for the cell load).
    pub broker_replica_capacity: u32,
    /// Recent updates kept for watchers; older watchers get a snapshot.
    pub watch_ring: usize,
    /// How far a watcher may lag the live channel before it is sent a snapshot.
    pub watch_channel: usize,
    /// Records per Raft entry (bigger changes are committed as several entries).
    pub max_records_per_entry: usize,
}

impl ControllerConfig {
    /// Defaults tolerant of a loaded 2-core machine.
    pub fn new(
        node_id: u64,
        cell_id: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        voters: BTreeMap<u64, String>,
    ) -> ControllerConfig {
        ControllerConfig {
            node_id,
            cell_id: cell_id.into(),
            data_dir: data_dir.into(),
            voters,
            raft_heartbeat: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            raft_rpc_timeout: Duration::from_millis(1000),
            snapshot_every: 1000,
            session_timeout: Duration::from_millis(6000),
            session_loss_grace: Duration::from_millis(300),
            preferred_election_interval: Duration::from_secs(10),
            default_partitions: 1,
            default_replication_factor: 3,
            broker_replica_capacity: 4000,
            watch_ring: 1024,
            watch_channel: 1024,
            max_records_per_entry: 1000,
        }
    }

    pub fn validate(&self) -> Result<(), CellError> {
        let bad = |m: String| Err(CellError::Config(m));
        if !matches!(self.voters.len(), 1 | 3) {
            return bad(format!("1 or 3 voters, not {}", self.voters.len()));
        }
        if !self.voters.contains_key(&self.node_id) {
            return bad(format!("node id {} is not among the voters", self.node_id));
        }
        if self.election_timeout_min <= self.raft_heartbeat
            || self.election_timeout_max <= self.election_timeout_min
        {
            return bad("heartbeat < election timeout min < max".into());
        }
        if self.default_partitions < 1 || self.default_replication_factor < 1 {
            return bad("default partitions and replication factor must be at least 1".into());
        }
        if self.snapshot_every == 0 || self.max_records_per_entry == 0 || self.watch_ring == 0 {
            return bad(
                "snapshot interval, records per entry and watch ring must be positive".into(),
            );
        }
        Ok(())
    }

    /// The voters as `1=host:port,2=host:port` (the `--voters` syntax).
    pub fn parse_voters(s: &str) -> Result<BTreeMap<u64, String>, CellError> {
        let mut out = BTreeMap::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| CellError::Config(format!("voter `{part}` is not ID=HOST:PORT")))?;
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| CellError::Config(format!("voter id `{id}` is not a number")))?;
            if id == 0 {
                return Err(CellError::Config("voter ids start at 1".into()));
            }
            out.insert(id, addr.trim().to_string());
        }
        Ok(out)
    }
}
