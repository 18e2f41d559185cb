//! `/cmk/v2/clusters`: create, list (`?environment=` required), get, update (name; kind
//! and CKU changes), delete.
//!
//! A new cluster is PROVISIONING; the reconciler (`crate::reconciler`) places it in a cell
//! and makes it PROVISIONED (with `spec.kafka_bootstrap_endpoint` and
//! `spec.http_endpoint`) or FAILED (with `status.reason`). A delete revokes the cluster's
//! keys and hides it at once; the reconciler removes it from its cell. Every query is
//! scoped to the caller's organisation; another organisation's cluster answers 404.

use super::auth::{validate_name, Caller};
use super::envelope::{decode_token, list_page, page_size, List, ObjectMeta, ObjectRef, CRN_ROOT};
use super::environments::{self, environment_crn};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::plans::ClusterKind;
use crate::store::{Cluster, ClusterUpdate, NewCluster, Phase};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

const API_VERSION: &str = "cmk/v2";
/// The most CKUs a Dedicated cluster may have.
pub const MAX_CKU: u32 = 100;
const AVAILABILITIES: [&str; 2] = ["SINGLE_ZONE", "MULTI_ZONE"];

/// A Kafka cluster (`cmk/v2` `Cluster`).
#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    #[schema(example = "cmk/v2")]
    api_version: &'static str,
    #[schema(example = "Cluster")]
    kind: &'static str,
    /// `lkc-` and six characters.
    id: String,
    metadata: ObjectMeta,
    spec: ClusterSpecView,
    status: ClusterStatus,
}

#[derive(Serialize, ToSchema)]
struct ClusterSpecView {
    display_name: String,
    availability: String,
    cloud: String,
    region: String,
    config: ConfigView,
    /// Once PROVISIONED, e.g. `SASL_PLAINTEXT://127.0.0.1:9092`.
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_bootstrap_endpoint: Option<String>,
    /// Once PROVISIONED.
    #[serde(skip_serializing_if = "Option::is_none")]
    http_endpoint: Option<String>,
    environment: ObjectRef,
}

#[derive(Serialize, ToSchema)]
struct ConfigView {
    #[schema(example = "Dedicated")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cku: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct ClusterStatus {
    /// PROVISIONING, PROVISIONED or FAILED.
    #[schema(example = "PROVISIONING")]
    phase: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cku: Option<u32>,
    /// Why it FAILED, or why provisioning is still waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `spec.config`: the kind, and the CKUs of a Dedicated cluster. Its OpenAPI schema is
/// written by hand (below) so that it states the rule [`validate_config`] applies: CKUs
/// for Dedicated only, and always there.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    kind: String,
    cku: Option<u32>,
}

impl utoipa::PartialSchema for ConfigSpec {
    fn schema() -> RefOr<Schema> {
        let kind = |kinds: Vec<&'static str>| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(kinds))
        };
        let closed = || AdditionalProperties::<Schema>::FreeForm(false);
        let dedicated = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A Dedicated cluster: its CKUs are required (at least 2 when MULTI_ZONE)",
            ))
            .property("kind", kind(vec![ClusterKind::Dedicated.as_str()]))
            .required("kind")
            .property(
                "cku",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_CKU)),
            )
            .required("cku")
            .additional_properties(Some(closed()));
        let shared = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Any other kind: no CKUs (Basic is SINGLE_ZONE only)"))
            .property(
                "kind",
                kind(
                    ClusterKind::ALL
                        .iter()
                        .filter(|k| **k != ClusterKind::Dedicated)
                        .map(|k| k.as_str())
                        .collect(),
                ),
            )
            .required("kind")
            .property("cku", ObjectBuilder::new().schema_type(Type::Null))
            .additional_properties(Some(closed()));
        OneOfBuilder::new()
            .description(Some(
                "The cluster kind, and the CKUs of a Dedicated cluster",
            ))
            .item(dedicated)
            .item(shared)
            .into()
    }
}

impl utoipa::ToSchema for ConfigSpec {}

/// A reference to an environment by id.
#[derive(Deserialize, ToSchema)]
#[schema(as = EnvironmentIdRef)]
#[serde(deny_unknown_fields)]
pub struct IdRef {
    /// `env-...`
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ClusterCreateSpec)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    #[schema(min_length = 1, max_length = 255, example = "orders")]
    display_name: String,
    /// SINGLE_ZONE or MULTI_ZONE (Basic is SINGLE_ZONE only).
    #[schema(example = "SINGLE_ZONE", pattern = "^(SINGLE_ZONE|MULTI_ZONE)$")]
    availability: String,
    /// 1 to 64 letters, digits, '-' or '_'.
    #[schema(example = "AWS", pattern = "^[A-Za-z0-9_-]{1,64}$")]
    cloud: String,
    /// 1 to 64 letters, digits, '-' or '_'.
    #[schema(example = "us-east-1", pattern = "^[A-Za-z0-9_-]{1,64}$")]
    region: String,
    config: ConfigSpec,
    environment: IdRef,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    spec: CreateSpec,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ClusterUpdateSpec)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    /// Absent: unchanged.
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
    /// A new kind (Basic to Standard only) or CKU count; absent: unchanged.
    config: Option<ConfigSpec>,
    /// Must be the cluster's own environment if given (clusters do not move).
    environment: Option<IdRef>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCluster {
    spec: UpdateSpec,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The environment to list (`env-...`); required.
    #[param(required = true)]
    environment: Option<String>,
    /// Items per page, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i64>,
    /// Where the page starts: take it from the `metadata.next` URL of the previous page.
    #[param(pattern = "^[0-9]{1,19}\\.lkc-[A-Za-z0-9-]{1,60}$")]
    page_token: Option<String>,
}

/// The CRN of a cluster.
pub(crate) fn cluster_crn(org_id: &str, env_id: Option<&str>, id: &str) -> String {
    match env_id {
        Some(env) => format!(
            "{}/cloud-cluster={id}/kafka={id}",
            environment_crn(org_id, env)
        ),
        None => format!("{CRN_ROOT}/organization={org_id}/cloud-cluster={id}/kafka={id}"),
    }
}

fn view(base: &str, c: Cluster) -> ClusterView {
    let provisioned = c.phase == Phase::Provisioned;
    let cku = (c.kind == ClusterKind::Dedicated).then_some(c.cku);
    ClusterView {
        api_version: API_VERSION,
        kind: "Cluster",
        metadata: ObjectMeta::new(
            format!("{base}/cmk/v2/clusters/{}", c.id),
            cluster_crn(&c.organization_id, Some(&c.environment_id), &c.id),
            c.created_at,
            c.updated_at,
        ),
        spec: ClusterSpecView {
            display_name: c.display_name,
            availability: c.availability,
            cloud: c.cloud,
            region: c.region,
            config: ConfigView {
                kind: c.kind.as_str(),
                cku,
            },
            kafka_bootstrap_endpoint: provisioned
                .then(|| format!("SASL_PLAINTEXT://{}", c.bootstrap)),
            http_endpoint: provisioned.then(|| base.to_string()),
            environment: ObjectRef {
                related: Some(format!("{base}/org/v2/environments/{}", c.environment_id)),
                resource_name: environment_crn(&c.organization_id, &c.environment_id),
                api_version: None,
                kind: None,
                id: c.environment_id,
            },
        },
        status: ClusterStatus {
            phase: c.phase.as_str(),
            cku,
            reason: (!c.reason.is_empty()).then_some(c.reason),
        },
        id: c.id,
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "cluster {id} not found; list yours with GET /cmk/v2/clusters?environment=ENV_ID"
    ))
}

/// Checks `cloud` or `region`: 1 to 64 letters, digits, '-' or '_'.
fn validate_token(field: &str, value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::InvalidArgument(format!(
            "spec.{field} {value:?} is not valid; use 1 to 64 letters, digits, '-' or '_' \
             (e.g. cloud AWS, region us-east-1)"
        )))
    }
}

/// Checks kind and CKUs against availability: CKUs only (and always) for Dedicated, 1 to
/// [`MAX_CKU`], at least 2 when MULTI_ZONE; Basic is SINGLE_ZONE only. Returns the kind
/// and the CKU count to store (0 unless Dedicated).
fn validate_config(config: &ConfigSpec, availability: &str) -> Result<(ClusterKind, u32)> {
    let kind: ClusterKind = config.kind.parse()?;
    if kind == ClusterKind::Basic && availability == "MULTI_ZONE" {
        return Err(Error::InvalidArgument(
            "Basic clusters are SINGLE_ZONE only; use Standard or above for MULTI_ZONE".into(),
        ));
    }
    match (kind, config.cku) {
        (ClusterKind::Dedicated, None) => Err(Error::InvalidArgument(
            "a Dedicated cluster needs spec.config.cku (1 or more)".into(),
        )),
        (ClusterKind::Dedicated, Some(cku)) if !(1..=MAX_CKU).contains(&cku) => {
            Err(Error::InvalidArgument(format!(
                "spec.config.cku {cku} is out of range; use 1 to {MAX_CKU}"
            )))
        }
        (ClusterKind::Dedicated, Some(1)) if availability == "MULTI_ZONE" => Err(
            Error::InvalidArgument("a MULTI_ZONE Dedicated cluster needs at least 2 CKUs".into()),
        ),
        (ClusterKind::Dedicated, Some(cku)) => Ok((kind, cku)),
        (_, Some(_)) => Err(Error::InvalidArgument(format!(
            "spec.config.cku applies only to Dedicated clusters; remove it for {kind}"
        ))),
        (_, None) => Ok((kind, 0)),
    }
}

fn validate_availability(value: &str) -> Result<String> {
    if AVAILABILITIES.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(Error::InvalidArgument(format!(
            "spec.availability {value:?} is not valid; use SINGLE_ZONE or MULTI_ZONE"
        )))
    }
}

#[utoipa::path(
    post,
    path = "/cmk/v2/clusters",
    operation_id = "createCluster",
    tag = "clusters",
    request_body = CreateCluster,
    responses(
        (status = 201, description = "The new cluster, PROVISIONING", body = ClusterView),
        (status = 400, description = "Invalid spec", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "The environment is not in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateCluster>,
) -> Result<(StatusCode, Json<ClusterView>)> {
    let org = &caller.organization_id;
    let spec = req.spec;
    let display_name = validate_name("spec.display_name", &spec.display_name)?;
    let availability = validate_availability(&spec.availability)?;
    let cloud = validate_token("cloud", &spec.cloud)?;
    let region = validate_token("region", &spec.region)?;
    let (kind, cku) = validate_config(&spec.config, &availability)?;
    let env = state
        .store
        .get_environment(org, &spec.environment.id)
        .await?
        .ok_or_else(|| environments::not_found(&spec.environment.id))?;
    let plan_version = state
        .store
        .ensure_plan(kind, &state.config.plans.get(kind))
        .await?;
    let cluster = state
        .store
        .create_cluster(&NewCluster {
            organization_id: org,
            environment_id: &env.id,
            display_name: &display_name,
            availability: &availability,
            cloud: &cloud,
            region: &region,
            kind,
            cku,
            plan_version,
        })
        .await?;
    tracing::info!(organization_id = %org, cluster = %cluster.id, %kind, cku, "cluster created");
    state.provisioner.wake();
    Ok((
        StatusCode::CREATED,
        Json(view(&state.base_url(&headers), cluster)),
    ))
}

#[utoipa::path(
    get,
    path = "/cmk/v2/clusters",
    operation_id = "listClusters",
    tag = "clusters",
    params(ListParams),
    responses(
        (status = 200, description = "A page of the environment's clusters", body = List<ClusterView>),
        (status = 400, description = "Missing environment, or invalid page_size or page_token", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "The environment is not in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn list(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<ClusterView>>> {
    let org = &caller.organization_id;
    let env_id = params.environment.ok_or_else(|| {
        Error::InvalidArgument(
            "the environment query parameter is required, e.g. GET /cmk/v2/clusters?environment=env-abc123"
                .into(),
        )
    })?;
    let page_size = page_size(params.page_size)?;
    let cursor = decode_token(params.page_token.as_deref(), "lkc-")?;
    let env = state
        .store
        .get_environment(org, &env_id)
        .await?
        .ok_or_else(|| environments::not_found(&env_id))?;
    let clusters = state
        .store
        .list_clusters(org, &env.id, cursor.as_ref(), page_size + 1)
        .await?;
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "ClusterList",
        &format!("{base}/cmk/v2/clusters"),
        &format!("environment={}", env.id),
        page_size,
        clusters,
        |c| (c.created_at, c.id.as_str()),
        |c| view(&base, c),
    )))
}

#[utoipa::path(
    get,
    path = "/cmk/v2/clusters/{id}",
    operation_id = "getCluster",
    tag = "clusters",
    params(("id" = String, Path, description = "The cluster id (`lkc-...`)")),
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn get(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClusterView>> {
    let cluster = state
        .store
        .get_cluster(&caller.organization_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state.base_url(&headers), cluster)))
}

#[utoipa::path(
    patch,
    path = "/cmk/v2/clusters/{id}",
    operation_id = "updateCluster",
    tag = "clusters",
    params(("id" = String, Path, description = "The cluster id (`lkc-...`)")),
    request_body = UpdateCluster,
    responses(
        (status = 200, description = "The cluster after the change", body = ClusterView),
        (status = 400, description = "Invalid change", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the caller's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster FAILED; its config cannot change", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn update(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateCluster>,
) -> Result<Json<ClusterView>> {
    let org = &caller.organization_id;
    let current = state
        .store
        .get_cluster(org, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let spec = req.spec;
    if let Some(env) = &spec.environment {
        if env.id != current.environment_id {
            return Err(Error::InvalidArgument(format!(
                "cluster {id} is in environment {}; clusters cannot move between environments",
                current.environment_id
            )));
        }
    }
    let display_name = spec
        .display_name
        .as_deref()
        .map(|n| validate_name("spec.display_name", n))
        .transpose()?;
    let config = match &spec.config {
        None => None,
        Some(config) => {
            let (kind, cku) = validate_config(config, &current.availability)?;
            if (kind, cku) == (current.kind, current.cku) {
                None
            } else {
                check_change(&current, kind)?;
                let limits = state.config.plans.get(kind);
                Some((kind, cku, state.store.ensure_plan(kind, &limits).await?))
            }
        }
    };
    let resized = config.is_some();
    let cluster = state
        .store
        .update_cluster(
            org,
            &id,
            &ClusterUpdate {
                display_name: display_name.as_deref(),
                config,
            },
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
    if resized {
        tracing::info!(organization_id = %org, cluster = %id, kind = %cluster.kind, cku = cluster.cku, "cluster config changed");
        state.provisioner.wake();
    }
    Ok(Json(view(&state.base_url(&headers), cluster)))
}

/// Which config changes are allowed: none on a FAILED cluster; kind only Basic to
/// Standard (as Confluent Cloud allows); CKUs of Dedicated within the validated range.
fn check_change(current: &Cluster, kind: ClusterKind) -> Result<()> {
    if current.phase == Phase::Failed {
        return Err(Error::Conflict(format!(
            "cluster {} FAILED; its config cannot change. Delete it and create a new one",
            current.id
        )));
    }
    let allowed = kind == current.kind
        || (current.kind == ClusterKind::Basic && kind == ClusterKind::Standard);
    if allowed {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "changing a {} cluster to {kind} is not supported; only Basic to Standard, or the \
             CKUs of a Dedicated cluster",
            current.kind
        )))
    }
}

#[utoipa::path(
    delete,
    path = "/cmk/v2/clusters/{id}",
    operation_id = "deleteCluster",
    tag = "clusters",
    params(("id" = String, Path, description = "The cluster id (`lkc-...`)")),
    responses(
        (status = 204, description = "Deleted (keys revoked; removed from its cell in the background)"),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such cluster in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn delete(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let cluster = state
        .store
        .begin_delete_cluster(&caller.organization_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(organization_id = %caller.organization_id, cluster = %id, cell = %cluster.cell_id, "cluster deleted");
    state.provisioner.wake();
    Ok(StatusCode::NO_CONTENT)
}
