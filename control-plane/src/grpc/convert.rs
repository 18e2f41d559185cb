//! Store records into `tributary.controlplane.v1` messages: the same fields the REST
//! views show (what to show when comes from [`crate::service`]), without REST's links.

use crate::service::api_keys::phase;
use crate::service::clusters::{bootstrap_endpoint, shown_cku};
use crate::service::{
    api_key_crn, cluster_crn, environment_crn, principal_crn, principal_kind, AppState, Page,
};
use crate::store::{ApiKey, Cluster, Environment, Phase, ServiceAccount};
use crate::util::rfc3339_millis;
use proto::controlplane::v1 as pb;

fn meta(resource_name: String, created_at: i64, updated_at: i64) -> Option<pb::ObjectMeta> {
    Some(pb::ObjectMeta {
        resource_name,
        created_at: rfc3339_millis(created_at),
        updated_at: rfc3339_millis(updated_at),
    })
}

/// The items of a page, converted, and its next token ("" on the last page).
pub(crate) fn page<I, T>(page: Page<I>, f: impl Fn(I) -> T) -> (Vec<T>, String) {
    (
        page.items.into_iter().map(f).collect(),
        page.next_token.unwrap_or_default(),
    )
}

pub(crate) fn environment(env: Environment) -> pb::Environment {
    pb::Environment {
        api_version: "org/v2".into(),
        kind: "Environment".into(),
        metadata: meta(
            environment_crn(&env.organization_id, &env.id),
            env.created_at,
            env.updated_at,
        ),
        id: env.id,
        display_name: env.display_name,
    }
}

pub(crate) fn service_account(sa: ServiceAccount) -> pb::ServiceAccount {
    pb::ServiceAccount {
        api_version: "iam/v2".into(),
        kind: "ServiceAccount".into(),
        metadata: meta(
            principal_crn(&sa.organization_id, &sa.id),
            sa.created_at,
            sa.updated_at,
        ),
        id: sa.id,
        display_name: sa.display_name,
        description: sa.description,
    }
}

pub(crate) fn api_key(key: ApiKey, secret: Option<String>) -> pb::ApiKey {
    let org = &key.organization_id;
    let owner = pb::ObjectReference {
        id: key.owner_id.clone(),
        resource_name: principal_crn(org, &key.owner_id),
        kind: principal_kind(&key.owner_id).into(),
    };
    let resource = (!key.resource_id.is_empty()).then(|| pb::ObjectReference {
        id: key.resource_id.clone(),
        resource_name: cluster_crn(org, None, &key.resource_id),
        kind: "Cluster".into(),
    });
    pb::ApiKey {
        api_version: "iam/v2".into(),
        kind: "ApiKey".into(),
        metadata: meta(api_key_crn(org, &key.id), key.created_at, key.updated_at),
        status: Some(pb::ApiKeyStatus {
            phase: phase(&key).into(),
        }),
        spec: Some(pb::ApiKeySpec {
            secret,
            display_name: key.display_name,
            description: key.description,
            owner: Some(owner),
            resource,
        }),
        id: key.id,
    }
}

/// A cluster; `http_endpoint` is the configured public URL (`--public-url`) once
/// PROVISIONED, since a gRPC call carries no REST host to derive it from.
pub(crate) fn cluster(state: &AppState, c: Cluster) -> pb::Cluster {
    let cku = shown_cku(&c);
    let kafka_bootstrap_endpoint = bootstrap_endpoint(&c);
    let http_endpoint = (c.phase == Phase::Provisioned)
        .then(|| state.config.public_url.clone())
        .flatten()
        .map(|u| u.trim_end_matches('/').to_string());
    pb::Cluster {
        api_version: "cmk/v2".into(),
        kind: "Cluster".into(),
        metadata: meta(
            cluster_crn(&c.organization_id, Some(&c.environment_id), &c.id),
            c.created_at,
            c.updated_at,
        ),
        spec: Some(pb::ClusterSpec {
            display_name: c.display_name,
            availability: c.availability,
            cloud: c.cloud,
            region: c.region,
            config: Some(pb::ClusterConfig {
                kind: c.kind.as_str().into(),
                cku,
            }),
            kafka_bootstrap_endpoint,
            http_endpoint,
            environment: Some(pb::ObjectReference {
                resource_name: environment_crn(&c.organization_id, &c.environment_id),
                kind: "Environment".into(),
                id: c.environment_id,
            }),
        }),
        status: Some(pb::ClusterStatus {
            phase: c.phase.as_str().into(),
            cku,
            reason: (!c.reason.is_empty()).then_some(c.reason),
        }),
        id: c.id,
    }
}
