//! `/iam/v2/api-keys`: create, list (keyset pagination, `spec.owner` and `spec.resource`
//! filters), get, update, delete.
//!
//! A key is owned by a user or service account of the caller's organisation and bound to
//! one of its clusters (`spec.resource`), or to nothing: a Cloud API key, which
//! authenticates this API (see `auth.rs`). The secret is returned once, in the create
//! response; the store keeps only its SHA-256. A cluster key is pushed to its cell before
//! the create answers when its cluster is PROVISIONED (within a budget; the reconciler
//! retries), and its deletion likewise; `status.phase` says whether the cell has it.

use super::auth::{validate_name, Caller};
use super::clusters::cluster_crn;
use super::envelope::{
    decode_token, list_page, page_size, validate_description, List, ObjectMeta, ObjectRef, CRN_ROOT,
};
use super::extract::{ApiJson, ApiQuery};
use super::service_accounts::principal_crn;
use super::AppState;
use crate::error::{Error, ErrorEnvelope, Result};
use crate::propagate::sync_key;
use crate::store::{ApiKey, NewApiKey, Phase};
use crate::util::{new_api_secret, token_hash};
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
        kind: Some(if key.owner_id.starts_with("sa-") {
            "ServiceAccount"
        } else {
            "User"
        }),
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
            format!("{CRN_ROOT}/organization={org}/api-key={}", key.id),
            key.created_at,
            key.updated_at,
        ),
        status: ApiKeyStatus {
            phase: if key.synced { "READY" } else { "PROPAGATING" },
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

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "API key {id} not found; list yours with GET /iam/v2/api-keys"
    ))
}

/// Checks an id used as a filter or reference: letters, digits and '-', at most 64.
fn check_id(field: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{field} {id:?} is not a valid id (letters, digits and '-')"
        )))
    }
}

/// Pushes a cluster key to (or removes it from) its cell within the sync budget; on
/// failure or timeout the reconciler carries on. Never fails the request.
async fn push_now(state: &AppState, key_id: &str) {
    let prov = &state.provisioner;
    match tokio::time::timeout(
        prov.config.sync_budget,
        sync_key(&state.store, prov, key_id),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::info!(api_key = %key_id, error = %e, "key push deferred to the reconciler")
        }
        Err(_) => {
            tracing::info!(api_key = %key_id, "key push took too long; deferred to the reconciler")
        }
    }
    prov.wake();
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
    let org = &caller.organization_id;
    let spec = req.spec;
    let display_name = match spec.display_name.as_deref() {
        Some(n) => validate_name("display_name", n)?,
        None => String::new(),
    };
    let description = validate_description(spec.description.as_deref())?;
    check_id("spec.owner.id", &spec.owner.id)?;
    if !state.store.principal_in_org(org, &spec.owner.id).await? {
        return Err(Error::NotFound(format!(
            "owner {} not found; use your user id or a service account from GET /iam/v2/service-accounts",
            spec.owner.id
        )));
    }
    let resource_id = match &spec.resource {
        None => String::new(),
        Some(r) => {
            check_id("spec.resource.id", &r.id)?;
            let cluster = state.store.get_cluster(org, &r.id).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "cluster {} not found; list yours with GET /cmk/v2/clusters?environment=ENV_ID, \
                     or omit spec.resource for a Cloud API key",
                    r.id
                ))
            })?;
            if cluster.phase == Phase::Failed {
                return Err(Error::Conflict(format!(
                    "cluster {} FAILED and cannot take API keys; create a new cluster",
                    cluster.id
                )));
            }
            cluster.id
        }
    };
    // API keys are long random secrets (244 bits), not passwords: a fast SHA-256 is the
    // right hash (nothing to brute-force), and the brokers verify it on every SASL/PLAIN
    // authentication without a slow KDF in the connection path.
    let secret = new_api_secret();
    let key = state
        .store
        .create_api_key(&NewApiKey {
            organization_id: org,
            display_name: &display_name,
            description: &description,
            owner_id: &spec.owner.id,
            resource_id: &resource_id,
            secret_sha256: &token_hash(&secret),
        })
        .await?;
    tracing::info!(organization_id = %org, api_key = %key.id, resource = %resource_id, "API key created");
    let key = if key.synced {
        key
    } else {
        push_now(&state, &key.id).await;
        state
            .store
            .get_api_key(org, &key.id)
            .await?
            .ok_or_else(|| not_found(&key.id))?
    };
    Ok((
        StatusCode::CREATED,
        Json(view(&state.base_url(&headers), key, Some(secret))),
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
    let page_size = page_size(params.page_size)?;
    let cursor = decode_token(params.page_token.as_deref(), "")?;
    let mut filters = Vec::new();
    if let Some(owner) = &params.owner {
        check_id("spec.owner", owner)?;
        filters.push(format!("spec.owner={owner}"));
    }
    if let Some(resource) = &params.resource {
        check_id("spec.resource", resource)?;
        filters.push(format!("spec.resource={resource}"));
    }
    let keys = state
        .store
        .list_api_keys(
            &caller.organization_id,
            params.owner.as_deref(),
            params.resource.as_deref(),
            cursor.as_ref(),
            page_size + 1,
        )
        .await?;
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "ApiKeyList",
        &format!("{base}/iam/v2/api-keys"),
        &filters.join("&"),
        page_size,
        keys,
        |k| (k.created_at, k.id.as_str()),
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
    let key = state
        .store
        .get_api_key(&caller.organization_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
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
    let name = req
        .spec
        .display_name
        .as_deref()
        .map(|n| validate_name("spec.display_name", n))
        .transpose()?;
    let description = req
        .spec
        .description
        .as_deref()
        .map(|d| validate_description(Some(d)))
        .transpose()?;
    let key = state
        .store
        .update_api_key(
            &caller.organization_id,
            &id,
            name.as_deref(),
            description.as_deref(),
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
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
    let key = state
        .store
        .revoke_api_key(&caller.organization_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(organization_id = %caller.organization_id, api_key = %id, "API key deleted");
    if !key.resource_id.is_empty() {
        push_now(&state, &id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
