//! `/iam/v2/service-accounts`: create, list (keyset pagination), get, update, delete; the
//! rules are in [`crate::service::service_accounts`].
//!
//! Ids are `sa-` plus random; names are unique in an organisation (409). A service
//! account that still owns API keys cannot be deleted (409). Every query is scoped to the
//! caller's organisation; another organisation's account answers 404.

use super::auth::Caller;
use super::envelope::{list_page, List, ObjectMeta};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{ErrorEnvelope, Result};
use crate::service::{self, principal_crn, PageRequest};
use crate::store::ServiceAccount;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub(crate) const API_VERSION: &str = "iam/v2";

/// A service account (`iam/v2` `ServiceAccount`).
#[derive(Serialize, ToSchema)]
pub struct ServiceAccountView {
    #[schema(example = "iam/v2")]
    api_version: &'static str,
    #[schema(example = "ServiceAccount")]
    kind: &'static str,
    /// `sa-` and six characters.
    id: String,
    metadata: ObjectMeta,
    display_name: String,
    description: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccount {
    /// Unique in the organisation; 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255, example = "orders-service")]
    display_name: String,
    /// At most 1,024 characters.
    #[schema(max_length = 1024)]
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceAccount {
    /// Absent: unchanged.
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
    /// Absent: unchanged.
    #[schema(max_length = 1024)]
    description: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Items per page, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i64>,
    /// Where the page starts: take it from the `metadata.next` URL of the previous page.
    #[param(pattern = "^[0-9]{1,19}\\.sa-[A-Za-z0-9-]{1,60}$")]
    page_token: Option<String>,
}

fn view(base: &str, sa: ServiceAccount) -> ServiceAccountView {
    ServiceAccountView {
        api_version: API_VERSION,
        kind: "ServiceAccount",
        metadata: ObjectMeta::new(
            format!("{base}/iam/v2/service-accounts/{}", sa.id),
            principal_crn(&sa.organization_id, &sa.id),
            sa.created_at,
            sa.updated_at,
        ),
        id: sa.id,
        display_name: sa.display_name,
        description: sa.description,
    }
}

#[utoipa::path(
    post,
    path = "/iam/v2/service-accounts",
    operation_id = "createServiceAccount",
    tag = "service-accounts",
    request_body = CreateServiceAccount,
    responses(
        (status = 201, description = "The new service account", body = ServiceAccountView),
        (status = 400, description = "Invalid display_name or description", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 409, description = "The name is taken in this organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateServiceAccount>,
) -> Result<(StatusCode, Json<ServiceAccountView>)> {
    let sa = service::service_accounts::create(
        &state,
        &caller,
        &req.display_name,
        req.description.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.base_url(&headers), sa)),
    ))
}

#[utoipa::path(
    get,
    path = "/iam/v2/service-accounts",
    operation_id = "listServiceAccounts",
    tag = "service-accounts",
    params(ListParams),
    responses(
        (status = 200, description = "A page of the organisation's service accounts", body = List<ServiceAccountView>),
        (status = 400, description = "Invalid page_size or page_token", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn list(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<ServiceAccountView>>> {
    let page = PageRequest {
        page_size: params.page_size,
        page_token: params.page_token,
    };
    let accounts = service::service_accounts::list(&state, &caller, &page).await?;
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "ServiceAccountList",
        &format!("{base}/iam/v2/service-accounts"),
        "",
        accounts,
        |a| view(&base, a),
    )))
}

#[utoipa::path(
    get,
    path = "/iam/v2/service-accounts/{id}",
    operation_id = "getServiceAccount",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account id (`sa-...`)")),
    responses(
        (status = 200, description = "The service account", body = ServiceAccountView),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such service account in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn get(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ServiceAccountView>> {
    let sa = service::service_accounts::get(&state, &caller, &id).await?;
    Ok(Json(view(&state.base_url(&headers), sa)))
}

#[utoipa::path(
    patch,
    path = "/iam/v2/service-accounts/{id}",
    operation_id = "updateServiceAccount",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account id (`sa-...`)")),
    request_body = UpdateServiceAccount,
    responses(
        (status = 200, description = "The service account after the change", body = ServiceAccountView),
        (status = 400, description = "Invalid display_name or description", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such service account in the caller's organisation", body = ErrorEnvelope),
        (status = 409, description = "The name is taken in this organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn update(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateServiceAccount>,
) -> Result<Json<ServiceAccountView>> {
    let sa = service::service_accounts::update(
        &state,
        &caller,
        &id,
        req.display_name.as_deref(),
        req.description.as_deref(),
    )
    .await?;
    Ok(Json(view(&state.base_url(&headers), sa)))
}

#[utoipa::path(
    delete,
    path = "/iam/v2/service-accounts/{id}",
    operation_id = "deleteServiceAccount",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account id (`sa-...`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such service account in the caller's organisation", body = ErrorEnvelope),
        (status = 409, description = "The service account still owns API keys", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn delete(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::service_accounts::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
