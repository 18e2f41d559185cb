//! Coordinator tests: the classic protocol end to end through the public API, with paused
//! time (and the in-memory store) where timing matters, the file store for durability.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    join_group_request::JoinGroupRequestProtocol,
    leave_group_request::MemberIdentity,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    },
    sync_group_request::SyncGroupRequestAssignment,
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError as E;

use super::*;

struct Topics;

impl TopicView for Topics {
    fn partition_exists(&self, _group: &str, topic: &str, partition: i32) -> bool {
        topic != "missing" && (0..8).contains(&partition)
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn config(initial_delay: Duration) -> GroupConfig {
    GroupConfig {
        min_session_timeout: Duration::from_secs(1),
        max_session_timeout: Duration::from_secs(300),
        initial_rebalance_delay: initial_delay,
        offsets_retention: Duration::from_secs(3600),
    }
}

async fn coordinator() -> Arc<GroupCoordinator> {
    GroupCoordinator::open_with_store(
        Arc::new(MemoryGroupStore::default()),
        config(Duration::ZERO),
        Arc::new(Topics),
    )
    .await
    .unwrap()
}

/// Lets every spawned task run until it parks (paused time: advances 1 ms).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn encodes<T: Encodable>(msg: &T, version: i16) {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("encode v{version}: {e}"));
}

fn join_req(
    group: &str,
    member: &str,
    instance: Option<&str>,
    meta: &'static [u8],
) -> JoinGroupRequest {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = sb("range");
    p.metadata = Bytes::from_static(meta);
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(sb(group));
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = 20_000;
    r.member_id = sb(member);
    r.group_instance_id = instance.map(sb);
    r.protocol_type = sb("consumer");
    r.protocols = vec![p];
    r
}

fn spawn_join(
    c: &Arc<GroupCoordinator>,
    req: JoinGroupRequest,
    version: i16,
) -> tokio::task::JoinHandle<JoinGroupResponse> {
    let c = c.clone();
    tokio::spawn(async move { c.join_group(req, version, "client", "/127.0.0.1").await })
}

fn sync_req(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(sb(group));
    r.member_id = sb(member);
    r.generation_id = generation;
    r.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = sb(m);
            x.assignment = Bytes::from_static(a);
            x
        })
        .collect();
    r
}

fn spawn_sync(
    c: &Arc<GroupCoordinator>,
    req: SyncGroupRequest,
) -> tokio::task::JoinHandle<SyncGroupResponse> {
    let c = c.clone();
    tokio::spawn(async move { c.sync_group(req, 3).await })
}

async fn heartbeat(
    c: &GroupCoordinator,
    group: &str,
    member: &str,
    generation: i32,
    instance: Option<&str>,
) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(sb(group));
    r.member_id = sb(member);
    r.generation_id = generation;
    r.group_instance_id = instance.map(sb);
    c.heartbeat(r, 3).await.error_code
}

/// KIP-394 join of a new dynamic member: MEMBER_ID_REQUIRED, then the real join (spawned,
/// since it may wait for a rebalance).
async fn join_new(
    c: &Arc<GroupCoordinator>,
    group: &str,
) -> tokio::task::JoinHandle<JoinGroupResponse> {
    let first = c
        .join_group(join_req(group, "", None, b"m"), 5, "client", "/h")
        .await;
    assert_eq!(first.error_code, E::MemberIdRequired.code());
    let id = first.member_id.to_string();
    let h = spawn_join(c, join_req(group, &id, None, b"m"), 5);
    settle().await;
    h
}

/// A group with one synced member; returns (member id, generation).
async fn stable_single(c: &Arc<GroupCoordinator>, group: &str) -> (String, i32) {
    let j = join_new(c, group).await.await.unwrap();
    assert_eq!(j.error_code, 0);
    let id = j.member_id.to_string();
    let s = c
        .sync_group(sync_req(group, &id, j.generation_id, &[(&id, b"a0")]), 3)
        .await;
    assert_eq!(s.error_code, 0);
    (id, j.generation_id)
}

/// A stable group with two members; returns ((a, b), generation).
async fn stable_pair(c: &Arc<GroupCoordinator>, group: &str) -> ((String, String), i32) {
    let (a, _) = stable_single(c, group).await;
    let hb = join_new(c, group).await;
    let ha = spawn_join(c, join_req(group, &a, None, b"m"), 5);
    let (ja, jb) = (ha.await.unwrap(), hb.await.unwrap());
    let b = jb.member_id.to_string();
    let generation = ja.generation_id;
    let sb_ = spawn_sync(c, sync_req(group, &b, generation, &[]));
    settle().await;
    let sa = c
        .sync_group(
            sync_req(group, &a, generation, &[(&a, b"A"), (&b, b"B")]),
            3,
        )
        .await;
    assert_eq!(sa.error_code, 0);
    assert_eq!(sb_.await.unwrap().error_code, 0);
    ((a, b), generation)
}

async fn state_of(c: &GroupCoordinator, group: &str) -> String {
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(sb(group))];
    c.describe_groups(r, 5).await.groups[0]
        .group_state
        .to_string()
}

fn commit_req(
    group: &str,
    member: &str,
    generation: i32,
    parts: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(sb(group));
    r.member_id = sb(member);
    r.generation_id_or_member_epoch = generation;
    for (topic, p, o) in parts {
        let mut part = OffsetCommitRequestPartition::default();
        part.partition_index = *p;
        part.committed_offset = *o;
        part.committed_leader_epoch = 7;
        part.committed_metadata = Some(sb(&format!("meta-{o}")));
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(sb(topic));
        t.partitions = vec![part];
        r.topics.push(t);
    }
    r
}

fn commit_errors(resp: &OffsetCommitResponse) -> Vec<i16> {
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch v7 of `(topic, partitions)` (`None` = all); returns (topic, partition, offset, epoch, metadata).
async fn fetch(
    c: &GroupCoordinator,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> Vec<(String, i32, i64, i32, String)> {
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(sb(group));
    r.topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                let mut x = OffsetFetchRequestTopic::default();
                x.name = TopicName(sb(t));
                x.partition_indexes = ps.to_vec();
                x
            })
            .collect()
    });
    let resp: OffsetFetchResponse = c.offset_fetch(r, 7).await;
    encodes(&resp, 7);
    assert_eq!(resp.error_code, 0);
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                assert_eq!(p.error_code, 0);
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                )
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn group_one_member_join_sync_heartbeat() {
    let c = coordinator().await;
    let first = c
        .join_group(join_req("g", "", None, b"m"), 5, "client", "/h")
        .await;
    assert_eq!(first.error_code, E::MemberIdRequired.code());
    assert!(first.member_id.starts_with("client-"));
    encodes(&first, 5);
    let j = c
        .join_group(
            join_req("g", &first.member_id, None, b"m"),
            5,
            "client",
            "/h",
        )
        .await;
    encodes(&j, 5);
    assert_eq!(j.error_code, 0);
    assert_eq!(j.member_id, first.member_id);
    assert_eq!(j.leader, j.member_id);
    assert_eq!(j.generation_id, 1);
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(j.members.len(), 1);
    assert_eq!(&j.members[0].metadata[..], b"m");
    let id = j.member_id.to_string();
    assert_eq!(state_of(&c, "g").await, "CompletingRebalance");
    let s = c
        .sync_group(sync_req("g", &id, 1, &[(&id, b"assign")]), 3)
        .await;
    assert_eq!(s.error_code, 0);
    assert_eq!(&s.assignment[..], b"assign");
    assert_eq!(state_of(&c, "g").await, "Stable");
    // Heartbeats keep it alive well past the session timeout.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(heartbeat(&c, "g", &id, 1, None).await, 0);
    }
    assert_eq!(state_of(&c, "g").await, "Stable");
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_two_members_rebalance_and_leader_assigns() {
    let c = coordinator().await;
    let (a, g1) = stable_single(&c, "g").await;
    let hb = join_new(&c, "g").await;
    assert_eq!(state_of(&c, "g").await, "PreparingRebalance");
    assert_eq!(
        heartbeat(&c, "g", &a, g1, None).await,
        E::RebalanceInProgress.code()
    );
    assert!(!hb.is_finished(), "join waits for the other member");
    let ja = spawn_join(&c, join_req("g", &a, None, b"m"), 5)
        .await
        .unwrap();
    let jb = hb.await.unwrap();
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!(ja.generation_id, g1 + 1);
    assert_eq!(jb.generation_id, g1 + 1);
    assert_eq!(ja.leader.as_str(), a);
    assert_eq!(jb.leader.as_str(), a);
    assert_eq!(ja.members.len(), 2, "leader gets every member");
    assert!(jb.members.is_empty(), "followers get no members");
    let b = jb.member_id.to_string();
    let gen = ja.generation_id;
    let follower = spawn_sync(&c, sync_req("g", &b, gen, &[]));
    settle().await;
    assert!(
        !follower.is_finished(),
        "follower sync waits for the leader"
    );
    let sa = c
        .sync_group(sync_req("g", &a, gen, &[(&a, b"for-a"), (&b, b"for-b")]), 3)
        .await;
    assert_eq!(&sa.assignment[..], b"for-a");
    assert_eq!(&follower.await.unwrap().assignment[..], b"for-b");
    assert_eq!(heartbeat(&c, "g", &b, gen, None).await, 0);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_kip394_pending_member_expires() {
    let c = coordinator().await;
    let first = c
        .join_group(join_req("g", "", None, b"m"), 4, "cli", "/h")
        .await;
    assert_eq!(first.error_code, E::MemberIdRequired.code());
    assert_eq!(first.generation_id, -1);
    encodes(&first, 4);
    // Before v4 there is no MEMBER_ID_REQUIRED round.
    let old = c
        .join_group(join_req("g2", "", None, b"m"), 3, "cli", "/h")
        .await;
    assert_eq!(old.error_code, 0);
    assert_eq!(old.generation_id, 1);
    // A pending id that never comes back expires after the session timeout.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let late = c
        .join_group(join_req("g", &first.member_id, None, b"m"), 4, "cli", "/h")
        .await;
    assert_eq!(late.error_code, E::UnknownMemberId.code());
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_static_member_rejoins_without_rebalance_and_fences_old_id() {
    let c = coordinator().await;
    let j = c
        .join_group(join_req("g", "", Some("i1"), b"m"), 5, "cli", "/h")
        .await;
    assert_eq!(j.error_code, 0, "static members skip MEMBER_ID_REQUIRED");
    assert_eq!(j.members[0].group_instance_id.as_deref(), Some("i1"));
    let old = j.member_id.to_string();
    let mut s = sync_req("g", &old, 1, &[(&old, b"A")]);
    s.group_instance_id = Some(sb("i1"));
    assert_eq!(c.sync_group(s, 3).await.error_code, 0);
    // Restarted client: same instance id, empty member id, same metadata.
    let r = c
        .join_group(join_req("g", "", Some("i1"), b"m"), 5, "cli", "/h")
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1, "no rebalance");
    assert_ne!(r.member_id.as_str(), old);
    assert_eq!(
        r.leader.as_str(),
        old,
        "old leader id returned so it does not reassign"
    );
    assert_eq!(state_of(&c, "g").await, "Stable");
    let new = r.member_id.to_string();
    assert_eq!(
        heartbeat(&c, "g", &old, 1, Some("i1")).await,
        E::FencedInstanceId.code()
    );
    assert_eq!(heartbeat(&c, "g", &new, 1, Some("i1")).await, 0);
    let mut s = sync_req("g", &new, 1, &[]);
    s.group_instance_id = Some(sb("i1"));
    assert_eq!(
        &c.sync_group(s, 3).await.assignment[..],
        b"A",
        "assignment kept"
    );
    // Changed metadata does rebalance.
    let h = spawn_join(&c, join_req("g", "", Some("i1"), b"other"), 5);
    let r2 = h.await.unwrap();
    assert_eq!(r2.error_code, 0);
    assert_eq!(r2.generation_id, 2);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_session_expiry_removes_member_and_rebalances() {
    let c = coordinator().await;
    let ((a, b), gen) = stable_pair(&c, "g").await;
    // a heartbeats, b goes silent; session timeout is 10 s.
    let mut saw_rebalance = false;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let e = heartbeat(&c, "g", &a, gen, None).await;
        if e == E::RebalanceInProgress.code() {
            saw_rebalance = true;
            break;
        }
        assert_eq!(e, 0);
    }
    assert!(saw_rebalance, "b's expiry started a rebalance");
    let j = c
        .join_group(join_req("g", &a, None, b"m"), 5, "c", "/h")
        .await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, gen + 1);
    assert_eq!(j.members.len(), 1);
    assert_eq!(
        heartbeat(&c, "g", &b, gen, None).await,
        E::UnknownMemberId.code()
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_rebalance_timeout_drops_member_that_did_not_rejoin() {
    let c = coordinator().await;
    let ((a, b), gen) = stable_pair(&c, "g").await;
    let start = tokio::time::Instant::now();
    // a rejoins (say, subscription change); b keeps heartbeating but never rejoins.
    let ha = spawn_join(&c, join_req("g", &a, None, b"m2"), 5);
    settle().await;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let e = heartbeat(&c, "g", &b, gen, None).await;
        if e != E::RebalanceInProgress.code() {
            break;
        }
    }
    let ja = ha.await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(24),
        "{waited:?}"
    );
    assert_eq!(ja.generation_id, gen + 1);
    assert_eq!(ja.members.len(), 1);
    assert_eq!(
        heartbeat(&c, "g", &b, gen + 1, None).await,
        E::UnknownMemberId.code()
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_leave_triggers_rebalance() {
    let c = coordinator().await;
    let ((a, b), gen) = stable_pair(&c, "g").await;
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(sb("g"));
    let mut m = MemberIdentity::default();
    m.member_id = sb(&b);
    let mut ghost = MemberIdentity::default();
    ghost.member_id = sb("ghost");
    leave.members = vec![m, ghost];
    let resp = c.leave_group(leave, 5).await;
    encodes(&resp, 5);
    assert_eq!(resp.error_code, 0);
    let codes: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, E::UnknownMemberId.code()]);
    assert_eq!(state_of(&c, "g").await, "PreparingRebalance");
    let j = c
        .join_group(join_req("g", &a, None, b"m"), 5, "c", "/h")
        .await;
    assert_eq!(j.generation_id, gen + 1);
    assert_eq!(j.members.len(), 1);
    // v0 leave of the last member empties the group.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(sb("g"));
    leave.member_id = sb(&a);
    let resp = c.leave_group(leave.clone(), 0).await;
    encodes(&resp, 0);
    assert_eq!(resp.error_code, 0);
    assert_eq!(state_of(&c, "g").await, "Empty");
    assert_eq!(
        c.leave_group(leave, 0).await.error_code,
        E::UnknownMemberId.code()
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_offsets_commit_and_fetch() {
    let c = coordinator().await;
    let (a, gen) = stable_single(&c, "g").await;
    let resp = c
        .offset_commit(
            commit_req(
                "g",
                &a,
                gen,
                &[("t", 0, 42), ("t", 1, 7), ("missing", 0, 1)],
            ),
            8,
        )
        .await;
    encodes(&resp, 8);
    assert_eq!(
        commit_errors(&resp),
        vec![0, 0, E::UnknownTopicOrPartition.code()]
    );
    let got = fetch(&c, "g", Some(&[("t", &[0, 1, 5]), ("u", &[0])])).await;
    assert_eq!(
        got,
        vec![
            ("t".into(), 0, 42, 7, "meta-42".into()),
            ("t".into(), 1, 7, 7, "meta-7".into()),
            ("t".into(), 5, -1, -1, "".into()),
            ("u".into(), 0, -1, -1, "".into()),
        ]
    );
    // Null topics = everything committed.
    assert_eq!(fetch(&c, "g", None).await.len(), 2);
    // v8+: the groups array.
    let mut r = OffsetFetchRequest::default();
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(sb("g"));
    let mut t = OffsetFetchRequestTopics::default();
    t.name = TopicName(sb("t"));
    t.partition_indexes = vec![0];
    g.topics = Some(vec![t]);
    let mut unknown = OffsetFetchRequestGroup::default();
    unknown.group_id = GroupId(sb("nope"));
    unknown.topics = None;
    r.groups = vec![g, unknown];
    let resp = c.offset_fetch(r, 9).await;
    encodes(&resp, 9);
    assert_eq!(resp.groups[0].topics[0].partitions[0].committed_offset, 42);
    assert_eq!(
        resp.groups[0].topics[0].partitions[0].committed_leader_epoch,
        7
    );
    assert!(resp.groups[1].topics.is_empty());
    assert_eq!(resp.groups[1].error_code, 0);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_commit_errors_standalone_generation_and_member() {
    let c = coordinator().await;
    let (a, gen) = stable_single(&c, "g").await;
    // Standalone commit (generation -1, no member) into a group with members.
    let resp = c
        .offset_commit(commit_req("g", "", -1, &[("t", 0, 1)]), 7)
        .await;
    assert_eq!(commit_errors(&resp), vec![E::UnknownMemberId.code()]);
    let resp = c
        .offset_commit(commit_req("g", &a, gen + 5, &[("t", 0, 1)]), 7)
        .await;
    assert_eq!(commit_errors(&resp), vec![E::IllegalGeneration.code()]);
    let resp = c
        .offset_commit(commit_req("g", "who", gen, &[("t", 0, 1)]), 7)
        .await;
    assert_eq!(commit_errors(&resp), vec![E::UnknownMemberId.code()]);
    // Unknown group with a generation: ILLEGAL_GENERATION before v9, GROUP_ID_NOT_FOUND at v9.
    let resp = c
        .offset_commit(commit_req("x", "m", 3, &[("t", 0, 1)]), 8)
        .await;
    assert_eq!(commit_errors(&resp), vec![E::IllegalGeneration.code()]);
    let resp = c
        .offset_commit(commit_req("x", "m", 3, &[("t", 0, 1)]), 9)
        .await;
    assert_eq!(commit_errors(&resp), vec![E::GroupIdNotFound.code()]);
    // Standalone commit into a fresh group works.
    let resp = c
        .offset_commit(commit_req("solo", "", -1, &[("t", 3, 9)]), 2)
        .await;
    encodes(&resp, 2);
    assert_eq!(commit_errors(&resp), vec![0]);
    assert_eq!(fetch(&c, "solo", Some(&[("t", &[3])])).await[0].2, 9);
    // Heartbeat/sync errors.
    assert_eq!(
        heartbeat(&c, "g", &a, gen + 1, None).await,
        E::IllegalGeneration.code()
    );
    assert_eq!(
        heartbeat(&c, "g", "who", gen, None).await,
        E::UnknownMemberId.code()
    );
    assert_eq!(
        heartbeat(&c, "nope", &a, gen, None).await,
        E::UnknownMemberId.code()
    );
    let s = c.sync_group(sync_req("g", &a, gen + 1, &[]), 3).await;
    assert_eq!(s.error_code, E::IllegalGeneration.code());
    let j = c
        .join_group(join_req("nope", "m-1", None, b"m"), 5, "c", "/h")
        .await;
    assert_eq!(j.error_code, E::UnknownMemberId.code());
    let mut bad = join_req("g", "", None, b"m");
    bad.protocol_type = sb("connect");
    let j = c.join_group(bad, 5, "c", "/h").await;
    assert_eq!(j.error_code, E::InconsistentGroupProtocol.code());
    let mut bad = join_req("g", "", None, b"m");
    bad.session_timeout_ms = 10;
    let j = c.join_group(bad, 5, "c", "/h").await;
    assert_eq!(j.error_code, E::InvalidSessionTimeout.code());
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_describe_list_delete() {
    let c = coordinator().await;
    let (a, _) = stable_single(&c, "active").await;
    let resp = c
        .offset_commit(commit_req("idle", "", -1, &[("t", 0, 5)]), 8)
        .await;
    assert_eq!(commit_errors(&resp), vec![0]);

    let mut d = DescribeGroupsRequest::default();
    d.groups = vec![GroupId(sb("active")), GroupId(sb("unknown"))];
    let resp = c.describe_groups(d.clone(), 5).await;
    encodes(&resp, 5);
    assert_eq!(resp.groups[0].group_state.as_str(), "Stable");
    assert_eq!(resp.groups[0].protocol_type.as_str(), "consumer");
    assert_eq!(resp.groups[0].protocol_data.as_str(), "range");
    assert_eq!(resp.groups[0].members[0].member_id.as_str(), a);
    assert_eq!(&resp.groups[0].members[0].member_assignment[..], b"a0");
    assert_eq!(resp.groups[1].group_state.as_str(), "Dead");
    assert_eq!(resp.groups[1].error_code, 0);
    let resp = c.describe_groups(d, 6).await;
    encodes(&resp, 6);
    assert_eq!(resp.groups[1].error_code, E::GroupIdNotFound.code());

    let list = c.list_groups(ListGroupsRequest::default(), 5).await;
    encodes(&list, 5);
    let names: Vec<&str> = list.groups.iter().map(|g| g.group_id.0.as_str()).collect();
    assert_eq!(names, vec!["active", "idle"]);
    let mut filtered = ListGroupsRequest::default();
    filtered.states_filter = vec![sb("empty")];
    let list = c.list_groups(filtered, 4).await;
    encodes(&list, 4);
    assert_eq!(list.groups.len(), 1);
    assert_eq!(list.groups[0].group_id.0.as_str(), "idle");
    assert_eq!(list.groups[0].group_state.as_str(), "Empty");
    let list = c.list_groups(ListGroupsRequest::default(), 0).await;
    encodes(&list, 0);

    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![
        GroupId(sb("active")),
        GroupId(sb("idle")),
        GroupId(sb("unknown")),
    ];
    let resp = c.delete_groups(del, 2).await;
    encodes(&resp, 2);
    let codes: Vec<i16> = resp.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![E::NonEmptyGroup.code(), 0, E::GroupIdNotFound.code()]
    );
    assert_eq!(fetch(&c, "idle", Some(&[("t", &[0])])).await[0].2, -1);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_initial_rebalance_delay_waits_for_more_members() {
    let c = GroupCoordinator::open_with_store(
        Arc::new(MemoryGroupStore::default()),
        config(Duration::from_secs(3)),
        Arc::new(Topics),
    )
    .await
    .unwrap();
    let start = tokio::time::Instant::now();
    let ha = join_new(&c, "g").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hb = join_new(&c, "g").await;
    let (ja, jb) = (ha.await.unwrap(), hb.await.unwrap());
    // A member joined during the first delay, so it was extended once: 6 s.
    assert!(
        start.elapsed() >= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ja.generation_id, 1);
    assert_eq!(jb.generation_id, 1);
    assert_eq!(ja.members.len() + jb.members.len(), 2);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_offsets_expire_for_empty_groups() {
    let c = coordinator().await;
    let resp = c
        .offset_commit(commit_req("solo", "", -1, &[("t", 0, 5)]), 8)
        .await;
    assert_eq!(commit_errors(&resp), vec![0]);
    let now = coordinator::wall_ms();
    c.expire_offsets(now + 1_000).await.unwrap();
    assert_eq!(fetch(&c, "solo", Some(&[("t", &[0])])).await[0].2, 5);
    c.expire_offsets(now + 3_600_001).await.unwrap();
    assert_eq!(fetch(&c, "solo", Some(&[("t", &[0])])).await[0].2, -1);
    assert!(c
        .list_groups(ListGroupsRequest::default(), 4)
        .await
        .groups
        .is_empty());
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn group_responses_encode_at_every_supported_version() {
    let c = coordinator().await;
    for v in 0..=9i16 {
        let group = format!("g{v}");
        let mut first = c
            .join_group(join_req(&group, "", None, b"m"), v, "c", "/h")
            .await;
        encodes(&first, v);
        if first.error_code == E::MemberIdRequired.code() {
            first = c
                .join_group(join_req(&group, &first.member_id, None, b"m"), v, "c", "/h")
                .await;
            encodes(&first, v);
        }
        assert_eq!(first.error_code, 0, "join v{v}");
        let id = first.member_id.to_string();
        let sv = v.min(5);
        let mut s = sync_req(&group, &id, 1, &[(&id, b"x")]);
        if sv == 5 {
            s.protocol_type = Some(sb("consumer"));
            s.protocol_name = Some(sb("range"));
        }
        let resp = c.sync_group(s, sv).await;
        assert_eq!(resp.error_code, 0, "sync v{sv}");
        encodes(&resp, sv);
        if v <= 4 {
            let mut h = HeartbeatRequest::default();
            h.group_id = GroupId(sb(&group));
            h.member_id = sb(&id);
            h.generation_id = 1;
            encodes(&c.heartbeat(h, v).await, v);
        }
        if (2..=9).contains(&v) {
            let resp = c
                .offset_commit(commit_req(&group, &id, 1, &[("t", 0, 1)]), v)
                .await;
            assert_eq!(commit_errors(&resp), vec![0], "commit v{v}");
            encodes(&resp, v);
        }
        if (1..=7).contains(&v) {
            let mut r = OffsetFetchRequest::default();
            r.group_id = GroupId(sb(&group));
            let mut t = OffsetFetchRequestTopic::default();
            t.name = TopicName(sb("t"));
            t.partition_indexes = vec![0, 1];
            r.topics = Some(vec![t]);
            encodes(&c.offset_fetch(r, v).await, v);
        }
        if v <= 6 {
            let mut d = DescribeGroupsRequest::default();
            d.groups = vec![GroupId(sb(&group))];
            encodes(&c.describe_groups(d, v).await, v);
        }
        if v <= 5 {
            encodes(&c.list_groups(ListGroupsRequest::default(), v).await, v);
            let mut l = LeaveGroupRequest::default();
            l.group_id = GroupId(sb(&group));
            if v >= 3 {
                let mut m = MemberIdentity::default();
                m.member_id = sb(&id);
                l.members = vec![m];
            } else {
                l.member_id = sb(&id);
            }
            encodes(&c.leave_group(l, v).await, v);
        }
        if v <= 2 {
            let mut d = DeleteGroupsRequest::default();
            d.groups_names = vec![GroupId(sb(&group))];
            encodes(&c.delete_groups(d, v).await, v);
        }
    }
    c.shutdown().await;
}

#[tokio::test]
async fn group_offsets_and_generation_survive_reopen_and_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(dir.path(), config(Duration::ZERO), Arc::new(Topics))
        .await
        .unwrap();
    let j = c
        .join_group(join_req("g", "", None, b"m"), 3, "c", "/h")
        .await;
    assert_eq!(j.generation_id, 1);
    let id = j.member_id.to_string();
    assert_eq!(
        c.sync_group(sync_req("g", &id, 1, &[]), 3).await.error_code,
        0
    );
    let resp = c
        .offset_commit(commit_req("g", &id, 1, &[("t", 0, 10), ("t", 1, 11)]), 8)
        .await;
    assert_eq!(commit_errors(&resp), vec![0, 0]);
    let resp = c
        .offset_commit(commit_req("g", &id, 1, &[("t", 0, 20)]), 8)
        .await;
    assert_eq!(commit_errors(&resp), vec![0]);
    c.shutdown().await;
    drop(c);

    let c = GroupCoordinator::open(dir.path(), config(Duration::ZERO), Arc::new(Topics))
        .await
        .unwrap();
    let got = fetch(&c, "g", None).await;
    assert_eq!(
        got,
        vec![
            ("t".into(), 0, 20, 7, "meta-20".into()),
            ("t".into(), 1, 11, 7, "meta-11".into())
        ]
    );
    assert_eq!(state_of(&c, "g").await, "Empty");
    // The old member is gone; the generation continues.
    assert_eq!(
        heartbeat(&c, "g", &id, 1, None).await,
        E::UnknownMemberId.code()
    );
    let j = c
        .join_group(join_req("g", "", None, b"m"), 3, "c", "/h")
        .await;
    assert_eq!(j.generation_id, 2);
    c.shutdown().await;
    drop(c);

    // Tear the last record (the generation-2 metadata): everything before it survives.
    let path = dir.path().join("groups.log");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let c = GroupCoordinator::open(dir.path(), config(Duration::ZERO), Arc::new(Topics))
        .await
        .unwrap();
    assert_eq!(fetch(&c, "g", None).await.len(), 2);
    let j = c
        .join_group(join_req("g", "", None, b"m"), 3, "c", "/h")
        .await;
    assert_eq!(j.generation_id, 2, "generation 2 record was torn, so 1 + 1");
    c.shutdown().await;
}

#[tokio::test]
async fn group_acknowledged_commits_are_on_disk_without_shutdown() {
    // No shutdown: what a `kill -9` leaves behind is what was fsynced before the acks.
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(dir.path(), config(Duration::ZERO), Arc::new(Topics))
        .await
        .unwrap();
    let commits: Vec<_> = (0..8)
        .map(|p| {
            let c = c.clone();
            tokio::spawn(async move {
                c.offset_commit(commit_req("solo", "", -1, &[("t", p, 100 + p as i64)]), 8)
                    .await
            })
        })
        .collect();
    for h in commits {
        assert_eq!(commit_errors(&h.await.unwrap()), vec![0]);
    }
    let after_crash = GroupCoordinator::open(dir.path(), config(Duration::ZERO), Arc::new(Topics))
        .await
        .unwrap();
    let got = fetch(&after_crash, "solo", None).await;
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|(_, p, o, _, _)| *o == 100 + *p as i64));
}

#[tokio::test(start_paused = true)]
async fn group_member_that_never_syncs_is_removed_after_rebalance_timeout() {
    let c = coordinator().await;
    let (a, gen) = stable_single(&c, "g").await;
    // b uses a long session so only the sync timeout (the rebalance timeout, 20 s) can remove it.
    let first = c
        .join_group(join_req("g", "", None, b"m"), 5, "c", "/h")
        .await;
    let mut jb = join_req("g", &first.member_id, None, b"m");
    jb.session_timeout_ms = 120_000;
    let hb = spawn_join(&c, jb, 5);
    let ja = c
        .join_group(join_req("g", &a, None, b"m"), 5, "c", "/h")
        .await;
    let b = hb.await.unwrap().member_id.to_string();
    assert_eq!(ja.generation_id, gen + 1);
    let s = c
        .sync_group(sync_req("g", &a, gen + 1, &[(&a, b"A"), (&b, b"B")]), 3)
        .await;
    assert_eq!(s.error_code, 0);
    // b never sends SyncGroup.
    let start = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        if heartbeat(&c, "g", &a, gen + 1, None).await == E::RebalanceInProgress.code() {
            break;
        }
    }
    assert!(
        start.elapsed() <= Duration::from_secs(24),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        heartbeat(&c, "g", &b, gen + 1, None).await,
        E::UnknownMemberId.code()
    );
    c.shutdown().await;
}
