//! The cells registry: the configured cells (`--cell ID=ADDR[,ADDR...]`) and a gRPC client
//! per cell that finds its controller leader.
//!
//! A cell's controllers form a Raft quorum; only the leader accepts writes. A follower
//! answers `Status::unavailable` with the leader's address in the `tributary-leader`
//! metadata (empty when it does not know one). [`CellClient::call`] tries the last
//! known leader first, follows such hints, and otherwise walks the configured addresses,
//! a bounded number of hops per call, each bounded by the RPC timeout.

use crate::error::{Error, Result};
use proto::cell::v1::cell_controller_client::CellControllerClient;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// The gRPC metadata key in which a follower names the leader.
pub const LEADER_METADATA: &str = "tributary-leader";
/// Most addresses a cell may list (its controller voters).
const MAX_ADDRESSES: usize = 16;
/// Channels kept per cell: the configured addresses plus a few leader hints.
const MAX_CHANNELS: usize = 2 * MAX_ADDRESSES;

/// One configured cell: its id and the gRPC addresses (`host:port`) of its controllers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellConfig {
    pub id: String,
    pub addresses: Vec<String>,
}

impl FromStr for CellConfig {
    type Err = Error;

    /// Parses `ID=ADDR[,ADDR...]`, e.g. `cell-1=10.0.0.1:9190,10.0.0.2:9190`.
    fn from_str(s: &str) -> Result<CellConfig> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "cell {s:?}: {why}; write ID=HOST:PORT[,HOST:PORT...], e.g. cell-1=127.0.0.1:9190"
            ))
        };
        let (id, addrs) = s.split_once('=').ok_or_else(|| bad("missing '='"))?;
        let id = id.trim();
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(bad("the id must be 1 to 64 letters, digits, '-' or '_'"));
        }
        let addresses: Vec<String> = addrs
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if addresses.is_empty() {
            return Err(bad("no controller address"));
        }
        if addresses.len() > MAX_ADDRESSES {
            return Err(bad(&format!("at most {MAX_ADDRESSES} addresses")));
        }
        for a in &addresses {
            let port_ok = a
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(bad(&format!("address {a:?} is not HOST:PORT")));
            }
        }
        Ok(CellConfig {
            id: id.to_string(),
            addresses,
        })
    }
}

/// Timeouts of calls to a cell's controllers.
#[derive(Clone, Copy, Debug)]
pub struct CallTimeouts {
    /// Per TCP connect to one controller.
    pub connect: Duration,
    /// Per RPC to one controller.
    pub rpc: Duration,
}

/// A client for one cell's controller quorum.
pub struct CellClient {
    pub id: String,
    addresses: Vec<String>,
    timeouts: CallTimeouts,
    channels: Mutex<HashMap<String, Channel>>,
    /// The address that last answered, tried first next time.
    leader: Mutex<Option<String>>,
}

/// Whether a status means "this controller cannot serve this now; try another".
fn try_elsewhere(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
    )
}

/// The leader named in a status's metadata, if any, as `host:port`.
fn leader_hint(status: &tonic::Status) -> Option<String> {
    let hint = status
        .metadata()
        .get(LEADER_METADATA)?
        .to_str()
        .ok()?
        .trim();
    let hint = hint
        .strip_prefix("http://")
        .or_else(|| hint.strip_prefix("https://"))
        .unwrap_or(hint)
        .trim_end_matches('/');
    (!hint.is_empty()).then(|| hint.to_string())
}

impl CellClient {
    pub fn new(config: &CellConfig, timeouts: CallTimeouts) -> CellClient {
        CellClient {
            id: config.id.clone(),
            addresses: config.addresses.clone(),
            timeouts,
            channels: Mutex::new(HashMap::new()),
            leader: Mutex::new(None),
        }
    }

    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    fn channel(&self, addr: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        if channels.len() >= MAX_CHANNELS {
            channels.clear();
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Unavailable(format!("cell {}: bad address {addr}: {e}", self.id)))?
            .connect_timeout(self.timeouts.connect)
            .timeout(self.timeouts.rpc);
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Runs one RPC against the cell's leader: `op` names it in errors, `rpc` makes the
    /// call on a client. Tries at most `2 * addresses + 1` controllers; a non-retryable
    /// answer (e.g. INVALID_ARGUMENT) is returned at once.
    pub async fn call<T, F, Fut>(&self, op: &str, rpc: F) -> Result<T>
    where
        F: Fn(CellControllerClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut queue: Vec<String> = Vec::new();
        let known = self
            .leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        queue.extend(known);
        queue.extend(self.addresses.iter().cloned());
        let max_hops = 2 * self.addresses.len() + 1;
        let mut tried: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        while tried.len() < max_hops {
            let Some(addr) = (!queue.is_empty()).then(|| queue.remove(0)) else {
                break;
            };
            if tried.contains(&addr) {
                continue;
            }
            tried.push(addr.clone());
            let client = CellControllerClient::new(self.channel(&addr)?);
            match rpc(client).await {
                Ok(response) => {
                    *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
                    return Ok(response.into_inner());
                }
                Err(status) if try_elsewhere(&status) => {
                    let hint = leader_hint(&status);
                    failures.push(match &hint {
                        Some(leader) => format!("{addr}: not the leader (leader is {leader})"),
                        None => format!("{addr}: {}", status.message()),
                    });
                    if let Some(leader) = hint.filter(|l| !tried.contains(l)) {
                        queue.insert(0, leader);
                    }
                }
                Err(status) => {
                    return Err(Error::Unavailable(format!(
                        "cell {} refused {op} at {addr}: {:?}: {}",
                        self.id,
                        status.code(),
                        status.message()
                    )))
                }
            }
        }
        Err(Error::Unavailable(format!(
            "cell {} is unreachable for {op} ({})",
            self.id,
            failures.join("; ")
        )))
    }
}

/// Every configured cell's client, by id.
pub struct Cells {
    clients: BTreeMap<String, Arc<CellClient>>,
}

impl Cells {
    pub fn new(configs: &[CellConfig], timeouts: CallTimeouts) -> Cells {
        Cells {
            clients: configs
                .iter()
                .map(|c| (c.id.clone(), Arc::new(CellClient::new(c, timeouts))))
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<CellClient>> {
        self.clients.get(id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.clients.keys().map(String::as_str).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cell_configs() {
        let c: CellConfig = "cell-1=127.0.0.1:9190, 10.0.0.2:9190".parse().unwrap();
        assert_eq!(c.id, "cell-1");
        assert_eq!(c.addresses, vec!["127.0.0.1:9190", "10.0.0.2:9190"]);
        let v6: CellConfig = "c=[::1]:9190".parse().unwrap();
        assert_eq!(v6.addresses, vec!["[::1]:9190"]);
        for bad in [
            "cell-1",
            "=127.0.0.1:1",
            "cell 1=127.0.0.1:1",
            "c=",
            "c=localhost",
            "c=:90",
            "c=host:99999",
        ] {
            assert!(bad.parse::<CellConfig>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_leader_hints() {
        let mut s = tonic::Status::unavailable("not the leader");
        assert_eq!(leader_hint(&s), None);
        s.metadata_mut()
            .insert(LEADER_METADATA, "http://10.0.0.3:9190/".parse().unwrap());
        assert_eq!(leader_hint(&s).as_deref(), Some("10.0.0.3:9190"));
        s.metadata_mut()
            .insert(LEADER_METADATA, "".parse().unwrap());
        assert_eq!(leader_hint(&s), None);
        assert!(try_elsewhere(&s));
        assert!(!try_elsewhere(&tonic::Status::invalid_argument("no")));
    }
}
