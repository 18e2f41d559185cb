//! Kafka REST v3 ACLs of a cluster, in Confluent's v3 shapes: `GET .../acls` (search by
//! query parameters, `KafkaAclList`), `POST .../acls` (create one, 201 without a body) and
//! `DELETE .../acls` (delete by filter; answers the deleted `KafkaAcl`s as `{"data": [...]}`).
//! Authenticated with an API key of the cluster ([`ClusterKeyCaller`]); the rules are in
//! [`crate::service::kafka_acls`].

use super::extract::{ApiJson, ApiQuery};
use super::kafka::{cluster_url, ClusterKeyCaller};
use super::AppState;
use crate::error::{ErrorEnvelope, Result};
use crate::service::kafka_acls::{
    self, Acl, AclOperation, AclPatternType, AclPermission, AclQuery, AclResourceType,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `metadata` of an ACL: its URL is the search that finds exactly it.
#[derive(Serialize, ToSchema)]
pub struct KafkaAclMetadata {
    #[serde(rename = "self")]
    self_url: String,
}

/// One ACL (`KafkaAcl`).
#[derive(Serialize, ToSchema)]
pub struct KafkaAcl {
    #[schema(example = "KafkaAcl")]
    kind: &'static str,
    metadata: KafkaAclMetadata,
    cluster_id: String,
    resource_type: AclResourceType,
    #[schema(example = "orders")]
    resource_name: String,
    pattern_type: AclPatternType,
    #[schema(example = "User:sa-abc123")]
    principal: String,
    #[schema(example = "*")]
    host: String,
    operation: AclOperation,
    permission: AclPermission,
}

/// The ACLs matching a search (`KafkaAclList`).
#[derive(Serialize, ToSchema)]
pub struct KafkaAclList {
    #[schema(example = "KafkaAclList")]
    kind: &'static str,
    /// `self` is the search's URL.
    metadata: KafkaAclMetadata,
    data: Vec<KafkaAcl>,
}

/// The ACLs a delete removed.
#[derive(Serialize, ToSchema)]
pub struct DeletedKafkaAcls {
    data: Vec<KafkaAcl>,
}

/// A new ACL.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKafkaAcl {
    /// TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID.
    resource_type: AclResourceType,
    /// A topic, group or transactional id (or its prefix); `kafka-cluster` for CLUSTER.
    #[schema(example = "orders", min_length = 1, max_length = 255)]
    resource_name: String,
    /// LITERAL or PREFIXED.
    pattern_type: AclPatternType,
    /// `User:sa-...` (a service account), `User:u-...` (a user) or `User:*`.
    #[schema(example = "User:sa-abc123", min_length = 1, max_length = 255)]
    principal: String,
    /// `*` or an IP address.
    #[schema(example = "*", min_length = 1, max_length = 255)]
    host: String,
    operation: AclOperation,
    /// ALLOW or DENY.
    permission: AclPermission,
}

/// Search filters; an absent one matches any value.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchAclParams {
    #[param(inline)]
    resource_type: Option<AclResourceType>,
    /// Matched per `pattern_type` (ANY: every binding that names it; MATCH: every
    /// binding that applies to it).
    #[param(min_length = 1, max_length = 255)]
    resource_name: Option<String>,
    #[param(inline)]
    pattern_type: Option<AclPatternType>,
    #[param(min_length = 1, max_length = 255)]
    principal: Option<String>,
    #[param(min_length = 1, max_length = 255)]
    host: Option<String>,
    #[param(inline)]
    operation: Option<AclOperation>,
    #[param(inline)]
    permission: Option<AclPermission>,
}

/// Delete filters: resource type, pattern type, operation and permission are required
/// (ANY matches every value); absent names match any.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteAclParams {
    #[param(required = true, inline)]
    resource_type: Option<AclResourceType>,
    #[param(min_length = 1, max_length = 255)]
    resource_name: Option<String>,
    #[param(required = true, inline)]
    pattern_type: Option<AclPatternType>,
    #[param(min_length = 1, max_length = 255)]
    principal: Option<String>,
    #[param(min_length = 1, max_length = 255)]
    host: Option<String>,
    #[param(required = true, inline)]
    operation: Option<AclOperation>,
    #[param(required = true, inline)]
    permission: Option<AclPermission>,
}

impl From<SearchAclParams> for AclQuery {
    fn from(p: SearchAclParams) -> AclQuery {
        AclQuery {
            resource_type: p.resource_type,
            resource_name: p.resource_name,
            pattern_type: p.pattern_type,
            principal: p.principal,
            host: p.host,
            operation: p.operation,
            permission: p.permission,
        }
    }
}

impl From<DeleteAclParams> for AclQuery {
    fn from(p: DeleteAclParams) -> AclQuery {
        AclQuery {
            resource_type: p.resource_type,
            resource_name: p.resource_name,
            pattern_type: p.pattern_type,
            principal: p.principal,
            host: p.host,
            operation: p.operation,
            permission: p.permission,
        }
    }
}

fn acls_url(base: &str, cluster: &str) -> String {
    format!("{}/acls", cluster_url(base, cluster))
}

/// `{base}/.../acls?field=value&...` for the fields `query` sets, in Kafka REST's order.
fn search_url(base: &str, cluster: &str, query: &AclQuery) -> String {
    let pairs: Vec<(&str, String)> = [
        ("resource_type", query.resource_type.map(|v| v.name())),
        ("resource_name", query.resource_name.clone()),
        ("pattern_type", query.pattern_type.map(|v| v.name())),
        ("principal", query.principal.clone()),
        ("host", query.host.clone()),
        ("operation", query.operation.map(|v| v.name())),
        ("permission", query.permission.map(|v| v.name())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let url = acls_url(base, cluster);
    if pairs.is_empty() {
        return url;
    }
    let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{url}?{encoded}")
}

fn acl_view(base: &str, cluster: &str, a: Acl) -> KafkaAcl {
    let exact = AclQuery {
        resource_type: Some(a.resource_type),
        resource_name: Some(a.resource_name.clone()),
        pattern_type: Some(a.pattern_type),
        principal: Some(a.principal.clone()),
        host: Some(a.host.clone()),
        operation: Some(a.operation),
        permission: Some(a.permission),
    };
    KafkaAcl {
        kind: "KafkaAcl",
        metadata: KafkaAclMetadata {
            self_url: search_url(base, cluster, &exact),
        },
        cluster_id: cluster.to_string(),
        resource_type: a.resource_type,
        resource_name: a.resource_name,
        pattern_type: a.pattern_type,
        principal: a.principal,
        host: a.host,
        operation: a.operation,
        permission: a.permission,
    }
}

#[utoipa::path(
    get,
    path = "/kafka/v3/clusters/{cluster_id}/acls",
    operation_id = "searchKafkaAcls",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        SearchAclParams,
    ),
    responses(
        (status = 200, description = "The cluster's ACLs matching the filters", body = KafkaAclList),
        (status = 400, description = "Invalid filter", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The key may not describe the cluster's ACLs (a service account without DESCRIBE on the cluster)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn search(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SearchAclParams>,
) -> Result<Json<KafkaAclList>> {
    let query = AclQuery::from(params);
    let c = &caller.cluster;
    let acls = kafka_acls::search(&state, c, &caller.key, &query).await?;
    let base = state.base_url(&headers);
    Ok(Json(KafkaAclList {
        kind: "KafkaAclList",
        metadata: KafkaAclMetadata {
            self_url: search_url(&base, &c.id, &query),
        },
        data: acls
            .into_iter()
            .map(|a| acl_view(&base, &c.id, a))
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/kafka/v3/clusters/{cluster_id}/acls",
    operation_id = "createKafkaAcl",
    tag = "kafka",
    params(("cluster_id" = String, Path, description = "The cluster (`lkc-...`)")),
    request_body = CreateKafkaAcl,
    responses(
        (status = 201, description = "Created (creating an existing ACL changes nothing)"),
        (status = 400, description = "Not a valid ACL binding", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The key may not change the cluster's ACLs (a service account without ALTER on the cluster)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn create(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateKafkaAcl>,
) -> Result<StatusCode> {
    let acl = Acl {
        resource_type: req.resource_type,
        resource_name: req.resource_name,
        pattern_type: req.pattern_type,
        principal: req.principal,
        host: req.host,
        operation: req.operation,
        permission: req.permission,
    };
    kafka_acls::create(&state, &caller.cluster, &caller.key, &acl).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(
    delete,
    path = "/kafka/v3/clusters/{cluster_id}/acls",
    operation_id = "deleteKafkaAcls",
    tag = "kafka",
    params(
        ("cluster_id" = String, Path, description = "The cluster (`lkc-...`)"),
        DeleteAclParams,
    ),
    responses(
        (status = 200, description = "The ACLs deleted (none when nothing matched)", body = DeletedKafkaAcls),
        (status = 400, description = "Invalid or missing filter", body = ErrorEnvelope),
        (status = 401, description = "Not an API key of this cluster", body = ErrorEnvelope),
        (status = 403, description = "The key may not change the cluster's ACLs (a service account without ALTER on the cluster)", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the key's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster is not PROVISIONED", body = ErrorEnvelope),
        (status = 429, description = "Too many calls to clusters' brokers in flight", body = ErrorEnvelope),
        (status = 503, description = "The cluster's brokers are unreachable or not ready", body = ErrorEnvelope),
    ),
    security(("cluster_api_key" = [])),
)]
pub async fn delete(
    caller: ClusterKeyCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<DeleteAclParams>,
) -> Result<Json<DeletedKafkaAcls>> {
    let c = &caller.cluster;
    let deleted = kafka_acls::delete(&state, c, &caller.key, &AclQuery::from(params)).await?;
    let base = state.base_url(&headers);
    Ok(Json(DeletedKafkaAcls {
        data: deleted
            .into_iter()
            .map(|a| acl_view(&base, &c.id, a))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acl_links_to_the_search_for_exactly_it() {
        let a = Acl {
            resource_type: AclResourceType::Topic,
            resource_name: "orders v1".into(),
            pattern_type: AclPatternType::Prefixed,
            principal: "User:sa-1".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let v = acl_view("http://h", "lkc-1", a);
        assert_eq!(
            v.metadata.self_url,
            "http://h/kafka/v3/clusters/lkc-1/acls?resource_type=TOPIC&resource_name=orders+v1\
             &pattern_type=PREFIXED&principal=User%3Asa-1&host=*&operation=READ&permission=ALLOW"
        );
        assert_eq!(
            search_url("http://h", "lkc-1", &AclQuery::default()),
            "http://h/kafka/v3/clusters/lkc-1/acls"
        );
    }
}
