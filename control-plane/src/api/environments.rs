//! `/org/v2/environments`: create, list (keyset pagination), get, rename, delete.
//!
//! Every query is scoped to the caller's organisation; an environment of another
//! organisation is indistinguishable from one that does not exist (404).

use super::auth::{validate_name, Caller};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::{Environment, PageCursor};
use crate::util::rfc3339_millis;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

const API_VERSION: &str = "org/v2";
const DEFAULT_PAGE_SIZE: i64 = 10;
const MAX_PAGE_SIZE: i64 = 100;

#[derive(Serialize)]
pub struct ObjectMeta {
    #[serde(rename = "self")]
    self_url: String,
    resource_name: String,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
pub struct EnvironmentView {
    api_version: &'static str,
    kind: &'static str,
    id: String,
    metadata: ObjectMeta,
    display_name: String,
}

#[derive(Serialize)]
pub struct ListMeta {
    first: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize)]
pub struct EnvironmentList {
    api_version: &'static str,
    kind: &'static str,
    metadata: ListMeta,
    data: Vec<EnvironmentView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    display_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironment {
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    page_size: Option<i64>,
    page_token: Option<String>,
}

fn view(base: &str, env: Environment) -> EnvironmentView {
    EnvironmentView {
        api_version: API_VERSION,
        kind: "Environment",
        metadata: ObjectMeta {
            self_url: format!("{base}/org/v2/environments/{}", env.id),
            resource_name: format!(
                "crn://tributary.cloud/organization={}/environment={}",
                env.organization_id, env.id
            ),
            created_at: rfc3339_millis(env.created_at),
            updated_at: rfc3339_millis(env.updated_at),
        },
        id: env.id,
        display_name: env.display_name,
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "environment {id} not found; list your environments with GET /org/v2/environments"
    ))
}

/// A page token is `<created_at millis>.<environment id>` of the last item of a page.
fn encode_token(env: &Environment) -> String {
    format!("{}.{}", env.created_at, env.id)
}

fn decode_token(token: &str) -> Result<PageCursor> {
    token
        .split_once('.')
        .and_then(|(at, id)| {
            let valid_id = id.starts_with("env-")
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            Some(PageCursor {
                created_at: at.parse().ok()?,
                id: id.to_string(),
            })
            .filter(|_| valid_id)
        })
        .ok_or_else(|| {
            Error::InvalidArgument(
                "page_token is not valid; use the metadata.next URL of a previous page".into(),
            )
        })
}

pub async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentView>)> {
    let display_name = validate_name("display_name", &req.display_name)?;
    let env = state
        .store
        .create_environment(&caller.organization_id, &display_name)
        .await?;
    tracing::info!(organization_id = %caller.organization_id, environment_id = %env.id, "environment created");
    Ok((
        StatusCode::CREATED,
        Json(view(&state.base_url(&headers), env)),
    ))
}

pub async fn list(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<EnvironmentList>> {
    let page_size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(Error::InvalidArgument(format!(
            "page_size {page_size} is out of range; use 1 to {MAX_PAGE_SIZE}"
        )));
    }
    let cursor = params.page_token.as_deref().map(decode_token).transpose()?;
    let mut envs = state
        .store
        .list_environments(&caller.organization_id, cursor.as_ref(), page_size + 1)
        .await?;
    let base = state.base_url(&headers);
    let collection = format!("{base}/org/v2/environments");
    let next = if envs.len() as i64 > page_size {
        envs.truncate(page_size as usize);
        envs.last().map(|last| {
            format!(
                "{collection}?page_size={page_size}&page_token={}",
                encode_token(last)
            )
        })
    } else {
        None
    };
    Ok(Json(EnvironmentList {
        api_version: API_VERSION,
        kind: "EnvironmentList",
        metadata: ListMeta {
            first: format!("{collection}?page_size={page_size}"),
            next,
        },
        data: envs.into_iter().map(|e| view(&base, e)).collect(),
    }))
}

pub async fn get(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EnvironmentView>> {
    let env = state
        .store
        .get_environment(&caller.organization_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state.base_url(&headers), env)))
}

pub async fn update(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateEnvironment>,
) -> Result<Json<EnvironmentView>> {
    let org = &caller.organization_id;
    let env = match req.display_name {
        Some(name) => {
            let name = validate_name("display_name", &name)?;
            state.store.update_environment(org, &id, &name).await?
        }
        None => state.store.get_environment(org, &id).await?,
    };
    let env = env.ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state.base_url(&headers), env)))
}

pub async fn delete(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    if state
        .store
        .delete_environment(&caller.organization_id, &id)
        .await?
    {
        tracing::info!(organization_id = %caller.organization_id, environment_id = %id, "environment deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}
