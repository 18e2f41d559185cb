//! The quota layer of a connection: charging each request to its tenant's quotas and
//! throttling as KIP-219 says. A throttled request is still served (a fetch in debt gets no
//! data); its response carries `throttle_time_ms`, and the connection reads nothing more
//! from the client until that time has passed ([`Mute`]).
//!
//! Request time (Kafka's request percentage quota) is the time the broker spends working
//! on a tenant's request: polling its decode, its handler and any deferred part of it
//! ([`timed`]), and encoding its response; time spent waiting (a long poll, an fsync,
//! replication) is not counted. It is charged after the work, so it throttles what follows.
//!
//! Sits between the connection and `handler::dispatch`; knows nothing of handlers beyond
//! the response types.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{FetchResponse, RequestKind, ResponseKind};

use crate::broker::Broker;
use crate::codec::Request;
use crate::connection::{Listener, Session};
use crate::handler::Reply;
use crate::quota::{QuotaKind, TenantQuota};

/// Until when a connection reads no requests (shared by its reader and writer).
#[derive(Debug, Default)]
pub struct Mute(Mutex<Option<Instant>>);

impl Mute {
    /// Mute until at least `now + throttle`.
    pub fn extend(&self, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let until = Instant::now() + throttle;
        let mut m = self.0.lock().expect("mute lock");
        *m = Some(m.map_or(until, |u| u.max(until)));
    }

    /// How long the reader must still wait, if at all.
    pub fn remaining(&self) -> Option<Duration> {
        let m = *self.0.lock().expect("mute lock");
        m.and_then(|u| u.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

/// Run `fut` to completion; answers its output and the time spent inside its polls (the
/// work, not the waits between them).
pub async fn timed<F: Future>(fut: F) -> (F::Output, Duration) {
    let mut fut = std::pin::pin!(fut);
    let mut spent = Duration::ZERO;
    let out = std::future::poll_fn(|cx| {
        let started = Instant::now();
        let poll = fut.as_mut().poll(cx);
        spent += started.elapsed();
        poll
    })
    .await;
    (out, spent)
}

/// What the quotas decided for one request before it is dispatched.
#[derive(Default)]
pub struct Admission {
    /// The tenant quota the request is charged to (none: nobody pays, e.g. replication).
    pub quota: Option<Arc<TenantQuota>>,
    /// Throttle already earned (requests/s, produce bytes).
    pub throttle: Duration,
    /// For a consumer fetch: the quota its response bytes are charged to.
    pub egress: Option<Arc<TenantQuota>>,
    /// An answer in place of dispatching (a fetch while egress is in debt).
    pub reply: Option<Reply>,
}

/// Charge `request` (a frame of `frame_len` bytes) to the session's tenant.
pub fn admit(broker: &Broker, session: &Session, request: &Request, frame_len: usize) -> Admission {
    let mut admission = Admission::default();
    let Some(quota) = &session.quota else {
        return admission;
    };
    if is_replica_fetch(broker, session, &request.body) {
        return admission;
    }
    admission.quota = Some(quota.clone());
    admission.throttle = quota.charge(QuotaKind::Requests, 1.0);
    match &request.body {
        RequestKind::Produce(_) => {
            let t = quota.charge(QuotaKind::Ingress, frame_len as f64);
            admission.throttle = admission.throttle.max(t);
        }
        RequestKind::Fetch(_) => {
            let debt = quota.debt(QuotaKind::Egress);
            if debt.is_zero() {
                admission.egress = Some(quota.clone());
            } else {
                admission.throttle = admission.throttle.max(debt);
                admission.reply = Some(Reply::ready(FetchResponse::default()));
            }
        }
        _ => {}
    }
    admission
}

/// A follower's fetch, which no tenant pays for (see `handler::dispatch`).
fn is_replica_fetch(broker: &Broker, session: &Session, body: &RequestKind) -> bool {
    matches!(body, RequestKind::Fetch(r) if r.replica_id.0 >= 0)
        && broker.cell.is_some()
        && session.listener == Listener::Plaintext
}

/// Before a response is written: charge `handling` (the request's work so far) to
/// `quota`'s request time and a fetch's bytes to `egress`, and set `throttle_time_ms` to
/// the largest of those throttles and `throttle`. Returns the throttle.
pub fn finish(
    body: &mut ResponseKind,
    throttle: Duration,
    quota: Option<&TenantQuota>,
    handling: Duration,
    egress: Option<&TenantQuota>,
) -> Duration {
    let mut throttle = throttle;
    if let Some(q) = quota {
        throttle = throttle.max(q.charge(QuotaKind::RequestTime, handling.as_secs_f64()));
    }
    if let (Some(q), ResponseKind::Fetch(f)) = (egress, &*body) {
        throttle = throttle.max(q.charge(QuotaKind::Egress, fetch_bytes(f) as f64));
    }
    if !throttle.is_zero() {
        set_throttle_time(body, throttle.as_millis().min(i32::MAX as u128) as i32);
    }
    throttle
}

/// Record bytes in a fetch response.
fn fetch_bytes(f: &FetchResponse) -> usize {
    f.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref())
        .map(|r| r.len())
        .sum()
}

/// Set `throttle_time_ms` on every response type this broker answers that has one (the
/// codec leaves it out of versions without the field).
pub fn set_throttle_time(body: &mut ResponseKind, ms: i32) {
    macro_rules! set {
        ($($v:ident),* $(,)?) => {
            match body {
                $(ResponseKind::$v(r) => r.throttle_time_ms = ms,)*
                _ => {}
            }
        };
    }
    set!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        OffsetForLeaderEpoch,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        DeleteGroups,
        IncrementalAlterConfigs,
        DescribeCluster,
    );
}
