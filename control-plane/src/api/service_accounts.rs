//! `/iam/v2/service-accounts`: create, list (keyset pagination), get, update, delete.
//!
//! Ids are `sa-` plus random; names are unique in an organisation (409). A service
//! account that still owns API keys cannot be deleted (409). Every query is scoped to the
//! caller's organisation; another organisation's account answers 404.

use super::auth::{validate_name, Caller};
use super::envelope::{
    decode_token, list_page, page_size, validate_description, List, ObjectMeta, CRN_ROOT,
};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::ServiceAccount;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

pub(crate) const API_VERSION: &str = "iam/v2";

#[derive(Serialize)]
pub struct ServiceAccountView {
    api_version: &'static str,
    kind: &'static str,
    id: String,
    metadata: ObjectMeta,
    display_name: String,
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccount {
    display_name: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceAccount {
    display_name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    page_size: Option<i64>,
    page_token: Option<String>,
}

/// The CRN of a user or service account of `org_id`.
pub(crate) fn principal_crn(org_id: &str, id: &str) -> String {
    let kind = if id.starts_with("sa-") {
        "service-account"
    } else {
        "user"
    };
    format!("{CRN_ROOT}/organization={org_id}/{kind}={id}")
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

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "service account {id} not found; list yours with GET /iam/v2/service-accounts"
    ))
}

pub async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateServiceAccount>,
) -> Result<(StatusCode, Json<ServiceAccountView>)> {
    let name = validate_name("display_name", &req.display_name)?;
    let description = validate_description(req.description.as_deref())?;
    let sa = state
        .store
        .create_service_account(&caller.organization_id, &name, &description)
        .await?;
    tracing::info!(organization_id = %caller.organization_id, service_account = %sa.id, "service account created");
    Ok((
        StatusCode::CREATED,
        Json(view(&state.base_url(&headers), sa)),
    ))
}

pub async fn list(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<ServiceAccountView>>> {
    let page_size = page_size(params.page_size)?;
    let cursor = decode_token(params.page_token.as_deref(), "sa-")?;
    let accounts = state
        .store
        .list_service_accounts(&caller.organization_id, cursor.as_ref(), page_size + 1)
        .await?;
    let base = state.base_url(&headers);
    Ok(Json(list_page(
        API_VERSION,
        "ServiceAccountList",
        &format!("{base}/iam/v2/service-accounts"),
        "",
        page_size,
        accounts,
        |a| (a.created_at, a.id.as_str()),
        |a| view(&base, a),
    )))
}

pub async fn get(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ServiceAccountView>> {
    let sa = state
        .store
        .get_service_account(&caller.organization_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state.base_url(&headers), sa)))
}

pub async fn update(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateServiceAccount>,
) -> Result<Json<ServiceAccountView>> {
    let name = req
        .display_name
        .as_deref()
        .map(|n| validate_name("display_name", n))
        .transpose()?;
    let description = req
        .description
        .as_deref()
        .map(|d| validate_description(Some(d)))
        .transpose()?;
    let sa = state
        .store
        .update_service_account(
            &caller.organization_id,
            &id,
            name.as_deref(),
            description.as_deref(),
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state.base_url(&headers), sa)))
}

pub async fn delete(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    if state
        .store
        .delete_service_account(&caller.organization_id, &id)
        .await?
    {
        tracing::info!(organization_id = %caller.organization_id, service_account = %id, "service account deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}
