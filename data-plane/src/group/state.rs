//! The classic group state machine: Kafka's `GroupMetadata` and the state transitions of
//! its `GroupCoordinator` (Empty -> PreparingRebalance -> CompletingRebalance -> Stable).
//!
//! Pure logic: no I/O and no clock of its own. Callers pass the time in a [`Ctx`] and get
//! back [`Effects`]: timers to arm and records to persist. Long-polling Join/Sync requests
//! are parked as oneshot senders on their member and answered when the rebalance moves on.
//! Every timer carries a token (rebalance epoch, generation, member incarnation) so a stale
//! timer is a no-op: timers are never cancelled, only outdated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError as E;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::store::Record;

/// Kafka's classic group states (their names are what DescribeGroups/ListGroups return).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// The time, for one call into the state machine.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub now: Instant,
    /// Wall clock (ms since the epoch), for persisted timestamps.
    pub now_ms: i64,
    pub initial_rebalance_delay: Duration,
}

/// A timer the state machine wants; the coordinator calls [`Group::on_timer`] at `at`.
#[derive(Clone, Debug)]
pub enum Timer {
    /// Session expiry check of one member incarnation.
    Heartbeat { member_id: String, incarnation: u64 },
    /// A KIP-394 pending member that never came back with its id.
    PendingMember { member_id: String },
    /// End of (one step of) the initial rebalance delay of a group that was empty.
    InitialDelay { epoch: u64 },
    /// Rebalance timeout: complete the join with whoever rejoined.
    RebalanceTimeout { epoch: u64 },
    /// Members that got a JoinGroup answer but never sent SyncGroup are removed.
    SyncTimeout { generation: i32 },
}

/// What a state-machine call asks the coordinator to do next.
#[derive(Default)]
pub struct Effects {
    pub timers: Vec<(Instant, Timer)>,
    pub records: Vec<Record>,
}

/// The answer to a JoinGroup (before version-specific encoding).
#[derive(Clone, Debug, Default)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member's metadata for the chosen protocol.
    pub members: Vec<JoinMember>,
}

#[derive(Clone, Debug)]
pub struct JoinMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

impl JoinOutcome {
    pub fn error(error: E, member_id: &str) -> Self {
        JoinOutcome {
            error: error.code(),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Clone, Debug, Default)]
pub struct SyncOutcome {
    pub error: i16,
    pub assignment: Bytes,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
}

impl SyncOutcome {
    fn error(error: E) -> Self {
        SyncOutcome {
            error: error.code(),
            ..Default::default()
        }
    }
}

pub enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// A JoinGroup as the state machine sees it.
#[derive(Clone, Debug)]
pub struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394: JoinGroup v4+ without a group.instance.id.
    pub require_known_member_id: bool,
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    /// Session deadline, pushed forward by heartbeats, commits and syncs.
    deadline: Instant,
    /// Distinguishes this member from an earlier one with the same id (stale timers).
    incarnation: u64,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn awaiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }
}

/// A committed offset in memory. `seq` orders concurrent commits to one partition: a commit
/// becomes visible only once durable, and never overwrites a later one.
#[derive(Clone, Debug, PartialEq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ts_ms: i64,
    pub expire_ts_ms: Option<i64>,
    pub seq: u64,
}

struct InitialDelay {
    remaining: Duration,
    new_member_added: bool,
}

static INCARNATION: AtomicU64 = AtomicU64::new(1);

fn next_incarnation() -> u64 {
    INCARNATION.fetch_add(1, Ordering::Relaxed)
}

/// One classic group.
pub struct Group {
    pub id: String,
    /// Changes when a group of this id is deleted and created again, so a commit that was
    /// in flight across a delete cannot resurrect offsets.
    pub incarnation: u64,
    pub state: GroupState,
    /// Wall clock (ms) of the last state change: the offsets retention base of an empty group.
    pub state_ts_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// KIP-394: ids handed out with MEMBER_ID_REQUIRED, not yet used to join.
    pub pending_members: HashSet<String>,
    /// group.instance.id -> current member id.
    pub static_members: HashMap<String, String>,
    /// Members that got this generation's JoinGroup answer but have not synced yet.
    pending_sync: HashSet<String>,
    rebalance_epoch: u64,
    initial_delay: Option<InitialDelay>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            incarnation: next_incarnation(),
            state: GroupState::Empty,
            state_ts_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending_members: HashSet::new(),
            static_members: HashMap::new(),
            pending_sync: HashSet::new(),
            rebalance_epoch: 0,
            initial_delay: None,
            offsets: BTreeMap::new(),
        }
    }

    /// The group metadata record for the current generation.
    pub fn record(&self) -> Record {
        Record::Group {
            group: self.id.clone(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            state_ts_ms: self.state_ts_ms,
        }
    }

    fn set_state(&mut self, state: GroupState, ctx: &Ctx) {
        self.state = state;
        self.state_ts_ms = ctx.now_ms;
    }

    /// Whether a member with these protocols may join (Kafka's `supportsProtocols`).
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// Kafka's `selectProtocol`: among protocols every member supports, each member votes for
    /// its most preferred; most votes wins, ties go to the earlier one in the first member's list.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let best =
            (0..candidates.len()).max_by(|&a, &b| votes[a].cmp(&votes[b]).then(b.cmp(&a)))?;
        Some(candidates[best].to_string())
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// JoinGroup. The group exists (the coordinator creates it for an empty member id).
    pub fn join(&mut self, p: JoinParams, ctx: &Ctx, fx: &mut Effects) -> Reply<JoinOutcome> {
        if !self.supports_protocols(&p.protocol_type, &p.protocols) {
            return Reply::Now(JoinOutcome::error(
                E::InconsistentGroupProtocol,
                &p.member_id,
            ));
        }
        if p.member_id.is_empty() {
            self.join_unknown(p, ctx, fx)
        } else {
            self.join_known(p, ctx, fx)
        }
    }

    fn join_unknown(&mut self, p: JoinParams, ctx: &Ctx, fx: &mut Effects) -> Reply<JoinOutcome> {
        let new_id = format!("{}-{}", p.client_id, uuid::Uuid::new_v4());
        if let Some(instance) = &p.instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(old_id, new_id, p, ctx, fx);
            }
            return self.add_member_and_rebalance(new_id, p, ctx, fx);
        }
        if p.require_known_member_id {
            self.pending_members.insert(new_id.clone());
            fx.timers.push((
                ctx.now + p.session_timeout,
                Timer::PendingMember {
                    member_id: new_id.clone(),
                },
            ));
            return Reply::Now(JoinOutcome::error(E::MemberIdRequired, &new_id));
        }
        self.add_member_and_rebalance(new_id, p, ctx, fx)
    }

    fn join_known(&mut self, p: JoinParams, ctx: &Ctx, fx: &mut Effects) -> Reply<JoinOutcome> {
        if let Err(e) = self.validate_member(&p.member_id, p.instance_id.as_deref()) {
            if self.pending_members.contains(&p.member_id) && p.instance_id.is_none() {
                self.pending_members.remove(&p.member_id);
                let id = p.member_id.clone();
                return self.add_member_and_rebalance(id, p, ctx, fx);
            }
            return Reply::Now(JoinOutcome::error(e, &p.member_id));
        }
        let member = &self.members[&p.member_id];
        let same = member.protocols == p.protocols;
        let is_leader = self.leader.as_deref() == Some(p.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(p, ctx, fx),
            GroupState::CompletingRebalance if same => {
                // The member lost its JoinGroup answer: repeat it.
                Reply::Now(self.join_outcome(&p.member_id, is_leader))
            }
            GroupState::Stable if same && !is_leader => {
                Reply::Now(self.join_outcome(&p.member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(p, ctx, fx)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(JoinOutcome::error(E::UnknownMemberId, &p.member_id))
            }
        }
    }

    /// Kafka's `validateMember`: static fencing, then membership.
    pub fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), E> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(E::UnknownMemberId),
                Some(id) if id != member_id => return Err(E::FencedInstanceId),
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(E::UnknownMemberId)
        }
    }

    fn join_outcome(&self, member_id: &str, with_members: bool) -> JoinOutcome {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinOutcome {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| JoinMember {
                        member_id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        p: JoinParams,
        ctx: &Ctx,
        fx: &mut Effects,
    ) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let member = Member {
            id: id.clone(),
            instance_id: p.instance_id.clone(),
            client_id: p.client_id,
            client_host: p.client_host,
            session_timeout: p.session_timeout,
            rebalance_timeout: p.rebalance_timeout,
            protocols: p.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            deadline: ctx.now + p.session_timeout,
            incarnation: next_incarnation(),
        };
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type);
        }
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(d) = &mut self.initial_delay {
            d.new_member_added = true;
        }
        fx.timers.push((
            member.deadline,
            Timer::Heartbeat {
                member_id: id.clone(),
                incarnation: member.incarnation,
            },
        ));
        self.members.insert(id, member);
        self.maybe_prepare_rebalance(ctx, fx);
        self.try_complete_join(ctx, fx);
        Reply::Wait(rx)
    }

    fn update_member_and_rebalance(
        &mut self,
        p: JoinParams,
        ctx: &Ctx,
        fx: &mut Effects,
    ) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let member = self
            .members
            .get_mut(&p.member_id)
            .expect("validated member");
        member.protocols = p.protocols;
        member.session_timeout = p.session_timeout;
        member.rebalance_timeout = p.rebalance_timeout;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(JoinOutcome::error(E::RebalanceInProgress, &p.member_id));
        }
        self.maybe_prepare_rebalance(ctx, fx);
        self.try_complete_join(ctx, fx);
        Reply::Wait(rx)
    }

    /// A known static member joined with an empty member id: it gets a new id, the old id is
    /// fenced. In Stable with unchanged protocols no rebalance happens (KIP-345).
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        p: JoinParams,
        ctx: &Ctx,
        fx: &mut Effects,
    ) -> Reply<JoinOutcome> {
        let current_leader = self.leader.clone().unwrap_or_default();
        let mut member = self.members.shift_remove(&old_id).expect("static member");
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinOutcome::error(E::FencedInstanceId, &old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncOutcome::error(E::FencedInstanceId));
        }
        let unchanged = member.protocols == p.protocols;
        member.id = new_id.clone();
        member.protocols = p.protocols;
        member.session_timeout = p.session_timeout;
        member.rebalance_timeout = p.rebalance_timeout;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.deadline = ctx.now + member.session_timeout;
        member.incarnation = next_incarnation();
        fx.timers.push((
            member.deadline,
            Timer::Heartbeat {
                member_id: new_id.clone(),
                incarnation: member.incarnation,
            },
        ));
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        let instance = p.instance_id.clone().expect("static member");
        self.static_members.insert(instance, new_id.clone());
        self.members.insert(new_id.clone(), member);

        if self.state == GroupState::Stable && unchanged && self.select_protocol() == self.protocol
        {
            // Keep the generation and assignment. The old leader id is returned on purpose:
            // a replaced leader must not think it has to assign for a stable group.
            let mut outcome = self.join_outcome(&new_id, false);
            outcome.leader = current_leader;
            fx.records.push(self.record());
            return Reply::Now(outcome);
        }
        let (tx, rx) = oneshot::channel();
        self.members.get_mut(&new_id).expect("inserted").join_waiter = Some(tx);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(ctx, fx),
            _ => self.try_complete_join(ctx, fx),
        }
        Reply::Wait(rx)
    }

    fn maybe_prepare_rebalance(&mut self, ctx: &Ctx, fx: &mut Effects) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(ctx, fx);
        }
    }

    fn prepare_rebalance(&mut self, ctx: &Ctx, fx: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            // Assignments of the aborted generation are void; waiting syncs learn it now.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncOutcome::error(E::RebalanceInProgress));
                }
            }
        }
        self.pending_sync.clear();
        let was_empty = self.state == GroupState::Empty;
        self.rebalance_epoch += 1;
        let epoch = self.rebalance_epoch;
        self.set_state(GroupState::PreparingRebalance, ctx);
        let timeout = self.max_rebalance_timeout();
        if was_empty && !ctx.initial_rebalance_delay.is_zero() {
            let delay = ctx.initial_rebalance_delay;
            self.initial_delay = Some(InitialDelay {
                remaining: timeout.saturating_sub(delay),
                new_member_added: false,
            });
            fx.timers
                .push((ctx.now + delay, Timer::InitialDelay { epoch }));
        } else {
            self.initial_delay = None;
            fx.timers
                .push((ctx.now + timeout, Timer::RebalanceTimeout { epoch }));
        }
    }

    fn try_complete_join(&mut self, ctx: &Ctx, fx: &mut Effects) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.pending_members.is_empty()
            && self.members.values().all(|m| m.join_waiter.is_some())
        {
            self.complete_join(ctx, fx);
        }
    }

    /// Kafka's `onCompleteJoin`: drop members that did not rejoin, start the next generation.
    fn complete_join(&mut self, ctx: &Ctx, fx: &mut Effects) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member(&id);
        }
        self.initial_delay = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty, ctx);
            fx.records.push(self.record());
            return;
        }
        self.protocol = self.select_protocol();
        self.set_state(GroupState::CompletingRebalance, ctx);
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in &ids {
            let outcome = self.join_outcome(id, *id == leader);
            let m = self.members.get_mut(id).expect("member");
            m.deadline = ctx.now + m.session_timeout;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(outcome);
            }
        }
        self.pending_sync = ids.into_iter().collect();
        fx.timers.push((
            ctx.now + self.max_rebalance_timeout(),
            Timer::SyncTimeout {
                generation: self.generation,
            },
        ));
        fx.records.push(self.record());
    }

    /// Removes a member, answering its parked requests with UNKNOWN_MEMBER_ID.
    fn remove_member(&mut self, id: &str) {
        let Some(mut m) = self.members.shift_remove(id) else {
            return;
        };
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            // Prefer a member that already rejoined.
            self.leader = self
                .members
                .values()
                .find(|m| m.join_waiter.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.id.clone());
        }
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinOutcome::error(E::UnknownMemberId, id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncOutcome::error(E::UnknownMemberId));
        }
    }

    /// Leave or session expiry of a member.
    fn remove_member_and_update(&mut self, id: &str, ctx: &Ctx, fx: &mut Effects) {
        self.remove_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(ctx, fx);
                self.try_complete_join(ctx, fx);
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx, fx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// SyncGroup. `protocol_type`/`protocol_name` are the v5 consistency checks.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        ctx: &Ctx,
    ) -> Reply<SyncOutcome> {
        if let Err(e) = self.validate_member(member_id, instance_id) {
            return Reply::Now(SyncOutcome::error(e));
        }
        if generation != self.generation {
            return Reply::Now(SyncOutcome::error(E::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| self.protocol_type.as_deref() != Some(t))
            || protocol_name.is_some_and(|n| self.protocol.as_deref() != Some(n))
        {
            return Reply::Now(SyncOutcome::error(E::InconsistentGroupProtocol));
        }
        let ok = |g: &Group, assignment: Bytes| SyncOutcome {
            error: 0,
            assignment,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
        };
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(SyncOutcome::error(E::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Reply::Now(SyncOutcome::error(E::RebalanceInProgress))
            }
            GroupState::Stable => {
                self.pending_sync.remove(member_id);
                let m = self.members.get_mut(member_id).expect("validated");
                m.deadline = ctx.now + m.session_timeout;
                let assignment = m.assignment.clone();
                Reply::Now(ok(self, assignment))
            }
            GroupState::CompletingRebalance => {
                self.pending_sync.remove(member_id);
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(member_id).expect("validated");
                m.deadline = ctx.now + m.session_timeout;
                m.sync_waiter = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = by_member.remove(&m.id).unwrap_or_default();
                    }
                    self.set_state(GroupState::Stable, ctx);
                    let (pt, pn) = (self.protocol_type.clone(), self.protocol.clone());
                    for m in self.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncOutcome {
                                error: 0,
                                assignment: m.assignment.clone(),
                                protocol_type: pt.clone(),
                                protocol_name: pn.clone(),
                            });
                        }
                    }
                }
                Reply::Wait(rx)
            }
        }
    }

    /// Heartbeat: returns the error code.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        ctx: &Ctx,
    ) -> Result<(), E> {
        self.validate_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(E::IllegalGeneration);
        }
        let m = self.members.get_mut(member_id).expect("validated");
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(E::UnknownMemberId),
            GroupState::PreparingRebalance => {
                m.deadline = ctx.now + m.session_timeout;
                Err(E::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.deadline = ctx.now + m.session_timeout;
                Ok(())
            }
        }
    }

    /// LeaveGroup of one member (v3+ may name several). An empty `member_id` with an
    /// instance id removes that static member whatever its id (admin removal).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        ctx: &Ctx,
        fx: &mut Effects,
    ) -> Result<(), E> {
        if let Some(instance) = instance_id {
            let Some(id) = self.static_members.get(instance).cloned() else {
                return Err(E::UnknownMemberId);
            };
            if !member_id.is_empty() && id != member_id {
                return Err(E::FencedInstanceId);
            }
            self.remove_member_and_update(&id, ctx, fx);
            return Ok(());
        }
        if self.pending_members.remove(member_id) {
            self.try_complete_join(ctx, fx);
            return Ok(());
        }
        if !self.members.contains_key(member_id) {
            return Err(E::UnknownMemberId);
        }
        self.remove_member_and_update(member_id, ctx, fx);
        Ok(())
    }

    /// Kafka's `validateOffsetCommit` for classic groups; on success the member's session
    /// is extended.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        ctx: &Ctx,
    ) -> Result<(), E> {
        if generation < 0 && self.state == GroupState::Empty {
            // Admin client or a consumer without group management.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(E::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            // A standalone commit into a group with live members.
            return Err(E::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(E::RebalanceInProgress);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.deadline = ctx.now + m.session_timeout;
        }
        Ok(())
    }

    /// A timer fired (see [`Timer`]); stale ones do nothing.
    pub fn on_timer(&mut self, timer: Timer, ctx: &Ctx, fx: &mut Effects) {
        match timer {
            Timer::Heartbeat {
                member_id,
                incarnation,
            } => {
                let Some(m) = self.members.get(&member_id) else {
                    return;
                };
                if m.incarnation != incarnation {
                    return;
                }
                let next = if m.awaiting() {
                    // Parked in Join/Sync: the rebalance and sync timeouts police it.
                    Some(ctx.now + m.session_timeout)
                } else if m.deadline > ctx.now {
                    Some(m.deadline)
                } else {
                    None
                };
                match next {
                    Some(at) => fx.timers.push((
                        at,
                        Timer::Heartbeat {
                            member_id,
                            incarnation,
                        },
                    )),
                    None => {
                        tracing::info!(group = %self.id, member = %member_id, "member session expired");
                        self.remove_member_and_update(&member_id, ctx, fx);
                    }
                }
            }
            Timer::PendingMember { member_id } => {
                if self.pending_members.remove(&member_id) {
                    self.try_complete_join(ctx, fx);
                }
            }
            Timer::InitialDelay { epoch } => {
                if epoch != self.rebalance_epoch || self.state != GroupState::PreparingRebalance {
                    return;
                }
                let Some(d) = &mut self.initial_delay else {
                    return;
                };
                if d.new_member_added && !d.remaining.is_zero() {
                    let delay = ctx.initial_rebalance_delay.min(d.remaining);
                    d.remaining -= delay;
                    d.new_member_added = false;
                    fx.timers
                        .push((ctx.now + delay, Timer::InitialDelay { epoch }));
                } else {
                    self.complete_join(ctx, fx);
                }
            }
            Timer::RebalanceTimeout { epoch } => {
                if epoch == self.rebalance_epoch
                    && self.state == GroupState::PreparingRebalance
                    && self.initial_delay.is_none()
                {
                    self.complete_join(ctx, fx);
                }
            }
            Timer::SyncTimeout { generation } => {
                if generation != self.generation
                    || !matches!(
                        self.state,
                        GroupState::CompletingRebalance | GroupState::Stable
                    )
                    || self.pending_sync.is_empty()
                {
                    return;
                }
                let late: Vec<String> = self.pending_sync.drain().collect();
                for id in late {
                    tracing::info!(group = %self.id, member = %id, "member did not sync in time; removed");
                    self.remove_member(&id);
                }
                self.prepare_rebalance(ctx, fx);
                self.try_complete_join(ctx, fx);
            }
        }
    }

    /// Drops every parked request (shutdown): their callers see the channel closed.
    pub fn drop_waiters(&mut self) {
        for m in self.members.values_mut() {
            m.join_waiter = None;
            m.sync_waiter = None;
        }
    }
}
