//! FindCoordinator and the routing of every group API to the coordinator of its group.
//!
//! A standalone broker has one coordinator for all groups and answers everything itself.
//! In a cell a group's coordinator is the leader of its partition of the internal offsets
//! topic (`cell::groups`): FindCoordinator names that leader (COORDINATOR_NOT_AVAILABLE
//! while there is none, so clients retry); a single-group request goes to the local
//! coordinator of that partition or answers NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS
//! while it loads); multi-group requests are split by group and merged in request order;
//! ListGroups merges every local coordinator. The group APIs themselves are served by
//! [`crate::group`].
//!
//! Group ids are the tenant's: requests are rewritten to the coordinator's scoped ids on
//! the way in and back on the way out, and ListGroups shows only the tenant's groups
//! ([`crate::namespace`]).

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult, describe_groups_response::DescribedGroup,
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, ResponseKind, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;

use super::s;
use crate::authz::Caller;
use crate::broker::Broker;
use crate::connection::Listener;
use crate::group::GroupCoordinator;
use crate::namespace::{external_group, internal_group};
use cells::acl::op;

const KEY_GROUP: i8 = 0;

/// The coordinator serving `tenant`'s `group` on this broker, or the error to answer with.
fn route(broker: &Broker, tenant: &str, group: &str) -> Result<Arc<GroupCoordinator>, E> {
    match (&broker.groups, &broker.cell) {
        (Some(c), _) => Ok(c.clone()),
        (None, Some(cell)) => cell.groups.coordinator(&cell.image(), tenant, group),
        (None, None) => Err(E::CoordinatorNotAvailable),
    }
}

/// [`route`] for a caller who needs `operation` on the group: GROUP_AUTHORIZATION_FAILED
/// first when it lacks it.
fn route_as(
    broker: &Broker,
    caller: &Caller,
    operation: i32,
    group: &str,
) -> Result<Arc<GroupCoordinator>, E> {
    if !caller.on_group(operation, group) {
        return Err(E::GroupAuthorizationFailed);
    }
    route(broker, &caller.tenant, group)
}

/// The coordinator's id for the tenant's `group`.
fn inward(broker: &Broker, tenant: &str, group: &StrBytes) -> StrBytes {
    match broker.cell {
        Some(_) => s(&internal_group(true, tenant, group.as_str())),
        None => group.clone(),
    }
}

/// The client's id for the coordinator's `group` (always the tenant's: it came from a
/// request of this tenant).
fn outward(broker: &Broker, tenant: &str, group: StrBytes) -> StrBytes {
    match external_group(broker.cell.is_some(), tenant, group.as_str()) {
        Some(g) if g.len() != group.len() => s(g),
        _ => group,
    }
}

/// Where clients go for `key`: this broker when standalone, else its offsets leader.
fn locate(
    broker: &Arc<Broker>,
    tenant: &str,
    listener: Listener,
    key: &str,
) -> Result<(i32, String, i32), E> {
    match &broker.cell {
        None => Ok((
            broker.config.node_id,
            broker.config.advertised_host.clone(),
            broker.config.advertised_port as i32,
        )),
        Some(cell) => crate::cell::groups::locate(cell, tenant, key, listener)
            .map(|(id, host, port)| (id, host, port as i32)),
    }
}

pub fn find_coordinator(
    broker: &Arc<Broker>,
    caller: &Caller,
    listener: Listener,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let tenant = &caller.tenant;
    let answer = |key: &str| -> Result<(i32, String, i32), (E, StrBytes)> {
        if req.key_type != KEY_GROUP {
            return Err((
                E::CoordinatorNotAvailable,
                s("only consumer group coordinators exist on this broker (no transactions)"),
            ));
        }
        if !caller.on_group(op::DESCRIBE, key) {
            return Err((
                E::GroupAuthorizationFailed,
                s("not authorized to describe this group"),
            ));
        }
        locate(broker, tenant, listener, key)
            .map_err(|e| (e, s("the group's coordinator is not available yet; retry")))
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match answer(key.as_str()) {
                    Ok((node, host, port)) => c
                        .with_node_id(BrokerId(node))
                        .with_host(s(&host))
                        .with_port(port),
                    Err((e, m)) => c
                        .with_error_code(e.code())
                        .with_error_message(Some(m))
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match answer(req.key.as_str()) {
        Ok((node, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node))
            .with_host(s(&host))
            .with_port(port),
        Err((e, m)) => {
            let mut r = FindCoordinatorResponse::default()
                .with_error_code(e.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            if version >= 1 {
                r.error_message = Some(m);
            }
            r
        }
    }
}

pub async fn join_group(
    broker: &Broker,
    caller: &Caller,
    mut req: JoinGroupRequest,
    version: i16,
    client_id: &str,
    host: &str,
) -> ResponseKind {
    let tenant = &caller.tenant;
    match route_as(broker, caller, op::READ, req.group_id.as_str()) {
        Ok(c) => {
            req.group_id.0 = inward(broker, tenant, &req.group_id.0);
            c.join_group(req, version, client_id, host).await.into()
        }
        Err(e) => {
            let mut r = JoinGroupResponse::default()
                .with_error_code(e.code())
                .with_generation_id(-1)
                .with_member_id(req.member_id);
            if version < 7 {
                // Not nullable before v7.
                r.protocol_name = Some(s(""));
            }
            r.into()
        }
    }
}

pub async fn sync_group(
    broker: &Broker,
    caller: &Caller,
    mut req: SyncGroupRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    match route_as(broker, caller, op::READ, req.group_id.as_str()) {
        Ok(c) => {
            req.group_id.0 = inward(broker, tenant, &req.group_id.0);
            c.sync_group(req, version).await.into()
        }
        Err(e) => SyncGroupResponse::default()
            .with_error_code(e.code())
            .into(),
    }
}

pub async fn heartbeat(
    broker: &Broker,
    caller: &Caller,
    mut req: HeartbeatRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    match route_as(broker, caller, op::READ, req.group_id.as_str()) {
        Ok(c) => {
            req.group_id.0 = inward(broker, tenant, &req.group_id.0);
            c.heartbeat(req, version).await.into()
        }
        Err(e) => HeartbeatResponse::default()
            .with_error_code(e.code())
            .into(),
    }
}

pub async fn leave_group(
    broker: &Broker,
    caller: &Caller,
    mut req: LeaveGroupRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    match route_as(broker, caller, op::READ, req.group_id.as_str()) {
        Ok(c) => {
            req.group_id.0 = inward(broker, tenant, &req.group_id.0);
            c.leave_group(req, version).await.into()
        }
        Err(e) => LeaveGroupResponse::default()
            .with_error_code(e.code())
            .into(),
    }
}

pub async fn offset_commit(
    broker: &Broker,
    caller: &Caller,
    mut req: OffsetCommitRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    match route_as(broker, caller, op::READ, req.group_id.as_str()) {
        Ok(c) => {
            req.group_id.0 = inward(broker, tenant, &req.group_id.0);
            // Commits for topics the caller may not read are refused one by one.
            let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topics)
                .into_iter()
                .partition(|t| caller.on_topic(op::READ, t.name.as_str()));
            req.topics = allowed;
            let mut resp = c.offset_commit(req, version).await;
            resp.topics.extend(denied.into_iter().map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(E::TopicAuthorizationFailed.code())
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            }));
            resp.into()
        }
        Err(e) => {
            let topics = req
                .topics
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(e.code())
                        })
                        .collect();
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            OffsetCommitResponse::default().with_topics(topics).into()
        }
    }
}

pub async fn offset_fetch(
    broker: &Broker,
    caller: &Caller,
    mut req: OffsetFetchRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    if version < 8 {
        return match route_as(broker, caller, op::READ, req.group_id.as_str()) {
            Ok(c) => {
                req.group_id.0 = inward(broker, tenant, &req.group_id.0);
                c.offset_fetch(req, version).await.into()
            }
            Err(e) => {
                // v0-1 have no top-level error code: every partition carries it.
                let topics = req
                    .topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| {
                        let partitions = t
                            .partition_indexes
                            .iter()
                            .map(|p| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(-1)
                                    .with_error_code(e.code())
                            })
                            .collect();
                        OffsetFetchResponseTopic::default()
                            .with_name(t.name)
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponse::default()
                    .with_topics(topics)
                    .with_error_code(e.code())
                    .into()
            }
        };
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in &req.groups {
        let answer = match route_as(broker, caller, op::READ, g.group_id.as_str()) {
            Ok(c) => {
                let mut g = g.clone();
                g.group_id.0 = inward(broker, tenant, &g.group_id.0);
                let one = req.clone().with_groups(vec![g]);
                c.offset_fetch(one, version)
                    .await
                    .groups
                    .into_iter()
                    .next()
                    .map(|mut r| {
                        r.group_id.0 = outward(broker, tenant, r.group_id.0);
                        r
                    })
            }
            Err(e) => Some(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(e.code()),
            ),
        };
        groups.extend(answer);
    }
    OffsetFetchResponse::default().with_groups(groups).into()
}

pub async fn describe_groups(
    broker: &Broker,
    caller: &Caller,
    req: DescribeGroupsRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in &req.groups {
        let described = match route_as(broker, caller, op::DESCRIBE, g.as_str()) {
            Ok(c) => {
                let one = req
                    .clone()
                    .with_groups(vec![inward(broker, tenant, g).into()]);
                c.describe_groups(one, version)
                    .await
                    .groups
                    .into_iter()
                    .next()
                    .map(|mut r| {
                        r.group_id.0 = outward(broker, tenant, r.group_id.0);
                        r
                    })
            }
            Err(e) => Some(
                DescribedGroup::default()
                    .with_group_id(g.clone())
                    .with_error_code(e.code()),
            ),
        };
        groups.extend(described);
    }
    DescribeGroupsResponse::default().with_groups(groups).into()
}

pub async fn delete_groups(
    broker: &Broker,
    caller: &Caller,
    req: DeleteGroupsRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in &req.groups_names {
        let result = match route_as(broker, caller, op::DELETE, g.as_str()) {
            Ok(c) => {
                let one = req
                    .clone()
                    .with_groups_names(vec![inward(broker, tenant, g).into()]);
                c.delete_groups(one, version)
                    .await
                    .results
                    .into_iter()
                    .next()
                    .map(|mut r| {
                        r.group_id.0 = outward(broker, tenant, r.group_id.0);
                        r
                    })
            }
            Err(e) => Some(
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(e.code()),
            ),
        };
        results.extend(result);
    }
    DeleteGroupsResponse::default().with_results(results).into()
}

pub async fn list_groups(
    broker: &Broker,
    caller: &Caller,
    req: ListGroupsRequest,
    version: i16,
) -> ResponseKind {
    let tenant = &caller.tenant;
    let in_cell = broker.cell.is_some();
    let coordinators = match (&broker.groups, &broker.cell) {
        (Some(c), _) => vec![c.clone()],
        (None, Some(cell)) => cell.groups.loaded(),
        (None, None) => vec![],
    };
    let mut merged = ListGroupsResponse::default();
    for c in coordinators {
        let r = c.list_groups(req.clone(), version).await;
        if r.error_code != 0 {
            merged.error_code = r.error_code;
        }
        merged
            .groups
            .extend(r.groups.into_iter().filter_map(|mut g| {
                let external = external_group(in_cell, tenant, g.group_id.as_str())?;
                if !caller.on_group(op::DESCRIBE, external) {
                    return None;
                }
                if external.len() != g.group_id.len() {
                    g.group_id.0 = s(external);
                }
                Some(g)
            }));
    }
    merged.into()
}
