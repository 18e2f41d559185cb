//! The broker's link to its cell's controller quorum: the few RPCs a broker makes, over
//! the generated gRPC client, following the `tributary-leader` hint a non-leader gives
//! and rotating through the voters otherwise. Every call is bounded in time and retries.

use std::sync::Mutex;
use std::time::Duration;

use proto::cell::v1::cell_controller_client::CellControllerClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::debug;

use crate::error::{Error, Result};

/// Per-attempt deadline of a unary call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts across voters before a call fails.
const MAX_ATTEMPTS: usize = 8;

pub struct ControllerLink {
    voters: Vec<String>,
    /// Index into `voters` of the one believed to lead, and cached channels.
    state: Mutex<LinkState>,
}

struct LinkState {
    current: usize,
    channels: Vec<Option<Channel>>,
}

impl ControllerLink {
    /// `voters` are `host:port` gRPC addresses.
    pub fn new(voters: Vec<String>) -> ControllerLink {
        let n = voters.len();
        ControllerLink {
            voters,
            state: Mutex::new(LinkState {
                current: 0,
                channels: vec![None; n],
            }),
        }
    }

    fn channel(&self, i: usize) -> Result<Channel> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &st.channels[i] {
            return Ok(c.clone());
        }
        let uri = format!("http://{}", self.voters[i]);
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| Error::ControllerUnavailable(e.to_string()))?
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        st.channels[i] = Some(channel.clone());
        Ok(channel)
    }

    /// The voter to try first.
    fn current(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).current
    }

    /// After a failure: go to the hinted leader if it is one of ours, else the next voter.
    fn move_on(&self, failed: usize, status: &Status) {
        let hint = status
            .metadata()
            .get("tributary-leader")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| self.voters.iter().position(|v| v == h));
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.current == failed {
            st.current = hint.unwrap_or((failed + 1) % self.voters.len());
        }
        if status.code() != Code::Unavailable || hint.is_none() {
            // A broken channel is rebuilt on next use.
            st.channels[failed] = None;
        }
    }

    /// Run `call` against the leader, following hints and rotating, a bounded number of times.
    pub async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut(CellControllerClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            let i = self.current();
            let client = CellControllerClient::new(self.channel(i)?);
            let outcome = tokio::time::timeout(CALL_TIMEOUT, call(client))
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in time")));
            match outcome {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) => {
                    debug!(what, voter = %self.voters[i], attempt, %status, "controller call failed");
                    last = format!("{}: {}", self.voters[i], status.message());
                    self.move_on(i, &status);
                    if status.code() != Code::Unavailable {
                        tokio::time::sleep(Duration::from_millis(50 * (attempt as u64 + 1))).await;
                    }
                }
            }
        }
        Err(Error::ControllerUnavailable(format!("{what}: {last}")))
    }

    /// A client for a streaming call, against the voter believed to lead (any voter can
    /// serve metadata); rotates on each call so a dead voter is left behind.
    pub fn streaming_client(&self, rotate: bool) -> Result<CellControllerClient<Channel>> {
        if rotate {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.current = (st.current + 1) % self.voters.len();
        }
        Ok(CellControllerClient::new(self.channel(self.current())?))
    }
}
