//! Service accounts: create, list (keyset pagination), get, update, delete.
//!
//! Ids are `sa-` plus random; names are unique in an organisation (already exists). A
//! service account that still owns API keys cannot be deleted (conflict). Another
//! organisation's account is not found.

use super::auth::{validate_description, validate_name};
use super::page::page_of;
use super::{AppState, Page, PageRequest};
use crate::error::{Error, Result};
use crate::store::{Principal, ServiceAccount};

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "service account {id} not found; list yours with GET /iam/v2/service-accounts"
    ))
}

pub async fn create(
    state: &AppState,
    caller: &Principal,
    display_name: &str,
    description: Option<&str>,
) -> Result<ServiceAccount> {
    let name = validate_name("display_name", display_name)?;
    let description = validate_description(description)?;
    let sa = state
        .store
        .create_service_account(&caller.organization_id, &name, &description)
        .await?;
    tracing::info!(organization_id = %caller.organization_id, service_account = %sa.id, "service account created");
    Ok(sa)
}

pub async fn list(
    state: &AppState,
    caller: &Principal,
    page: &PageRequest,
) -> Result<Page<ServiceAccount>> {
    let (size, cursor) = page.checked("sa-")?;
    let accounts = state
        .store
        .list_service_accounts(&caller.organization_id, cursor.as_ref(), size + 1)
        .await?;
    Ok(page_of(accounts, size, |a| (a.created_at, a.id.as_str())))
}

pub async fn get(state: &AppState, caller: &Principal, id: &str) -> Result<ServiceAccount> {
    state
        .store
        .get_service_account(&caller.organization_id, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Changes what is given (`None`: unchanged).
pub async fn update(
    state: &AppState,
    caller: &Principal,
    id: &str,
    display_name: Option<&str>,
    description: Option<&str>,
) -> Result<ServiceAccount> {
    let name = display_name
        .map(|n| validate_name("display_name", n))
        .transpose()?;
    let description = description
        .map(|d| validate_description(Some(d)))
        .transpose()?;
    state
        .store
        .update_service_account(
            &caller.organization_id,
            id,
            name.as_deref(),
            description.as_deref(),
        )
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn delete(state: &AppState, caller: &Principal, id: &str) -> Result<()> {
    if state
        .store
        .delete_service_account(&caller.organization_id, id)
        .await?
    {
        tracing::info!(organization_id = %caller.organization_id, service_account = %id, "service account deleted");
        Ok(())
    } else {
        Err(not_found(id))
    }
}
