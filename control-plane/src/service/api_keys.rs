//! API keys: create, list (keyset pagination, owner and resource filters), get, update,
//! delete.
//!
//! A key is owned by a user or service account of the caller's organisation and bound to
//! one of its clusters (its resource), or to nothing: a Cloud API key, which authenticates
//! the Cloud API (see [`super::auth`]). The secret is returned once, by [`create`]; the
//! store keeps only its SHA-256. A cluster key is pushed to its cell before the create
//! answers when its cluster is PROVISIONED (within a budget; the reconciler retries), and
//! its deletion likewise; [`ApiKey::synced`] says whether the cell has it.

use super::auth::{validate_description, validate_name};
use super::page::page_of;
use super::{check_id, AppState, Page, PageRequest};
use crate::error::{Error, Result};
use crate::propagate::sync_key;
use crate::store::{ApiKey, NewApiKey, Phase, Principal};
use crate::util::{new_api_secret, token_hash};

/// A key as asked for.
pub struct NewKey<'a> {
    pub display_name: Option<&'a str>,
    pub description: Option<&'a str>,
    /// The user (`u-...`) or service account (`sa-...`) the key acts as.
    pub owner_id: &'a str,
    /// The cluster (`lkc-...`); `None` for a Cloud API key.
    pub resource_id: Option<&'a str>,
}

/// A new key and its secret (shown only now).
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Filters of a key list.
#[derive(Clone, Debug, Default)]
pub struct KeyFilter {
    /// Only keys owned by this user or service account.
    pub owner: Option<String>,
    /// Only keys for this cluster.
    pub resource: Option<String>,
}

/// `status.phase` of a key: READY when it works everywhere it should, PROPAGATING while
/// a cluster key has not reached its cell yet (its cluster may still be provisioning).
pub fn phase(key: &ApiKey) -> &'static str {
    if key.synced {
        "READY"
    } else {
        "PROPAGATING"
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "API key {id} not found; list yours with GET /iam/v2/api-keys"
    ))
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

pub async fn create(state: &AppState, caller: &Principal, new: NewKey<'_>) -> Result<CreatedKey> {
    let org = &caller.organization_id;
    let display_name = match new.display_name {
        Some(n) => validate_name("display_name", n)?,
        None => String::new(),
    };
    let description = validate_description(new.description)?;
    check_id("spec.owner.id", new.owner_id)?;
    if !state.store.principal_in_org(org, new.owner_id).await? {
        return Err(Error::NotFound(format!(
            "owner {} not found; use your user id or a service account from GET /iam/v2/service-accounts",
            new.owner_id
        )));
    }
    let resource_id = match new.resource_id {
        None => String::new(),
        Some(r) => {
            check_id("spec.resource.id", r)?;
            let cluster = state.store.get_cluster(org, r).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "cluster {r} not found; list yours with GET /cmk/v2/clusters?environment=ENV_ID, \
                     or omit spec.resource for a Cloud API key"
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
            owner_id: new.owner_id,
            resource_id: &resource_id,
            secret_sha256: &token_hash(&secret),
            // Brokers check SCRAM proofs against these; the secret itself is never kept.
            scram: &if resource_id.is_empty() {
                String::new()
            } else {
                crate::scram::to_json(&crate::scram::credentials(&secret))
            },
        })
        .await?;
    tracing::info!(organization_id = %org, api_key = %key.id, resource = %resource_id, "API key created");
    let key = if key.synced {
        key
    } else {
        push_now(state, &key.id).await;
        state
            .store
            .get_api_key(org, &key.id)
            .await?
            .ok_or_else(|| not_found(&key.id))?
    };
    Ok(CreatedKey { key, secret })
}

pub async fn list(
    state: &AppState,
    caller: &Principal,
    filter: &KeyFilter,
    page: &PageRequest,
) -> Result<Page<ApiKey>> {
    let (size, cursor) = page.checked("")?;
    if let Some(owner) = &filter.owner {
        check_id("spec.owner", owner)?;
    }
    if let Some(resource) = &filter.resource {
        check_id("spec.resource", resource)?;
    }
    let keys = state
        .store
        .list_api_keys(
            &caller.organization_id,
            filter.owner.as_deref(),
            filter.resource.as_deref(),
            cursor.as_ref(),
            size + 1,
        )
        .await?;
    Ok(page_of(keys, size, |k| (k.created_at, k.id.as_str())))
}

pub async fn get(state: &AppState, caller: &Principal, id: &str) -> Result<ApiKey> {
    state
        .store
        .get_api_key(&caller.organization_id, id)
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
) -> Result<ApiKey> {
    let name = display_name
        .map(|n| validate_name("spec.display_name", n))
        .transpose()?;
    let description = description
        .map(|d| validate_description(Some(d)))
        .transpose()?;
    state
        .store
        .update_api_key(
            &caller.organization_id,
            id,
            name.as_deref(),
            description.as_deref(),
        )
        .await?
        .ok_or_else(|| not_found(id))
}

/// Revokes the key; a cluster key is removed from its cell (now, within the budget, or
/// by the reconciler).
pub async fn delete(state: &AppState, caller: &Principal, id: &str) -> Result<()> {
    let key = state
        .store
        .revoke_api_key(&caller.organization_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    tracing::info!(organization_id = %caller.organization_id, api_key = %id, "API key deleted");
    if !key.resource_id.is_empty() {
        push_now(state, id).await;
    }
    Ok(())
}
