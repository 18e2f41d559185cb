//! Environments: create, list (keyset pagination), get, rename, delete.
//!
//! An environment of another organisation is indistinguishable from one that does not
//! exist (not found). One that still holds clusters cannot be deleted (conflict).

use super::auth::validate_name;
use super::page::page_of;
use super::{AppState, Page, PageRequest};
use crate::error::{Error, Result};
use crate::store::{Environment, Principal};

pub(crate) fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "environment {id} not found; list your environments with GET /org/v2/environments"
    ))
}

pub async fn create(
    state: &AppState,
    caller: &Principal,
    display_name: &str,
) -> Result<Environment> {
    let display_name = validate_name("display_name", display_name)?;
    let env = state
        .store
        .create_environment(&caller.organization_id, &display_name)
        .await?;
    tracing::info!(organization_id = %caller.organization_id, environment_id = %env.id, "environment created");
    Ok(env)
}

pub async fn list(
    state: &AppState,
    caller: &Principal,
    page: &PageRequest,
) -> Result<Page<Environment>> {
    let (size, cursor) = page.checked("env-")?;
    let envs = state
        .store
        .list_environments(&caller.organization_id, cursor.as_ref(), size + 1)
        .await?;
    Ok(page_of(envs, size, |e| (e.created_at, e.id.as_str())))
}

pub async fn get(state: &AppState, caller: &Principal, id: &str) -> Result<Environment> {
    state
        .store
        .get_environment(&caller.organization_id, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Renames the environment when `display_name` is given; answers it as it is now.
pub async fn update(
    state: &AppState,
    caller: &Principal,
    id: &str,
    display_name: Option<&str>,
) -> Result<Environment> {
    let org = &caller.organization_id;
    let env = match display_name {
        Some(name) => {
            let name = validate_name("display_name", name)?;
            state.store.update_environment(org, id, &name).await?
        }
        None => state.store.get_environment(org, id).await?,
    };
    env.ok_or_else(|| not_found(id))
}

pub async fn delete(state: &AppState, caller: &Principal, id: &str) -> Result<()> {
    if state
        .store
        .delete_environment(&caller.organization_id, id)
        .await?
    {
        tracing::info!(organization_id = %caller.organization_id, environment_id = %id, "environment deleted");
        Ok(())
    } else {
        Err(not_found(id))
    }
}
