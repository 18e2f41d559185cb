//! [`GroupCoordinator`]: the request API of the classic group protocol.
//!
//! Owns the map of groups (one `std::sync::Mutex`, never held across an `.await`), the
//! timers the state machine asks for (one sleeping task per timer, cancelled at shutdown;
//! stale timers are no-ops), and the mapping between `kafka-protocol` messages and the state
//! machine, version by version. Join/Sync long-poll on oneshot channels parked in the state.
//! Dropping a request future (client gone) is safe: the parked sender just fails to send.
//!
//! Offsets and the admin APIs live in `offsets.rs` (same type, second `impl` block).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::{
    join_group_response::JoinGroupResponseMember, leave_group_response::MemberResponse, ApiKey,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::state::{Ctx, Effects, Group, JoinOutcome, JoinParams, Reply, SyncOutcome, Timer};
use super::store::{FileGroupStore, GroupStore, Record};
use super::{GroupConfig, GroupError, TopicView};

/// Log size past which the file store compacts (and past twice the last snapshot).
const COMPACT_BYTES: u64 = 64 << 20;

pub(super) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The wire error code of a result.
pub(super) fn code(r: Result<(), E>) -> i16 {
    r.err().map_or(0, |e| e.code())
}

pub(super) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The classic group coordinator of this broker (a single coordinator for all groups).
pub struct GroupCoordinator {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: GroupConfig,
    pub(super) topics: Arc<dyn TopicView>,
    pub(super) store: Arc<dyn GroupStore>,
    pub(super) groups: Mutex<Groups>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

pub(super) struct Groups {
    pub(super) map: HashMap<String, Group>,
    /// Orders commits to one partition (see `CommittedOffset::seq`).
    pub(super) commit_seq: u64,
}

impl GroupCoordinator {
    /// Opens durable group state under `dir` (replays it) and starts background expiry.
    pub async fn open(
        dir: &Path,
        config: GroupConfig,
        topics: Arc<dyn TopicView>,
    ) -> Result<Arc<GroupCoordinator>, GroupError> {
        let dir = dir.to_path_buf();
        let store = tokio::task::spawn_blocking(move || FileGroupStore::open(&dir, COMPACT_BYTES))
            .await
            .map_err(|e| GroupError::Io(format!("store open task failed: {e}")))??;
        Self::open_with_store(Arc::new(store), config, topics).await
    }

    /// Like [`GroupCoordinator::open`] over any [`GroupStore`].
    pub async fn open_with_store(
        store: Arc<dyn GroupStore>,
        config: GroupConfig,
        topics: Arc<dyn TopicView>,
    ) -> Result<Arc<GroupCoordinator>, GroupError> {
        let records = store.recover().await?;
        let now_ms = wall_ms();
        let mut map: HashMap<String, Group> = HashMap::new();
        for r in records {
            let group = map
                .entry(r.group().to_string())
                .or_insert_with(|| Group::new(r.group(), now_ms));
            match r {
                Record::Group {
                    generation,
                    protocol_type,
                    protocol,
                    state_ts_ms,
                    ..
                } => {
                    // Members are not persisted: the group comes back Empty at its generation
                    // and its members rejoin (their old ids get UNKNOWN_MEMBER_ID).
                    group.generation = generation;
                    group.protocol_type = protocol_type;
                    // A group that was active at the crash becomes empty now, so the offsets
                    // retention clock starts now (as when Kafka's loaded members expire).
                    group.state_ts_ms = if protocol.is_none() {
                        state_ts_ms
                    } else {
                        now_ms
                    };
                }
                Record::Offset {
                    topic,
                    partition,
                    offset,
                    leader_epoch,
                    metadata,
                    commit_ts_ms,
                    expire_ts_ms,
                    ..
                } => {
                    group.offsets.insert(
                        (topic, partition),
                        super::state::CommittedOffset {
                            offset,
                            leader_epoch,
                            metadata,
                            commit_ts_ms,
                            expire_ts_ms,
                            seq: 0,
                        },
                    );
                }
                // `recover` returns live state only.
                Record::OffsetDelete { .. } | Record::GroupDelete { .. } => {}
            }
        }
        tracing::info!(groups = map.len(), "group coordinator recovered");
        let inner = Arc::new(Inner {
            config,
            topics,
            store,
            groups: Mutex::new(Groups { map, commit_seq: 0 }),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let coordinator = Arc::new(GroupCoordinator { inner });
        coordinator.start_offset_expiry();
        Ok(coordinator)
    }

    /// Version ranges implemented completely, per API key, for ApiVersions.
    pub fn supported_versions() -> Vec<(ApiKey, i16, i16)> {
        vec![
            (ApiKey::OffsetCommit, 2, 9),
            (ApiKey::OffsetFetch, 1, 9),
            (ApiKey::JoinGroup, 0, 9),
            (ApiKey::Heartbeat, 0, 4),
            (ApiKey::LeaveGroup, 0, 5),
            (ApiKey::SyncGroup, 0, 5),
            (ApiKey::DescribeGroups, 0, 6),
            (ApiKey::ListGroups, 0, 5),
            (ApiKey::DeleteGroups, 0, 2),
        ]
    }

    /// Stops timers and background tasks, answers parked Join/Sync requests with
    /// COORDINATOR_NOT_AVAILABLE (they see their channel closed) and closes the store.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        {
            let mut groups = self.inner.lock();
            for g in groups.map.values_mut() {
                g.drop_waiters();
            }
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        if let Err(e) = self.inner.store.close().await {
            tracing::warn!(error = %e, "group store close failed");
        }
    }

    pub async fn join_group(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let group_id = req.group_id.0.as_str();
        let member_id = req.member_id.as_str().to_string();
        let session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        let outcome = if group_id.is_empty() {
            JoinOutcome::error(E::InvalidGroupId, &member_id)
        } else if req.session_timeout_ms < 0
            || session_timeout < self.inner.config.min_session_timeout
            || session_timeout > self.inner.config.max_session_timeout
        {
            JoinOutcome::error(E::InvalidSessionTimeout, &member_id)
        } else {
            let rebalance_timeout = if version == 0 || req.rebalance_timeout_ms <= 0 {
                session_timeout
            } else {
                Duration::from_millis(req.rebalance_timeout_ms as u64)
            };
            let params = JoinParams {
                member_id: member_id.clone(),
                instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: client_id.to_string(),
                client_host: client_host.to_string(),
                session_timeout,
                rebalance_timeout,
                protocol_type: req.protocol_type.to_string(),
                protocols: req
                    .protocols
                    .iter()
                    .map(|p| (p.name.to_string(), p.metadata.clone()))
                    .collect(),
                require_known_member_id: version >= 4 && req.group_instance_id.is_none(),
            };
            let reply = self
                .inner
                .with_group_fx(group_id, !member_id.is_empty(), |g, ctx, fx| {
                    g.join(params, ctx, fx)
                });
            match reply {
                None => JoinOutcome::error(E::UnknownMemberId, &member_id),
                Some(Reply::Now(o)) => o,
                Some(Reply::Wait(rx)) => rx
                    .await
                    .unwrap_or_else(|_| JoinOutcome::error(E::CoordinatorNotAvailable, &member_id)),
            }
        };
        join_response(outcome, version)
    }

    pub async fn sync_group(&self, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        let group_id = req.group_id.0.as_str();
        let member_id = req.member_id.as_str();
        let instance_id = req.group_instance_id.as_ref().map(|s| s.as_str());
        let assignments: Vec<(String, Bytes)> = req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect();
        let outcome = if group_id.is_empty() {
            sync_error(E::InvalidGroupId)
        } else {
            let reply = self.inner.with_group_fx(group_id, true, |g, ctx, _fx| {
                g.sync(
                    member_id,
                    instance_id,
                    req.generation_id,
                    req.protocol_type.as_ref().map(|s| s.as_str()),
                    req.protocol_name.as_ref().map(|s| s.as_str()),
                    assignments,
                    ctx,
                )
            });
            match reply {
                None => sync_error(E::UnknownMemberId),
                Some(Reply::Now(o)) => o,
                Some(Reply::Wait(rx)) => rx
                    .await
                    .unwrap_or_else(|_| sync_error(E::CoordinatorNotAvailable)),
            }
        };
        let mut resp = SyncGroupResponse::default();
        resp.error_code = outcome.error;
        resp.assignment = outcome.assignment;
        if version >= 5 {
            resp.protocol_type = outcome.protocol_type.map(sb);
            resp.protocol_name = outcome.protocol_name.map(sb);
        }
        resp
    }

    pub async fn heartbeat(&self, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
        let group_id = req.group_id.0.as_str();
        let instance_id = req.group_instance_id.as_ref().map(|s| s.as_str());
        let error = if group_id.is_empty() {
            Err(E::InvalidGroupId)
        } else {
            self.inner
                .with_group_fx(group_id, true, |g, ctx, _fx| {
                    g.heartbeat(req.member_id.as_str(), instance_id, req.generation_id, ctx)
                })
                .unwrap_or(Err(E::UnknownMemberId))
        };
        let mut resp = HeartbeatResponse::default();
        resp.error_code = code(error);
        resp
    }

    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let group_id = req.group_id.0.as_str();
        let leaving: Vec<(String, Option<String>)> = if version >= 3 {
            req.members
                .iter()
                .map(|m| {
                    if let Some(reason) = &m.reason {
                        tracing::info!(group = %group_id, member = %m.member_id.as_str(), reason = %reason.as_str(), "leave group");
                    }
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|s| s.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(req.member_id.to_string(), None)]
        };
        let mut resp = LeaveGroupResponse::default();
        if group_id.is_empty() {
            resp.error_code = E::InvalidGroupId.code();
            return resp;
        }
        let errors: Vec<Result<(), E>> = self
            .inner
            .with_group_fx(group_id, true, |g, ctx, fx| {
                leaving
                    .iter()
                    .map(|(m, i)| g.leave(m, i.as_deref(), ctx, fx))
                    .collect()
            })
            .unwrap_or_else(|| vec![Err(E::UnknownMemberId); leaving.len()]);
        if version >= 3 {
            resp.members = leaving
                .into_iter()
                .zip(&errors)
                .map(|((m, i), e)| {
                    let mut r = MemberResponse::default();
                    r.member_id = sb(m);
                    r.group_instance_id = i.map(sb);
                    r.error_code = code(*e);
                    r
                })
                .collect();
        } else {
            resp.error_code = code(errors.first().copied().unwrap_or(Ok(())));
        }
        resp
    }

    fn start_offset_expiry(&self) {
        let weak = Arc::downgrade(&self.inner);
        let retention = self.inner.config.offsets_retention;
        let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
        let token = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let done = GroupCoordinator { inner }.expire_offsets(wall_ms());
                if let Err(e) = done.await {
                    tracing::warn!(error = %e, "persisting offset expiry failed");
                }
            }
        });
    }
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, Groups> {
        // A panic while holding the lock leaves groups in an unknown state; keep serving
        // rather than poisoning every later request (each request re-validates).
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn ctx(&self) -> Ctx {
        Ctx {
            now: Instant::now(),
            now_ms: wall_ms(),
            initial_rebalance_delay: self.config.initial_rebalance_delay,
        }
    }

    /// Runs `f` on the group (created if absent unless `must_exist`), then arms timers and
    /// enqueues records under the same lock (so records reach the store in state order).
    /// `None` if the group does not exist and `must_exist`.
    fn with_group_fx<R>(
        self: &Arc<Self>,
        group_id: &str,
        must_exist: bool,
        f: impl FnOnce(&mut Group, &Ctx, &mut Effects) -> R,
    ) -> Option<R> {
        let ctx = self.ctx();
        let mut fx = Effects::default();
        let mut groups = self.lock();
        if must_exist && !groups.map.contains_key(group_id) {
            return None;
        }
        let group = groups
            .map
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, ctx.now_ms));
        let r = f(group, &ctx, &mut fx);
        self.apply_effects(group_id, fx);
        drop(groups);
        Some(r)
    }

    /// Arms timers and enqueues records (call with the groups lock held).
    pub(super) fn apply_effects(self: &Arc<Self>, group_id: &str, fx: Effects) {
        for (at, timer) in fx.timers {
            self.arm(group_id.to_string(), at, timer);
        }
        if !fx.records.is_empty() {
            let done = self.store.append(fx.records);
            self.tasks.spawn(async move {
                if let Err(e) = done.await {
                    tracing::warn!(error = %e, "persisting group metadata failed");
                }
            });
        }
    }

    fn arm(self: &Arc<Self>, group_id: String, at: Instant, timer: Timer) {
        let weak: Weak<Inner> = Arc::downgrade(self);
        let token = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = tokio::time::sleep_until(at) => {
                    if let Some(inner) = weak.upgrade() {
                        inner.fire(&group_id, timer);
                    }
                }
            }
        });
    }

    fn fire(self: &Arc<Self>, group_id: &str, timer: Timer) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let _ = self.with_group_fx(group_id, true, |g, ctx, fx| g.on_timer(timer, ctx, fx));
    }
}

fn sync_error(e: E) -> SyncOutcome {
    SyncOutcome {
        error: e.code(),
        ..Default::default()
    }
}

fn join_response(o: JoinOutcome, version: i16) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = o.error;
    r.generation_id = o.generation;
    if version >= 7 {
        r.protocol_type = o.protocol_type.map(sb);
        r.protocol_name = o.protocol_name.map(sb);
    } else {
        // Not nullable before v7.
        r.protocol_name = Some(sb(o.protocol_name.unwrap_or_default()));
    }
    r.leader = sb(o.leader);
    r.member_id = sb(o.member_id);
    r.members = o
        .members
        .into_iter()
        .map(|m| {
            let mut x = JoinGroupResponseMember::default();
            x.member_id = sb(m.member_id);
            if version >= 5 {
                x.group_instance_id = m.instance_id.map(sb);
            }
            x.metadata = m.metadata;
            x
        })
        .collect();
    r
}
