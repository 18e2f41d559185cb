//! `/iam/v2/api-keys`: create, list (keyset pagination, `spec.owner` and `spec.resource`
//! filters), get, update, delete; the rules are in [`crate::service::api_keys`].
//!
//! A key is owned by a user or service account of the caller's organisation and bound to
//! one of its clusters (`spec.resource`), or to nothing: a Cloud API key, which
//! authenticates this API. The secret is returned once, in the create response;
//! `status.phase` says whether a cluster key's cell has it.

use super::auth::Caller;
use super::envelope::{list_page, List, ObjectMeta, ObjectRef};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{ErrorEnvelope, Result};
use crate::service::api_keys::{KeyFilter, NewKey};
use crate::service::{self, api_key_crn, cluster_crn, principal_crn, principal_kind, PageRequest};
use crate::store::ApiKey;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const API_VERSION: &str = "iam/v2";

/// An API key (`iam/v2` `ApiKey`).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "iam/v2")]
    api_version: &'static str,
    #[schema(example = "ApiKey")]
    kind: &'static str,
    /// The key (16 characters `A-Z0-9`): the SASL/PLAIN user name, or the HTTP Basic
    /// user of a Cloud API key.
    id: String,
    metadata: ObjectMeta,
    spec: ApiKeySpecView,
    status: ApiKeyStatus,
}

#[derive(Serialize, ToSchema)]
struct ApiKeySpecView {
    /// Only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    display_name: String,
    description: String,
    owner: ObjectRef,
    /// `null` for a Cloud API key.
    resource: Option<ObjectRef>,
}

#[derive(Serialize, ToSchema)]
struct ApiKeyStatus {
    /// READY when the key works everywhere it should; PROPAGATING while a cluster key
    /// has not reached its cell yet (its cluster may still be provisioning).
    #[schema(example = "READY")]
    phase: &'static str,
}

/// A reference to a resource by id.
#[derive(Deserialize, ToSchema)]
#[schema(as = ApiKeyIdRef)]
#[serde(deny_unknown_fields)]
pub struct IdRef {
    /// Letters, digits and '-', at most 64.
    #[schema(pattern = "^[A-Za-z0-9-]{1,64}$")]
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ApiKeyCreateSpec)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    /// The user (`u-...`) or service account (`sa-...`) the key acts as.
    owner: IdRef,
    /// The cluster (`lkc-...`) the key is for; absent or null for a Cloud API key.
    resource: Option<IdRef>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    spec: CreateSpec,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ApiKeyUpdateSpec)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    /// Absent: unchanged.
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
    /// Absent: unchanged.
    #[schema(max_length = 1024)]
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKey {
    spec: UpdateSpec,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Items per page, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i64>,
    /// Where the page starts: take it from the `metadata.next` URL of the previous page.
    #[param(pattern = "^[0-9]{1,19}\\.[A-Za-z0-9-]{1,64}$")]
    page_token: Option<String>,
    /// Only keys owned by this user or service account.
    #[serde(rename = "spec.owner")]
    #[param(pattern = "^[A-Za-z0-9-]{1,64}$")]
    owner: Option<String>,
    /// Only keys for this cluster.
    #[serde(rename = "spec.resource")]
    #[param(pattern = "^[A-Za-z0-9-]{1,64}$")]
    resource: Option<String>,
}

fn view(base: &str, key: ApiKey, secret: Option<String>) -> ApiKeyView {
    let org = &key.organization_id;
    let owner = ObjectRef {
        // Users have no route of their own yet.
        related: key
            .owner_id
            .starts_with("sa-")
            .then(|| format!("{base}/iam/v2/service-accounts/{}", key.owner_id)),
        resource_name: principal_crn(org, &key.owner_id),
        api_version: Some(API_VERSION),
        kind: Some(principal_kind(&key.owner_id)),
        id: key.owner_id.clone(),
    };
    let resource = (!key.resource_id.is_empty()).then(|| ObjectRef {
        related: Some(format!("{base}/cmk/v2/clusters/{}", key.resource_id)),
        resource_name: cluster_crn(org, None, &key.resource_id),
        api_version: Some("cmk/v2"),
        kind: Some("Cluster"),
        id: key.resource_id.clone(),
    });
    ApiKeyView {
        api_version: API_VERSION,
        kind: "ApiKey",
        metadata: ObjectMeta::new(
            format!("{base}/iam/v2/api-keys/{}", key.id),
            api_key_crn(org, &key.id),
            key.created_at,
            key.updated_at,
        ),
        status: ApiKeyStatus {
            phase: service::api_keys::phase(&key),
        },
        spec: ApiKeySpecView {
            secret,
            display_name: key.display_name,
            description: key.description,
            owner,
            resource,
        },
        id: key.id,
    }
}

#[utoipa::path(
    post,
    path = "/iam/v2/api-keys",
    operation_id = "createApiKey",
    tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The new key, with its secret (shown only here)", body = ApiKeyView),
        (status = 400, description = "Invalid name, description or id", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "The owner or the cluster is not in the caller's organisation", body = ErrorEnvelope),
        (status = 409, description = "The cluster FAILED and cannot take keys", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<ApiKeyView>)> {
    let spec = req.spec;
    let created = service::api_keys::create(
        &state,
        &caller,
        NewKey {
            display_name: spec.display_name.as_deref(),
            description: spec.description.as_deref(),
            owner_id: &spec.owner.id,
            resource_id: spec.resource.as_ref().map(|r| r.id.as_str()),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(view(
            &state.base_url(&headers),
            created.key,
            Some(created.secret),
        )),
    ))
}

#[utoipa::path(
    get,
    path = "/iam/v2/api-keys",
    operation_id = "listApiKeys",
    tag = "api-keys",
    params(ListParams),
    responses(
        (status = 200, description = "A page of the organisation's API keys", body = List<ApiKeyView>),
        (status = 400, description = "Invalid page_size, page_token or filter", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn list(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<ApiKeyView>>> {
    let page = PageRequest {
        page_size: params.page_size,
        page_token: params.page_token,
    };
    let filter = KeyFilter {
        owner: params.owner,
        resource: params.resource,
    };
    let keys = service::api_keys::list(&state, &caller, &filter, &page).await?;
    // The filters were checked (letters, digits and '-'), so they are URL-safe.
    let mut filters = Vec::new();
    if let Some(owner) = &filter.owner {
        filters.push(format!("spec.owner={owner}"));
    }
    if let Some(resource) = &filter.resource {
        filters.push(format!("spec.resource={resource}"));
    }
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "ApiKeyList",
        &format!("{base}/iam/v2/api-keys"),
        &filters.join("&"),
        keys,
        |k| view(&base, k, None),
    )))
}

#[utoipa::path(
    get,
    path = "/iam/v2/api-keys/{id}",
    operation_id = "getApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The API key")),
    responses(
        (status = 200, description = "The API key (without its secret)", body = ApiKeyView),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such API key in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn get(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>> {
    let key = service::api_keys::get(&state, &caller, &id).await?;
    Ok(Json(view(&state.base_url(&headers), key, None)))
}

#[utoipa::path(
    patch,
    path = "/iam/v2/api-keys/{id}",
    operation_id = "updateApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The API key")),
    request_body = UpdateApiKey,
    responses(
        (status = 200, description = "The key after the change", body = ApiKeyView),
        (status = 400, description = "Invalid display_name or description", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such API key in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn update(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateApiKey>,
) -> Result<Json<ApiKeyView>> {
    let key = service::api_keys::update(
        &state,
        &caller,
        &id,
        req.spec.display_name.as_deref(),
        req.spec.description.as_deref(),
    )
    .await?;
    Ok(Json(view(&state.base_url(&headers), key, None)))
}

#[utoipa::path(
    delete,
    path = "/iam/v2/api-keys/{id}",
    operation_id = "deleteApiKey",
    tag = "api-keys",
    params(("id" = String, Path, description = "The API key")),
    responses(
        (status = 204, description = "Deleted (revoked; a cluster key is removed from its cell)"),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such API key in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn delete(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::api_keys::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
