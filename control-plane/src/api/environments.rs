//! `/org/v2/environments`: create, list (keyset pagination), get, rename, delete; the
//! rules are in [`crate::service::environments`].
//!
//! Every query is scoped to the caller's organisation; an environment of another
//! organisation is indistinguishable from one that does not exist (404). One that still
//! holds clusters cannot be deleted (409).

use super::auth::Caller;
use super::envelope::{list_page, List, ObjectMeta};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{ErrorEnvelope, Result};
use crate::service::{self, environment_crn, PageRequest};
use crate::store::Environment;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const API_VERSION: &str = "org/v2";

/// An environment (`org/v2` `Environment`).
#[derive(Serialize, ToSchema)]
pub struct EnvironmentView {
    #[schema(example = "org/v2")]
    api_version: &'static str,
    #[schema(example = "Environment")]
    kind: &'static str,
    /// `env-` and six characters.
    id: String,
    metadata: ObjectMeta,
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    /// 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255, example = "prod")]
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironment {
    /// The new name (1 to 255 characters); absent: unchanged.
    #[schema(min_length = 1, max_length = 255)]
    display_name: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Items per page, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i64>,
    /// Where the page starts: take it from the `metadata.next` URL of the previous page.
    #[param(pattern = "^[0-9]{1,19}\\.env-[A-Za-z0-9-]{1,60}$")]
    page_token: Option<String>,
}

fn view(base: &str, env: Environment) -> EnvironmentView {
    EnvironmentView {
        api_version: API_VERSION,
        kind: "Environment",
        metadata: ObjectMeta::new(
            format!("{base}/org/v2/environments/{}", env.id),
            environment_crn(&env.organization_id, &env.id),
            env.created_at,
            env.updated_at,
        ),
        id: env.id,
        display_name: env.display_name,
    }
}

#[utoipa::path(
    post,
    path = "/org/v2/environments",
    operation_id = "createEnvironment",
    tag = "environments",
    request_body = CreateEnvironment,
    responses(
        (status = 201, description = "The new environment", body = EnvironmentView),
        (status = 400, description = "Invalid display_name", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentView>)> {
    let env = service::environments::create(&state, &caller, &req.display_name).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.base_url(&headers), env)),
    ))
}

#[utoipa::path(
    get,
    path = "/org/v2/environments",
    operation_id = "listEnvironments",
    tag = "environments",
    params(ListParams),
    responses(
        (status = 200, description = "A page of the organisation's environments", body = List<EnvironmentView>),
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
) -> Result<Json<List<EnvironmentView>>> {
    let page = PageRequest {
        page_size: params.page_size,
        page_token: params.page_token,
    };
    let envs = service::environments::list(&state, &caller, &page).await?;
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "EnvironmentList",
        &format!("{base}/org/v2/environments"),
        "",
        envs,
        |e| view(&base, e),
    )))
}

#[utoipa::path(
    get,
    path = "/org/v2/environments/{id}",
    operation_id = "getEnvironment",
    tag = "environments",
    params(("id" = String, Path, description = "The environment id (`env-...`)")),
    responses(
        (status = 200, description = "The environment", body = EnvironmentView),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such environment in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn get(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EnvironmentView>> {
    let env = service::environments::get(&state, &caller, &id).await?;
    Ok(Json(view(&state.base_url(&headers), env)))
}

#[utoipa::path(
    patch,
    path = "/org/v2/environments/{id}",
    operation_id = "updateEnvironment",
    tag = "environments",
    params(("id" = String, Path, description = "The environment id (`env-...`)")),
    request_body = UpdateEnvironment,
    responses(
        (status = 200, description = "The environment after the change", body = EnvironmentView),
        (status = 400, description = "Invalid display_name", body = ErrorEnvelope),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such environment in the caller's organisation", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn update(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateEnvironment>,
) -> Result<Json<EnvironmentView>> {
    let env =
        service::environments::update(&state, &caller, &id, req.display_name.as_deref()).await?;
    Ok(Json(view(&state.base_url(&headers), env)))
}

#[utoipa::path(
    delete,
    path = "/org/v2/environments/{id}",
    operation_id = "deleteEnvironment",
    tag = "environments",
    params(("id" = String, Path, description = "The environment id (`env-...`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope),
        (status = 404, description = "No such environment in the caller's organisation", body = ErrorEnvelope),
        (status = 409, description = "The environment still holds clusters", body = ErrorEnvelope),
    ),
    security(("bearer_token" = []), ("cloud_api_key" = [])),
)]
pub async fn delete(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::environments::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
