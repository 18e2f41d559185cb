//! DescribeAcls, CreateAcls, DeleteAcls: a tenant's ACL bindings, kept in the cell's
//! metadata (scoped to its logical cluster) and changed through the controller.
//!
//! Describing needs DESCRIBE on the cluster, changing needs ALTER; a standalone broker has
//! no authorizer and answers SECURITY_DISABLED.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use proto::cell::v1::AclRecord;

use super::s;
use crate::authz::Caller;
use crate::broker::Broker;
use cells::acl::{self, op};

fn text(v: &Option<StrBytes>) -> String {
    v.as_ref().map(|s| s.to_string()).unwrap_or_default()
}

fn denied_or_disabled(
    broker: &Broker,
    caller: &Caller,
    operation: i32,
) -> Option<(E, &'static str)> {
    if broker.cell.is_none() {
        return Some((
            E::SecurityDisabled,
            "this broker has no authorizer (standalone)",
        ));
    }
    if !caller.on_cluster(operation) {
        return Some((
            E::ClusterAuthorizationFailed,
            "not authorized to manage this cluster's ACLs",
        ));
    }
    None
}

pub fn describe(
    broker: &Broker,
    caller: &Caller,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if let Some((e, m)) = denied_or_disabled(broker, caller, op::DESCRIBE) {
        return DescribeAclsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(s(m)));
    }
    let filter = AclRecord {
        cluster_id: caller.tenant.to_string(),
        resource_type: req.resource_type_filter as i32,
        resource_name: text(&req.resource_name_filter),
        pattern_type: req.pattern_type_filter as i32,
        principal: text(&req.principal_filter),
        host: text(&req.host_filter),
        operation: req.operation as i32,
        permission: req.permission_type as i32,
    };
    let image = broker.cell.as_ref().map(|c| c.image()).unwrap_or_default();
    // Group the matching bindings by resource, in a stable order.
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut matching: Vec<&AclRecord> = image
        .acls
        .iter()
        .filter(|a| a.cluster_id == *caller.tenant && acl::matches_filter(&filter, a))
        .collect();
    matching.sort_by(|a, b| {
        (a.resource_type, &a.resource_name, a.pattern_type).cmp(&(
            b.resource_type,
            &b.resource_name,
            b.pattern_type,
        ))
    });
    for a in matching {
        let description = AclDescription::default()
            .with_principal(s(&a.principal))
            .with_host(s(&a.host))
            .with_operation(a.operation as i8)
            .with_permission_type(a.permission as i8);
        match resources.last_mut() {
            Some(r)
                if r.resource_type == a.resource_type as i8
                    && r.resource_name.as_str() == a.resource_name
                    && r.pattern_type == a.pattern_type as i8 =>
            {
                r.acls.push(description)
            }
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(a.resource_type as i8)
                    .with_resource_name(s(&a.resource_name))
                    .with_pattern_type(a.pattern_type as i8)
                    .with_acls(vec![description]),
            ),
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn create(
    broker: &Broker,
    caller: &Caller,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let fail_all = |e: E, m: &str| {
        let results = req
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(e.code())
                    .with_error_message(Some(s(m)))
            })
            .collect();
        CreateAclsResponse::default().with_results(results)
    };
    if let Some((e, m)) = denied_or_disabled(broker, caller, op::ALTER) {
        return fail_all(e, m);
    }
    let Some(cell) = &broker.cell else {
        return fail_all(E::SecurityDisabled, "standalone");
    };
    // Validate each; send the valid ones in one change.
    let mut results = Vec::with_capacity(req.creations.len());
    let mut valid = Vec::new();
    for c in &req.creations {
        let record = AclRecord {
            cluster_id: caller.tenant.to_string(),
            resource_type: c.resource_type as i32,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type as i32,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation as i32,
            permission: c.permission_type as i32,
        };
        match acl::validate_binding(&record) {
            Ok(()) => {
                valid.push(record);
                results.push(AclCreationResult::default());
            }
            Err(why) => results.push(
                AclCreationResult::default()
                    .with_error_code(E::InvalidRequest.code())
                    .with_error_message(Some(s(&why))),
            ),
        }
    }
    if !valid.is_empty() {
        let outcome = cell
            .controller
            .create_acls(proto::cell::v1::CreateAclsRequest {
                cluster_id: caller.tenant.to_string(),
                acls: valid,
            })
            .await;
        let failure = match outcome {
            Ok(r) if r.error_code == 0 => cell
                .wait_applied(r.offset)
                .await
                .err()
                .map(|e| (e.kafka_error(), e.to_string())),
            Ok(r) => Some((
                E::try_from_code(r.error_code as i16).unwrap_or(E::UnknownServerError),
                r.error_message,
            )),
            Err(e) => Some((E::NotController, e.to_string())),
        };
        if let Some((e, m)) = failure {
            for r in results.iter_mut().filter(|r| r.error_code == 0) {
                r.error_code = e.code();
                r.error_message = Some(s(&m));
            }
        }
    }
    CreateAclsResponse::default().with_results(results)
}

pub async fn delete(
    broker: &Broker,
    caller: &Caller,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let fail_all = |e: E, m: &str| {
        let results = req
            .filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(e.code())
                    .with_error_message(Some(s(m)))
            })
            .collect();
        DeleteAclsResponse::default().with_filter_results(results)
    };
    if let Some((e, m)) = denied_or_disabled(broker, caller, op::ALTER) {
        return fail_all(e, m);
    }
    let Some(cell) = &broker.cell else {
        return fail_all(E::SecurityDisabled, "standalone");
    };
    let filters: Vec<AclRecord> = req
        .filters
        .iter()
        .map(|f| AclRecord {
            cluster_id: caller.tenant.to_string(),
            resource_type: f.resource_type_filter as i32,
            resource_name: text(&f.resource_name_filter),
            pattern_type: f.pattern_type_filter as i32,
            principal: text(&f.principal_filter),
            host: text(&f.host_filter),
            operation: f.operation as i32,
            permission: f.permission_type as i32,
        })
        .collect();
    let resp = match cell
        .controller
        .delete_acls(proto::cell::v1::DeleteAclsRequest {
            cluster_id: caller.tenant.to_string(),
            filters,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return fail_all(E::NotController, &e.to_string()),
    };
    let result = resp.result.unwrap_or_default();
    if result.error_code != 0 {
        let e = E::try_from_code(result.error_code as i16).unwrap_or(E::UnknownServerError);
        return fail_all(e, &result.error_message);
    }
    if let Err(e) = cell.wait_applied(result.offset).await {
        return fail_all(e.kafka_error(), &e.to_string());
    }
    let results = resp
        .deleted
        .into_iter()
        .map(|list| {
            let matching = list
                .acls
                .into_iter()
                .map(|a| {
                    DeleteAclsMatchingAcl::default()
                        .with_resource_type(a.resource_type as i8)
                        .with_resource_name(s(&a.resource_name))
                        .with_pattern_type(a.pattern_type as i8)
                        .with_principal(s(&a.principal))
                        .with_host(s(&a.host))
                        .with_operation(a.operation as i8)
                        .with_permission_type(a.permission as i8)
                })
                .collect();
            DeleteAclsFilterResult::default().with_matching_acls(matching)
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
