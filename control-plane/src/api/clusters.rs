//! `/cmk/v2/clusters`: create, list (`?environment=` required), get, update (name; kind
//! and CKU changes), delete; the rules are in [`crate::service::clusters`].
//!
//! A new cluster is PROVISIONING; the reconciler (`crate::reconciler`) places it in a cell
//! and makes it PROVISIONED (with `spec.kafka_bootstrap_endpoint` and
//! `spec.http_endpoint`) or FAILED (with `status.reason`). A delete revokes the cluster's
//! keys and hides it at once; the reconciler removes it from its cell. Every query is
//! scoped to the caller's organisation; another organisation's cluster answers 404.

use super::auth::Caller;
use super::envelope::{list_page, List, ObjectMeta, ObjectRef};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{ErrorEnvelope, Result};
use crate::plans::ClusterKind;
use crate::service::clusters::{
    bootstrap_endpoint, shown_cku, ClusterChange, ConfigInput, NewClusterInput, MAX_CKU,
};
use crate::service::{self, cluster_crn, environment_crn, PageRequest};
use crate::store::{Cluster, Phase};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

const API_VERSION: &str = "cmk/v2";

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
/// written by hand (below) so that it states the rule the service layer applies: CKUs
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

impl From<&ConfigSpec> for ConfigInput {
    fn from(c: &ConfigSpec) -> ConfigInput {
        ConfigInput {
            kind: c.kind.clone(),
            cku: c.cku,
        }
    }
}

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

fn view(base: &str, c: Cluster) -> ClusterView {
    let provisioned = c.phase == Phase::Provisioned;
    let cku = shown_cku(&c);
    let kafka_bootstrap_endpoint = bootstrap_endpoint(&c);
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
            kafka_bootstrap_endpoint,
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
    let spec = req.spec;
    let cluster = service::clusters::create(
        &state,
        &caller,
        NewClusterInput {
            display_name: &spec.display_name,
            availability: &spec.availability,
            cloud: &spec.cloud,
            region: &spec.region,
            config: (&spec.config).into(),
            environment_id: &spec.environment.id,
        },
    )
    .await?;
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
    let page = PageRequest {
        page_size: params.page_size,
        page_token: params.page_token,
    };
    let env_id = params.environment.unwrap_or_default();
    let clusters = service::clusters::list(&state, &caller, Some(env_id.as_str()), &page).await?;
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "ClusterList",
        &format!("{base}/cmk/v2/clusters"),
        // Found in the organisation, so a real id: URL-safe.
        &format!("environment={env_id}"),
        clusters,
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
    let cluster = service::clusters::get(&state, &caller, &id).await?;
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
    let spec = req.spec;
    let cluster = service::clusters::update(
        &state,
        &caller,
        &id,
        ClusterChange {
            display_name: spec.display_name.as_deref(),
            config: spec.config.as_ref().map(ConfigInput::from),
            environment_id: spec.environment.as_ref().map(|e| e.id.as_str()),
        },
    )
    .await?;
    Ok(Json(view(&state.base_url(&headers), cluster)))
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
    service::clusters::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
